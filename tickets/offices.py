"""The PID points' opening hours: open now or not, when they open next, and SLA clocks that only run
while a point is open.

Polish public holidays count as closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow
from infoopt.core.errors import DomainError, NotFound
from infoopt.staff.audit import record_audit
from tickets.models import PidOffice, WeeklyHours

WARSAW = ZoneInfo("Europe/Warsaw")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@lru_cache(maxsize=32)
def polish_public_holidays(year: int) -> frozenset[date]:
    """Statutory days off in Poland, from the maintained `holidays` calendar (24 December since 2025)."""
    return frozenset(holidays.country_holidays("PL", years=year))


def opening_window(hours: WeeklyHours, day: date) -> tuple[datetime, datetime] | None:
    """The office's open interval on that day in Warsaw time, or None when it is closed all day."""
    if day in polish_public_holidays(day.year):
        return None
    span = hours.get(WEEKDAYS[day.weekday()])
    if not span:
        return None
    opens, closes = (time.fromisoformat(value) for value in span)
    return (
        datetime.combine(day, opens, tzinfo=WARSAW),
        datetime.combine(day, closes, tzinfo=WARSAW),
    )


def is_open(hours: WeeklyHours | None, at: datetime) -> bool:
    """Whether an office with these hours is open at that moment (unknown hours count as closed)."""
    if not hours:
        return False
    local = at.astimezone(WARSAW)
    window = opening_window(hours, local.date())
    return window is not None and window[0] <= local < window[1]


def next_opening(hours: WeeklyHours | None, after: datetime) -> datetime | None:
    """When the office is next open from that moment on (the moment itself if open); None if never."""
    if not hours:
        return None
    local = after.astimezone(WARSAW)
    for offset in range(0, 21):
        window = opening_window(hours, local.date() + timedelta(days=offset))
        if window is None:
            continue
        opens, closes = window
        if local < closes:
            return max(opens, local)
    return None


# The office's usual working hours: the clock for the shared queue and for points whose hours are still
# to be confirmed, so every ticket has a due time.
STANDARD_HOURS: WeeklyHours = {day: ["07:30", "15:30"] for day in WEEKDAYS[:5]}


def add_opening_hours(hours: WeeklyHours | None, start: datetime, amount: timedelta) -> datetime:
    """The moment `amount` of opening time has passed since `start` (only open hours count)."""
    hours = hours or STANDARD_HOURS
    local = start.astimezone(WARSAW)
    left = amount
    day = local.date()
    for _ in range(366):
        window = opening_window(hours, day)
        if window is not None:
            opens, closes = window
            begin = max(opens, local)
            if begin < closes:
                if begin + left <= closes:
                    return begin + left
                left -= closes - begin
        day += timedelta(days=1)
    raise ValueError("no opening hours within a year")


def opening_time_between(hours: WeeklyHours | None, start: datetime, end: datetime) -> timedelta:
    """How much opening time lies between two moments (for first-response times on the dashboard)."""
    hours = hours or STANDARD_HOURS
    total = timedelta()
    begin, finish = start.astimezone(WARSAW), end.astimezone(WARSAW)
    day = begin.date()
    while day <= finish.date():
        window = opening_window(hours, day)
        if window is not None:
            low, high = max(window[0], begin), min(window[1], finish)
            if low < high:
                total += high - low
        day += timedelta(days=1)
    return total


@dataclass(frozen=True, slots=True)
class OfficeDay:
    """An office as a person choosing it needs to see it: today's hours and when it next opens."""

    code: str
    town: str
    address: str
    today: tuple[datetime, datetime] | None  # None: closed today, or hours unknown
    open_now: bool
    next_opening: datetime | None
    confirmed: bool  # False: hours or the point itself still to be confirmed with INFO.OPT
    note: str | None


# A town named without a street goes to its main point: Kraków's is the Foreigners' Department.
TOWN_POINTS = {"KRAKOW": "KRK-RONDO"}


def nearest_office(town: str | None) -> str | None:
    """The PID code for a town entity (a PID code already, or a town such as KRAKOW); None if unknown."""
    if not town:
        return None
    return TOWN_POINTS.get(town, town)


class UnknownOffice(NotFound):
    """The code names no PID point."""

    code = "unknown_office"


async def get_office(session: AsyncSession, code: str) -> PidOffice:
    """The PID point with this code, or UnknownOffice."""
    office = (await session.exec(select(PidOffice).where(PidOffice.code == code))).first()
    if office is None:
        raise UnknownOffice(f"unknown office {code!r}")
    return office


