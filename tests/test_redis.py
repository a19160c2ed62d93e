"""Redis: the real server and the in-process fallback serve the per-person conversation state alike."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from bot.state import PersonRef, StateStore
from infoopt.core.languages import Channel
from infoopt.core.redis_store import create_redis, is_in_process


@pytest.fixture(params=["redis", "in-process"])
async def store(request: pytest.FixtureRequest, redis_url: str) -> Redis:
    client = create_redis(redis_url if request.param == "redis" else None)
    await client.flushdb()
    yield client
    await client.aclose()


async def test_per_person_turns_wait_for_each_other_and_lose_no_update(store: Redis) -> None:
    """The conversation's state on both backends: concurrent turns of one person run one at a time."""
    states = StateStore(store)
    person = PersonRef(Channel.TELEGRAM, "4242")

    async def miss() -> None:
        async with states.turn(person) as state:
            seen = state.misses
            await asyncio.sleep(0.01)  # a turn that takes a moment, as an NLU call does
            state.misses = seen + 1

    await asyncio.gather(*(miss() for _ in range(8)))
    async with states.turn(person) as state:
        assert state.misses == 8


async def test_one_persons_turn_does_not_hold_up_another(store: Redis) -> None:
    states = StateStore(store)
    first, second = PersonRef(Channel.WEB, "first"), PersonRef(Channel.WEB, "second")
    async with states.turn(first), asyncio.timeout(2), states.turn(second) as other:
        other.language = "uk"
    async with states.turn(PersonRef(Channel.WEB, "second")) as again:
        assert again.language == "uk"


async def test_unreadable_state_starts_afresh_and_forget_erases_it(store: Redis) -> None:
    states = StateStore(store)
    person = PersonRef(Channel.WEB, "broken")
    await store.set(f"conv:state:{person.key}", "{not json")
    async with states.turn(person) as state:
        assert state.language is None and state.flow is None
        state.language = "ru"
    await states.forget(person)
    async with states.turn(person) as state:
        assert state.language is None


async def test_the_fallback_says_it_is_in_process(redis_url: str) -> None:
    assert is_in_process(create_redis(None))
    assert not is_in_process(create_redis(redis_url))


async def test_announcements_stay_within_their_redis_database(redis_url: str) -> None:
    """Pub/sub channels are shared by a server's databases: a publish announced by a service on another
    database (another deployment, a benchmark) must not empty this one's article cache."""
    import asyncio

    from knowledge_base.cache import PublishedCache
    from knowledge_base.events import announce_publish, listen_for_publishes

    loads: list[tuple[str, str]] = []

    async def loader(topic_id: str, language: str) -> None:
        loads.append((topic_id, language))

    ours = create_redis(redis_url)
    database = ours.connection_pool.connection_kwargs.get("db", 0)
    other = create_redis(redis_url.rsplit("/", 1)[0] + f"/{(database + 1) % 16}")
    cache = PublishedCache(loader)
    listening = asyncio.Event()
    listener = asyncio.create_task(listen_for_publishes(ours, cache, listening))
    try:
        await asyncio.wait_for(listening.wait(), 5)
        await cache.get("fees", "pl")
        await announce_publish(other, "fees", "pl")
        await asyncio.sleep(0.5)
        await cache.get("fees", "pl")
        assert len(loads) == 1, "another database's announcement was heard"
        await announce_publish(ours, "fees", "pl")
        for _ in range(50):
            await asyncio.sleep(0.05)
            await cache.get("fees", "pl")
            if len(loads) == 2:
                break
        assert len(loads) == 2, "this database's announcement empties the entry"
    finally:
        listener.cancel()
        await ours.aclose()
        await other.aclose()
