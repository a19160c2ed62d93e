"""Publishes reach every worker: announced on a Redis channel, heard by a listener in each process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from infoopt.core.redis_store import channel
from knowledge_base.cache import PublishedCache

log = logging.getLogger(__name__)

CHANNEL = "kb:published"  # in this Redis database (redis_store.channel)


async def announce_publish(redis: Redis, topic_id: str, language: str | None = None) -> None:
    """Tell every worker that a topic (one language, or all when None) changed. Call after commit."""
    try:
        await redis.publish(channel(redis, CHANNEL), json.dumps({"topic_id": topic_id, "language": language}))
    except RedisError as error:  # the cache's safety TTL still catches up
        log.warning("kb.announce_failed", extra={"error": str(error), "topic_id": topic_id})


async def listen_for_publishes(
    redis: Redis, cache: PublishedCache, ready: asyncio.Event | None = None
) -> None:
    """Drop cached articles as publishes are announced; reconnects after Redis errors."""
    while True:
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(channel(redis, CHANNEL))
            # Anything published while we were away is unknown: start from a clean cache.
            cache.invalidate()
            if ready is not None:
                ready.set()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                try:
                    data = json.loads(message["data"])
                    cache.invalidate(str(data["topic_id"]), data.get("language"))
                except (ValueError, KeyError, TypeError):
                    cache.invalidate()
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as error:
            log.warning("kb.listener_reconnecting", extra={"error": str(error)})
            await asyncio.sleep(1.0)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