async def all_offices(session: AsyncSession) -> list[PidOffice]:
    return list((await session.exec(select(PidOffice))).all())


async def active_offices(session: AsyncSession) -> list[PidOffice]:
    """The PID points people can choose, confirmed ones first, then by town and code."""
    offices = (await session.exec(select(PidOffice).where(col(PidOffice.active).is_(True)))).all()
    return sorted(
        offices, key=lambda office: (office.note is not None or not office.hours, office.town, office.code)
    )


def office_day(office: PidOffice, now: datetime) -> OfficeDay:
    local = now.astimezone(WARSAW)
    return OfficeDay(
        code=office.code,
        town=office.town,
        address=office.address,
        today=opening_window(office.hours, local.date()) if office.hours else None,
        open_now=is_open(office.hours, now),
        next_opening=next_opening(office.hours, now),
        confirmed=bool(office.hours) and office.note is None,
        note=office.note,
    )


class InvalidOfficeSettings(DomainError):
    status_code = 422
    code = "invalid_office_settings"


_CLOCK = re.compile(r"\d{1,2}:\d{2}")
_PHONE = re.compile(r"\+\d{8,15}")


def parse_hours(spans: dict[str, tuple[str, str]]) -> WeeklyHours:
    """Weekday -> (opens, closes) as typed ("7:30", "15:30"); an empty pair is a closed day."""
    hours: WeeklyHours = {}
    for day in WEEKDAYS:
        opens, closes = (value.strip() for value in spans.get(day, ("", "")))
        if not opens and not closes:
            continue
        try:
            if not (_CLOCK.fullmatch(opens) and _CLOCK.fullmatch(closes)):
                raise ValueError(f"{opens!r}-{closes!r}")
            start, end = time.fromisoformat(opens.zfill(5)), time.fromisoformat(closes.zfill(5))
        except ValueError as error:
            raise InvalidOfficeSettings(f"{day}: write the hours as HH:MM, e.g. 7:30 and 15:30") from error
        if start >= end:
            raise InvalidOfficeSettings(f"{day}: the point must open before it closes")
        hours[day] = [start.strftime("%H:%M"), end.strftime("%H:%M")]
    return hours


async def update_office(
    session: AsyncSession,
    code: str,
    *,
    actor: str,
    hours: WeeklyHours | None,
    sla_hours: int,
    ticket_prefix: str,
    note: str | None,
    active: bool,
    phone: str | None = None,
) -> PidOffice:
    """An admin's change to a point's hours, SLA, ticket prefix, note or availability; audited."""
    office = await get_office(session, code)
    if not 1 <= sla_hours <= 200:
        raise InvalidOfficeSettings("the SLA is between 1 and 200 opening hours")
    prefix = ticket_prefix.strip().upper()
    if not (2 <= len(prefix) <= 8 and prefix.isalnum() and prefix.isascii()):
        raise InvalidOfficeSettings("the ticket prefix is 2 to 8 letters or digits, e.g. TAR")
    if hours is not None and not hours:
        raise InvalidOfficeSettings("give at least one open day, or mark the hours as still to be confirmed")
    phone = (phone or "").replace(" ", "").strip() or None
    if phone is not None and not _PHONE.fullmatch(phone):
        raise InvalidOfficeSettings("write the transfer number with the country code, e.g. +48122102020")
    before = {
        "hours": office.hours,
        "sla_hours": office.sla_hours,
        "ticket_prefix": office.ticket_prefix,
        "note": office.note,
        "active": office.active,
        "phone": office.phone,
    }
    office.hours, office.sla_hours, office.ticket_prefix = hours, sla_hours, prefix
    office.note = (note or "").strip()[:500] or None
    office.active = active
    office.phone = phone
    office.updated_at = utcnow()
    session.add(office)
    after = {
        "hours": office.hours,
        "sla_hours": office.sla_hours,
        "ticket_prefix": office.ticket_prefix,
        "note": office.note,
        "active": office.active,
        "phone": office.phone,
    }
    changed: dict[str, object] = {
        key: {"from": before[key], "to": after[key]} for key in after if before[key] != after[key]
    }
    await record_audit(
        session,
        actor=actor,
        action="office_updated",
        object_type="pid_office",
        object_id=code,
        details=changed,
    )
    await session.flush()
    return office
