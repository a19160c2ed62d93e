"""The consultants' API: the queue, a ticket with its thread and transcript, claim, reply, note,
transfer, resolve, and a live stream of ticket changes. Every route needs a signed-in staff member."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow
from infoopt.core.deps import SessionDep, get_services
from infoopt.core.errors import DomainError, NotFound
from infoopt.core.languages import Channel
from infoopt.staff.accounts import StaffUser
from infoopt.staff.audit import record_audit
from infoopt.staff.auth import CurrentStaff, Staff, check_csrf
from tickets import service
from tickets.conversations import export_person
from tickets.live import TicketChange, TicketFeed
from tickets.models import ACTIVE_STATUSES, Conversation, Ticket, TicketPriority, TicketStatus
from tickets.outbox import resend
from tickets.service import (
    MAX_REASON_CHARS,
    MAX_REPLY_CHARS,
    TEXT_PATTERN,
    Actor,
    PersonNotice,
    QueueFilter,
    QueueTicket,
)

api = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])

TicketId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class Suggestion(BaseModel):
    """A knowledge-base answer that may fit a ticket, in the person's language."""

    topic_id: str
    title: str
    short_answer: str
    body: str
    confidence: float


class Suggester(Protocol):
    """The NLU's likeliest published answers for a text (provided by the wiring)."""

    async def __call__(self, text: str, language: str) -> list[Suggestion]: ...


class FileUnavailable(DomainError):
    """The channel no longer has the file, or will not give it."""

    status_code = 502
    code = "file_unavailable"


class FileSource(Protocol):
    """Fetches a file a person sent, by the id their channel gave it (provided per channel by the wiring)."""

    async def fetch(self, file_id: str) -> bytes: ...


class DeskServices(Protocol):
    feed: TicketFeed
    suggest: Suggester
    resolved_notice: Callable[[str, str], PersonNotice]
    files: dict[Channel, FileSource]


def desk(request: Request) -> DeskServices:
    services: DeskServices = get_services(request)
    return services


DeskDep = Annotated[DeskServices, Depends(desk)]


def actor_of(staff: Staff) -> Actor:
    return Actor.of(staff.user)


def check_api_csrf(staff: Staff, request: Request) -> None:
    """Cookie-signed-in pages call the API with the session's CSRF token in a header; bearer clients need none."""
    check_csrf(staff, request.headers.get("x-csrf-token"))


class TicketOut(BaseModel):
    id: int
    number: str
    status: TicketStatus
    office: str | None = Field(description="PID code; null for the shared queue")
    channel: Channel
    language: str
    topic_id: str | None
    assignee: str | None = Field(description="username of the consultant holding it")
    priority: TicketPriority
    sla_due_at: datetime | None
    sla_breached: bool = Field(description="past its due time without a first answer")
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    rating: int | None
    description: str


def ticket_out(ticket: Ticket | QueueTicket, assignee: str | None, now: datetime) -> TicketOut:
    assert ticket.id is not None
    return TicketOut(
        id=ticket.id,
        number=ticket.number,
        status=ticket.status,
        office=ticket.office_code,
        channel=ticket.channel,
        language=ticket.language,
        topic_id=ticket.topic_id,
        assignee=assignee,
        priority=ticket.priority,
        sla_due_at=ticket.sla_due_at,
        sla_breached=sla_breached(ticket, now),
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        first_response_at=ticket.first_response_at,
        resolved_at=ticket.resolved_at,
        rating=ticket.rating,
        description=ticket.description,
    )


def sla_breached(ticket: Ticket | QueueTicket, now: datetime) -> bool:
    if ticket.sla_due_at is None:
        return False
    answered = ticket.first_response_at
    return (answered or now) > ticket.sla_due_at and (
        answered is not None or ticket.status in ACTIVE_STATUSES
    )


class TicketsOut(BaseModel):
    items: list[TicketOut]


class AttachmentOut(BaseModel):
    kind: str
    name: str
    size: int | None
    mime: str | None


