"""The outbox's batches, with real commits on PostgreSQL (and SQLite): a batch is claimed in one
statement, two workers claiming at once take different jobs without waiting for each other, a network
channel's batch is sent side by side and settled in a few statements whatever its size, a recipient
who blocked the channel is not tried, and the worker loop marks dead workers' jobs on a timer rather
than on every round."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core import db
from infoopt.core.clock import utcnow
from infoopt.core.languages import Channel
from infoopt.core.metrics import REGISTRY
from tickets import outbox
from tickets.conversations import open_conversation
from tickets.models import Conversation, OutboxJob, OutboxStatus
from tickets.outbox import LEASE, NotYet, OutboxWorker, claim, drain, enqueue

pytestmark = pytest.mark.commits
PREFIX = "batch-"  # every recipient these tests queue for


@pytest.fixture
async def sessions(pg_engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    factory = db.session_factory(pg_engine)
    async with db.transaction(factory) as session:  # nothing due from other tests gets in the way
        await session.exec(delete(OutboxJob).where(col(OutboxJob.status) == OutboxStatus.PENDING))
    yield factory
    async with db.transaction(factory) as session:
        await session.exec(delete(OutboxJob).where(col(OutboxJob.recipient).startswith(PREFIX)))
        await session.exec(delete(Conversation).where(col(Conversation.external_id).startswith(PREFIX)))


async def queue(sessions: async_sessionmaker[AsyncSession], count: int, channel: Channel) -> list[int]:
    tag = secrets.token_hex(4)
    async with db.transaction(sessions) as session:
        jobs = [
            enqueue(session, channel=channel, recipient=f"{PREFIX}{tag}-{n}", text=f"wiadomość {n}")
            for n in range(count)
        ]
        await session.flush()
    return [job.id for job in jobs if job.id is not None]


class Network:
    """A network channel that counts what it sent and how many sendings ran at once at most."""

    channel = Channel.TELEGRAM
    transactional = False

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.sent: Counter[int] = Counter()
        self.running = self.most_at_once = 0

    async def deliver(self, session: AsyncSession, job: OutboxJob) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.running -= 1
        assert job.id is not None
        self.sent[job.id] += 1


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements the engine runs meanwhile (BEGIN and COMMIT are not statements here)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


async def test_two_workers_claiming_at_once_take_different_jobs_without_waiting(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    job_ids = await queue(sessions, 10, Channel.TELEGRAM)
    lease = utcnow() + LEASE
    async with db.transaction(sessions) as first:
        mine = await claim(first, [Channel.TELEGRAM], now=utcnow(), lease_until=lease, limit=6)
        # The first claim is not committed yet: its rows are locked. The second skips them at once.
        async with db.transaction(sessions) as second:
            theirs = await asyncio.wait_for(
                claim(second, [Channel.TELEGRAM], now=utcnow(), lease_until=lease, limit=6), 5
            )
    first_ids = [job.id for job, _ in mine]
    second_ids = [job.id for job, _ in theirs]
    assert first_ids == job_ids[:6], "oldest due first, in order"
    assert second_ids == job_ids[6:], "the rest, none of the first worker's"
    assert all(job.status is OutboxStatus.SENDING and job.attempts == 1 for job, _ in mine + theirs)


async def test_a_batch_is_sent_side_by_side_and_settled_in_a_few_statements(
    sessions: async_sessionmaker[AsyncSession], pg_engine: AsyncEngine
) -> None:
    job_ids = await queue(sessions, 30, Channel.TELEGRAM)
    network = Network(seconds=0.05)
    delivered_before = (
        REGISTRY.get_sample_value("infoopt_outbox_delivered_total", {"channel": "telegram"}) or 0
    )
    with statements(pg_engine) as seen:
        report = await drain(sessions, {Channel.TELEGRAM: network}, batch=50, recover_first=False)
    assert report.sent == 30 and all(network.sent[job_id] == 1 for job_id in job_ids)
    delivered = REGISTRY.get_sample_value("infoopt_outbox_delivered_total", {"channel": "telegram"})
    assert delivered == delivered_before + 30, "counted for the worker's /metrics"
    assert network.most_at_once == 30, "the whole batch in flight together"
    assert seen == ["WITH", "UPDATE"], "one claim and one settling statement for 30 jobs"
    async with sessions() as session:
        statuses = set(
            (await session.exec(select(OutboxJob.status).where(col(OutboxJob.id).in_(job_ids)))).all()
        )
    assert statuses == {OutboxStatus.SENT}


async def test_many_workers_in_small_batches_send_each_message_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    job_ids = await queue(sessions, 90, Channel.TELEGRAM)
    network = Network(seconds=0.001)

    async def worker() -> None:
        while (await drain(sessions, {Channel.TELEGRAM: network}, batch=7, recover_first=False)).handled:
            pass

    await asyncio.gather(*(worker() for _ in range(4)))
    assert sorted(network.sent) == sorted(job_ids) and set(network.sent.values()) == {1}


async def test_on_sqlite_two_workers_claiming_batches_send_each_message_once(
    sqlite_engine: AsyncEngine,
) -> None:
    factory = db.session_factory(sqlite_engine)
    job_ids = await queue(factory, 40, Channel.TELEGRAM)
    network = Network(seconds=0.001)

    async def worker() -> None:
        while (await drain(factory, {Channel.TELEGRAM: network}, batch=6)).handled:
            pass

    await asyncio.gather(worker(), worker())
    assert sorted(network.sent) == sorted(job_ids) and set(network.sent.values()) == {1}
    async with factory() as session:
        statuses = (await session.exec(select(OutboxJob.status))).all()
    assert set(statuses) == {OutboxStatus.SENT}, "each settled under its own lease"


async def test_a_person_who_blocked_the_channel_is_not_tried_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    recipient = f"{PREFIX}blocked-{secrets.token_hex(4)}"
    async with db.transaction(sessions) as session:
        conversation = await open_conversation(session, Channel.TELEGRAM, recipient, language="uk")
        conversation.blocked_at = utcnow()
        session.add(conversation)
        job = enqueue(session, channel=Channel.TELEGRAM, recipient=recipient, text="Відповідь консультанта")
        await session.flush()
    network = Network()
    report = await drain(sessions, {Channel.TELEGRAM: network})
    assert report.failed == 1 and not network.sent, "nothing sent to someone who blocked the bot"
    async with sessions() as session:
        stored = await session.get(OutboxJob, job.id)
    assert stored is not None and stored.status is OutboxStatus.FAILED
    assert "blocked" in (stored.last_error or "")


async def test_a_channel_out_of_room_puts_the_job_back_without_counting_an_attempt(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    (job_id,) = await queue(sessions, 1, Channel.TELEGRAM)

    class Full(Network):
        async def deliver(self, session: AsyncSession, job: OutboxJob) -> None:
            raise NotYet(20)

    before = utcnow()
    report = await drain(sessions, {Channel.TELEGRAM: Full()})
    assert report.retried == 1
    async with sessions() as session:
        job = await session.get(OutboxJob, job_id)
    assert job is not None and job.status is OutboxStatus.PENDING and job.attempts == 0
    assert job.next_attempt_at >= before + timedelta(seconds=19) and job.last_error is None


async def test_the_worker_loop_marks_dead_workers_jobs_on_a_timer_not_every_round(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds = {"recover": 0, "drain": 0}
    real_recover, real_drain = outbox.recover, outbox.drain

    async def counting_recover(*args: Any, **kwargs: Any) -> int:
        rounds["recover"] += 1
        return await real_recover(*args, **kwargs)

    async def counting_drain(*args: Any, **kwargs: Any) -> outbox.DrainReport:
        rounds["drain"] += 1
        return await real_drain(*args, **kwargs)

    monkeypatch.setattr(outbox, "recover", counting_recover)
    monkeypatch.setattr(outbox, "drain", counting_drain)
    network = Network()
    worker = OutboxWorker(lambda: sessions, {Channel.TELEGRAM: network}, poll_seconds=0.05)
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(5):
            job_ids = await queue(sessions, 2, Channel.TELEGRAM)
            worker.wake()
            for _ in range(100):
                await asyncio.sleep(0.02)
                if all(network.sent[job_id] for job_id in job_ids):
                    break
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert sum(network.sent.values()) == 10
    assert rounds["drain"] >= 5 and rounds["recover"] == 1, rounds


async def test_the_worker_stops_when_cancelled_even_if_a_library_swallowed_the_cancellation(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM cancels the worker's task; a library that catches the cancellation while it waits (redis-py
    does, in its read timeout) must not keep the worker running."""
    draining = asyncio.Event()

    async def swallowing_drain(*args: Any, **kwargs: Any) -> outbox.DrainReport:
        draining.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        return outbox.DrainReport()

    monkeypatch.setattr(outbox, "drain", swallowing_drain)
    worker = OutboxWorker(lambda: sessions, {Channel.TELEGRAM: Network()}, poll_seconds=0.05)
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(draining.wait(), 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(running), 2)
    assert running.cancelled()


