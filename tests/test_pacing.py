"""The shared send rate: two workers reserving moments for one bot stay within its limits together,
one chat's messages are spaced a second apart without holding up the others, and without a real Redis
(or with Redis away) the same reckoning runs in the process."""

from __future__ import annotations

import secrets
import time
from itertools import pairwise

import pytest

from infoopt.core.pacing import Limits, SharedPace
from infoopt.core.redis_store import create_redis

LIMITS = Limits(per_second=20, per_chat_per_second=1)  # 50 ms apart overall, 1 s apart per chat


@pytest.fixture(params=["redis", "in-process"])
def backend(request: pytest.FixtureRequest, redis_url: str) -> str | None:
    return redis_url if request.param == "redis" else None


async def test_two_workers_sharing_one_bot_keep_its_rate_together(redis_url: str) -> None:
    name = f"test-{secrets.token_hex(4)}"
    first = SharedPace(create_redis(redis_url), name, LIMITS)
    second = SharedPace(create_redis(redis_url), name, LIMITS)
    # Moments on this process's clock (each reservation counts from its own "now").
    mine = [time.monotonic() + delay for delay in await first.reserve([f"chat-{n}" for n in range(10)])]
    theirs = [
        time.monotonic() + delay for delay in await second.reserve([f"chat-{n}" for n in range(10, 20)])
    ]
    for moments in (mine, theirs):
        assert all(later - earlier >= 0.049 for earlier, later in pairwise(moments)), moments
    assert theirs[0] - mine[-1] >= 0.03, "the second worker's messages queue behind the first's"
    assert theirs[-1] - mine[0] == pytest.approx(19 * 0.05, abs=0.05), "and no later than the rate needs"


async def test_one_chats_messages_are_a_second_apart_without_holding_up_the_others(
    backend: str | None,
) -> None:
    pace = SharedPace(create_redis(backend), f"test-{secrets.token_hex(4)}", LIMITS)
    first, second, other, third = await pace.reserve(["anna", "anna", "boris", "anna"])
    assert first == pytest.approx(0, abs=0.03)
    assert second - first >= 0.99 and third - second >= 0.99, "one a second to one chat"
    assert other < 0.2, "another chat's message does not wait for anna's second"
    (later,) = await pace.reserve(["anna"])
    assert later - third >= 0.95, "a later batch to the same chat still waits its turn"


async def test_the_in_process_stand_in_and_a_lost_redis_keep_the_limits_in_the_process() -> None:
    for redis in (create_redis(None), create_redis("redis://127.0.0.1:1/0")):  # nothing listens on port 1
        pace = SharedPace(redis, "test-local", LIMITS)
        moments = await pace.reserve(["a", "b", "c", "a"])
        assert moments[1] - moments[0] >= 0.049 and moments[2] - moments[1] >= 0.049
        assert moments[3] - moments[0] >= 0.99


async def test_a_moment_now_or_nothing_reserves_only_what_may_go_out_at_once(backend: str | None) -> None:
    """A reply in the webhook's response goes out at once: it takes a moment only if one is free within
    the tolerance, and a refusal reserves nothing (the outbox then waits its turn without a gap)."""
    pace = SharedPace(create_redis(backend), f"test-{secrets.token_hex(4)}", LIMITS)
    assert await pace.reserve_now("anna")
    assert not await pace.reserve_now("anna"), "anna had a message this second"
    assert not await pace.reserve_now("anna", within=0.5)
    assert await pace.reserve_now("anna", within=1.0), "within a second's tolerance"
    (queued,) = await pace.reserve(["anna"])
    assert 1.9 <= queued <= 2.05, "the refusals took nothing; the tolerated one took its moment"
    # Three messages reserved so far, 50 ms apart overall: the next free overall moment is 150 ms away.
    assert not await pace.reserve_now("boris", within=0.1), "the overall rate holds boris back too"
    assert await pace.reserve_now("boris", within=0.2)


async def test_a_moment_reserved_now_records_what_went_out_in_the_same_step(backend: str | None) -> None:
    """The webhook keeps the response it answered an update with under the update's key, set with the
    reservation (only if that key exists: a forgotten update is not brought back)."""
    redis = create_redis(backend)
    pace = SharedPace(redis, f"test-{secrets.token_hex(4)}", LIMITS)
    key, absent = f"test:update:{secrets.token_hex(4)}", f"test:update:{secrets.token_hex(4)}"
    await redis.set(key, "1", ex=60)
    assert await pace.reserve_now("anna", record=(key, "sent"))
    assert await redis.get(key) == "sent" and 0 < await redis.ttl(key) <= 60
    assert not await pace.reserve_now("anna", record=(key, "second")), "one a second to anna"
    assert await redis.get(key) == "sent", "nothing recorded without a moment"
    assert await pace.reserve_now("boris", within=0.2, record=(absent, "sent"))
    assert await redis.get(absent) is None