class ThreadMessageOut(BaseModel):
    id: int
    author: Literal["person", "consultant", "note", "bot"]
    staff: str | None = None
    text: str
    created_at: datetime
    delivery: Literal["none", "pending", "sent", "failed", "unconfirmed"]
    delivery_error: str | None = None
    attachment: AttachmentOut | None = Field(default=None, description="a file the person sent")


class TranscriptLineOut(BaseModel):
    id: int
    author: Literal["person", "bot", "consultant"]
    text: str
    created_at: datetime


class TicketEventOut(BaseModel):
    kind: str
    actor: str
    detail: dict[str, Any]
    created_at: datetime


class TicketDetailOut(TicketOut):
    messages: list[ThreadMessageOut]
    transcript: list[TranscriptLineOut]
    events: list[TicketEventOut]


class TextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_REPLY_CHARS, pattern=TEXT_PATTERN)


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    office: str = Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9\-]+$")
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS, pattern=TEXT_PATTERN)


async def ticket_detail(
    session: AsyncSession, actor: Actor, ticket_id: int, now: datetime
) -> TicketDetailOut:
    """The ticket with its thread, the bot transcript before it, and its history."""
    ticket = await service.get_ticket(session, actor, ticket_id)
    names: dict[int, str] = {}

    async def name(user_id: int | None) -> str | None:
        if user_id is None:
            return None
        if user_id not in names:
            user = await session.get(StaffUser, user_id)
            names[user_id] = user.username if user else "?"
        return names[user_id]

    base = ticket_out(ticket, await name(ticket.assignee_id), now)
    return TicketDetailOut(
        **base.model_dump(),
        messages=[
            ThreadMessageOut(
                id=m.id or 0,
                author=m.author.value,
                staff=await name(m.staff_user_id),
                text=m.text,
                created_at=m.created_at,
                delivery=m.delivery.value,
                delivery_error=m.delivery_error,
                attachment=_attachment_out(m.attachment),
            )
            for m in await service.thread(session, ticket)
        ],
        transcript=[
            TranscriptLineOut(id=m.id or 0, author=m.author.value, text=m.text, created_at=m.created_at)
            for m in await service.transcript(session, ticket)
        ],
        events=[
            TicketEventOut(kind=e.kind, actor=e.actor, detail=dict(e.detail), created_at=e.created_at)
            for e in await service.events(session, ticket)
        ],
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed in"},
    403: {"description": "the ticket belongs to another PID point, or the CSRF token is missing"},
    404: {"description": "no such ticket"},
}
STATE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    409: {"description": "someone else holds the ticket, or it is in the wrong state for this"},
}


@api.get("", response_model=TicketsOut, responses={401: ERRORS[401]})
async def list_tickets(
    staff: CurrentStaff,
    session: SessionDep,
    status: Annotated[list[TicketStatus] | None, Query(description="default: new, open, waiting")] = None,
    office: Annotated[
        str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9\-]+$", description="a PID code, or `none`")
    ] = None,
    assignee: Annotated[
        str | None, Query(max_length=64, pattern=r"^[^\x00-\x1f]+$", description="`me` or a username")
    ] = None,
) -> TicketsOut:
    """The tickets you may see, the earliest SLA due time first (at most 200)."""
    query = QueueFilter(
        statuses=tuple(status) if status else ACTIVE_STATUSES, office=office, assignee=assignee
    )
    rows = await service.list_tickets(session, actor_of(staff), query)
    now = utcnow()
    return TicketsOut(items=[ticket_out(row.ticket, row.assignee, now) for row in rows])


@api.get("/events", responses={401: ERRORS[401]}, response_class=StreamingResponse)
async def ticket_events(staff: CurrentStaff, request: Request, services: DeskDep) -> StreamingResponse:
    """Server-sent events: a `ticket` event for every change to a ticket you may see, as it happens."""
    actor = actor_of(staff)

    async def stream() -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        async for change in services.feed.changes():
            if await request.is_disconnected():
                break
            if change is None:
                yield ": still here\n\n"
                continue
            if _sees(actor, change):
                yield f"event: ticket\ndata: {json.dumps(asdict(change))}\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _sees(actor: Actor, change: TicketChange) -> bool:
    return actor.sees_every_office or change.office in (None, actor.office_code)


