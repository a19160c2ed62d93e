"""Redis for conversation state, rate limits, pub/sub and the job queue — or an in-process stand-in.

Without `INFOOPT_REDIS_URL` the service uses fakeredis, which implements the same client interface in
memory. It is correct for ONE process only: state and pub/sub are not shared between workers, so
production always sets a real Redis.
"""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str | None) -> Redis:
    """A client for the Redis at `url`, or the in-process fallback when `url` is None."""
    if url:
        return Redis.from_url(url, decode_responses=True, health_check_interval=30)
    from fakeredis import FakeAsyncRedis

    client: Redis = FakeAsyncRedis(decode_responses=True)
    return client


def is_in_process(client: Redis) -> bool:
    """Whether this client is the single-process fallback."""
    return type(client).__module__.startswith("fakeredis")


def channel(client: Redis, name: str) -> str:
    """A pub/sub channel of this service's Redis database. Channels are shared by every database of a
    server, unlike keys: without the database's number in the name, two deployments (or a test run
    and a benchmark) on one server would hear each other's announcements."""
    database = client.connection_pool.connection_kwargs.get("db", 0)
    return f"infoopt:{database}:{name}"
