"""The ticket desk's rules: open, route, claim, reply, note, transfer, resolve, reopen, rate.

Plain async functions, session first; they flush and never commit (the caller owns the transaction).
Claiming is a conditional UPDATE, so two consultants can never both win a ticket, on PostgreSQL
(where "take the next ticket" also skips rows another consultant is locking) and on SQLite alike.
A consultant's reply is stored with its delivery job in the same transaction (the outbox).

The consultants' hot path (list, claim, take, reply, resolve) is written for 50 consultants on one
event loop: the queue is read as plain rows, not 200 tracked ORM objects; a change to a ticket is one
UPDATE … RETURNING that checks the rule and hands back the ticket as it now is; history rows are single
INSERTs. A rule that says no is explained afterwards, by reading the ticket (the rare path).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple, NoReturn

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    DateTime,
    Select,
    Update,
    and_,
    bindparam,
    case,
    func,
    insert,
    inspect,
    or_,
    true,
    type_coerce,
    update,
)
from sqlalchemy import select as select_columns
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.sqltypes import UTCDateTime

from infoopt.core.clock import utcnow
from infoopt.core.db import DriverStatement
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


# The hot path's statements are built once per shape and reused, with their values bound when they run:
# building a statement and its cache key costs SQLAlchemy more CPU than sending it, and every
# consultant of a worker shares its one event loop.
_RECORD = insert(TicketEvent.__table__)  # type: ignore[attr-defined]
_NOW = bindparam("now", type_=Ticket.__table__.c.updated_at.type)  # type: ignore[attr-defined]


async def _record(
    session: AsyncSession, ticket_id: int | None, kind: str, actor: str, **detail: str | int | None
) -> None:
    """Add an entry to the ticket's history: one INSERT, with no ORM object to build, track and flush."""
    assert ticket_id is not None
    values = {"ticket_id": ticket_id, "kind": kind, "actor": actor, "detail": detail, "created_at": utcnow()}
    await session.exec(_RECORD, params=values)


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
    await _record(session, ticket.id, "created", "person", office=ticket.office_code, channel=channel.value)
    count_handoff(session, ticket)
    return ticket


