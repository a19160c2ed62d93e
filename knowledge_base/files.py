"""Article files: `articles/<topic>/<lang>.md`, YAML front matter plus a Markdown body.

They are the reviewable seed of the knowledge base: `infoopt kb sync` loads them, `infoopt kb export`
writes the published revisions back in the same format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from infoopt.core.languages import LANGUAGES

ARTICLES_DIR = Path(__file__).resolve().parent / "articles"
SHORT_ANSWER_LIMIT = 400

# Hosts whose pages count as official: Polish public administration and the EU.
OFFICIAL_SUFFIXES = (
    ".gov.pl",
    "gov.pl",
    "muw.pl",
    "infoopt.pl",
    "mazowieckie.pl",
    "duw.pl",
    "uw.olsztyn.pl",
    "europa.eu",
)


class ArticleFileError(ValueError):
    """An article file that cannot be loaded, with the file and the reason."""


def is_official_url(url: str) -> bool:
    """Whether a source link points at an official host over http(s)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        return False
    return any(
        host == suffix.lstrip(".") or host.endswith("." + suffix.lstrip(".")) for suffix in OFFICIAL_SUFFIXES
    )


@dataclass(frozen=True, slots=True)
class ArticleDocument:
    """One article in one language, as the file holds it."""

    topic_id: str
    language: str
    title: str
    short_answer: str
    body: str
    sources: tuple[str, ...]
    legal_basis: str | None
    verified_on: date
    valid_until: date | None

    def problems(self) -> list[str]:
        """What makes this document unfit to publish, one sentence each (empty when fine)."""
        found: list[str] = []
        if self.language not in LANGUAGES:
            found.append(f"language must be one of {', '.join(LANGUAGES)}")
        if not self.title.strip():
            found.append("the title is empty")
        if not self.short_answer.strip():
            found.append("the short answer is empty")
        if len(self.short_answer) > SHORT_ANSWER_LIMIT:
            found.append(
                f"the short answer has {len(self.short_answer)} characters; at most {SHORT_ANSWER_LIMIT}"
            )
        if not self.body.strip():
            found.append("the full answer is empty")
        if not self.sources:
            found.append("at least one official source link is needed")
        found.extend(f"not an official source: {url}" for url in self.sources if not is_official_url(url))
        if self.valid_until is not None and self.valid_until < self.verified_on:
            found.append("valid_until is before verified_on")
        return found


def _as_date(value: Any, field: str, path: Path) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise ArticleFileError(f"{path}: {field} must be an ISO date (YYYY-MM-DD), not {value!r}") from error


def split_front_matter(text: str, origin: object) -> tuple[dict[str, Any], str]:
    """A Markdown file's YAML front matter (a mapping) and the body after it; ValueError saying what is wrong."""
    if not text.startswith("---"):
        raise ArticleFileError(f"{origin}: the file must start with '---' front matter")
    try:
        _, front, body = text.split("---", 2)
        meta = yaml.safe_load(front) or {}
    except (ValueError, yaml.YAMLError) as error:
        raise ArticleFileError(f"{origin}: unreadable front matter: {error}") from error
    if not isinstance(meta, dict):
        raise ArticleFileError(f"{origin}: the front matter must be a mapping")
    return meta, body


def parse_article(text: str, path: Path = Path("<text>")) -> ArticleDocument:
    """Read one article file's text."""
    meta, body = split_front_matter(text, path)
    missing = [
        key for key in ("topic_id", "language", "title", "short_answer", "verified_on") if not meta.get(key)
    ]
    if missing:
        raise ArticleFileError(f"{path}: missing {', '.join(missing)}")
    sources = meta.get("sources") or []
    if not isinstance(sources, list):
        raise ArticleFileError(f"{path}: sources must be a list of URLs")
    valid_until = meta.get("valid_until")
    return ArticleDocument(
        topic_id=str(meta["topic_id"]),
        language=str(meta["language"]),
        title=str(meta["title"]).strip(),
        short_answer=" ".join(str(meta["short_answer"]).split()),
        body=body.strip() + "\n",
        sources=tuple(str(url).strip() for url in sources),
        legal_basis=str(meta["legal_basis"]).strip() if meta.get("legal_basis") else None,
        verified_on=_as_date(meta["verified_on"], "verified_on", path),
        valid_until=_as_date(valid_until, "valid_until", path) if valid_until else None,
    )


def render_article(document: ArticleDocument) -> str:
    """The file text for a document; `parse_article(render_article(d)) == d`."""
    meta = {
        "topic_id": document.topic_id,
        "language": document.language,
        "title": document.title,
        "short_answer": document.short_answer,
        "sources": list(document.sources),
        "legal_basis": document.legal_basis,
        "verified_on": document.verified_on,
        "valid_until": document.valid_until,
    }
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=100)
    return f"---\n{front}---\n{document.body.strip()}\n"


def article_path(root: Path, topic_id: str, language: str) -> Path:
    return root / topic_id / f"{language}.md"


def read_articles(root: Path = ARTICLES_DIR) -> list[ArticleDocument]:
    """Every article file under `root`, checked against its place in the tree."""
    documents: list[ArticleDocument] = []
    for path in sorted(root.glob("*/*.md")):
        document = parse_article(path.read_text(encoding="utf-8"), path)
        if (document.topic_id, document.language) != (path.parent.name, path.stem):
            raise ArticleFileError(
                f"{path}: front matter says {document.topic_id}/{document.language}, "
                f"the path says {path.parent.name}/{path.stem}"
            )
        documents.append(document)
    return documents


def write_article(root: Path, document: ArticleDocument) -> Path:
    """Write one document to its place under `root`."""
    path = article_path(root, document.topic_id, document.language)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_article(document), encoding="utf-8")
    return path
