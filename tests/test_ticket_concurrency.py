"""Tickets and the outbox under concurrency on PostgreSQL, with real commits: one winner per claim, no
ticket taken twice, no message delivered twice by two workers, and a worker killed mid-delivery leaves
each message delivered once or visibly marked."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery import WebDeliverer
from infoopt.core import db
from infoopt.core.clock import utcnow
from infoopt.core.languages import Channel
from infoopt.staff.accounts import Role, StaffUser, create_user
from tickets import service
from tickets.conversations import open_conversation
from tickets.models import (
    ConversationMessage,
    Delivery,
    OutboxJob,
    OutboxStatus,
    Ticket,
    TicketMessage,
    TicketStatus,
)
from tickets.outbox import LEASE, DeliveryFailed, drain, enqueue
from tickets.service import Actor

pytestmark = pytest.mark.commits
OFFICE = "NOWY-SACZ"  # no other test files tickets here


@pytest.fixture
async def sessions(pg_engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    factory = db.session_factory(pg_engine)
    yield factory
    async with db.transaction(factory) as session:  # what these tests committed goes again
        await session.exec(delete(OutboxJob).where(col(OutboxJob.recipient).startswith("conc-")))
        await session.exec(delete(Ticket).where(col(Ticket.office_code) == OFFICE))


@pytest.fixture(scope="module")
async def consultants(pg_engine: AsyncEngine) -> list[Actor]:
    factory = db.session_factory(pg_engine)
    actors = []
    async with db.transaction(factory) as session:
        first = await create_user(
            session, username="conc-00", password="Concurrency-2026", role=Role.CONSULTANT, office_code=OFFICE
        )
        actors.append(Actor.of(first))
        for number in range(1, 20):
            user = StaffUser(
                username=f"conc-{number:02d}",
                password_hash=first.password_hash,
                role=Role.CONSULTANT,
                office_code=OFFICE,
            )
            session.add(user)
            await session.flush()
            actors.append(Actor.of(user))
    return actors


async def new_tickets(sessions: async_sessionmaker[AsyncSession], count: int) -> list[int]:
    async with db.transaction(sessions) as session:
        tickets = [
            await service.open_ticket(
                session,
                conversation=None,
                channel=Channel.WEB,
                language="pl",
                office_code=OFFICE,
                description=f"pytanie {n}",
            )
            for n in range(count)
        ]
    return [ticket.id for ticket in tickets if ticket.id is not None]


async def test_many_consultants_one_ticket_exactly_one_winner(
    sessions: async_sessionmaker[AsyncSession], consultants: list[Actor]
) -> None:
    (ticket_id,) = await new_tickets(sessions, 1)

    async def claim(actor: Actor) -> str:
        try:
            async with db.transaction(sessions) as session:
                await service.claim_ticket(session, actor, ticket_id)
            return actor.username
        except service.HeldByAnother:
            return "refused"

    outcomes = await asyncio.gather(*(claim(actor) for actor in consultants))
    winners = [outcome for outcome in outcomes if outcome != "refused"]
    assert len(winners) == 1, outcomes
    async with sessions() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.status is TicketStatus.OPEN
        assert ticket.assignee_id == next(a.user_id for a in consultants if a.username == winners[0])


async def test_many_consultants_taking_next_never_get_the_same_ticket(
    sessions: async_sessionmaker[AsyncSession], consultants: list[Actor]
) -> None:
    ticket_ids = set(await new_tickets(sessions, 30))

    async def take_all(actor: Actor) -> list[int]:
        taken = []
        while True:
            try:
                async with db.transaction(sessions) as session:
                    ticket = await service.take_next(session, actor)
            except service.NothingToTake:
                return taken
            assert ticket.id is not None
            taken.append(ticket.id)

    results = await asyncio.gather(*(take_all(actor) for actor in consultants[:10]))
    everything = [ticket_id for taken in results for ticket_id in taken]
    mine = [ticket_id for ticket_id in everything if ticket_id in ticket_ids]
    assert len(mine) == len(set(mine)) == len(ticket_ids), "every ticket taken, none twice"


class CountingDeliverer:
    """A network channel (not transactional) that counts what it sent."""

    channel = Channel.TELEGRAM
    transactional = False

    def __init__(self) -> None:
        self.sent: Counter[int] = Counter()

    async def deliver(self, session: AsyncSession, job: OutboxJob) -> None:
        await asyncio.sleep(0.001)
        assert job.id is not None
        self.sent[job.id] += 1


async def jobs(sessions: async_sessionmaker[AsyncSession], count: int, channel: Channel) -> list[int]:
    tag = secrets.token_hex(4)
    async with db.transaction(sessions) as session:
        made = [
            enqueue(session, channel=channel, recipient=f"conc-{tag}-{n}", text=f"odpowiedź {n}")
            for n in range(count)
        ]
        await session.flush()
    return [job.id for job in made if job.id is not None]


async def test_two_workers_draining_one_outbox_send_each_message_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    job_ids = await jobs(sessions, 120, Channel.TELEGRAM)
    deliverer = CountingDeliverer()
    deliverers = {Channel.TELEGRAM: deliverer}

    async def worker() -> None:
        while (await drain(sessions, deliverers, batch=20)).handled:
            pass

    await asyncio.gather(worker(), worker())
    assert all(deliverer.sent[job_id] == 1 for job_id in job_ids), "each exactly once"
    async with sessions() as session:
        statuses = (await session.exec(select(OutboxJob.status).where(col(OutboxJob.id).in_(job_ids)))).all()
    assert set(statuses) == {OutboxStatus.SENT}


class HangingDeliverer(CountingDeliverer):
    """Stops forever in the middle of sending, like a worker killed there."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = asyncio.Event()

    async def deliver(self, session: AsyncSession, job: OutboxJob) -> None:
        self.inside.set()
        await asyncio.sleep(3600)


