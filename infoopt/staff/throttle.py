"""Sign-in throttling that an anonymous attacker cannot turn against an account's owner.

Failures are counted per (client address, username): after a few, that address must wait before
trying that username again, twice as long after each further failure (up to 15 minutes). The owner,
signing in from their own address, is not held up. Beside it, one address may fail only so often
across all usernames (password spraying), and one username may fail only so often a minute from all
addresses together (a short wait, never a lockout; a right password is never counted). Counters live in Redis, shared by the workers.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

FREE_FAILURES = 3  # per address and username before the first wait
FIRST_WAIT_SECONDS = 2
LONGEST_WAIT_SECONDS = 15 * 60
FAILURE_MEMORY_SECONDS = 60 * 60
ADDRESS_FAILURES = 30  # per address across usernames, in ADDRESS_WINDOW_SECONDS
ADDRESS_WINDOW_SECONDS = 15 * 60
USERNAME_FAILURES_PER_MINUTE = 20  # from all addresses together


@dataclass(frozen=True, slots=True)
class SignInThrottle:
    redis: Redis

    @staticmethod
    def _pair(address: str, username: str) -> str:
        return f"{address}|{username.strip().lower()}"

    async def wait_seconds(self, address: str, username: str) -> int:
        """How long this address must wait before trying this username (0: go ahead)."""
        pair = self._pair(address, username)
        try:
            for key in (f"signin:wait:{pair}", f"signin:address:{address}"):
                ttl = await self.redis.ttl(key)
                if key.startswith("signin:wait") and ttl and ttl > 0:
                    return int(ttl)
                if (
                    key.startswith("signin:address")
                    and int(await self.redis.get(key) or 0) >= ADDRESS_FAILURES
                ):
                    return max(1, int(ttl))
            failures = f"signin:username:{username.strip().lower()}"
            if int(await self.redis.get(failures) or 0) >= USERNAME_FAILURES_PER_MINUTE:
                return max(1, int(await self.redis.ttl(failures)))
        except RedisError:
            return 0  # fail open: sign-in still works, argon2 still makes guessing slow
        return 0

    async def failed(self, address: str, username: str) -> None:
        """Count a failure; from the fourth on, this address waits before trying this username again."""
        pair = self._pair(address, username)
        try:
            failures = await self.redis.incr(f"signin:failures:{pair}")
            await self.redis.expire(f"signin:failures:{pair}", FAILURE_MEMORY_SECONDS)
            if failures > FREE_FAILURES:
                wait = min(FIRST_WAIT_SECONDS * 2 ** (failures - FREE_FAILURES - 1), LONGEST_WAIT_SECONDS)
                await self.redis.set(f"signin:wait:{pair}", "1", ex=wait)
            by_address = await self.redis.incr(f"signin:address:{address}")
            if by_address == 1:
                await self.redis.expire(f"signin:address:{address}", ADDRESS_WINDOW_SECONDS)
            by_username = await self.redis.incr(f"signin:username:{username.strip().lower()}")
            if by_username == 1:
                await self.redis.expire(f"signin:username:{username.strip().lower()}", 60)
        except RedisError:
            return

    async def succeeded(self, address: str, username: str) -> None:
        """A right password clears this address's failures for this username."""
        pair = self._pair(address, username)
        try:
            await self.redis.delete(f"signin:failures:{pair}", f"signin:wait:{pair}")
        except RedisError:
            return
