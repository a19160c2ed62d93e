"""Looking up a case for the person who owns it, and nobody else.

A lookup needs the case number and the date of birth. An unknown number and a wrong date give the same
outcome (NO_MATCH), so the answer never tells a guesser that a number exists. Failed attempts are
counted from the audit table (`case_lookup`) per conversation, per client address or phone number, and
per case number, over a day: past a limit every lookup is refused, even with the right answers, and a
new chat or a new session id does not reset the count, because the address and the case number still
match. A burst of failures across many case numbers raises an alarm (a log line and a metric).

Nothing here logs a case number, a date of birth or who asked.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import func
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cases.models import CaseLookup, CaseRecord, LookupOutcome
from cases.numbers import case_digits, case_key
from cases.service import birth_date_hash, keyed_hash
from infoopt.core.metrics import REGISTRY

log = logging.getLogger(__name__)

CASE_LOOKUPS = Counter(
    "infoopt_case_lookups_total", "Case status lookups by outcome", ["outcome"], registry=REGISTRY
)
CASE_LOOKUP_BURSTS = Counter(
    "infoopt_case_lookup_bursts_total",
    "Alarms: failed case lookups across many case numbers in a short time",
    registry=REGISTRY,
)
WINDOW = timedelta(days=1)
# The shortest digits of a case number (register, serial, year) that a spoken or keyed number may end in.
MIN_DIGITS = 9


@dataclass(frozen=True, slots=True)
class CaseLimits:
    """Failed lookups allowed in a day, and what counts as a burst worth an alarm."""

    per_conversation: int = 5
    per_origin: int = 10  # a client address or a phone number: many chats, one guesser
    per_case: int = 5  # one case number, whoever asks: a date of birth is not guessed in five tries
    burst_cases: int = 20  # distinct case numbers failing within burst_window, over all askers
    burst_window: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asks: the channel, the conversation, and the address or phone number it comes from."""

    channel: str
    person: str  # the conversation (channel:id)
    origin: str  # a client address, a phone number, or the conversation itself when there is neither


@dataclass(frozen=True, slots=True)
class LookupResult:
    outcome: LookupOutcome
    record: CaseRecord | None = None


def _case_ref(secret: str, number: str) -> str:
    """One reference per case whether it was given with its letters or by its digits alone."""
    return keyed_hash(secret, "case", case_digits(number) or number.upper())


async def _failures(session: AsyncSession, column: object, value: str, since: datetime) -> int:
    statement = (
        select(func.count())
        .select_from(CaseLookup)
        .where(column == value)
        .where(col(CaseLookup.outcome) == LookupOutcome.NO_MATCH)
        .where(col(CaseLookup.at) >= since)
    )
    return int((await session.exec(statement)).one())


async def _over_limit(
    session: AsyncSession, refs: tuple[str, str, str], limits: CaseLimits, now: datetime
) -> bool:
    person, origin, case = refs
    since = now - WINDOW
    checks = (
        (CaseLookup.person_ref, person, limits.per_conversation),
        (CaseLookup.origin_ref, origin, limits.per_origin),
        (CaseLookup.case_ref, case, limits.per_case),
    )
    for column, value, limit in checks:
        if await _failures(session, col(column), value, since) >= limit:
            return True
    return False


async def _candidates(session: AsyncSession, number: str) -> list[CaseRecord]:
    """The cases a number may mean: by its full form, or by its digits when it was given without its
    letters (a keypad, a hurried person, a caller who said "two" for the department's Roman II)."""
    key = case_key(number)
    if key is not None and any(char.isalpha() for char in key):
        found = (await session.exec(select(CaseRecord).where(CaseRecord.case_key == key))).all()
        if found:
            return list(found)
    digits = case_digits(number)
    if len(digits) < MIN_DIGITS:
        return []
    endings = [digits[start:] for start in range(len(digits) - MIN_DIGITS + 1)]
    statement = select(CaseRecord).where(col(CaseRecord.case_digits).in_(endings))
    return list((await session.exec(statement)).all())


async def lookup_case(
    session: AsyncSession,
    number: str,
    born: date,
    *,
    asker: Asker,
    secret: str,
    now: datetime,
    limits: CaseLimits | None = None,
) -> LookupResult:
    """The case with this number whose owner was born on this date — or NO_MATCH, or REFUSED when an
    attempt limit is reached. Every lookup is written to the audit table."""
    limits = limits or CaseLimits()
    refs = (
        keyed_hash(secret, "person", asker.person),
        keyed_hash(secret, "origin", asker.origin),
        _case_ref(secret, number),
    )
    if await _over_limit(session, refs, limits, now):
        result = LookupResult(LookupOutcome.REFUSED)
    else:
        fingerprint = birth_date_hash(secret, born)
        matches = [
            record
            for record in await _candidates(session, number)
            if hmac.compare_digest(record.birth_date_hash, fingerprint)
        ]
        # Two cases with the same digits and the same date of birth: the letters are needed to tell them
        # apart, so neither is shown.
        if len(matches) == 1:
            result = LookupResult(LookupOutcome.FOUND, matches[0])
        else:
            result = LookupResult(LookupOutcome.NO_MATCH)
    person_ref, origin_ref, case_ref = refs
    session.add(
        CaseLookup(
            at=now,
            channel=asker.channel[:16],
            outcome=result.outcome,
            person_ref=person_ref,
            origin_ref=origin_ref,
            case_ref=case_ref,
        )
    )
    await session.flush()
    CASE_LOOKUPS.labels(result.outcome.value).inc()
    if result.outcome is LookupOutcome.NO_MATCH:
        await _watch_for_bursts(session, limits, now)
    return result


@dataclass(frozen=True, slots=True)
class CaseDesk:
    """Case lookups under this installation's secret key and limits (what the conversation is given)."""

    secret: str
    limits: CaseLimits = CaseLimits()

    async def lookup(
        self, session: AsyncSession, number: str, born: date, *, asker: Asker, now: datetime
    ) -> LookupResult:
        return await lookup_case(
            session, number, born, asker=asker, secret=self.secret, now=now, limits=self.limits
        )


async def _watch_for_bursts(session: AsyncSession, limits: CaseLimits, now: datetime) -> None:
    """Raise the alarm when failures across many different case numbers pile up: someone is trying
    numbers from many addresses. Once as the threshold is reached, and again at each multiple of it."""
    statement = (
        select(func.count(func.distinct(CaseLookup.case_ref)))
        .where(col(CaseLookup.outcome) == LookupOutcome.NO_MATCH)
        .where(col(CaseLookup.at) >= now - limits.burst_window)
    )
    distinct = int((await session.exec(statement)).one())
    if distinct and distinct % limits.burst_cases == 0:
        CASE_LOOKUP_BURSTS.inc()
        log.warning(
            "cases.lookup_burst",
            extra={
                "distinct_cases_failed": distinct,
                "window_minutes": int(limits.burst_window.total_seconds() // 60),
            },
        )


async def purge_cases(session: AsyncSession, *, closed_before: date, lookups_before: datetime) -> int:
    """Delete case records closed before a date, and lookup audit rows older than a moment; how many
    case records went."""
    result = await session.exec(delete(CaseRecord).where(col(CaseRecord.closed_on) < closed_before))
    await session.exec(delete(CaseLookup).where(col(CaseLookup.at) < lookups_before))
    return int(result.rowcount or 0)
