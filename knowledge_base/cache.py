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
# Every published article at once, for the periodic refresh.
AllLoader = Callable[[], Awaitable[Iterable[PublishedArticle]]]
# The same, on a session the caller already holds (a person's turn): no second connection for a miss.
SessionLoader = Callable[[AsyncSession, str, str], Awaitable[PublishedArticle | None]]

# A safety net only: publishes are announced over pub/sub and reach every worker within a second;
# should a worker miss one (say Redis restarted), it still picks up the change after this long.
SAFETY_TTL_SECONDS = 60.0
# After a refresh failed (the database away), how long stale entries serve before the next try: reads
# keep coming while the database is down, and each would otherwise start a query that fails again.
RETRY_SECONDS = 5.0


class PublishedCache:
    """Published articles by (topic, language), including 'nothing published' answers.

    Filled in one query at start-up; an entry past its safety TTL is still served while it is reloaded
    in the background — with `load_all`, every entry at once in one query (not one connection per
    entry, a hundred and forty of them a minute). So a person's turn, which holds a database connection,
    never waits for a second one here (under load, turns each waiting for another connection would
    exhaust the pool).
    """

    def __init__(
        self,
        loader: Loader,
        *,
        ttl: float = SAFETY_TTL_SECONDS,
        load_in: SessionLoader | None = None,
        load_all: AllLoader | None = None,
    ) -> None:
        self._loader = loader
        self._load_in = load_in
        self._load_all = load_all
        self._ttl = ttl
        self._entries: dict[Key, tuple[float, PublishedArticle | None]] = {}
        self._reloading: dict[Key | None, asyncio.Task[None]] = {}  # None: the whole cache
        # Invalidated while the whole cache was being reloaded: (topic, language or None for all); None
        # in the set: everything. The reload's reads of these may predate the publish.
        self._dropped: set[tuple[str, str | None] | None] = set()
        self._quiet_until = 0.0  # no refresh before this moment (one failed just now)

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
            if cached[0] <= now:
                self._refresh(key)
            return cached[1]
        if session is not None and self._load_in is not None:
            article = await self._load_in(session, topic_id, language)
        else:
            article = await self._loader(topic_id, language)
        self._entries[key] = (now + self._ttl, article)
        return article

    def _refresh(self, key: Key) -> None:
        """Reload an expired entry in the background: the whole cache when it can, else this entry."""
        if self._load_all is not None:
            if None not in self._reloading and time.monotonic() >= self._quiet_until:
                self._dropped.clear()
                self._reloading[None] = asyncio.create_task(self._reload_all())
        elif key not in self._reloading:
            self._reloading[key] = asyncio.create_task(self._reload(key))

    async def _reload_all(self) -> None:
        assert self._load_all is not None
        try:
            published = {(article.topic_id, article.language): article for article in await self._load_all()}
        except Exception as error:  # the database away for a moment: the old entries serve meanwhile
            log.warning("kb_cache.reload_failed", extra={"error": type(error).__name__})
            self._quiet_until = time.monotonic() + RETRY_SECONDS
        else:
            expires = time.monotonic() + self._ttl
            # What was asked for and is not published (any more) is remembered as such; what a publish
            # dropped meanwhile is left to be read afresh.
            dropped = self._dropped
            if None not in dropped:
                for key in self._entries.keys() | published.keys():
                    if (key[0], None) not in dropped and key not in dropped:
                        self._entries[key] = (expires, published.get(key))
        finally:
            self._reloading.pop(None, None)

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
        if None in self._reloading:
            self._dropped.add(None if topic_id is None else (topic_id, language))
        if topic_id is None:
            self._entries.clear()
            return
        for key in [k for k in self._entries if k[0] == topic_id and (language is None or k[1] == language)]:
            del self._entries[key]
