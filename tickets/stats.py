"""The supervisors' numbers over whole days in Warsaw: tickets per PID point per day, SLA breaches,
first-response times, the bot's containment rate and the people's ratings.

Plain async functions, session first; they only read. Counting and summing happen in SQL (grouped by
point, and by day or hour); only first-response times are worked out row by row in Python, because
opening hours (with the holidays calendar) cannot be counted in SQL. Works on PostgreSQL and SQLite.

Definitions (the dashboard shows them too):
- A ticket belongs to the period when it was *created* in it, and to the point it is at now
  (a transferred ticket counts at its new point); the shared queue is office None.
- An SLA breach is a ticket whose first answer came after its due time, or that had no answer at its
  due time and was neither resolved nor closed before it (a ticket still waiting counts once its due
  time has passed).
- First response: from the ticket's creation to the consultant's first reply, for tickets answered so
  far; in the point's opening hours (the hours its SLA clock counts) and in wall-clock hours. Median
  and 90th percentile interpolate between the closest ranks, as PostgreSQL's percentile_cont does.
- Containment: of the conversations with at least one message in the period, the share that did not
  lead to a ticket; a conversation led to one when it has a ticket that was in play during the period
  (created in it, or created earlier and not yet resolved or closed when the period began).
- Ratings: the 1–5 ratings of the period's tickets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.sqltypes import UTCDateTime

from infoopt.core.clock import utcnow
from tickets.models import (
    CallOutcome,
    Conversation,
    ConversationMessage,
    PidOffice,
    Ticket,
    VoiceCall,
    WeeklyHours,
)
from tickets.offices import WARSAW, opening_time_between
from tickets.subscriptions import ChangeDeliveries, change_deliveries, subscriptions_per_topic

DEFAULT_DAYS = 30
# The office filter's value for the shared queue (tickets of no point), as in service.QueueFilter.
SHARED_QUEUE = "none"
RATINGS = (1, 2, 3, 4, 5)


@dataclass(frozen=True, slots=True)
class Period:
    """Whole days in Warsaw, from `first_day` to `last_day` inclusive."""

    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise ValueError(f"the period ends ({self.last_day}) before it begins ({self.first_day})")

    @classmethod
    def last_days(cls, days: int = DEFAULT_DAYS, *, now: datetime | None = None) -> Period:
        """The last `days` Warsaw days up to and including today."""
        if days < 1:
            raise ValueError("a period has at least one day")
        today = (now or utcnow()).astimezone(WARSAW).date()
        return cls(today - timedelta(days=days - 1), today)

    @property
    def since(self) -> datetime:
        """The period's first moment (midnight in Warsaw), in UTC."""
        return datetime.combine(self.first_day, time(), tzinfo=WARSAW).astimezone(UTC)

    @property
    def until(self) -> datetime:
        """The moment after the period (the next midnight in Warsaw), in UTC; not part of it."""
        return datetime.combine(self.last_day + timedelta(days=1), time(), tzinfo=WARSAW).astimezone(UTC)

    @property
    def days(self) -> list[date]:
        return [
            self.first_day + timedelta(days=offset)
            for offset in range((self.last_day - self.first_day).days + 1)
        ]


# --- conditions --------------------------------------------------------------------------------------


def _created_in(period: Period) -> ColumnElement[bool]:
    return and_(col(Ticket.created_at) >= period.since, col(Ticket.created_at) < period.until)


def _at_office(office: str | None) -> ColumnElement[bool]:
    """None: every point and the shared queue; SHARED_QUEUE: the shared queue only; else one point."""
    if office is None:
        return true()
    if office == SHARED_QUEUE:
        return col(Ticket.office_code).is_(None)
    return col(Ticket.office_code) == office


def _office_order(office: str | None) -> tuple[int, str]:
    return (1, "") if office is None else (0, office)


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind else "postgresql"


