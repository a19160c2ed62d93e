"""Protection at the door: request bodies have a size limit; requests are counted against rate limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from redis.asyncio import Redis
from redis.exceptions import RedisError

from infoopt.core.deps import client_address, get_app_settings, get_redis
from infoopt.core.errors import DomainError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 256 * 1024  # an article body is at most 50,000 characters; nothing legitimate is larger


class BodySizeLimit:
    """Refuse request bodies over a limit with 413 before the application reads any of it.

    A declared Content-Length over the limit is refused at once; a chunked body is read up to the
    limit (it is small by definition) and refused as soon as it passes it, whatever the application
    would have made of it.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES, larger: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}  # path -> its own limit (a batch import, say)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                chunks_message: Message | None = message
                break
            body = message.get("body", b"")
            received += len(body)
            if received > limit:
                await self._refuse(send, limit)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                chunks_message = None
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                if chunks_message is not None:
                    return chunks_message
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps(
            {"error": "too_large", "detail": f"the request body is over {limit // 1024} KiB"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True, slots=True)
class Rate:
    """One counted hit: whether it is within the limit, and if not, how long until the window ends."""

    allowed: bool
    retry_after: int = 0


async def hit(redis: Redis, key: str, *, limit: int, window_seconds: int) -> Rate:
    """Count one hit for `key` in a fixed window.

    Fails open: if Redis is unreachable the person is served rather than refused.
    """
    try:
        bucket = f"rate:{key}"
        hits = await redis.incr(bucket)
        if hits == 1:
            await redis.expire(bucket, window_seconds)
        if int(hits) <= limit:
            return Rate(True)
        ttl = await redis.ttl(bucket)
        return Rate(False, retry_after=max(1, int(ttl) if ttl and ttl > 0 else window_seconds))
    except RedisError:
        return Rate(True)


class TooManyRequests(DomainError):
    """A limit was reached: the 429 says when to come back (`Retry-After`)."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


READ_LIMIT_TIMEOUT_SECONDS = 0.5


class PublicReadLimit:
    """A dependency for a public read (no sign-in, no secret): at most `read_limit_per_address_per_minute`
    a minute from one client address, counted per route, so nobody can flood the database through it."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, request: Request) -> None:
        limit = get_app_settings(request).read_limit_per_address_per_minute
        key = f"read:{self.scope}:address:{client_address(request)}"
        try:
            # Fails open, and fast: a Redis that hangs must not hang the readiness check that reports it.
            # Shielded, so a count that started also sets its expiry (a counter without one never resets).
            counted = asyncio.shield(hit(get_redis(request), key, limit=limit, window_seconds=60))
            rate = await asyncio.wait_for(counted, timeout=READ_LIMIT_TIMEOUT_SECONDS)
        except TimeoutError:
            return
        if not rate.allowed:
            raise TooManyRequests(
                "too many requests from this address; try again in a minute", retry_after=rate.retry_after
            )
