"""Each worker's cache of published articles, dropped entry by entry when a publish is announced."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge_base.service import PublishedArticle

log = logging.getLogger(__name__)

Key = tuple[str, str]
Loader = Callable[[str, str], Awaitable[PublishedArticle | None]]
# The same, on a session the caller already holds (a person's turn): no second connection for a miss.
SessionLoader = Callable[[AsyncSession, str, str], Awaitable[PublishedArticle | None]]

# A safety net only: publishes are announced over pub/sub and reach every worker within a second;
# should a worker miss one (say Redis restarted), it still picks up the change after this long.
SAFETY_TTL_SECONDS = 60.0


class PublishedCache:
    """Published articles by (topic, language), including 'nothing published' answers.

    Filled in one query at start-up; an entry past its safety TTL is still served while it is reloaded
    in the background. So a person's turn, which holds a database connection, never waits for a second
    one here (under load, turns each waiting for another connection would exhaust the pool).
    """

    def __init__(
        self, loader: Loader, *, ttl: float = SAFETY_TTL_SECONDS, load_in: SessionLoader | None = None
    ) -> None:
        self._loader = loader
        self._load_in = load_in
        self._ttl = ttl
        self._entries: dict[Key, tuple[float, PublishedArticle | None]] = {}
        self._reloading: dict[Key, asyncio.Task[None]] = {}

    def fill(self, published: Iterable[PublishedArticle]) -> None:
        """Every published article at once (what is not published is still looked up when asked for)."""
        expires = time.monotonic() + self._ttl
        for article in published:
            self._entries[(article.topic_id, article.language)] = (expires, article)

    async def get(
        self, topic_id: str, language: str, session: AsyncSession | None = None
    ) -> PublishedArticle | None:
        """The served revision, from memory; loaded now only if it was never loaded or was dropped — on
        `session` when the caller holds one. Right after a publish every worker's turns on that topic
        miss at once; each loading on a second connection while holding its own could take the whole
        pool and wait for itself."""
        key = (topic_id, language)
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None:
            if cached[0] <= now and key not in self._reloading:
                self._reloading[key] = asyncio.create_task(self._reload(key))
            return cached[1]
        if session is not None and self._load_in is not None:
            article = await self._load_in(session, topic_id, language)
        else:
            article = await self._loader(topic_id, language)
        self._entries[key] = (now + self._ttl, article)
        return article

    async def _reload(self, key: Key) -> None:
        try:
            article = await self._loader(*key)
        except Exception as error:  # the database away for a moment: the old entry serves until next time
            log.warning("kb_cache.reload_failed", extra={"error": type(error).__name__})
        else:
            if key in self._entries:  # not dropped by a publish meanwhile
                self._entries[key] = (time.monotonic() + self._ttl, article)
        finally:
            self._reloading.pop(key, None)

    def invalidate(self, topic_id: str | None = None, language: str | None = None) -> None:
        """Forget one entry, all languages of a topic, or everything."""
        if topic_id is None:
            self._entries.clear()
            return
        for key in [k for k in self._entries if k[0] == topic_id and (language is None or k[1] == language)]:
            del self._entries[key]
