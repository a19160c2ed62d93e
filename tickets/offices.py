"""The PID points' opening hours: open now or not, and when they open next.

Polish public holidays count as closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.errors import NotFound
from tickets.models import PidOffice, WeeklyHours

WARSAW = ZoneInfo("Europe/Warsaw")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=32)
def polish_public_holidays(year: int) -> frozenset[date]:
    """Statutory days off in Poland (ustawa o dniach wolnych od pracy); 24 December since 2025."""
    easter = easter_sunday(year)
    fixed = [(1, 1), (1, 6), (5, 1), (5, 3), (8, 15), (11, 1), (11, 11), (12, 25), (12, 26)]
    days = {date(year, month, day) for month, day in fixed}
    days |= {easter, easter + timedelta(days=1), easter + timedelta(days=49), easter + timedelta(days=60)}
    if year >= 2025:
        days.add(date(year, 12, 24))
    return frozenset(days)


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


class UnknownOffice(NotFound):
    """The code names no PID point."""

    code = "unknown_office"


async def get_office(session: AsyncSession, code: str) -> PidOffice:
    """The PID point with this code, or UnknownOffice."""
    office = (await session.exec(select(PidOffice).where(PidOffice.code == code))).first()
    if office is None:
        raise UnknownOffice(f"unknown office {code!r}")
    return office


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