async def test_a_queued_job_wakes_one_waiting_worker_not_all_of_them(tmp_path: Path) -> None:
    from infoopt.core.redis_store import create_redis
    from tests.test_faults import RedisServer
    from tickets.live import TicketFeed

    server = RedisServer(tmp_path)  # its own: no other process's worker takes these wake-ups
    server.start()
    clients = [create_redis(server.url) for _ in range(4)]
    woken: Counter[int] = Counter()
    listeners = [
        asyncio.create_task(TicketFeed(client).outbox_wakeups(lambda n=n: woken.update([n])))
        for n, client in enumerate(clients[1:])
    ]
    try:
        await asyncio.sleep(0.3)  # all three are waiting
        await TicketFeed(clients[0]).wake_outbox()
        for _ in range(100):
            if woken:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # time enough for any other to wake as well
        assert sum(woken.values()) == 1, woken
        await TicketFeed(clients[0]).wake_outbox()
        await TicketFeed(clients[0]).wake_outbox()
        for _ in range(100):
            if sum(woken.values()) == 3:
                break
            await asyncio.sleep(0.02)
        assert sum(woken.values()) == 3, "each wake-up reaches a worker"
    finally:
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        for client in clients:
            await client.aclose()
        server.stop()


async def test_the_send_log_gives_back_the_jobs_a_dead_worker_never_sent(
    sessions: async_sessionmaker[AsyncSession], redis_url: str
) -> None:
    """A worker claimed three jobs, began one, and died. When its lease runs out, the two it never began
    go back to pending for another worker; the begun one is in doubt; the late worker sends nothing."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    send_log = outbox.SendLog(redis)
    ids = await queue(sessions, 3, Channel.TELEGRAM)
    now = utcnow()
    try:
        async with db.transaction(sessions) as session:
            claimed = await claim(session, [Channel.TELEGRAM], now=now, lease_until=now + LEASE, limit=3)
        assert sorted(job.id for job, _refused in claimed) == sorted(ids)
        assert await send_log.claimed(ids) == set(ids)
        assert await send_log.begin(ids[0]) is True, "the first job left"
        async with db.transaction(sessions) as session:
            recovered = await outbox.recover_expired(
                session, set(), now=now + LEASE + timedelta(seconds=1), send_logs={Channel.TELEGRAM: send_log}
            )
        assert recovered == 3
        async with sessions() as session:
            jobs = {
                job.id: job
                for job in (await session.exec(select(OutboxJob).where(col(OutboxJob.id).in_(ids)))).all()
            }
        assert jobs[ids[0]].status is OutboxStatus.UNCONFIRMED
        assert [jobs[job_id].status for job_id in ids[1:]] == [OutboxStatus.PENDING, OutboxStatus.PENDING]
        assert [jobs[job_id].attempts for job_id in ids[1:]] == [0, 0], "never sent: not an attempt"
        assert await send_log.begin(ids[1]) is False, "the dead worker, were it only slow, sends nothing now"
    finally:
        await redis.aclose()
