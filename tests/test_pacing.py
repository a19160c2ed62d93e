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
