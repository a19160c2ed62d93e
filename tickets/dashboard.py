"""The supervisors' dashboard: tickets per PID per day, SLA breaches, first-response time, the bot's
containment rate and ratings, as charts drawn by a charting library served from this app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from babel.numbers import format_decimal, format_percent
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow
from infoopt.core.deps import SessionDep
from infoopt.core.errors import DomainError
from infoopt.core.web import request_language, templates
from infoopt.staff.accounts import Role
from infoopt.staff.auth import Staff, require_roles
from tickets import stats
from tickets.offices import active_offices, get_office

router = APIRouter(prefix="/staff", include_in_schema=False)

PERIODS = (7, 30, 90)

CurrentSupervisor = Annotated[Staff, require_roles(Role.SUPERVISOR, Role.ADMIN)]
Days = Annotated[int, Query(description="7, 30 or 90 Warsaw days up to today")]
Office = Annotated[
    str | None,
    Query(max_length=32, description="a PID code, or 'none' for the shared queue; all when omitted"),
]


class UnknownPeriod(DomainError):
    status_code = 422
    code = "invalid_request"


async def _numbers(session: AsyncSession, days: int, office: str | None) -> stats.Dashboard:
    if days not in PERIODS:
        raise UnknownPeriod(f"days: use one of {', '.join(map(str, PERIODS))}")
    office = office or None  # the form's "every point" sends office=
    if office is not None and office != stats.SHARED_QUEUE:
        office = (await get_office(session, office)).code  # UnknownOffice (404) for a code of no point
    now = utcnow()
    return await stats.dashboard(session, stats.Period.last_days(days, now=now), office, now=now)


@dataclass(frozen=True, slots=True)
class Numbers:
    """Numbers as the staff member's language writes them ("1,5" in Polish, "1.5" in English)."""

    locale: str

    def count(self, value: int) -> str:
        return format_decimal(value, locale=self.locale)

    def hours(self, value: float | None) -> str:
        return "—" if value is None else format_decimal(value, format="#,##0.0", locale=self.locale)

    def average(self, value: float | None) -> str:
        return "—" if value is None else format_decimal(value, format="0.00", locale=self.locale)

    def percent(self, value: float | None) -> str:
        return "—" if value is None else format_percent(value, format="#,##0.0%", locale=self.locale)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(
    request: Request, session: SessionDep, staff: CurrentSupervisor, days: Days = 30, office: Office = None
) -> Response:
    """Headline numbers and charts, each chart with a table of the same numbers under it."""
    numbers = await _numbers(session, days, office)
    return templates.TemplateResponse(
        request,
        "dashboard.html",
        {
            "staff": staff,
            "board": numbers,
            "data": numbers.as_json(),
            "periods": PERIODS,
            "days": days,
            "offices": await active_offices(session),
            "shared_queue": stats.SHARED_QUEUE,
            "num": Numbers(request_language(request)),
        },
    )


@router.get("/dashboard/data")
async def dashboard_data(
    session: SessionDep, _staff: CurrentSupervisor, days: Days = 30, office: Office = None
) -> dict[str, Any]:
    """The dashboard's numbers as JSON (the same as the page's charts get)."""
    return (await _numbers(session, days, office)).as_json()
