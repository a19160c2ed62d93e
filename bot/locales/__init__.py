"""The bot's own texts in pl, uk, ru and en, from the YAML files beside this module."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from infoopt.core.languages import LANGUAGES

LOCALES_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    """Every language's texts; refuses files whose keys differ from the Polish ones."""
    texts = {
        language: {
            str(k): str(v)
            for k, v in yaml.safe_load((LOCALES_DIR / f"{language}.yml").read_text("utf-8")).items()
        }
        for language in LANGUAGES
    }
    expected = set(texts["pl"])
    for language, entries in texts.items():
        if set(entries) != expected:
            raise ValueError(f"locale {language} keys differ from pl: {sorted(set(entries) ^ expected)}")
    return texts


def say(language: str, key: str, **values: object) -> str:
    """The text for `key` in `language` (Polish when the language is unknown), filled with `values`."""
    entries = catalogue().get(language) or catalogue()["pl"]
    return entries[key].format(**values) if values else entries[key]