def _in_play(resolved_since: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """A ticket still in play: open, or resolved recently enough to be reopened (since then).

    The open statuses as plain comparisons, not `IN (…)`: SQLAlchemy renders an `IN` list into the SQL
    again at every execution, and this runs with every message a person sends."""
    return or_(
        *(col(Ticket.status) == status for status in ACTIVE_STATUSES),
        and_(col(Ticket.status) == TicketStatus.RESOLVED, col(Ticket.resolved_at) >= resolved_since),
    )


async def ticket_of_conversation(
    session: AsyncSession, conversation_id: int, *, now: datetime | None = None
) -> Ticket | None:
    """The person's ticket still in play: open, or resolved recently enough to be reopened."""
    now = now or utcnow()
    return (
        await session.exec(
            select(Ticket)
            .where(col(Ticket.conversation_id) == conversation_id, _in_play(now - REOPEN_WINDOW))
            .order_by(col(Ticket.id).desc())
            .limit(1)
        )
    ).first()


# Every column of a conversation: the object made from a row is whole, whatever columns it gains.
_CONVERSATION_COLUMNS: tuple[str, ...] = tuple(Conversation.__table__.columns.keys())  # type: ignore[attr-defined]


@cache
def _conversation_in_play() -> Select[*tuple[Any, ...]]:
    """The query of `conversation_in_play`, built once (bound parameters: channel, person, since): the
    conversation's columns and `ticket_in_play`."""
    in_play = (
        select_columns(col(Ticket.id))
        .where(col(Ticket.conversation_id) == col(Conversation.id), _in_play(bindparam("since")))
        .order_by(col(Ticket.id).desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    table = Conversation.__table__  # type: ignore[attr-defined]
    return select_columns(
        *(table.c[name] for name in _CONVERSATION_COLUMNS), in_play.label("ticket_in_play")
    ).where(
        col(Conversation.channel) == bindparam("channel"),
        col(Conversation.external_id) == bindparam("person"),
    )


@cache
def _conversation_in_play_driven() -> DriverStatement:
    return DriverStatement(_conversation_in_play())


async def conversation_in_play(
    session: AsyncSession, channel: Channel, external_id: str, *, now: datetime | None = None
) -> tuple[Conversation | None, int | None]:
    """The person's conversation on a channel and the id of their ticket still in play (see
    `ticket_of_conversation`), in one query: a person's every message needs both. The conversation is the
    session's own, as if loaded through it; on PostgreSQL the query goes past the ORM
    (`DriverStatement`), and needs no transaction of its own."""
    parameters = {"channel": channel, "person": external_id, "since": (now or utcnow()) - REOPEN_WINDOW}
    if DriverStatement.applies(session):
        found: Mapping[str, Any] | None = await _conversation_in_play_driven().fetchrow(session, parameters)
    else:
        connection = await session.connection()  # plain rows, as from the driver
        row = (await connection.execute(_conversation_in_play(), parameters)).first()
        found = dict(row._mapping) if row is not None else None
    if found is None:
        return None, None
    return _as_loaded(session, found), found["ticket_in_play"]


def _as_loaded(session: AsyncSession, row: Mapping[str, Any]) -> Conversation:
    """The session's conversation for a row of its columns, as if the session had loaded it (no SQL): the
    one it holds already (what of it had expired, filled in from the row), or one made from the row."""
    values = {name: row[name] for name in _CONVERSATION_COLUMNS} | {"channel": Channel(row["channel"])}
    held = session.sync_session.identity_map.get(session.sync_session.identity_key(Conversation, row["id"]))
    if isinstance(held, Conversation):
        for name in inspect(held).expired_attributes & values.keys():
            set_committed_value(held, name, values[name])
        return held
    conversation = Conversation(**values)
    make_transient_to_detached(conversation)
    session.add(conversation)
    return conversation


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
        await _record(session, ticket.id, "reopened" if reopened else "person_replied", "person")
    ticket.updated_at = now
    session.add(ticket)
    await session.flush()
    return message


async def close_by_person(session: AsyncSession, ticket: Ticket, *, now: datetime | None = None) -> Ticket:
    """The person says they need nothing more."""
    now = now or utcnow()
    ticket.status, ticket.closed_at, ticket.updated_at = TicketStatus.CLOSED, now, now
    session.add(ticket)
    await _record(session, ticket.id, "closed", "person")
    await session.flush()
    return ticket


async def rate_ticket(session: AsyncSession, ticket: Ticket, rating: int) -> Ticket:
    """The person's 1–5 rating of how their ticket was handled (the first one counts)."""
    if not 1 <= rating <= 5:
        raise InvalidText("a rating is a whole number from 1 to 5")
    if ticket.rating is None:
        ticket.rating = rating
        session.add(ticket)
        await _record(session, ticket.id, "rated", "person", rating=rating)
        await session.flush()
    return ticket


# --- the consultants' side ----------------------------------------------------------------------------


def visible_to(every_office: bool) -> ColumnElement[bool]:
    """The condition on tickets a staff member may see: their point's (bound as `own_office`) and the
    shared queue; or all of them."""
    if every_office:
        return true()
    return or_(col(Ticket.office_code).is_(None), col(Ticket.office_code) == bindparam("own_office"))


def _bound(actor: Actor, **values: Any) -> dict[str, Any]:
    """The values a hot-path statement runs with: who acts, from which point, and the rest."""
    return {"user_id": actor.user_id, "own_office": actor.office_code, **values}


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


_TICKET_AND_RECIPIENT = (
    select(Ticket, Conversation.external_id)
    .outerjoin(Conversation, col(Ticket.conversation_id) == col(Conversation.id))
    .where(col(Ticket.id) == bindparam("ticket_id"))
    .execution_options(populate_existing=True)
)


async def ticket_and_recipient(
    session: AsyncSession, actor: Actor, ticket_id: int
) -> tuple[Ticket, str | None]:
    """A ticket the staff member may see and the channel's id for its person (None when the conversation
    is gone), read together: what a reply or a resolution needs to know before it is made."""
    row = (await session.exec(_TICKET_AND_RECIPIENT, params={"ticket_id": ticket_id})).first()
    if row is None:
        raise UnknownTicket(f"no ticket with id {ticket_id}")
    ticket, recipient = row
    _check_visible(actor, ticket)
    return ticket, recipient


def _returning(statement: Update) -> Update:
    """A conditional UPDATE of one ticket that hands back the ticket as it now is, refreshing the loaded
    object too: the rule is checked and the change made in one statement, with no read before it."""
    return statement.returning(Ticket).execution_options(synchronize_session=False, populate_existing=True)


async def _changed(session: AsyncSession, statement: Update, values: dict[str, Any]) -> Ticket | None:
    """Run a `_returning` UPDATE: the ticket, or None when its conditions did not hold."""
    return (await session.exec(statement, params=values)).scalars().first()


@dataclass(frozen=True, slots=True)
class QueueFilter:
    statuses: tuple[TicketStatus, ...] = ACTIVE_STATUSES
    office: str | None = None  # a PID code, or "none" for the shared queue
    assignee: str | None = None  # a username, or "me"
    limit: int = QUEUE_LIMIT


class QueueTicket(NamedTuple):
    """A ticket as the queue shows it: plain values read for display, not an ORM object (building and
    tracking 200 of those cost more CPU than everything else in a listing). The person's contact and
    conversation stay out of the queue."""

    id: int
    number: str
    status: TicketStatus
    priority: TicketPriority
    office_code: str | None
    channel: Channel
    language: str
    topic_id: str | None
    assignee_id: int | None
    description: str
    sla_due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    rating: int | None


@dataclass(frozen=True, slots=True)
class QueueRow:
    ticket: QueueTicket
    assignee: str | None


def _queue_order() -> tuple[Any, ...]:
    # Matches ix_ticket_active_queue, so the queue is read in order from the index and stops at the limit.
    return (col(Ticket.sla_due_at).nulls_last(), col(Ticket.id))


def _queue_column(name: str, aware_driver: bool) -> Any:
    """A column the queue shows. asyncpg returns timestamps as aware UTC datetimes already, so there the
    model's conversion of each one to UTC, a sixth of a listing's CPU, is left out."""
    column = getattr(Ticket, name)
    if aware_driver and isinstance(column.type, UTCDateTime):
        return type_coerce(column, DateTime(timezone=True)).label(name)
    return column


@cache
def _queue(
    statuses: tuple[TicketStatus, ...], office: str, assignee: str, every_office: bool, aware_driver: bool
) -> Any:
    """The queue's SELECT for one shape of filter (`office`: "", "none" or "one"; `assignee`: "", "me"
    or "named"); the point, the user and the limit are bound when it runs."""
    columns = (_queue_column(name, aware_driver) for name in QueueTicket._fields)
    statement = (
        select_columns(*columns, col(StaffUser.username))
        .outerjoin(StaffUser, col(Ticket.assignee_id) == col(StaffUser.id))
        .where(col(Ticket.status).in_(statuses), visible_to(every_office))
    )
    if office == "none":
        statement = statement.where(col(Ticket.office_code).is_(None))
    elif office:
        statement = statement.where(col(Ticket.office_code) == bindparam("office"))
    if assignee == "me":
        statement = statement.where(col(Ticket.assignee_id) == bindparam("user_id"))
    elif assignee:
        statement = statement.where(col(StaffUser.username) == bindparam("assignee"))
    return statement.order_by(*_queue_order()).limit(bindparam("limit"))


async def list_tickets(session: AsyncSession, actor: Actor, query: QueueFilter) -> list[QueueRow]:
    """The tickets the staff member may see, the most urgent (earliest SLA due time) first."""
    statuses = tuple(sorted(set(query.statuses)))  # a few shapes, whatever a caller repeats or reorders
    office = "none" if query.office == "none" else "one" if query.office else ""
    assignee = "me" if query.assignee == "me" else "named" if query.assignee else ""
    await session.flush()  # the queue shows this transaction's own changes too
    connection = await session.connection()  # plain rows: past the ORM's loading, for a read-only view
    aware_driver = connection.dialect.driver == "asyncpg"
    statement = _queue(statuses, office, assignee, actor.sees_every_office, aware_driver)
    values = _bound(actor, office=query.office, assignee=query.assignee, limit=query.limit)
    rows = (await connection.execute(statement, values)).all()
    return [QueueRow(QueueTicket._make(row[:-1]), row[-1]) for row in rows]


def _holding(*which: ColumnElement[bool]) -> Update:
    """The actor (`user_id`) holds the active ticket `which` selects, if it still matches: one conditional
    UPDATE, so only one claim can win, and the winner gets the ticket back from it."""
    return _returning(
        update(Ticket)
        .where(col(Ticket.status).in_(ACTIVE_STATUSES), *which)
        .values(
            assignee_id=bindparam("user_id"),
            status=case(
                (col(Ticket.status) == TicketStatus.NEW, TicketStatus.OPEN), else_=col(Ticket.status)
            ),
            updated_at=_NOW,
        )
    )


@cache
def _claiming(every_office: bool) -> Update:
    """Hold ticket `ticket_id` if nobody does and the actor may see it."""
    return _holding(
        col(Ticket.id) == bindparam("ticket_id"), col(Ticket.assignee_id).is_(None), visible_to(every_office)
    )


_TAKING_OVER = _holding(
    col(Ticket.id) == bindparam("ticket_id"), col(Ticket.assignee_id) == bindparam("previous")
)


async def claim_ticket(
    session: AsyncSession, actor: Actor, ticket_id: int, *, now: datetime | None = None
) -> Ticket:
    """Hold the ticket: 409 when another consultant holds it or it is no longer active."""
    values = _bound(actor, ticket_id=ticket_id, now=now or utcnow())
    ticket = await _changed(session, _claiming(actor.sees_every_office), values)
    if ticket is None:
        return await _not_claimed(session, actor, ticket_id)
    await _record(session, ticket_id, "claimed", actor.username)
    return ticket


async def _not_claimed(session: AsyncSession, actor: Actor, ticket_id: int) -> Ticket:
    """Why a claim changed nothing: the ticket is unknown, elsewhere, finished or someone else's; or it is
    the actor's own already, which is no error (nothing changes, nothing is recorded)."""
    ticket = await get_ticket(session, actor, ticket_id)
    if ticket.status not in ACTIVE_STATUSES:
        raise WrongState(f"ticket {ticket.number} is {ticket.status.value}; there is nothing to claim")
    if ticket.assignee_id == actor.user_id:
        return ticket
    holder = await session.get(StaffUser, ticket.assignee_id) if ticket.assignee_id else None
    raise HeldByAnother(f"ticket {ticket.number} is held by {holder.username if holder else 'someone else'}")


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
    values = _bound(actor, ticket_id=ticket_id, previous=previous, now=now)
    if await _changed(session, _TAKING_OVER, values) is None:
        raise WrongState(f"ticket {ticket.number} changed meanwhile; reload and try again")
    await _record(session, ticket_id, "taken_over", actor.username, previous=previous)
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
        session.add(ticket)
        await _record(session, ticket.id, "released", actor)
    await session.flush()
    return len(held)


@cache
def _unclaimed(every_office: bool) -> Any:
    """The unclaimed ticket the actor may take next, the most urgent (high priority) first; on PostgreSQL
    skipping those another consultant is taking at this moment."""
    return (
        select(Ticket.id)
        .where(
            col(Ticket.status) == TicketStatus.NEW,
            col(Ticket.assignee_id).is_(None),
            visible_to(every_office),
        )
        .order_by(case((col(Ticket.priority) == TicketPriority.HIGH, 0), else_=1), *_queue_order())
        .limit(1)
        .with_for_update(skip_locked=True)
    )


@cache
def _taking(every_office: bool) -> Update:
    """Hold the most urgent unclaimed ticket, chosen and claimed in one statement."""
    return _holding(
        col(Ticket.id) == _unclaimed(every_office).scalar_subquery(),
        col(Ticket.status) == TicketStatus.NEW,
        col(Ticket.assignee_id).is_(None),
    )


async def take_next(session: AsyncSession, actor: Actor, *, now: datetime | None = None) -> Ticket:
    """Claim the most urgent unclaimed ticket the consultant may take (high priority first)."""
    values = _bound(actor, now=now or utcnow())
    for _attempt in range(5):
        ticket = await _changed(session, _taking(actor.sees_every_office), values)
        if ticket is not None:
            await _record(session, ticket.id, "claimed", actor.username, via="take_next")
            return ticket
        if (await session.exec(_unclaimed(actor.sees_every_office), params=values)).first() is None:
            raise NothingToTake("no unclaimed ticket is waiting")
    raise NothingToTake("every waiting ticket was just taken by someone else; try again")


def _require_holder(actor: Actor, ticket: Ticket) -> None:
    if ticket.status not in ACTIVE_STATUSES:
        raise WrongState(f"ticket {ticket.number} is {ticket.status.value}")
    if ticket.assignee_id != actor.user_id:
        raise NotHolder(f"claim ticket {ticket.number} before replying; you do not hold it")


async def _not_changed(
    session: AsyncSession, actor: Actor, ticket_id: int, check: Callable[[Actor, Ticket], None]
) -> NoReturn:
    """Why a conditional change to a ticket matched nothing: `check` raises the rule that says no (or the
    ticket changed between the two statements)."""
    ticket = await get_ticket(session, actor, ticket_id)
    check(actor, ticket)
    raise WrongState(f"ticket {ticket.number} changed meanwhile; reload and try again")


@cache
def _answering(every_office: bool) -> Update:
    """Ticket `ticket_id`, active and held by the actor, waits for its person now; the first answer's
    time is kept."""
    return _returning(
        update(Ticket)
        .where(
            col(Ticket.id) == bindparam("ticket_id"),
            col(Ticket.status).in_(ACTIVE_STATUSES),
            col(Ticket.assignee_id) == bindparam("user_id"),
            visible_to(every_office),
        )
        .values(
            status=TicketStatus.WAITING,
            first_response_at=func.coalesce(col(Ticket.first_response_at), _NOW),
            updated_at=_NOW,
        )
    )


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
    ticket = await _changed(
        session, _answering(actor.sees_every_office), _bound(actor, ticket_id=ticket_id, now=now)
    )
    if ticket is None:
        await _not_changed(session, actor, ticket_id, _require_holder)
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
    await _record(session, ticket_id, "replied", actor.username, message=message.id)
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
    await _record(session, ticket_id, "noted", actor.username, message=message.id)
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
    session.add(ticket)
    await _record(
        session,
        ticket_id,
        "transferred",
        actor.username,
        **{"from": previous, "to": office.code, "reason": reason},
    )
    await session.flush()
    return ticket


@cache
def _resolving(every_office: bool) -> Update:
    """Ticket `ticket_id`, active, is done now: if the actor holds it, or is a supervisor."""
    resolver = true() if every_office else col(Ticket.assignee_id) == bindparam("user_id")
    return _returning(
        update(Ticket)
        .where(
            col(Ticket.id) == bindparam("ticket_id"),
            col(Ticket.status).in_(ACTIVE_STATUSES),
            resolver,
            visible_to(every_office),
        )
        .values(status=TicketStatus.RESOLVED, resolved_at=_NOW, updated_at=_NOW)
    )


def _require_resolver(actor: Actor, ticket: Ticket) -> None:
    if ticket.status not in ACTIVE_STATUSES:
        raise WrongState(f"ticket {ticket.number} is already {ticket.status.value}")
    if ticket.assignee_id != actor.user_id and not actor.sees_every_office:
        raise NotHolder(f"claim ticket {ticket.number} before resolving it")


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
    ticket = await _changed(
        session, _resolving(actor.sees_every_office), _bound(actor, ticket_id=ticket_id, now=now)
    )
    if ticket is None:
        await _not_changed(session, actor, ticket_id, _require_resolver)
    await _record(session, ticket_id, "resolved", actor.username)
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