@api.post(
    "/next",
    response_model=TicketDetailOut,
    responses={**STATE_ERRORS, 404: {"description": "the queue is empty"}},
)
async def take_next(
    staff: CurrentStaff, request: Request, session: SessionDep, services: DeskDep
) -> TicketDetailOut:
    """Claim the most urgent unclaimed ticket you may take."""
    check_api_csrf(staff, request)
    actor = actor_of(staff)
    ticket = await service.take_next(session, actor)
    services.feed.announce(session, ticket, "claimed")
    assert ticket.id is not None
    return await ticket_detail(session, actor, ticket.id, utcnow())


@api.get("/{ticket_id:int}", response_model=TicketDetailOut, responses=ERRORS)
async def get_ticket(ticket_id: TicketId, staff: CurrentStaff, session: SessionDep) -> TicketDetailOut:
    """One ticket with its messages (delivery status included), the bot transcript and its history."""
    return await ticket_detail(session, actor_of(staff), ticket_id, utcnow())


@api.post("/{ticket_id:int}/claim", response_model=TicketOut, responses=STATE_ERRORS)
async def claim(
    ticket_id: TicketId,
    staff: CurrentStaff,
    request: Request,
    session: SessionDep,
    services: DeskDep,
    take_over: Annotated[bool, Query(description="supervisors: take it from whoever holds it")] = False,
) -> TicketOut:
    """Hold the ticket; 409 when another consultant holds it (unless a supervisor takes it over) or it is finished."""
    check_api_csrf(staff, request)
    actor = actor_of(staff)
    if take_over:
        ticket = await service.take_over(session, actor, ticket_id)
    else:
        ticket = await service.claim_ticket(session, actor, ticket_id)
    services.feed.announce(session, ticket, "claimed")
    return ticket_out(ticket, staff.username, utcnow())


@api.post(
    "/{ticket_id:int}/reply",
    response_model=ThreadMessageOut,
    responses={**STATE_ERRORS, 422: {"description": "empty or too long"}},
)
async def reply(
    ticket_id: TicketId,
    body: TextIn,
    staff: CurrentStaff,
    request: Request,
    session: SessionDep,
    services: DeskDep,
) -> ThreadMessageOut:
    """Answer the person (you must hold the ticket); delivered to their channel by the outbox."""
    check_api_csrf(staff, request)
    actor = actor_of(staff)
    ticket, recipient = await service.ticket_and_recipient(session, actor, ticket_id)
    message = await service.reply_to_person(session, actor, ticket_id, body.text, recipient=recipient)
    services.feed.announce(session, ticket, "replied", outbox=True)
    return _message_out(message, staff.username)


@api.post(
    "/{ticket_id:int}/note",
    response_model=ThreadMessageOut,
    responses={**ERRORS, 422: {"description": "empty or too long"}},
)
async def note(
    ticket_id: TicketId,
    body: TextIn,
    staff: CurrentStaff,
    request: Request,
    session: SessionDep,
    services: DeskDep,
) -> ThreadMessageOut:
    """An internal note on the ticket: colleagues see it, the person never does."""
    check_api_csrf(staff, request)
    message = await service.add_note(session, actor_of(staff), ticket_id, body.text)
    ticket = await service.get_ticket(session, actor_of(staff), ticket_id)
    services.feed.announce(session, ticket, "noted")
    return _message_out(message, staff.username)


@api.post(
    "/{ticket_id:int}/transfer",
    response_model=TicketOut,
    responses={**STATE_ERRORS, 404: {"description": "no such ticket or PID point"}},
)
async def transfer(
    ticket_id: TicketId,
    body: TransferIn,
    staff: CurrentStaff,
    request: Request,
    session: SessionDep,
    services: DeskDep,
) -> TicketOut:
    """Move the ticket to another PID point's queue, unclaimed, with a reason."""
    check_api_csrf(staff, request)
    ticket = await service.transfer_ticket(session, actor_of(staff), ticket_id, body.office, body.reason)
    services.feed.announce(session, ticket, "transferred")
    return ticket_out(ticket, None, utcnow())


