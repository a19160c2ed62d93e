"""PID opening hours: weekdays, Polish public holidays, and when an office opens next."""

from __future__ import annotations

from datetime import date, datetime

from tickets.offices import WARSAW, is_open, next_opening, polish_public_holidays

RONDO = {"mon": ["07:00", "18:00"], **{d: ["07:30", "15:30"] for d in ("tue", "wed", "thu", "fri")}}


def test_movable_and_fixed_holidays_of_2026() -> None:
    holidays = polish_public_holidays(2026)
    assert date(2026, 4, 6) in holidays  # Easter Monday
    assert date(2026, 6, 4) in holidays  # Corpus Christi
    assert date(2026, 5, 24) in holidays  # Pentecost Sunday
    assert date(2026, 11, 11) in holidays
    assert date(2026, 12, 24) in holidays  # Christmas Eve is a day off since 2025
    assert date(2024, 12, 24) not in polish_public_holidays(2024)


def test_open_on_a_monday_evening_and_closed_on_tuesday_evening() -> None:
    assert is_open(RONDO, datetime(2026, 11, 23, 17, 30, tzinfo=WARSAW))
    assert not is_open(RONDO, datetime(2026, 11, 24, 17, 30, tzinfo=WARSAW))


def test_friday_after_hours_opens_next_on_monday_at_seven() -> None:
    friday_evening = datetime(2026, 11, 20, 16, 0, tzinfo=WARSAW)
    assert next_opening(RONDO, friday_evening) == datetime(2026, 11, 23, 7, 0, tzinfo=WARSAW)


def test_a_holiday_is_skipped() -> None:
    # 10 November 2026 is a Tuesday; 11 November (Wednesday) is Independence Day.
    evening = datetime(2026, 11, 10, 16, 0, tzinfo=WARSAW)
    assert next_opening(RONDO, evening) == datetime(2026, 11, 12, 7, 30, tzinfo=WARSAW)


def test_unknown_hours_promise_nothing() -> None:
    assert not is_open(None, datetime(2026, 11, 23, 9, 0, tzinfo=WARSAW))
    assert next_opening(None, datetime(2026, 11, 23, 9, 0, tzinfo=WARSAW)) is None


def test_a_moment_inside_opening_hours_is_its_own_next_opening() -> None:
    moment = datetime(2026, 11, 25, 10, 0, tzinfo=WARSAW)
    assert next_opening(RONDO, moment) == moment
