"""The consultants' workspace pages: the live queue and the ticket (thread, reply, note, transfer, resolve).

Server-rendered forms with the session's CSRF token. A rule that says no (someone else holds the
ticket, an empty reply) re-renders the page with the reason and with what the consultant typed still
in the box: nothing typed is ever lost.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from infoopt.core.clock import utcnow
from infoopt.core.deps import SessionDep
from infoopt.core.errors import DomainError
from infoopt.core.web import staff_text, templates
from infoopt.staff.accounts import Role, create_user, set_active, staff_list
from infoopt.staff.audit import record_audit
from infoopt.staff.auth import CurrentAdmin, CurrentStaff, Staff, check_csrf
from tickets import service
from tickets.models import ACTIVE_STATUSES, PidOffice, TicketStatus
from tickets.offices import (
    WARSAW,
    WEEKDAYS,
    InvalidOfficeSettings,
    active_offices,
    all_offices,
    get_office,
    parse_hours,
    update_office,
)
from tickets.outbox import resend
from tickets.routes import (
    DeskDep,
    FileUnavailable,
    actor_of,
    export_person_of_ticket,
    sla_breached,
    ticket_detail,
)
from tickets.service import QueueFilter

router = APIRouter(prefix="/staff", include_in_schema=False)

FORM_TEXT = Annotated[str, Form(max_length=20_000)]
STATUS_FILTERS = {
    "active": ACTIVE_STATUSES,
    "new": (TicketStatus.NEW,),
    "open": (TicketStatus.OPEN,),
    "waiting": (TicketStatus.WAITING,),
    "resolved": (TicketStatus.RESOLVED,),
    "closed": (TicketStatus.CLOSED,),
}


def _local(moment: datetime | None) -> str:
    return moment.astimezone(WARSAW).strftime("%d.%m %H:%M") if moment else "—"


def _due_words(request: Request, due: datetime | None, now: datetime) -> str:
    """How urgent, in words (never by colour alone): "in 3 h 10 min" or "overdue by 25 min"."""
    if due is None:
        return "—"
    minutes = int((due - now).total_seconds() // 60)
    span = abs(minutes)
    amount = f"{span // 60} h {span % 60} min" if span >= 60 else f"{span} min"
    if minutes < 0:
        return staff_text(request, "overdue by {amount}", amount=amount)
    return staff_text(request, "in {amount}", amount=amount)


def _queue_filter(status: str, office: str, assignee: str) -> QueueFilter:
    return QueueFilter(
        statuses=STATUS_FILTERS.get(status, ACTIVE_STATUSES),
        office=office or None,
        assignee=assignee or None,
    )


async def _queue_context(
    request: Request, staff: Staff, session: Any, status: str, office: str, assignee: str
) -> dict[str, Any]:
    now = utcnow()
    rows = await service.list_tickets(session, actor_of(staff), _queue_filter(status, office, assignee))
    return {
        "staff": staff,
        "rows": [
            {
                "ticket": row.ticket,
                "assignee": row.assignee,
                "due": _due_words(request, row.ticket.sla_due_at, now),
                "breached": sla_breached(row.ticket, now),
                "created": _local(row.ticket.created_at),
                "mine": row.ticket.assignee_id == staff.user.id,
            }
            for row in rows
        ],
        "filters": {"status": status, "office": office, "assignee": assignee},
        "offices": await active_offices(session),
        "statuses": list(STATUS_FILTERS),
    }


@router.get("/tickets", response_class=HTMLResponse)
async def queue(
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    status: Annotated[str, Query(max_length=16)] = "active",
    office: Annotated[str, Query(max_length=32)] = "",
    assignee: Annotated[str, Query(max_length=64)] = "",
    empty: Annotated[str, Query(max_length=1)] = "",
) -> Response:
    """The queue: the tickets you may see, the most urgent first, updating live."""
    context = await _queue_context(request, staff, session, status, office, assignee)
    context["empty"] = bool(empty)
    return templates.TemplateResponse(request, "queue.html", context)


@router.get("/tickets/rows", response_class=HTMLResponse)
async def queue_rows(
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    status: Annotated[str, Query(max_length=16)] = "active",
    office: Annotated[str, Query(max_length=32)] = "",
    assignee: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The queue's table body alone, for the page to refresh itself when a ticket changes."""
    context = await _queue_context(request, staff, session, status, office, assignee)
    return templates.TemplateResponse(request, "queue_rows.html", context)


