"""The knowledge-base topics and conversation intents: stable ids that are a public contract."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

TOPICS_FILE = Path(__file__).resolve().parent / "topics.yml"
CONVERSATION_GROUP = "conversation"


@dataclass(frozen=True, slots=True)
class Topic:
    """One knowledge-base article id with its group and the one-line scope from topics.yml."""

    id: str
    group: str
    scope: str


@dataclass(frozen=True, slots=True)
class Catalogue:
    topics: tuple[Topic, ...]
    conversation_intents: tuple[str, ...]

    @property
    def topic_ids(self) -> tuple[str, ...]:
        return tuple(topic.id for topic in self.topics)

    def topic(self, topic_id: str) -> Topic | None:
        return next((topic for topic in self.topics if topic.id == topic_id), None)


def read_catalogue(path: Path = TOPICS_FILE) -> Catalogue:
    """Parse a topics file: groups of `id: scope`, plus the `conversation` group of intents."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    topics: list[Topic] = []
    intents: tuple[str, ...] = ()
    for group, entries in document.items():
        if group == CONVERSATION_GROUP:
            intents = tuple(entries)
        else:
            topics.extend(Topic(str(topic_id), str(group), str(scope)) for topic_id, scope in entries.items())
    return Catalogue(tuple(topics), intents)


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The catalogue shipped with the service."""
    return read_catalogue()
