"""The consultants' hot path on PostgreSQL: listing, claiming, taking, replying and resolving each send
only the statements they need (one conditional UPDATE … RETURNING where a ticket changes), and a change
the rules refuse still says why: unknown, another point's, someone else's, finished, not yours."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.languages import Channel
from infoopt.staff.accounts import Role, StaffUser
from tickets import service
from tickets.conversations import open_conversation
from tickets.models import OutboxJob, Ticket, TicketEvent, TicketStatus
from tickets.service import Actor, PersonNotice, QueueFilter, QueueTicket

OFFICE = "TARNOW"
REPLY = "Dzień dobry, wniosek można złożyć do końca miesiąca."


@pytest.fixture
async def staff(session: AsyncSession) -> dict[str, Actor]:
    """Two consultants at Tarnów, one at Przy Rondzie and a supervisor, only inside this test."""
    people = {
        "hot-tarnow-1": (Role.CONSULTANT, OFFICE),
        "hot-tarnow-2": (Role.CONSULTANT, OFFICE),
        "hot-rondo": (Role.CONSULTANT, "KRK-RONDO"),
        "hot-supervisor": (Role.SUPERVISOR, None),
    }
    actors = {}
    for username, (role, office) in people.items():
        user = StaffUser(username=username, password_hash="x", role=role, office_code=office)
        session.add(user)
        await session.flush()
        actors[username] = Actor.of(user)
    return actors


async def new_ticket(session: AsyncSession, *, external_id: str | None = None) -> int:
    conversation = await open_conversation(session, Channel.WEB, external_id) if external_id else None
    ticket = await service.open_ticket(
        session,
        conversation=conversation,
        channel=Channel.WEB,
        language="pl",
        office_code=OFFICE,
        description="Czy mogę wyjechać z Polski, gdy wniosek jest rozpatrywany?",
    )
    assert ticket.id is not None
    return ticket.id


@contextmanager
def statements(session: AsyncSession) -> Iterator[list[str]]:
    """The statements the session sends meanwhile, each as its verb and table (savepoints left out)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        if words[0] in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
            return
        seen.append(" ".join(words[:3] if words[0] in ("INSERT", "SELECT") else words[:2]))

    connection = session.bind.sync_connection  # type: ignore[union-attr]
    event.listen(connection, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", record)


async def history(session: AsyncSession, ticket_id: int) -> list[str]:
    return list(
        (
            await session.exec(
                select(TicketEvent.kind)
                .where(col(TicketEvent.ticket_id) == ticket_id)
                .order_by(col(TicketEvent.id))
            )
        ).all()
    )


async def test_each_queue_operation_sends_only_the_statements_it_needs(
    session: AsyncSession, staff: dict[str, Actor]
) -> None:
    consultant = staff["hot-tarnow-1"]
    ticket_id = await new_ticket(session, external_id="hot-path-web-session")

    with statements(session) as listing:
        rows = await service.list_tickets(session, consultant, QueueFilter())
    assert listing == ["SELECT ticket.id, ticket.number,"], "one query, no ORM objects loaded one by one"
    listed = next(row for row in rows if row.ticket.id == ticket_id)
    assert isinstance(listed.ticket, QueueTicket) and listed.assignee is None
    assert listed.ticket.status is TicketStatus.NEW and listed.ticket.office_code == OFFICE
    assert listed.ticket.created_at.utcoffset() == timedelta(0), "times come back aware, in UTC"
    assert listed.ticket.sla_due_at is not None and listed.ticket.sla_due_at.utcoffset() == timedelta(0)

    with statements(session) as claiming:
        claimed = await service.claim_ticket(session, consultant, ticket_id)
    assert claiming == ["UPDATE ticket", "INSERT INTO ticket_event"]
    assert claimed.status is TicketStatus.OPEN and claimed.assignee_id == consultant.user_id

    with statements(session) as reading:
        ticket, recipient = await service.ticket_and_recipient(session, consultant, ticket_id)
    assert reading == ["SELECT ticket.id, ticket.number,"] and recipient == "hot-path-web-session"

    with statements(session) as replying:
        message = await service.reply_to_person(session, consultant, ticket_id, REPLY, recipient=recipient)
    assert replying == [
        "UPDATE ticket",
        "INSERT INTO ticket_message",
        "INSERT INTO outbox_job",
        "INSERT INTO ticket_event",
    ]
    assert ticket.status is TicketStatus.WAITING, "the ticket already loaded shows the change"
    assert ticket.first_response_at is not None
    job = (await session.exec(select(OutboxJob).where(col(OutboxJob.ticket_message_id) == message.id))).one()
    assert job.recipient == "hot-path-web-session" and job.text == REPLY

    with statements(session) as resolving:
        resolved = await service.resolve_ticket(
            session, consultant, ticket_id, recipient=recipient, notice=PersonNotice("Jak oceniasz pomoc?")
        )
    assert resolving == ["UPDATE ticket", "INSERT INTO ticket_event", "INSERT INTO outbox_job"]
    assert resolved.status is TicketStatus.RESOLVED and resolved.resolved_at is not None
    assert await history(session, ticket_id) == ["created", "claimed", "replied", "resolved"]

    await new_ticket(session)
    with statements(session) as taking:
        taken = await service.take_next(session, staff["hot-tarnow-2"])
    assert taking == ["UPDATE ticket", "INSERT INTO ticket_event"]
    assert taken.assignee_id == staff["hot-tarnow-2"].user_id and taken.status is TicketStatus.OPEN


async def test_a_change_the_rules_refuse_says_why_and_changes_nothing(
    session: AsyncSession, staff: dict[str, Actor]
) -> None:
    holder, colleague, elsewhere = staff["hot-tarnow-1"], staff["hot-tarnow-2"], staff["hot-rondo"]
    ticket_id = await new_ticket(session)

    with pytest.raises(service.UnknownTicket):
        await service.claim_ticket(session, holder, 2**31 - 1)
    with pytest.raises(service.OtherOffice):
        await service.claim_ticket(session, elsewhere, ticket_id)
    with pytest.raises(service.NotHolder):
        await service.reply_to_person(session, holder, ticket_id, REPLY, recipient=None)

    await service.claim_ticket(session, holder, ticket_id)
    again = await service.claim_ticket(session, holder, ticket_id)
    assert again.assignee_id == holder.user_id, "claiming one's own ticket again is no error"
    with pytest.raises(service.HeldByAnother, match="hot-tarnow-1"):
        await service.claim_ticket(session, colleague, ticket_id)
    with pytest.raises(service.NotHolder):
        await service.reply_to_person(session, colleague, ticket_id, REPLY, recipient=None)
    with pytest.raises(service.NotHolder):
        await service.resolve_ticket(session, colleague, ticket_id, recipient=None, notice=None)
    with pytest.raises(service.InvalidText):
        await service.reply_to_person(session, holder, ticket_id, " \u00a0 ", recipient=None)
    assert await history(session, ticket_id) == ["created", "claimed"], "refusals leave no trace"

    ticket = await session.get(Ticket, ticket_id)
    assert ticket is not None
    ticket.office_code = "KRK-RONDO"  # the ticket moved while its holder still has it open
    session.add(ticket)
    with pytest.raises(service.OtherOffice):
        await service.reply_to_person(session, holder, ticket_id, REPLY, recipient=None)
    ticket.office_code = OFFICE
    session.add(ticket)

    supervisor = staff["hot-supervisor"]
    resolved = await service.resolve_ticket(session, supervisor, ticket_id, recipient=None, notice=None)
    assert resolved.status is TicketStatus.RESOLVED, "a supervisor resolves a ticket someone else holds"
    with pytest.raises(service.WrongState):
        await service.claim_ticket(session, colleague, ticket_id)
    with pytest.raises(service.WrongState):
        await service.reply_to_person(session, holder, ticket_id, REPLY, recipient=None)
    with pytest.raises(service.WrongState):
        await service.resolve_ticket(session, holder, ticket_id, recipient=None, notice=None)
    assert await history(session, ticket_id) == ["created", "claimed", "resolved"]