@router.post("/tickets/next")
async def take_next(
    staff: CurrentStaff,
    session: SessionDep,
    desk: DeskDep,
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Claim the most urgent unclaimed ticket and open it."""
    check_csrf(staff, csrf_token)
    try:
        ticket = await service.take_next(session, actor_of(staff))
    except service.NothingToTake:
        return RedirectResponse("/staff/tickets?empty=1", status_code=303)
    desk.feed.announce(session, ticket, "claimed")
    return RedirectResponse(f"/staff/tickets/{ticket.id}", status_code=303)


async def _ticket_page(
    request: Request,
    staff: Staff,
    session: Any,
    desk: DeskDep,
    ticket_id: int,
    *,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    now = utcnow()
    actor = actor_of(staff)
    detail = await ticket_detail(session, actor, ticket_id, now)
    suggestions = await desk.suggest(detail.description, detail.language)
    offices = [office for office in await active_offices(session) if office.code != detail.office]
    return templates.TemplateResponse(
        request,
        "ticket.html",
        {
            "staff": staff,
            "ticket": detail,
            "holder": detail.assignee == staff.username,
            "active": detail.status in ACTIVE_STATUSES,
            "due": _due_words(request, detail.sla_due_at, now),
            "local": _local,
            "suggestions": suggestions,
            "offices": offices,
            "error": error,
            "typed": typed or {},
            "sent": request.query_params.get("sent", ""),
        },
        status_code=status_code,
    )


@router.get("/tickets/{ticket_id:int}", response_class=HTMLResponse)
async def ticket_page(
    ticket_id: int, request: Request, staff: CurrentStaff, session: SessionDep, desk: DeskDep
) -> Response:
    """One ticket: what the person asked, the bot conversation, the thread, and what to do next."""
    try:
        return await _ticket_page(request, staff, session, desk, ticket_id)
    except (service.UnknownTicket, service.OtherOffice) as error:
        return templates.TemplateResponse(
            request,
            "ticket_problem.html",
            {"staff": staff, "problem": str(error)},
            status_code=error.status_code,
        )


@router.get("/tickets/{ticket_id:int}/thread", response_class=HTMLResponse)
async def ticket_thread(
    ticket_id: int, request: Request, staff: CurrentStaff, session: SessionDep
) -> Response:
    """The thread alone, for the page to refresh it when the person writes or a delivery changes."""
    detail = await ticket_detail(session, actor_of(staff), ticket_id, utcnow())
    return templates.TemplateResponse(
        request, "ticket_thread.html", {"staff": staff, "ticket": detail, "local": _local}
    )


@router.get("/tickets/{ticket_id:int}/files/{message_id:int}")
async def ticket_file(
    ticket_id: int, message_id: int, staff: CurrentStaff, session: SessionDep, desk: DeskDep
) -> Response:
    """A file the person sent, fetched from their channel and handed over as a download (never shown
    inline: a file from outside is not trusted to be what it says)."""
    ticket = await service.get_ticket(session, actor_of(staff), ticket_id)
    message = next((m for m in await service.thread(session, ticket) if m.id == message_id), None)
    if message is None or not message.attachment or not message.attachment.get("file_id"):
        raise service.UnknownTicket(f"ticket {ticket.number} has no file in message {message_id}")
    source = desk.files.get(ticket.channel)
    if source is None:
        raise FileUnavailable(f"files from {ticket.channel.value} cannot be fetched here")
    content = await source.fetch(str(message.attachment["file_id"]))
    name = str(message.attachment.get("name") or f"file-{message_id}")
    return Response(
        content,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "Cache-Control": "no-store",
        },
    )


async def _act(
    request: Request,
    staff: Staff,
    session: Any,
    desk: DeskDep,
    ticket_id: int,
    csrf_token: str,
    work: Any,
    typed: dict[str, str],
) -> Response:
    """Run one action; on a rule saying no, the page again with the reason and the typed text kept."""
    check_csrf(staff, csrf_token)
    try:
        async with session.begin_nested():
            target = await work()
    except DomainError as error:
        return await _ticket_page(
            request,
            staff,
            session,
            desk,
            ticket_id,
            error=str(error),
            typed=typed,
            status_code=error.status_code,
        )
    return RedirectResponse(target, status_code=303)


@router.post("/tickets/{ticket_id:int}/claim")
async def claim(
    ticket_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    desk: DeskDep,
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    async def work() -> str:
        actor = actor_of(staff)
        claim_or_take = service.take_over if actor.sees_every_office else service.claim_ticket
        ticket = await claim_or_take(session, actor, ticket_id)
        desk.feed.announce(session, ticket, "claimed")
        return f"/staff/tickets/{ticket_id}"

    return await _act(request, staff, session, desk, ticket_id, csrf_token, work, {})


@router.post("/tickets/{ticket_id:int}/person-data")
async def person_data_download(
    ticket_id: int,
    staff: CurrentStaff,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The person's data as a JSON file to save, for their request to see it (the export is audited)."""
    check_csrf(staff, csrf_token)
    ticket, exported = await export_person_of_ticket(session, staff, ticket_id)
    return Response(
        json.dumps(exported, ensure_ascii=False, indent=2, default=str),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{ticket.number}-person-data.json"'},
    )


@router.post("/tickets/{ticket_id:int}/reply")
async def reply(
    ticket_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    desk: DeskDep,
    text: FORM_TEXT = "",
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    async def work() -> str:
        actor = actor_of(staff)
        ticket, recipient = await service.ticket_and_recipient(session, actor, ticket_id)
        message = await service.reply_to_person(session, actor, ticket_id, text, recipient=recipient)
        desk.feed.announce(session, ticket, "replied", outbox=True)
        return f"/staff/tickets/{ticket_id}?sent={message.id}"

    return await _act(request, staff, session, desk, ticket_id, csrf_token, work, {"reply": text})


@router.post("/tickets/{ticket_id:int}/note")
async def note(
    ticket_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    desk: DeskDep,
    text: FORM_TEXT = "",
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    async def work() -> str:
        await service.add_note(session, actor_of(staff), ticket_id, text)
        desk.feed.announce(session, await service.get_ticket(session, actor_of(staff), ticket_id), "noted")
        return f"/staff/tickets/{ticket_id}"

    return await _act(request, staff, session, desk, ticket_id, csrf_token, work, {"note": text})


@router.post("/tickets/{ticket_id:int}/transfer")
async def transfer(
    ticket_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    desk: DeskDep,
    office: Annotated[str, Form(max_length=32)] = "",
    reason: FORM_TEXT = "",
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    async def work() -> str:
        ticket = await service.transfer_ticket(session, actor_of(staff), ticket_id, office, reason)
        desk.feed.announce(session, ticket, "transferred")
        return "/staff/tickets"

    return await _act(request, staff, session, desk, ticket_id, csrf_token, work, {"reason": reason})


@router.post("/tickets/{ticket_id:int}/resolve")
async def resolve(
    ticket_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    desk: DeskDep,
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    async def work() -> str:
        actor = actor_of(staff)
        ticket, recipient = await service.ticket_and_recipient(session, actor, ticket_id)
        notice = desk.resolved_notice(ticket.language, ticket.number)
        ticket = await service.resolve_ticket(session, actor, ticket_id, recipient=recipient, notice=notice)
        desk.feed.announce(session, ticket, "resolved", outbox=True)
        return "/staff/tickets"

    return await _act(request, staff, session, desk, ticket_id, csrf_token, work, {})


@router.post("/tickets/{ticket_id:int}/messages/{message_id:int}/resend")
async def resend_message(
    ticket_id: int,
    message_id: int,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    desk: DeskDep,
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    async def work() -> str:
        ticket = await service.get_ticket(session, actor_of(staff), ticket_id)
        if message_id not in {m.id for m in await service.thread(session, ticket)}:
            raise service.UnknownTicket(f"ticket {ticket.number} has no message {message_id}")
        await resend(session, message_id)
        desk.feed.announce(session, ticket, "resent", outbox=True)
        return f"/staff/tickets/{ticket_id}"

    return await _act(request, staff, session, desk, ticket_id, csrf_token, work, {})


# --- admins: the PID points' hours and SLA ----------------------------------------------------------

admin = APIRouter(prefix="/admin", include_in_schema=False)


def _office_form(office: PidOffice) -> dict[str, Any]:
    hours = office.hours or {}
    return {
        "hours": {day: hours.get(day, ["", ""]) for day in WEEKDAYS},
        "unconfirmed": office.hours is None,
        "sla_hours": office.sla_hours,
        "ticket_prefix": office.ticket_prefix,
        "note": office.note or "",
        "active": office.active,
        "phone": office.phone or "",
    }


@admin.get("/offices", response_class=HTMLResponse)
async def offices_page(request: Request, staff: CurrentAdmin, session: SessionDep) -> Response:
    """The PID points with their hours, SLA and ticket prefixes."""
    offices = sorted(await all_offices(session), key=lambda office: office.code)
    return templates.TemplateResponse(request, "offices.html", {"staff": staff, "offices": offices})


@admin.get("/offices/{code}", response_class=HTMLResponse)
async def office_form(code: str, request: Request, staff: CurrentAdmin, session: SessionDep) -> Response:
    office = await get_office(session, code)
    return templates.TemplateResponse(
        request,
        "office_edit.html",
        {"staff": staff, "office": office, "form": _office_form(office), "weekdays": WEEKDAYS},
    )


@admin.post("/offices/{code}", response_class=HTMLResponse)
async def office_save(code: str, request: Request, staff: CurrentAdmin, session: SessionDep) -> Response:
    """Save a point's settings; a mistake shows the form again with what was typed and the reason."""
    form = await request.form()
    check_csrf(staff, str(form.get("csrf_token", "")))
    office = await get_office(session, code)
    spans = {
        day: (str(form.get(f"{day}_opens", ""))[:5], str(form.get(f"{day}_closes", ""))[:5])
        for day in WEEKDAYS
    }
    unconfirmed = form.get("unconfirmed") == "on"
    typed = {
        "hours": {day: list(spans[day]) for day in WEEKDAYS},
        "unconfirmed": unconfirmed,
        "sla_hours": str(form.get("sla_hours", ""))[:5],
        "ticket_prefix": str(form.get("ticket_prefix", ""))[:8],
        "note": str(form.get("note", ""))[:500],
        "active": form.get("active") == "on",
        "phone": str(form.get("phone", ""))[:32],
    }
    try:
        async with session.begin_nested():
            sla = str(typed["sla_hours"]).strip()
            if not sla.isdigit():
                raise InvalidOfficeSettings("the SLA is a whole number of opening hours, e.g. 8")
            await update_office(
                session,
                code,
                actor=staff.username,
                hours=None if unconfirmed else parse_hours(spans),
                sla_hours=int(sla),
                ticket_prefix=str(typed["ticket_prefix"]),
                note=str(typed["note"]),
                active=bool(typed["active"]),
                phone=str(typed["phone"]),
            )
    except InvalidOfficeSettings as error:
        return templates.TemplateResponse(
            request,
            "office_edit.html",
            {"staff": staff, "office": office, "form": typed, "weekdays": WEEKDAYS, "error": str(error)},
            status_code=422,
        )
    return RedirectResponse("/admin/offices?saved=" + code, status_code=303)


# --- admins: staff accounts -----------------------------------------------------------------------


class InvalidAccount(DomainError):
    status_code = 422
    code = "invalid_account"


class OwnAccount(DomainError):
    status_code = 409
    code = "own_account"


async def _users_page(
    request: Request,
    staff: Staff,
    session: Any,
    *,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return templates.TemplateResponse(
        request,
        "users.html",
        {
            "staff": staff,
            "users": await staff_list(session),
            "offices": sorted(await all_offices(session), key=lambda office: office.code),
            "roles": list(Role),
            "error": error,
            "typed": typed or {},
        },
        status_code=status_code,
    )


@admin.get("/users", response_class=HTMLResponse)
async def users_page(request: Request, staff: CurrentAdmin, session: SessionDep) -> Response:
    """Staff accounts: who works where, in which role; add one, switch one off."""
    return await _users_page(request, staff, session)


@admin.post("/users", response_class=HTMLResponse)
async def user_create(
    request: Request,
    staff: CurrentAdmin,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
    office: Annotated[str, Form(max_length=32)] = "",
    password: Annotated[str, Form(max_length=512)] = "",
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    check_csrf(staff, csrf_token)
    typed = {"username": username, "role": role, "office": office}
    try:
        async with session.begin_nested():
            if role not in {member.value for member in Role}:
                raise InvalidAccount("choose a role")
            if office:
                await get_office(session, office)
            if Role(role) is Role.CONSULTANT and not office:
                raise InvalidAccount("a consultant works at a point: choose one")
            user = await create_user(
                session, username=username, password=password, role=Role(role), office_code=office or None
            )
            await record_audit(
                session,
                actor=staff.username,
                action="user_created",
                object_type="staff_user",
                object_id=user.username,
                details={"role": role, "office": office or None},
            )
    except DomainError as error:
        return await _users_page(
            request, staff, session, error=str(error), typed=typed, status_code=error.status_code
        )
    return RedirectResponse("/admin/users", status_code=303)


@admin.post("/users/{username:path}/active", response_class=HTMLResponse)
async def user_active(
    username: str,
    request: Request,
    staff: CurrentAdmin,
    session: SessionDep,
    active: Annotated[str, Form(max_length=5)] = "",
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Switch an account on or off; switching off signs them out and returns their tickets to the queue."""
    check_csrf(staff, csrf_token)
    try:
        async with session.begin_nested():
            if username == staff.username:
                raise OwnAccount("you cannot switch off your own account")
            user = await set_active(session, username, active=active == "yes")
            released = 0
            if not user.active and user.id is not None:
                released = await service.release_tickets_of(session, user.id, actor=staff.username)
            await record_audit(
                session,
                actor=staff.username,
                action="user_enabled" if user.active else "user_disabled",
                object_type="staff_user",
                object_id=username,
                details={"tickets_released": released},
            )
    except DomainError as error:
        return await _users_page(request, staff, session, error=str(error), status_code=error.status_code)
    return RedirectResponse("/admin/users", status_code=303)
