"""Reading the Rasa project in `nlu_data/`: the same YAML files train both engines."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

log = logging.getLogger(__name__)
T = TypeVar("T")

# `[WSC-II-P.6151.1.2025](case_number)` or `[Kraków]{"entity": "town"}` -> the visible text.
_ENTITY_MARKUP = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


@dataclass(frozen=True, slots=True)
class Example:
    """One training or test sentence with its label and the file it came from."""

    text: str
    intent: str
    source: str


def strip_entity_markup(text: str) -> str:
    """The sentence as a person wrote it, without Rasa's entity annotations."""
    return _ENTITY_MARKUP.sub(r"\1", text)


def examples_of(block: object) -> Iterator[str]:
    if isinstance(block, str):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("- "):
                yield line[2:].strip()
    elif isinstance(block, list):  # the long form: [{text: ..., metadata: ...}]
        for item in block:
            if isinstance(item, dict) and "text" in item:
                yield str(item["text"]).strip()


def read_examples(path: Path) -> list[Example]:
    """Every `nlu:` intent example in one Rasa YAML file."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    examples: list[Example] = []
    for item in document.get("nlu") or []:
        intent = item.get("intent") if isinstance(item, dict) else None
        if not intent:
            continue  # synonyms, regexes and lookups are Rasa-only
        for raw in examples_of(item.get("examples")):
            text = strip_entity_markup(raw)
            if text:
                examples.append(Example(text=text, intent=str(intent), source=str(path)))
    return examples


def yaml_files(root: Path) -> list[Path]:
    """The YAML files under a directory (or the file itself), in a stable order."""
    if root.is_file():
        return [root]
    return sorted(path for path in root.rglob("*.yml") if path.is_file())


def load_examples(paths: Iterable[Path]) -> list[Example]:
    """All examples of all given files or directories."""
    return [example for path in paths for file in yaml_files(path) for example in read_examples(file)]


def fingerprint(paths: Iterable[Path], *extra: str) -> str:
    """A short hash of the files' contents (and any extra strings), to name a trained model."""
    digest = hashlib.sha256()
    for path in paths:
        for file in yaml_files(path):
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    for item in extra:
        digest.update(item.encode())
    return digest.hexdigest()[:16]


def cached_model(cache_dir: Path | None, name: str, key: str, build: Callable[[], T]) -> T:
    """The model saved under `cache_dir/name-key.pickle`, or `build()` and save it there.

    The key is a fingerprint of the training data, so changed data never loads a stale model.
    """
    path = cache_dir / f"{name}-{key}.pickle" if cache_dir else None
    if path is not None and path.exists():
        try:
            with path.open("rb") as handle:
                return pickle.load(handle)  # type: ignore[no-any-return]  # noqa: S301 (our own file)
        except Exception:  # a truncated or foreign file: build again
            log.warning("nlu.cache_unreadable", extra={"path": str(path)})
    model = build()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with partial.open("wb") as handle:
            pickle.dump(model, handle)
        partial.replace(path)
    return model
