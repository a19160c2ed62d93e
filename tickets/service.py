"""The ticket desk's rules: open, route, claim, reply, note, transfer, resolve, reopen, rate.

Plain async functions, session first; they flush and never commit (the caller owns the transaction).
Claiming is a conditional UPDATE, so two consultants can never both win a ticket, on PostgreSQL
(where "take the next ticket" also skips rows another consultant is locking) and on SQLite alike.
A consultant's reply is stored with its delivery job in the same transaction (the outbox).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, or_, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow
from infoopt.core.errors import DomainError, Forbidden, NotFound
from infoopt.core.languages import Channel
from infoopt.staff.accounts import Role, StaffUser
from tickets.conversations import MAX_MESSAGE_CHARS
from tickets.metrics import count_handoff
from tickets.models import (
    ACTIVE_STATUSES,
    Conversation,
    ConversationMessage,
    Delivery,
    PidOffice,
    Ticket,
    TicketAuthor,
    TicketCounter,
    TicketEvent,
    TicketMessage,
    TicketPriority,
    TicketStatus,
)
from tickets.offices import STANDARD_HOURS, add_opening_hours, get_office
from tickets.outbox import enqueue

# A message from the person within this time after resolution reopens the ticket; later it is closed.
REOPEN_WINDOW = timedelta(days=7)
MAX_REPLY_CHARS = 4000
MAX_REASON_CHARS = 500
SHARED_QUEUE_PREFIX = "OPT"
QUEUE_LIMIT = 200


class UnknownTicket(NotFound):
    code = "unknown_ticket"


class OtherOffice(Forbidden):
    """The ticket belongs to another PID point than the consultant's."""

    code = "other_office"


class HeldByAnother(DomainError):
    status_code = 409
    code = "held_by_another"


class WrongState(DomainError):
    """The action does not fit the ticket's status (claiming a resolved ticket, replying to a new one)."""

    status_code = 409
    code = "wrong_state"


class NotHolder(DomainError):
    """Only the consultant holding a ticket replies on it; claim it first."""

    status_code = 409
    code = "not_holder"


class InvalidText(DomainError):
    status_code = 422
    code = "invalid_text"


class NothingToTake(NotFound):
    code = "queue_empty"


@dataclass(frozen=True, slots=True)
class Actor:
    """A staff member acting on tickets."""

    user_id: int
    username: str
    role: Role
    office_code: str | None

    @classmethod
    def of(cls, user: StaffUser) -> Actor:
        assert user.id is not None
        return cls(user.id, user.username, user.role, user.office_code)

    @property
    def sees_every_office(self) -> bool:
        return self.role in (Role.SUPERVISOR, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class PersonNotice:
    """A message the desk sends the person on its own (a rating request), worded by the bot."""

    text: str
    actions: list[dict[str, str | None]] | None = None


# --- numbers and clocks ---------------------------------------------------------------------------


_COUNTER = TicketCounter.__table__  # type: ignore[attr-defined]


async def next_number(session: AsyncSession, prefix: str, year: int) -> str:
    """The next ticket number for the prefix and year, e.g. TAR-2026-000123; atomic under concurrency."""
    dialect = session.bind.dialect.name if session.bind else "postgresql"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(TicketCounter)
        .values(prefix=prefix, year=year, value=1)
        .on_conflict_do_update(index_elements=["prefix", "year"], set_={"value": _COUNTER.c.value + 1})
        .returning(_COUNTER.c.value)
    )
    value = (await session.exec(statement)).scalar_one()
    return f"{prefix}-{year}-{value:06d}"


