"""A send rate shared by every process: moments reserved in Redis, so that all outbox workers together
keep a channel's limits (Telegram: about 30 messages a second per bot, one a second per chat).

Each message gets a moment to go out (the generic cell rate algorithm: a "theoretical arrival time" per
key, moved on by one interval per message). A message held back by its chat's limit still takes only
the next overall moment, so it does not hold back the messages to other chats behind it. A whole batch is reserved in one round trip; the caller then
sleeps until each message's moment. Without a real Redis (the in-process stand-in, or Redis away for a
moment) the same reckoning runs in this process's memory: correct for one process, and better than not
sending at all.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from infoopt.core.redis_store import is_in_process

log = logging.getLogger(__name__)

MAX_REMEMBERED_CHATS = 10_000  # the in-process reckoning forgets idle chats beyond this many

# KEYS[1]: the overall key; KEYS[2..n+1]: the chat of each of the n messages, in sending order (repeats
# allowed); KEYS[n+2] (optional): a key set to ARGV[5] (only if it exists, keeping its expiry) when the
# moments are reserved.
# ARGV: the overall interval and the per-chat interval, the longest delay accepted (negative: any), all
# in microseconds; n.
# Returns each message's delay from now, in microseconds. Past the longest accepted, nothing was reserved.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, chat_interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local within, count = tonumber(ARGV[3]), tonumber(ARGV[4])
local overall = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local chats, delays = {}, {}
for i = 2, count + 1 do
  local key = KEYS[i]
  local chat = chats[key] or tonumber(redis.call('GET', key) or '0')
  local slot = math.max(overall, chat)
  overall = overall + interval
  chats[key] = slot + chat_interval
  delays[#delays + 1] = slot - now
  if within >= 0 and slot - now > within then return delays end
end
redis.call('SET', KEYS[1], string.format('%.0f', overall), 'PX', math.floor((overall - now) / 1000) + 1000)
for key, value in pairs(chats) do
  redis.call('SET', key, string.format('%.0f', value), 'PX', math.floor((value - now) / 1000) + 1000)
end
if KEYS[count + 2] then redis.call('SET', KEYS[count + 2], ARGV[5], 'XX', 'KEEPTTL') end
return delays
"""


@dataclass(frozen=True, slots=True)
class Limits:
    """At most `per_second` messages a second overall, evenly spaced, and at most `per_chat_per_second` to
    any one chat."""

    per_second: float
    per_chat_per_second: float

    def micros(self) -> tuple[int, int]:
        """The intervals between two messages overall and to one chat, in microseconds."""
        return round(1_000_000 / self.per_second), round(1_000_000 / self.per_chat_per_second)


class Reckoning:
    """The same algorithm in this process's memory (monotonic clock, microseconds)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.overall = 0
        self.chats: dict[str, int] = {}

    def reserve(self, chats: Sequence[str], within: float | None = None) -> list[float]:
        interval, chat_interval = self.limits.micros()
        now = time.monotonic_ns() // 1000
        if len(self.chats) > MAX_REMEMBERED_CHATS:
            self.chats = {chat: at for chat, at in self.chats.items() if at > now}
        overall = max(self.overall, now)
        delays: list[float] = []
        taken: dict[str, int] = {}
        for chat in chats:
            slot = max(overall, taken.get(chat, self.chats.get(chat, 0)))
            overall += interval
            taken[chat] = slot + chat_interval
            delays.append((slot - now) / 1_000_000)
        if within is None or max(delays) <= within:
            self.overall = overall
            self.chats.update(taken)
        return delays


class SharedPace:
    """Reserves sending moments for one sender (one bot) across every process that shares its Redis."""

    def __init__(self, redis: Redis, name: str, limits: Limits) -> None:
        self.redis = redis
        self.name = name
        self.limits = limits
        self.local = Reckoning(limits)
        self._script = None if is_in_process(redis) else redis.register_script(_RESERVE)

    async def reserve(self, chats: Sequence[str]) -> list[float]:
        """Seconds from now at which each message (to these chats, in this order) may go out."""
        if not chats:
            return []
        if self._script is None:
            return self.local.reserve(chats)
        keys = [f"pace:{self.name}", *(f"pace:{self.name}:chat:{chat}" for chat in chats)]
        try:
            delays = await self._script(keys=keys, args=[*self.limits.micros(), -1, len(chats)])
        except RedisError as error:  # Redis away for a moment: keep the limits in this process at least
            log.warning("pace.shared_unavailable", extra={"error": str(error)})
            return self.local.reserve(chats)
        return [int(delay) / 1_000_000 for delay in delays]

    async def reserve_now(
        self, chat: str, within: float = 0.0, record: tuple[str, str] | None = None
    ) -> bool:
        """Reserve one message to `chat` only if it may go out within `within` seconds; True if it was
        reserved (nothing is reserved otherwise, so the message can wait its turn elsewhere). `record`: a
        key set to a value in the same step, if the moment is reserved and the key exists (what went out
        then, remembered without another round trip)."""
        if self._script is not None:
            keys = [f"pace:{self.name}", f"pace:{self.name}:chat:{chat}", *([record[0]] if record else [])]
            accepted = round(within * 1_000_000)
            args: list[int | str] = [*self.limits.micros(), accepted, 1, *([record[1]] if record else [])]
            try:
                (delay,) = await self._script(keys=keys, args=args)
                return int(delay) <= accepted
            except RedisError as error:  # Redis away for a moment: this process's reckoning decides
                log.warning("pace.shared_unavailable", extra={"error": str(error)})
        reserved = self.local.reserve([chat], within)[0] <= within
        if reserved and record is not None:
            with contextlib.suppress(RedisError):
                await self.redis.set(record[0], record[1], xx=True, keepttl=True)
        return reserved