async def test_a_network_send_cut_off_midway_is_marked_unconfirmed_never_repeated(
    sessions: async_sessionmaker[AsyncSession], consultants: list[Actor]
) -> None:
    (ticket_id,) = await new_tickets(sessions, 1)
    actor = consultants[0]
    async with db.transaction(sessions) as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        ticket.channel = Channel.TELEGRAM
        session.add(ticket)
        await service.claim_ticket(session, actor, ticket_id)
        message = await service.reply_to_person(
            session, actor, ticket_id, "Dzień dobry", recipient="conc-chat"
        )
    hanging = HangingDeliverer()
    worker = asyncio.create_task(drain(sessions, {Channel.TELEGRAM: hanging}))
    await asyncio.wait_for(hanging.inside.wait(), 10)
    worker.cancel()  # the worker dies mid-send
    with pytest.raises(asyncio.CancelledError):
        await worker

    counting = CountingDeliverer()
    soon = await drain(sessions, {Channel.TELEGRAM: counting})
    assert soon.handled == 0 and not counting.sent, "still leased: nobody else sends it meanwhile"
    later = await drain(
        sessions, {Channel.TELEGRAM: counting}, now=lambda: utcnow() + LEASE + timedelta(seconds=1)
    )
    assert later.recovered == 1 and not counting.sent, "after the lease it is marked, not sent again"
    async with sessions() as session:
        stored = await session.get(TicketMessage, message.id)
        assert stored is not None and stored.delivery is Delivery.UNCONFIRMED
        assert stored.delivery_error and "not known whether it arrived" in stored.delivery_error


async def test_a_web_delivery_cut_off_midway_rolls_back_and_is_delivered_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    session_id = f"conc-web-{secrets.token_hex(8)}"
    async with db.transaction(sessions) as session:
        conversation = await open_conversation(session, Channel.WEB, session_id, language="pl")
        enqueue(session, channel=Channel.WEB, recipient=session_id, text="Odpowiedź konsultanta")

    class DyingWeb(WebDeliverer):
        def __init__(self) -> None:
            self.inside = asyncio.Event()

        async def deliver(self, session: AsyncSession, job: OutboxJob) -> None:
            await super().deliver(session, job)  # the message row is written...
            self.inside.set()
            await asyncio.sleep(3600)  # ...and the worker dies before committing

    dying = DyingWeb()
    worker = asyncio.create_task(drain(sessions, {Channel.WEB: dying}))
    await asyncio.wait_for(dying.inside.wait(), 10)
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker
    await drain(sessions, {Channel.WEB: WebDeliverer()})
    await drain(sessions, {Channel.WEB: WebDeliverer()})
    async with sessions() as session:
        texts = (
            await session.exec(
                select(ConversationMessage.text).where(ConversationMessage.conversation_id == conversation.id)
            )
        ).all()
    assert texts == ["Odpowiedź konsultanta"]
    async with db.transaction(sessions) as session:
        await session.delete(await session.get(type(conversation), conversation.id))