def due_time(office: PidOffice | None, start: datetime, priority: TicketPriority) -> datetime:
    """When the first answer is due: the point's SLA in its opening hours (halved for high priority)."""
    hours = office.sla_hours if office else 8
    if priority is TicketPriority.HIGH:
        hours = max(1, hours // 2)
    return add_opening_hours(office.hours if office else STANDARD_HOURS, start, timedelta(hours=hours))


def _event(ticket: Ticket, kind: str, actor: str, **detail: str | int | None) -> TicketEvent:
    assert ticket.id is not None
    return TicketEvent(ticket_id=ticket.id, kind=kind, actor=actor, detail=detail)


# What counts as blank in a consultant's text: exactly the white space of JSON Schema's (ECMAScript's)
# regular expressions, so the API's schema (TEXT_PATTERN) and this check never disagree.
BLANK = (
    "\t\n\v\f\r \u00a0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# Some text that is not blank, and no NUL anywhere (PostgreSQL text holds none).
TEXT_PATTERN = f"^[^\\x00]*[^\\x00{BLANK}][^\\x00]*$"


def _clean(text: str, *, limit: int, what: str) -> str:
    if "\x00" in text:
        raise InvalidText(f"the {what} contains a NUL character")
    cleaned = text.strip(BLANK)
    if not cleaned:
        raise InvalidText(f"the {what} is empty")
    if len(cleaned) > limit:
        raise InvalidText(f"the {what} is {len(cleaned)} characters long; at most {limit} fit")
    return cleaned


# --- the person's side ------------------------------------------------------------------------------


async def open_ticket(
    session: AsyncSession,
    *,
    conversation: Conversation | None,
    channel: Channel,
    language: str,
    office_code: str | None,
    description: str,
    topic_id: str | None = None,
    contact: str | None = None,
    priority: TicketPriority = TicketPriority.NORMAL,
    now: datetime | None = None,
) -> Ticket:
    """A new ticket at the chosen point (None: the shared queue), numbered and with its due time."""
    now = now or utcnow()
    office = await get_office(session, office_code) if office_code else None
    prefix = office.ticket_prefix if office else SHARED_QUEUE_PREFIX
    ticket = Ticket(
        number=await next_number(session, prefix, now.year),
        conversation_id=conversation.id if conversation else None,
        channel=channel,
        language=language,
        topic_id=topic_id,
        office_code=office.code if office else None,
        status=TicketStatus.NEW,
        priority=priority,
        description=description.replace("\x00", "")[:MAX_MESSAGE_CHARS],
        contact=contact,
        sla_due_at=due_time(office, now, priority),
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    session.add(_event(ticket, "created", "person", office=ticket.office_code, channel=channel.value))
    await session.flush()
    count_handoff(session, ticket)
    return ticket


async def ticket_of_conversation(
    session: AsyncSession, conversation_id: int, *, now: datetime | None = None
) -> Ticket | None:
    """The person's ticket still in play: open, or resolved recently enough to be reopened."""
    now = now or utcnow()
    return (
        await session.exec(
            select(Ticket)
            .where(
                col(Ticket.conversation_id) == conversation_id,
                or_(
                    col(Ticket.status).in_(ACTIVE_STATUSES),
                    and_(
                        col(Ticket.status) == TicketStatus.RESOLVED,
                        col(Ticket.resolved_at) >= now - REOPEN_WINDOW,
                    ),
                ),
            )
            .order_by(col(Ticket.id).desc())
            .limit(1)
        )
    ).first()


async def ticket_to_rate(session: AsyncSession, conversation_id: int) -> Ticket | None:
    """The person's latest finished ticket that has no rating yet."""
    return (
        await session.exec(
            select(Ticket)
            .where(
                col(Ticket.conversation_id) == conversation_id,
                col(Ticket.status).in_((TicketStatus.RESOLVED, TicketStatus.CLOSED)),
                col(Ticket.rating).is_(None),
            )
            .order_by(col(Ticket.id).desc())
            .limit(1)
        )
    ).first()


async def add_person_message(
    session: AsyncSession,
    ticket: Ticket,
    text: str,
    *,
    now: datetime | None = None,
    attachment: dict[str, str | int | None] | None = None,
) -> TicketMessage:
    """What the person wrote (or sent) joins the thread; a ticket waiting for them, or recently resolved,
    reopens."""
    now = now or utcnow()
    message = TicketMessage(
        ticket_id=ticket.id or 0,
        author=TicketAuthor.PERSON,
        text=text.replace("\x00", "")[:MAX_MESSAGE_CHARS],
        attachment=attachment,
        created_at=now,
    )
    session.add(message)
    if ticket.status in (TicketStatus.WAITING, TicketStatus.RESOLVED):
        reopened = ticket.status is TicketStatus.RESOLVED
        ticket.status = TicketStatus.OPEN if ticket.assignee_id else TicketStatus.NEW
        ticket.resolved_at = None
        session.add(_event(ticket, "reopened" if reopened else "person_replied", "person"))
    ticket.updated_at = now
    session.add(ticket)
    await session.flush()
    return message


async def close_by_person(session: AsyncSession, ticket: Ticket, *, now: datetime | None = None) -> Ticket:
    """The person says they need nothing more."""
    now = now or utcnow()
    ticket.status, ticket.closed_at, ticket.updated_at = TicketStatus.CLOSED, now, now
    session.add_all([ticket, _event(ticket, "closed", "person")])
    await session.flush()
    return ticket


async def rate_ticket(session: AsyncSession, ticket: Ticket, rating: int) -> Ticket:
    """The person's 1–5 rating of how their ticket was handled (the first one counts)."""
    if not 1 <= rating <= 5:
        raise InvalidText("a rating is a whole number from 1 to 5")
    if ticket.rating is None:
        ticket.rating = rating
        session.add_all([ticket, _event(ticket, "rated", "person", rating=rating)])
        await session.flush()
    return ticket


# --- the consultants' side ----------------------------------------------------------------------------


def visible_to(actor: Actor) -> ColumnElement[bool]:
    """The condition on tickets a staff member may see: their point and the shared queue, or all."""
    if actor.sees_every_office:
        return true()
    return or_(col(Ticket.office_code).is_(None), col(Ticket.office_code) == actor.office_code)


def _check_visible(actor: Actor, ticket: Ticket) -> None:
    if actor.sees_every_office or ticket.office_code in (None, actor.office_code):
        return
    raise OtherOffice(f"ticket {ticket.number} belongs to another information point ({ticket.office_code})")


async def get_ticket(session: AsyncSession, actor: Actor, ticket_id: int) -> Ticket:
    """A ticket the staff member may see, or UnknownTicket / OtherOffice."""
    ticket = await session.get(Ticket, ticket_id, populate_existing=True)  # as the database has it now
    if ticket is None:
        raise UnknownTicket(f"no ticket with id {ticket_id}")
    _check_visible(actor, ticket)
    return ticket


@dataclass(frozen=True, slots=True)
class QueueFilter:
    statuses: tuple[TicketStatus, ...] = ACTIVE_STATUSES
    office: str | None = None  # a PID code, or "none" for the shared queue
    assignee: str | None = None  # a username, or "me"
    limit: int = QUEUE_LIMIT


@dataclass(frozen=True, slots=True)
class QueueRow:
    ticket: Ticket
    assignee: str | None


def _queue_order() -> tuple[Any, ...]:
    # Matches ix_ticket_active_queue, so the queue is read in order from the index and stops at the limit.
    return (col(Ticket.sla_due_at).nulls_last(), col(Ticket.id))


async def list_tickets(session: AsyncSession, actor: Actor, query: QueueFilter) -> list[QueueRow]:
    """The tickets the staff member may see, the most urgent (earliest SLA due time) first."""
    assignee = aliased(StaffUser)
    statement = (
        select(Ticket, assignee.username)
        .outerjoin(assignee, col(Ticket.assignee_id) == assignee.id)
        .where(col(Ticket.status).in_(query.statuses))
        .where(visible_to(actor))
    )
    if query.office == "none":
        statement = statement.where(col(Ticket.office_code).is_(None))
    elif query.office:
        statement = statement.where(col(Ticket.office_code) == query.office)
    if query.assignee == "me":
        statement = statement.where(col(Ticket.assignee_id) == actor.user_id)
    elif query.assignee:
        statement = statement.where(col(assignee.username) == query.assignee)
    rows = (await session.exec(statement.order_by(*_queue_order()).limit(query.limit))).all()
    return [QueueRow(ticket, username) for ticket, username in rows]


async def _claim(
    session: AsyncSession, actor: Actor, ticket_id: int, now: datetime, *, held_by: int | None = None
) -> bool:
    """Take the ticket if nobody else holds it (or, taking over, if `held_by` still does): one
    conditional UPDATE, so only one claim can win."""
    holder = (
        col(Ticket.assignee_id) == held_by
        if held_by is not None
        else or_(col(Ticket.assignee_id).is_(None), col(Ticket.assignee_id) == actor.user_id)
    )
    result = await session.exec(
        update(Ticket)
        .where(col(Ticket.id) == ticket_id, col(Ticket.status).in_(ACTIVE_STATUSES), holder)
        .values(
            assignee_id=actor.user_id,
            status=case(
                (col(Ticket.status) == TicketStatus.NEW, TicketStatus.OPEN), else_=col(Ticket.status)
            ),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def claim_ticket(
    session: AsyncSession, actor: Actor, ticket_id: int, *, now: datetime | None = None
) -> Ticket:
    """Hold the ticket: 409 when another consultant holds it or it is no longer active."""
    now = now or utcnow()
    ticket = await get_ticket(session, actor, ticket_id)
    if ticket.assignee_id == actor.user_id and ticket.status in ACTIVE_STATUSES:
        return ticket
    if not await _claim(session, actor, ticket_id, now):
        await session.refresh(ticket)
        if ticket.status not in ACTIVE_STATUSES:
            raise WrongState(f"ticket {ticket.number} is {ticket.status.value}; there is nothing to claim")
        holder = await session.get(StaffUser, ticket.assignee_id) if ticket.assignee_id else None
        raise HeldByAnother(
            f"ticket {ticket.number} is held by {holder.username if holder else 'someone else'}"
        )
    await session.refresh(ticket)
    session.add(_event(ticket, "claimed", actor.username))
    await session.flush()
    return ticket


async def take_over(
    session: AsyncSession, actor: Actor, ticket_id: int, *, now: datetime | None = None
) -> Ticket:
    """A supervisor takes a ticket from the consultant holding it (away, ill, gone for the day)."""
    now = now or utcnow()
    ticket = await get_ticket(session, actor, ticket_id)
    if not actor.sees_every_office:
        raise HeldByAnother(f"only a supervisor can take ticket {ticket.number} over")
    if ticket.assignee_id is None or ticket.assignee_id == actor.user_id:
        return await claim_ticket(session, actor, ticket_id, now=now)
    previous = ticket.assignee_id
    if not await _claim(session, actor, ticket_id, now, held_by=previous):
        raise WrongState(f"ticket {ticket.number} changed meanwhile; reload and try again")
    await session.refresh(ticket)
    session.add(_event(ticket, "taken_over", actor.username, previous=previous))
    await session.flush()
    return ticket


async def release_tickets_of(session: AsyncSession, user_id: int, *, actor: str) -> int:
    """Put a departing consultant's open tickets back in the queue, unclaimed; how many."""
    held = (
        await session.exec(
            select(Ticket).where(col(Ticket.assignee_id) == user_id, col(Ticket.status).in_(ACTIVE_STATUSES))
        )
    ).all()
    for ticket in held:
        ticket.assignee_id = None
        if ticket.status is TicketStatus.OPEN:
            ticket.status = TicketStatus.NEW
        session.add_all([ticket, _event(ticket, "released", actor)])
    await session.flush()
    return len(held)


async def take_next(session: AsyncSession, actor: Actor, *, now: datetime | None = None) -> Ticket:
    """Claim the most urgent unclaimed ticket the consultant may take (high priority first)."""
    now = now or utcnow()
    for _attempt in range(5):
        candidates = (
            await session.exec(
                select(Ticket.id)
                .where(
                    col(Ticket.status) == TicketStatus.NEW,
                    col(Ticket.assignee_id).is_(None),
                    visible_to(actor),
                )
                .order_by(case((col(Ticket.priority) == TicketPriority.HIGH, 0), else_=1), *_queue_order())
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not candidates:
            raise NothingToTake("no unclaimed ticket is waiting")
        ticket_id = candidates[0]
        assert ticket_id is not None
        if await _claim(session, actor, ticket_id, now):
            ticket = await get_ticket(session, actor, ticket_id)
            session.add(_event(ticket, "claimed", actor.username, via="take_next"))
            await session.flush()
            return ticket
    raise NothingToTake("every waiting ticket was just taken by someone else; try again")


def _require_holder(actor: Actor, ticket: Ticket) -> None:
    if ticket.status not in ACTIVE_STATUSES:
        raise WrongState(f"ticket {ticket.number} is {ticket.status.value}")
    if ticket.assignee_id != actor.user_id:
        raise NotHolder(f"claim ticket {ticket.number} before replying; you do not hold it")


async def reply_to_person(
    session: AsyncSession,
    actor: Actor,
    ticket_id: int,
    text: str,
    *,
    recipient: str | None,
    now: datetime | None = None,
) -> TicketMessage:
    """The holder's answer to the person, stored with its delivery job in this same transaction."""
    now = now or utcnow()
    text = _clean(text, limit=MAX_REPLY_CHARS, what="reply")
    ticket = await get_ticket(session, actor, ticket_id)
    _require_holder(actor, ticket)
    message = TicketMessage(
        ticket_id=ticket_id,
        author=TicketAuthor.CONSULTANT,
        staff_user_id=actor.user_id,
        text=text,
        delivery=Delivery.PENDING if recipient else Delivery.FAILED,
        delivery_error=None if recipient else "the person's conversation no longer exists",
        created_at=now,
    )
    session.add(message)
    await session.flush()
    if recipient:
        enqueue(
            session,
            channel=ticket.channel,
            recipient=recipient,
            text=text,
            ticket_message_id=message.id,
            now=now,
        )
    ticket.status = TicketStatus.WAITING
    ticket.first_response_at = ticket.first_response_at or now
    ticket.updated_at = now
    session.add_all([ticket, _event(ticket, "replied", actor.username, message=message.id)])
    await session.flush()
    return message


async def add_note(
    session: AsyncSession, actor: Actor, ticket_id: int, text: str, *, now: datetime | None = None
) -> TicketMessage:
    """An internal note for colleagues; never sent to the person."""
    now = now or utcnow()
    text = _clean(text, limit=MAX_REPLY_CHARS, what="note")
    ticket = await get_ticket(session, actor, ticket_id)
    message = TicketMessage(
        ticket_id=ticket_id, author=TicketAuthor.NOTE, staff_user_id=actor.user_id, text=text, created_at=now
    )
    ticket.updated_at = now
    session.add_all([message, ticket])
    await session.flush()
    session.add(_event(ticket, "noted", actor.username, message=message.id))
    await session.flush()
    return message


async def transfer_ticket(
    session: AsyncSession,
    actor: Actor,
    ticket_id: int,
    office_code: str,
    reason: str,
    *,
    now: datetime | None = None,
) -> Ticket:
    """Move the ticket to another point's queue, unclaimed, with the reason on record."""
    now = now or utcnow()
    reason = _clean(reason, limit=MAX_REASON_CHARS, what="reason")
    ticket = await get_ticket(session, actor, ticket_id)
    if ticket.status not in ACTIVE_STATUSES:
        raise WrongState(f"ticket {ticket.number} is {ticket.status.value}; only open tickets move")
    office = await get_office(session, office_code)
    if not office.active:
        raise WrongState(f"the point {office.code} does not take tickets now")
    if office.code == ticket.office_code:
        raise WrongState(f"ticket {ticket.number} is already at {office.code}")
    previous = ticket.office_code
    ticket.office_code, ticket.assignee_id, ticket.status = office.code, None, TicketStatus.NEW
    ticket.sla_due_at = due_time(office, ticket.created_at, ticket.priority)
    ticket.updated_at = now
    session.add_all(
        [
            ticket,
            _event(
                ticket,
                "transferred",
                actor.username,
                **{"from": previous, "to": office.code, "reason": reason},
            ),
        ]
    )
    await session.flush()
    return ticket


async def resolve_ticket(
    session: AsyncSession,
    actor: Actor,
    ticket_id: int,
    *,
    recipient: str | None,
    notice: PersonNotice | None,
    now: datetime | None = None,
) -> Ticket:
    """Mark the ticket done (the holder, or a supervisor) and ask the person for a rating."""
    now = now or utcnow()
    ticket = await get_ticket(session, actor, ticket_id)
    if ticket.status not in ACTIVE_STATUSES:
        raise WrongState(f"ticket {ticket.number} is already {ticket.status.value}")
    if ticket.assignee_id != actor.user_id and not actor.sees_every_office:
        raise NotHolder(f"claim ticket {ticket.number} before resolving it")
    ticket.status, ticket.resolved_at, ticket.updated_at = TicketStatus.RESOLVED, now, now
    session.add_all([ticket, _event(ticket, "resolved", actor.username)])
    if recipient and notice:
        enqueue(
            session,
            channel=ticket.channel,
            recipient=recipient,
            text=notice.text,
            actions=notice.actions,
            now=now,
        )
    await session.flush()
    return ticket


async def close_resolved(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Close tickets resolved longer ago than the reopening window; how many were closed."""
    now = now or utcnow()
    result = await session.exec(
        update(Ticket)
        .where(col(Ticket.status) == TicketStatus.RESOLVED, col(Ticket.resolved_at) < now - REOPEN_WINDOW)
        .values(status=TicketStatus.CLOSED, closed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


async def thread(session: AsyncSession, ticket: Ticket) -> Sequence[TicketMessage]:
    return (
        await session.exec(
            select(TicketMessage).where(TicketMessage.ticket_id == ticket.id).order_by(col(TicketMessage.id))
        )
    ).all()


async def events(session: AsyncSession, ticket: Ticket) -> Sequence[TicketEvent]:
    return (
        await session.exec(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(col(TicketEvent.id))
        )
    ).all()


async def transcript(
    session: AsyncSession, ticket: Ticket, *, limit: int = 200
) -> Sequence[ConversationMessage]:
    """The conversation with the bot up to the ticket's creation (the last `limit` messages)."""
    if ticket.conversation_id is None:
        return []
    rows = (
        await session.exec(
            select(ConversationMessage)
            .where(
                col(ConversationMessage.conversation_id) == ticket.conversation_id,
                col(ConversationMessage.created_at) <= ticket.created_at,
            )
            .order_by(col(ConversationMessage.id).desc())
            .limit(limit)
        )
    ).all()
    return list(reversed(rows))


async def recipient_of(session: AsyncSession, ticket: Ticket) -> str | None:
    """The channel's id for the person behind the ticket (None when the conversation is gone)."""
    if ticket.conversation_id is None:
        return None
    conversation = await session.get(Conversation, ticket.conversation_id)
    return conversation.external_id if conversation else None