@api.post("/{ticket_id:int}/resolve", response_model=TicketOut, responses=STATE_ERRORS)
async def resolve(
    ticket_id: TicketId, staff: CurrentStaff, request: Request, session: SessionDep, services: DeskDep
) -> TicketOut:
    """Mark the ticket resolved; the person is asked to rate the help (a reply within 7 days reopens it)."""
    check_api_csrf(staff, request)
    actor = actor_of(staff)
    ticket, recipient = await service.ticket_and_recipient(session, actor, ticket_id)
    ticket = await service.resolve_ticket(
        session,
        actor,
        ticket_id,
        recipient=recipient,
        notice=services.resolved_notice(ticket.language, ticket.number),
    )
    services.feed.announce(session, ticket, "resolved", outbox=True)
    holder = staff.username if ticket.assignee_id == actor.user_id else None
    return ticket_out(ticket, holder, utcnow())


@api.post(
    "/{ticket_id:int}/messages/{message_id:int}/resend",
    response_model=TicketOut,
    responses=STATE_ERRORS,
)
async def resend_message(
    ticket_id: TicketId,
    message_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    staff: CurrentStaff,
    request: Request,
    session: SessionDep,
    services: DeskDep,
) -> TicketOut:
    """Send a failed or unconfirmed reply again."""
    check_api_csrf(staff, request)
    actor = actor_of(staff)
    ticket = await service.get_ticket(session, actor, ticket_id)
    if message_id not in {m.id for m in await service.thread(session, ticket)}:
        raise service.UnknownTicket(f"ticket {ticket.number} has no message {message_id}")
    await resend(session, message_id)
    services.feed.announce(session, ticket, "resent", outbox=True)
    return ticket_out(ticket, None, utcnow())


@api.get("/{ticket_id:int}/suggestions", response_model=list[Suggestion], responses=ERRORS)
async def suggestions(
    ticket_id: TicketId, staff: CurrentStaff, session: SessionDep, services: DeskDep
) -> list[Suggestion]:
    """Knowledge-base answers that may fit this ticket, in the person's language (the NLU's top topics)."""
    ticket = await service.get_ticket(session, actor_of(staff), ticket_id)
    return await services.suggest(ticket.description, ticket.language)


@api.post(
    "/{ticket_id:int}/person-data",
    response_model=dict[str, Any],
    responses={**ERRORS, 404: {"description": "no such ticket, or nothing kept beyond the ticket itself"}},
)
async def person_data(
    ticket_id: TicketId, request: Request, staff: CurrentStaff, session: SessionDep
) -> dict[str, Any]:
    """Everything kept about the person behind this ticket (their conversation, its messages, their
    tickets), for a request to see one's data. A POST, because every export is written to the audit trail."""
    check_api_csrf(staff, request)
    _ticket, exported = await export_person_of_ticket(session, staff, ticket_id)
    return exported


async def export_person_of_ticket(
    session: AsyncSession, staff: Staff, ticket_id: int
) -> tuple[Ticket, dict[str, Any]]:
    """The export of the person behind a ticket the staff member may see, recorded in the audit trail."""
    ticket = await service.get_ticket(session, actor_of(staff), ticket_id)
    conversation = await session.get(Conversation, ticket.conversation_id) if ticket.conversation_id else None
    if conversation is None:
        raise NotFound(f"nothing is kept about the person of {ticket.number} beyond the ticket itself")
    await record_audit(
        session,
        actor=staff.user.username,
        action="export_person_data",
        object_type="ticket",
        object_id=ticket.number,
    )
    return ticket, await export_person(session, conversation)


def _attachment_out(stored: dict[str, str | int | None] | None) -> AttachmentOut | None:
    if not stored:
        return None
    size = stored.get("size")
    return AttachmentOut(
        kind=str(stored.get("kind") or "file"),
        name=str(stored.get("name") or "file"),
        size=size if isinstance(size, int) else None,
        mime=str(stored["mime"]) if stored.get("mime") else None,
    )


def _message_out(message: Any, username: str | None) -> ThreadMessageOut:
    return ThreadMessageOut(
        id=message.id or 0,
        author=message.author.value,
        staff=username,
        text=message.text,
        created_at=message.created_at,
        delivery=message.delivery.value,
        delivery_error=message.delivery_error,
    )
