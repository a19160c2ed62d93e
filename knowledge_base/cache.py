"""Each worker's cache of published articles, dropped entry by entry when a publish is announced."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from knowledge_base.service import PublishedArticle

Key = tuple[str, str]
Loader = Callable[[str, str], Awaitable[PublishedArticle | None]]

# A safety net only: publishes are announced over pub/sub and reach every worker within a second;
# should a worker miss one (say Redis restarted), it still picks up the change after this long.
SAFETY_TTL_SECONDS = 60.0


class PublishedCache:
    """Published articles by (topic, language), including 'nothing published' answers."""

    def __init__(self, loader: Loader, *, ttl: float = SAFETY_TTL_SECONDS) -> None:
        self._loader = loader
        self._ttl = ttl
        self._entries: dict[Key, tuple[float, PublishedArticle | None]] = {}

    async def get(self, topic_id: str, language: str) -> PublishedArticle | None:
        """The served revision, from memory when fresh."""
        key = (topic_id, language)
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        article = await self._loader(topic_id, language)
        self._entries[key] = (now + self._ttl, article)
        return article

    def invalidate(self, topic_id: str | None = None, language: str | None = None) -> None:
        """Forget one entry, all languages of a topic, or everything."""
        if topic_id is None:
            self._entries.clear()
            return
        for key in [k for k in self._entries if k[0] == topic_id and (language is None or k[1] == language)]:
            del self._entries[key]