async def test_a_channel_saying_retry_after_is_honoured_and_a_permanent_failure_is_shown(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    slow, gone = await jobs(sessions, 2, Channel.SMS)

    class Refusing:
        channel = Channel.SMS
        transactional = False

        async def deliver(self, session: AsyncSession, job: OutboxJob) -> None:
            if job.id == slow:
                raise DeliveryFailed("429 Too Many Requests", retry_after=30)
            raise DeliveryFailed("403 Forbidden: bot was blocked by the user", permanent=True)

    before = utcnow()
    report = await drain(sessions, {Channel.SMS: Refusing()})
    assert report.retried == 1 and report.failed == 1
    async with sessions() as session:
        waiting = await session.get(OutboxJob, slow)
        failed = await session.get(OutboxJob, gone)
    assert waiting is not None and waiting.status is OutboxStatus.PENDING
    assert waiting.next_attempt_at >= before + timedelta(seconds=29)
    assert (
        failed is not None and failed.status is OutboxStatus.FAILED and "blocked" in (failed.last_error or "")
    )
    assert (await drain(sessions, {Channel.SMS: Refusing()})).handled == 0, "not retried before retry_after"


async def test_on_sqlite_too_one_ticket_has_one_winner(sqlite_engine: AsyncEngine) -> None:
    factory = db.session_factory(sqlite_engine)
    async with db.transaction(factory) as session:
        users = []
        for number in range(6):
            user = StaffUser(
                username=f"lite-{number}", password_hash="x", role=Role.CONSULTANT, office_code="TARNOW"
            )
            session.add(user)
            await session.flush()
            users.append(Actor.of(user))
        ticket = await service.open_ticket(
            session,
            conversation=None,
            channel=Channel.WEB,
            language="pl",
            office_code="TARNOW",
            description="x",
        )
    assert ticket.id is not None
    ticket_id = ticket.id

    async def claim(actor: Actor) -> bool:
        try:
            async with db.transaction(factory) as session:
                await service.claim_ticket(session, actor, ticket_id)
            return True
        except service.HeldByAnother:
            return False

    outcomes = await asyncio.gather(*(claim(actor) for actor in users))
    assert outcomes.count(True) == 1, outcomes


async def test_housekeeping_closes_old_resolved_tickets_and_deletes_silent_conversations(
    app: object, app_db: async_sessionmaker[AsyncSession]
) -> None:
    """What /privacy promises: a conversation silent past the retention period is gone."""
    from fastapi import FastAPI

    from tickets.models import Conversation

    assert isinstance(app, FastAPI)
    services = app.state.services
    long_ago = utcnow() - timedelta(days=services.settings.transcript_retention_days + 1)
    async with db.transaction(app_db) as session:
        old = await open_conversation(session, Channel.WEB, f"tidy-old-{secrets.token_hex(6)}")
        fresh = await open_conversation(session, Channel.WEB, f"tidy-new-{secrets.token_hex(6)}")
        old.last_message_at = long_ago
        session.add(old)
        ticket = await service.open_ticket(
            session, conversation=old, channel=Channel.WEB, language="pl", office_code=None, description="x"
        )
        ticket.status, ticket.resolved_at = TicketStatus.RESOLVED, utcnow() - timedelta(days=8)
        session.add(ticket)
    closed, purged, _cases = await services.tidy()
    assert closed >= 1 and purged >= 1
    async with app_db() as session:
        assert await session.get(Conversation, old.id) is None
        assert await session.get(Conversation, fresh.id) is not None
        kept = await session.get(Ticket, ticket.id)
        assert kept is not None and kept.status is TicketStatus.CLOSED and kept.conversation_id is None
