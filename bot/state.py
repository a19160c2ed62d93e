"""What the bot remembers about one person between messages, in Redis, locked per person.

Telegram users often send two messages in quick succession; each is handled by whichever worker gets
it. A per-person lock makes the second wait for the first, so neither update is lost. Taking the lock
reads the state in the same round trip, and saving it lets go of the lock in the same round trip. When
Redis is unreachable the bot still answers, forgetting rather than failing the person.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

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


# A turn's Redis work in two round trips: take the person's lock and read their state together, then
# save the state and let go of the lock together (only a lock still ours is let go of).
_TAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('GET', KEYS[2])}
end
return {0}
"""
_SAVE_AND_RELEASE = """
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
LOCK_RETRY_SECONDS = 0.05


class StateStore:
    """Per-person state in Redis (or the in-process stand-in), one turn at a time per person."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._local_locks: dict[str, tuple[asyncio.Lock, list[int]]] | None = (
            {} if is_in_process(redis) else None
        )
        self._take = redis.register_script(_TAKE)
        self._save_and_release = redis.register_script(_SAVE_AND_RELEASE)
        self._release = redis.register_script(_RELEASE)

    @asynccontextmanager
    async def turn(self, person: PersonRef) -> AsyncIterator[PersonState]:
        """Hold the person's lock, hand out their state, and save it when the turn ends cleanly."""
        if self._local_locks is not None:
            async with self._local_turn(person) as state:
                yield state
            return
        token = secrets.token_hex(16)
        acquired, state = await self._take_turn(person, token)
        try:
            yield state
        except BaseException:
            if acquired:
                await self._let_go(person, token, self._release, [])
            raise
        if acquired:
            await self._let_go(
                person, token, self._save_and_release, [state.dumps(), STATE_TTL_SECONDS], saving=True
            )
        else:
            await self._save(person, state)

    async def _take_turn(self, person: PersonRef, token: str) -> tuple[bool, PersonState]:
        """Wait for the person's lock (at most LOCK_WAIT_SECONDS) and read their state with it. Past the
        wait, or without Redis, the turn goes ahead unlocked: better than no answer."""
        keys = [f"conv:lock:{person.key}", f"conv:state:{person.key}"]
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        try:
            while True:
                taken = await self._take(keys=keys, args=[token, LOCK_TIMEOUT_SECONDS * 1000])
                if taken[0]:
                    return True, PersonState.loads(taken[1] if len(taken) > 1 else None)
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(LOCK_RETRY_SECONDS)
        except RedisError as error:
            log.warning("state.lock_unavailable", extra={"error": str(error)})
        return False, await self._load(person)

    async def _let_go(
        self, person: PersonRef, token: str, script: Any, args: list[Any], *, saving: bool = False
    ) -> None:
        keys = [f"conv:lock:{person.key}", f"conv:state:{person.key}"]
        try:
            released = await script(keys=keys, args=[token, *args])
        except RedisError as error:
            log.warning(
                "state.unsaved" if saving else "state.lock_release_failed", extra={"error": str(error)}
            )
            return
        if not released:  # expired meanwhile: another turn may hold it now, and keeps it
            log.warning("state.lock_release_failed", extra={"error": "the lock had expired"})

    @asynccontextmanager
    async def _local_turn(self, person: PersonRef) -> AsyncIterator[PersonState]:
        """The same with the in-process stand-in: an asyncio lock, and plain reads and writes."""
        assert self._local_locks is not None
        lock = _LocalLock(self._local_locks, person.key)
        acquired = await lock.acquire()
        try:
            state = await self._load(person)
            yield state
            await self._save(person, state)
        finally:
            if acquired:
                await lock.release()

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
