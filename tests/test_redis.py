"""Redis: the real server and the in-process fallback answer through the same client interface."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from infoopt.core.redis_store import create_redis, is_in_process


@pytest.fixture(params=["redis", "in-process"])
async def store(request: pytest.FixtureRequest, redis_url: str) -> Redis:
    client = create_redis(redis_url if request.param == "redis" else None)
    await client.flushdb()
    yield client
    await client.aclose()


async def test_keys_expire_and_counters_count(store: Redis) -> None:
    await store.set("conversation:1", "state", ex=60)
    assert await store.get("conversation:1") == "state"
    assert 0 < await store.ttl("conversation:1") <= 60
    assert await store.incr("rate:1") == 1
    assert await store.incr("rate:1") == 2


async def test_set_if_absent_is_a_lock(store: Redis) -> None:
    assert await store.set("lock:ticket:7", "a", nx=True, ex=5)
    assert not await store.set("lock:ticket:7", "b", nx=True, ex=5)


async def test_publish_reaches_a_subscriber(store: Redis) -> None:
    pubsub = store.pubsub()
    await pubsub.subscribe("kb.published")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    await store.publish("kb.published", "fees:uk")
    message = None
    for _ in range(20):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message:
            break
        await asyncio.sleep(0.05)
    await pubsub.aclose()
    assert message is not None
    assert message["data"] == "fees:uk"


async def test_the_fallback_says_it_is_in_process(redis_url: str) -> None:
    assert is_in_process(create_redis(None))
    assert not is_in_process(create_redis(redis_url))