# --- tickets per point per day --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyTickets:
    """How many tickets a point got on each day of the period (in the order of Period.days)."""

    office: str | None
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)


def _warsaw_day(bucket: date | datetime | str) -> date:
    """The Warsaw day of a bucket: a day already (PostgreSQL) or a UTC hour (SQLite, "YYYY-MM-DD HH:00")."""
    if isinstance(bucket, str):
        bucket = datetime.strptime(bucket, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    if isinstance(bucket, datetime):
        return bucket.astimezone(WARSAW).date()
    return bucket


async def tickets_per_day(
    session: AsyncSession, period: Period, office: str | None = None
) -> list[DailyTickets]:
    """Tickets created per point per Warsaw day; only points with tickets, the shared queue last."""
    if _dialect(session) == "postgresql":
        # The Warsaw date of each timestamp, DST included.
        bucket: Any = func.date(func.timezone(WARSAW.key, col(Ticket.created_at)))
    else:
        # SQLite knows no time zones; Warsaw has always been a whole number of hours off UTC, so UTC
        # hours fold into Warsaw days exactly (at most 24 groups a day per point).
        bucket = func.strftime("%Y-%m-%d %H:00", col(Ticket.created_at))
    created = (
        select(col(Ticket.office_code).label("office"), bucket.label("bucket"))
        .where(_created_in(period), _at_office(office))
        .subquery()
    )
    rows = (
        await session.exec(
            select(created.c.office, created.c.bucket, func.count()).group_by(
                created.c.office, created.c.bucket
            )
        )
    ).all()
    position = {day: index for index, day in enumerate(period.days)}
    counts: dict[str | None, list[int]] = {}
    for code, raw, count in rows:
        day = _warsaw_day(raw)
        if day in position:
            counts.setdefault(code, [0] * len(position))[position[day]] += int(count)
    return [
        DailyTickets(code, tuple(values))
        for code, values in sorted(counts.items(), key=lambda item: _office_order(item[0]))
    ]


# --- SLA breaches ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfficeSla:
    """A point's tickets of the period and how many of them broke the SLA, and how."""

    office: str | None
    tickets: int
    answered_late: int  # the first answer came after the due time
    unanswered_late: int  # no answer at the due time, and not resolved or closed before it

    @property
    def breaches(self) -> int:
        return self.answered_late + self.unanswered_late

    @property
    def breach_rate(self) -> float | None:
        return self.breaches / self.tickets if self.tickets else None


async def sla_breaches(
    session: AsyncSession, period: Period, office: str | None = None, *, now: datetime | None = None
) -> list[OfficeSla]:
    """Per point (with tickets in the period, the shared queue last): tickets and SLA breaches."""
    now = now or utcnow()
    due, answered = col(Ticket.sla_due_at), col(Ticket.first_response_at)
    # An unanswered ticket's clock stops when it is resolved or closed; a ticket in play is measured now.
    stopped = func.coalesce(col(Ticket.resolved_at), col(Ticket.closed_at), literal(now, type_=UTCDateTime()))
    answered_late = func.sum(case((answered > due, 1), else_=0))
    unanswered_late = func.sum(case((and_(answered.is_(None), due < stopped), 1), else_=0))
    rows = (
        await session.exec(
            select(col(Ticket.office_code), func.count(), answered_late, unanswered_late)
            .where(_created_in(period), _at_office(office))
            .group_by(col(Ticket.office_code))
        )
    ).all()
    return sorted(
        (OfficeSla(code, int(count), int(late or 0), int(missed or 0)) for code, count, late, missed in rows),
        key=lambda row: _office_order(row.office),
    )


# --- first-response times -------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The value below which `fraction` of the values lie, interpolated between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Spread:
    """Median and 90th percentile, in hours (None when nothing was measured)."""

    median: float | None
    p90: float | None

    @classmethod
    def of(cls, hours: Sequence[float]) -> Spread:
        return cls(percentile(hours, 0.5), percentile(hours, 0.9))


@dataclass(frozen=True, slots=True)
class ResponseTimes:
    """First-response times of answered tickets."""

    answered: int
    opening_hours: Spread  # counted only while the point is open, as its SLA clock counts
    wall_clock_hours: Spread

    @classmethod
    def of(cls, durations: Sequence[tuple[float, float]]) -> ResponseTimes:
        """From (opening hours, wall-clock hours) per answered ticket."""
        return cls(
            len(durations),
            Spread.of([opening for opening, _wall in durations]),
            Spread.of([wall for _opening, wall in durations]),
        )


@dataclass(frozen=True, slots=True)
class FirstResponses:
    overall: ResponseTimes
    per_office: dict[str | None, ResponseTimes]  # points with answered tickets (None: the shared queue)

    def of_office(self, office: str | None) -> ResponseTimes:
        return self.per_office.get(office) or ResponseTimes.of([])


async def _office_hours(session: AsyncSession) -> dict[str, WeeklyHours | None]:
    return {office.code: office.hours for office in (await session.exec(select(PidOffice))).all()}


def _hours(amount: timedelta) -> float:
    return max(amount, timedelta()).total_seconds() / 3600


async def first_response_times(
    session: AsyncSession, period: Period, office: str | None = None
) -> FirstResponses:
    """How long the period's answered tickets waited for the first reply, overall and per point."""
    hours_of = await _office_hours(session)
    rows = (
        await session.exec(
            select(col(Ticket.office_code), col(Ticket.created_at), col(Ticket.first_response_at)).where(
                _created_in(period), _at_office(office), col(Ticket.first_response_at).is_not(None)
            )
        )
    ).all()
    per_office: dict[str | None, list[tuple[float, float]]] = {}
    for code, created, answered in rows:
        assert answered is not None
        # The same clock as the SLA: the point's hours; the shared queue and points without confirmed
        # hours count in the standard office hours (opening_time_between's default).
        opening = opening_time_between(hours_of.get(code) if code else None, created, answered)
        per_office.setdefault(code, []).append((_hours(opening), _hours(answered - created)))
    every = [duration for durations in per_office.values() for duration in durations]
    return FirstResponses(
        ResponseTimes.of(every), {code: ResponseTimes.of(durations) for code, durations in per_office.items()}
    )


# --- the bot's containment ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Containment:
    """Conversations with a message in the period, and how many of them led to a ticket."""

    conversations: int
    with_ticket: int

    @property
    def contained(self) -> int:
        return self.conversations - self.with_ticket

    @property
    def rate(self) -> float | None:
        """The share the bot handled alone (None without conversations)."""
        return self.contained / self.conversations if self.conversations else None


async def containment(session: AsyncSession, period: Period) -> Containment:
    """The bot's containment over every channel and point (a conversation has a point only once it
    becomes a ticket, so this number is the same whatever point the dashboard shows)."""
    message_in_period = exists().where(
        col(ConversationMessage.conversation_id) == col(Conversation.id),
        col(ConversationMessage.created_at) >= period.since,
        col(ConversationMessage.created_at) < period.until,
    )
    finished = func.coalesce(col(Ticket.resolved_at), col(Ticket.closed_at))
    ticket_in_play = exists().where(
        col(Ticket.conversation_id) == col(Conversation.id),
        col(Ticket.created_at) < period.until,
        or_(col(Ticket.created_at) >= period.since, finished.is_(None), finished >= period.since),
    )
    conversations, with_ticket = (
        await session.exec(
            select(func.count(), func.sum(case((ticket_in_play, 1), else_=0)))
            .select_from(Conversation)
            # last_message_at is indexed and never earlier than any message of the conversation.
            .where(col(Conversation.last_message_at) >= period.since, message_in_period)
        )
    ).one()
    return Containment(int(conversations), int(with_ticket or 0))


# --- ratings --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ratings:
    """How many of the period's tickets got each rating, 1 to 5 (counts[0] is for 1)."""

    counts: tuple[int, int, int, int, int]

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def average(self) -> float | None:
        if not self.total:
            return None
        return sum(rating * count for rating, count in zip(RATINGS, self.counts, strict=True)) / self.total


async def ratings(session: AsyncSession, period: Period, office: str | None = None) -> Ratings:
    rows = (
        await session.exec(
            select(col(Ticket.rating), func.count())
            .where(_created_in(period), _at_office(office), col(Ticket.rating).is_not(None))
            .group_by(col(Ticket.rating))
        )
    ).all()
    found = {int(rating): int(count) for rating, count in rows if rating in RATINGS}
    one, two, three, four, five = (found.get(rating, 0) for rating in RATINGS)
    return Ratings((one, two, three, four, five))


# --- everything at once ----------------------------------------------------------------------------------


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _spread_json(spread: Spread) -> dict[str, float | None]:
    return {"median": _round(spread.median), "p90": _round(spread.p90)}


def _times_json(times: ResponseTimes) -> dict[str, Any]:
    return {
        "answered": times.answered,
        "opening_hours": _spread_json(times.opening_hours),
        "wall_clock_hours": _spread_json(times.wall_clock_hours),
    }


@dataclass(frozen=True, slots=True)
class VoiceCalls:
    """The voice line's calls that ended in the period, by how they ended."""

    counts: dict[str, int]  # CallOutcome value -> calls
    average_seconds: float | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def voice_calls(session: AsyncSession, period: Period) -> VoiceCalls:
    """Calls per outcome (answered by the bot, transferred, callback, abandoned) and their average length."""
    rows = (
        await session.exec(
            select(VoiceCall.outcome, func.count(), func.avg(VoiceCall.duration_seconds))
            .where(col(VoiceCall.ended_at) >= period.since, col(VoiceCall.ended_at) < period.until)
            .group_by(col(VoiceCall.outcome))
        )
    ).all()
    counts = {outcome.value: 0 for outcome in CallOutcome}
    total_seconds = 0.0
    for outcome, count, average in rows:
        counts[CallOutcome(outcome).value] = int(count)
        total_seconds += float(average or 0) * int(count)
    calls = sum(counts.values())
    return VoiceCalls(counts, total_seconds / calls if calls else None)


@dataclass(frozen=True, slots=True)
class Alerts:
    """ "Tell me when this changes": who follows which topic now, and the period's messages about changes."""

    per_topic: Sequence[tuple[str, int]]  # active subscriptions, the most followed topic first
    deliveries: ChangeDeliveries  # messages about changes queued in the period, by what became of them

    @property
    def subscriptions(self) -> int:
        return sum(count for _topic, count in self.per_topic)


async def alerts(session: AsyncSession, period: Period) -> Alerts:
    return Alerts(
        await subscriptions_per_topic(session), await change_deliveries(session, since=period.since)
    )


@dataclass(frozen=True, slots=True)
class Dashboard:
    period: Period
    office: str | None  # the filter: None (every point), SHARED_QUEUE or a PID code
    offices: list[str | None]  # the rows of the per-point charts and tables, the shared queue last
    daily: list[DailyTickets]  # one per entry of `offices`
    sla: list[OfficeSla]  # one per entry of `offices`
    first_response: FirstResponses
    containment: Containment
    ratings: Ratings
    calls: VoiceCalls
    alerts: Alerts

    @property
    def tickets(self) -> int:
        return sum(row.tickets for row in self.sla)

    @property
    def breaches(self) -> int:
        return sum(row.breaches for row in self.sla)

    @property
    def breach_rate(self) -> float | None:
        return self.breaches / self.tickets if self.tickets else None

    @property
    def day_totals(self) -> list[int]:
        """Tickets per day over every point shown (in the order of Period.days)."""
        return [sum(day) for day in zip(*(row.counts for row in self.daily), strict=True)] or [
            0 for _day in self.period.days
        ]

    def as_json(self) -> dict[str, Any]:
        """The numbers as the charts (and /staff/dashboard/data) get them; hours rounded to 0.01."""
        return {
            "period": {
                "first_day": self.period.first_day.isoformat(),
                "last_day": self.period.last_day.isoformat(),
                "days": len(self.period.days),
                "time_zone": WARSAW.key,
            },
            "office": self.office,
            "days": [day.isoformat() for day in self.period.days],
            "offices": self.offices,
            "tickets": {
                "total": self.tickets,
                "per_day": [
                    {"office": row.office, "counts": list(row.counts), "total": row.total}
                    for row in self.daily
                ],
            },
            "sla": {
                "breaches": self.breaches,
                "breach_rate": _round(self.breach_rate, 4),
                "per_office": [
                    {
                        "office": row.office,
                        "tickets": row.tickets,
                        "answered_late": row.answered_late,
                        "unanswered_late": row.unanswered_late,
                        "breaches": row.breaches,
                    }
                    for row in self.sla
                ],
            },
            "first_response": {
                **_times_json(self.first_response.overall),
                "per_office": [
                    {"office": code, **_times_json(self.first_response.of_office(code))}
                    for code in self.offices
                ],
            },
            "containment": {
                "conversations": self.containment.conversations,
                "with_ticket": self.containment.with_ticket,
                "contained": self.containment.contained,
                "rate": _round(self.containment.rate, 4),
            },
            "calls": {
                "counts": self.calls.counts,
                "total": self.calls.total,
                "average_seconds": _round(self.calls.average_seconds),
            },
            "alerts": {
                "subscriptions": self.alerts.subscriptions,
                "per_topic": [{"topic_id": topic, "subscriptions": n} for topic, n in self.alerts.per_topic],
                "messages": {
                    "queued": self.alerts.deliveries.queued,
                    "delivered": self.alerts.deliveries.delivered,
                    "failed": self.alerts.deliveries.failed,
                    "unconfirmed": self.alerts.deliveries.unconfirmed,
                    "total": self.alerts.deliveries.total,
                },
            },
            "ratings": {
                "counts": {
                    str(rating): count for rating, count in zip(RATINGS, self.ratings.counts, strict=True)
                },
                "total": self.ratings.total,
                "average": _round(self.ratings.average),
            },
        }


async def _points(
    session: AsyncSession, office: str | None, with_tickets: set[str | None]
) -> list[str | None]:
    """The rows to show: the chosen point, or every active point, others with tickets, the shared queue."""
    if office == SHARED_QUEUE:
        return [None]
    if office is not None:
        return [office]
    active = set((await session.exec(select(PidOffice.code).where(col(PidOffice.active).is_(True)))).all())
    codes = sorted(active | {code for code in with_tickets if code is not None})
    return [*codes, None]


async def dashboard(
    session: AsyncSession, period: Period, office: str | None = None, *, now: datetime | None = None
) -> Dashboard:
    """Every number of the supervisors' dashboard for the period and the point (None: all)."""
    now = now or utcnow()
    daily = await tickets_per_day(session, period, office)
    sla = await sla_breaches(session, period, office, now=now)
    offices = await _points(session, office, {row.office for row in sla})
    daily_of = {row.office: row for row in daily}
    sla_of = {row.office: row for row in sla}
    empty = tuple(0 for _day in period.days)
    return Dashboard(
        period=period,
        office=office,
        offices=offices,
        daily=[daily_of.get(code) or DailyTickets(code, empty) for code in offices],
        sla=[sla_of.get(code) or OfficeSla(code, 0, 0, 0) for code in offices],
        first_response=await first_response_times(session, period, office),
        containment=await containment(session, period),
        ratings=await ratings(session, period, office),
        calls=await voice_calls(session, period),
        alerts=await alerts(session, period),
    )
