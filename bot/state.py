"""What the bot remembers about one person between messages, in Redis, locked per person.

Telegram users often send two messages in quick succession; each is handled by whichever worker gets
it. A per-person lock makes the second wait for the first, so neither update is lost. When Redis is
unreachable the bot still answers, forgetting rather than failing the person.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from infoopt.core.languages import LANGUAGES, Channel
from infoopt.core.redis_store import is_in_process

log = logging.getLogger(__name__)

STATE_TTL_SECONDS = 24 * 3600
# A turn normally takes milliseconds; the lock expires on its own if a worker dies holding it.
LOCK_TIMEOUT_SECONDS = 30
LOCK_WAIT_SECONDS = 10


@dataclass(frozen=True, slots=True)
class PersonRef:
    """A person as a channel knows them: the web chat's session id, a Telegram chat id, a caller."""

    channel: Channel
    id: str

    @property
    def key(self) -> str:
        return f"{self.channel.value}:{self.id}"


@dataclass
class FlowState:
    """Where a person is in a multi-step dialogue, and what it has collected so far."""

    name: str
    step: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class PersonState:
    language: str | None = None
    chosen_language: bool = False
    misses: int = 0  # misunderstandings in a row
    last_topic: str | None = None  # the article last answered, for "full answer" and votes
    last_question: str | None = None
    voted: list[str] = field(default_factory=list)  # topics this person already voted on
    flow: FlowState | None = None

    def dumps(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def loads(cls, raw: str | bytes | None) -> PersonState:
        """The stored state, or a fresh one for anything unreadable (never an error for the person)."""
        if not raw:
            return cls()
        try:
            data: dict[str, Any] = json.loads(raw)
            flow = data.get("flow")
            return cls(
                language=data.get("language") if data.get("language") in LANGUAGES else None,
                chosen_language=bool(data.get("chosen_language")),
                misses=int(data.get("misses") or 0),
                last_topic=data.get("last_topic") or None,
                last_question=data.get("last_question") or None,
                voted=[str(topic) for topic in data.get("voted") or []][:50],
                flow=FlowState(str(flow["name"]), str(flow["step"]), dict(flow.get("fields") or {}))
                if isinstance(flow, dict)
                else None,
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return cls()


class _LocalLock:
    """The per-person lock when Redis is the in-process stand-in: one process, so an asyncio lock will do
    (and costs microseconds, where the stand-in's Lua scripts cost milliseconds)."""

    def __init__(self, locks: dict[str, tuple[asyncio.Lock, list[int]]], key: str) -> None:
        self._locks, self._key = locks, key
        self._lock, self._users = locks.setdefault(key, (asyncio.Lock(), [0]))
        self._users[0] += 1  # holders and waiters: the entry goes when the last of them is done

    async def acquire(self) -> bool:
        try:
            await asyncio.wait_for(self._lock.acquire(), LOCK_WAIT_SECONDS)
        except TimeoutError:
            self._leave()
            return False
        return True

    async def release(self) -> None:
        self._lock.release()
        self._leave()

    def _leave(self) -> None:
        self._users[0] -= 1
        if self._users[0] == 0:
            self._locks.pop(self._key, None)


class StateStore:
    """Per-person state in Redis (or the in-process stand-in), one turn at a time per person."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._local_locks: dict[str, tuple[asyncio.Lock, list[int]]] | None = (
            {} if is_in_process(redis) else None
        )

    def _lock(self, person: PersonRef) -> Any:
        if self._local_locks is not None:
            return _LocalLock(self._local_locks, person.key)
        return self.redis.lock(
            f"conv:lock:{person.key}", timeout=LOCK_TIMEOUT_SECONDS, blocking_timeout=LOCK_WAIT_SECONDS
        )

    @asynccontextmanager
    async def turn(self, person: PersonRef) -> AsyncIterator[PersonState]:
        """Hold the person's lock, hand out their state, and save it when the turn ends cleanly."""
        lock = self._lock(person)
        try:
            acquired = await lock.acquire()
        except RedisError as error:
            log.warning("state.lock_unavailable", extra={"error": str(error)})
            acquired = False
        try:
            state = await self._load(person)
            yield state
            await self._save(person, state)
        finally:
            if acquired:
                try:
                    await lock.release()
                except (LockError, RedisError) as error:  # expired meanwhile: nothing left to release
                    log.warning("state.lock_release_failed", extra={"error": str(error)})

    async def _load(self, person: PersonRef) -> PersonState:
        try:
            return PersonState.loads(await self.redis.get(f"conv:state:{person.key}"))
        except RedisError as error:
            log.warning("state.unavailable", extra={"error": str(error)})
            return PersonState()

    async def _save(self, person: PersonRef, state: PersonState) -> None:
        try:
            await self.redis.set(f"conv:state:{person.key}", state.dumps(), ex=STATE_TTL_SECONDS)
        except RedisError as error:
            log.warning("state.unsaved", extra={"error": str(error)})

    async def forget(self, person: PersonRef) -> None:
        """Drop everything remembered about the person (they asked to be forgotten)."""
        await self.redis.delete(f"conv:state:{person.key}")
