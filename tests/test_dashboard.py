"""The supervisors' dashboard: its numbers on crafted tickets (PostgreSQL and SQLite), who may see it,
the page's tables, and the charts drawn in Debian's Chromium."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import ConsoleMessage, Page, expect
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core import db
from infoopt.core.clock import utcnow
from infoopt.core.languages import Channel
from infoopt.staff.accounts import Role, StaffUser, create_user
from tests.conftest import DESK_PASSWORD, sign_in
from tickets import stats
from tickets.conversations import open_conversation, record_message
from tickets.models import Conversation, MessageAuthor, PidOffice, Ticket
from tickets.offices import WARSAW
from tickets.service import Actor, claim_ticket, open_ticket, rate_ticket, reply_to_person, resolve_ticket

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

# Monday 10 to Sunday 16 March 2025: no holiday, no DST change (that comes on 30 March).
PERIOD = stats.Period(date(2025, 3, 10), date(2025, 3, 16))
NOW = datetime(2025, 3, 16, 23, 50, tzinfo=WARSAW)


def warsaw(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    """A moment of March 2025 in Warsaw time (CET, UTC+1), as the UTC the tables store."""
    return datetime(2025, month, day, hour, minute, tzinfo=WARSAW).astimezone(UTC)


async def _ticket(
    session: AsyncSession, office: str | None, created: datetime, conversation: Conversation | None = None
) -> Ticket:
    return await open_ticket(
        session,
        conversation=conversation,
        channel=Channel.WEB,
        language="uk",
        office_code=office,
        description="Як змінити роботодавця?",
        now=created,
    )


async def _answer(session: AsyncSession, actor: Actor, ticket: Ticket, at: datetime) -> None:
    assert ticket.id is not None
    await claim_ticket(session, actor, ticket.id, now=at)
    await reply_to_person(session, actor, ticket.id, "Dzień dobry, odpowiadamy.", recipient=None, now=at)


async def _conversation(session: AsyncSession, external_id: str, at: datetime) -> Conversation:
    """A web chat with a question and the bot's answer at that moment."""
    conversation = await open_conversation(session, Channel.WEB, external_id, language="pl")
    for author, text in ((MessageAuthor.PERSON, "ile kosztuje karta pobytu"), (MessageAuthor.BOT, "340 zł")):
        message = await record_message(session, conversation, author=author, text=text)
        message.created_at = at
        session.add(message)
    conversation.last_message_at = at
    session.add(conversation)
    await session.flush()
    return conversation


async def craft(session: AsyncSession, actor: Actor) -> None:
    """Tickets and conversations around the week of PERIOD (expected numbers in `check`).

    TARNOW is open Mon–Fri 7:30–15:30, KRK-RONDO Mon 7:00–18:00 and Tue–Fri 7:30–15:30; the shared
    queue counts in the standard hours (Mon–Fri 7:30–15:30); the SLA is 8 opening hours everywhere.
    """
    chat_b = await _conversation(session, "dash-b", warsaw(10, 14))
    # a: TARNOW, Mon 8:00, answered Mon 10:00 (2 h open, 2 h clock), due Tue 8:00: kept; rated 5.
    a = await _ticket(session, "TARNOW", warsaw(10, 8))
    await _answer(session, actor, a, warsaw(10, 10))
    await rate_ticket(session, a, 5)
    # b: TARNOW, Mon 14:30, due Tue 14:30, answered Wed 9:30: late; 1 + 8 + 2 = 11 h open, 43 h clock.
    b = await _ticket(session, "TARNOW", warsaw(10, 14, 30), chat_b)
    await _answer(session, actor, b, warsaw(12, 9, 30))
    await rate_ticket(session, b, 2)
    # c: KRK-RONDO, Tue 9:00, due Wed 9:00, never answered: unanswered past due.
    await _ticket(session, "KRK-RONDO", warsaw(11, 9))
    # d: the shared queue, Thu 10:00, answered 11:00 (1 h both ways); rated 4.
    d = await _ticket(session, None, warsaw(13, 10))
    await _answer(session, actor, d, warsaw(13, 11))
    await rate_ticket(session, d, 4)
    # e: TARNOW, Fri 16:00 (closed), due Mon 17 March 15:30, after NOW: no breach yet.
    await _ticket(session, "TARNOW", warsaw(14, 16))
    # g: KRK-RONDO, Mon 0:30 in Warsaw (still Sunday in UTC), resolved unanswered at 8:00 before its
    # due time (15:00): no breach, and it counts on Monday.
    g = await _ticket(session, "KRK-RONDO", warsaw(10, 0, 30))
    assert g.id is not None
    await resolve_ticket(session, actor, g.id, recipient=None, notice=None, now=warsaw(10, 8))
    # h: the shared queue, Sunday 23:30 in Warsaw: the period's last day.
    await _ticket(session, None, warsaw(16, 23, 30))
    # Outside the period: Sunday 9 March 23:30 and Monday 17 March 0:30 in Warsaw (both 22:30/23:30 UTC).
    before = await _ticket(session, "TARNOW", warsaw(9, 23, 30))
    await rate_ticket(session, before, 1)
    await _ticket(session, "TARNOW", warsaw(17, 0, 30))

    # The bot: c1 answered alone; b's chat led to ticket b; c3 speaks only after the period;
    # c4's ticket was resolved before the period (so c4 was handled by the bot alone this week);
    # c5's ticket from before the period is still open; c6 spoke just before the period began.
    await _conversation(session, "dash-c1", warsaw(12, 10))
    await _conversation(session, "dash-c3", warsaw(20, 10))
    chat_4 = await _conversation(session, "dash-c4", warsaw(14, 12))
    old = await _ticket(session, "TARNOW", warsaw(3, 9), chat_4)
    assert old.id is not None
    await resolve_ticket(session, actor, old.id, recipient=None, notice=None, now=warsaw(4, 9))
    chat_5 = await _conversation(session, "dash-c5", warsaw(11, 15))
    await _ticket(session, "TARNOW", warsaw(5, 9), chat_5)
    await _conversation(session, "dash-c6", warsaw(9, 23, 30))


async def check(session: AsyncSession) -> None:
    every = await stats.dashboard(session, PERIOD, now=NOW)
    daily = {row.office: list(row.counts) for row in every.daily}
    assert daily["TARNOW"] == [2, 0, 0, 0, 1, 0, 0]
    assert daily["KRK-RONDO"] == [1, 1, 0, 0, 0, 0, 0]
    assert daily[None] == [0, 0, 0, 1, 0, 0, 1]
    assert daily["KRK-BASZTOWA"] == [0] * 7, "every active point is shown, with or without tickets"
    assert every.offices[-1] is None, "the shared queue comes last"
    assert every.day_totals == [3, 1, 0, 1, 1, 0, 1] and every.tickets == 7

    sla = {row.office: (row.tickets, row.answered_late, row.unanswered_late) for row in every.sla}
    assert sla["TARNOW"] == (3, 1, 0)
    assert sla["KRK-RONDO"] == (2, 0, 1)
    assert sla[None] == (2, 0, 0)
    assert every.breaches == 2

    overall = every.first_response.overall
    assert overall.answered == 3
    assert overall.opening_hours == stats.Spread(2.0, pytest.approx(9.2))  # 1, 2, 11 h
    assert overall.wall_clock_hours == stats.Spread(2.0, pytest.approx(34.8))  # 1, 2, 43 h
    tarnow = every.first_response.of_office("TARNOW")
    assert tarnow.answered == 2
    assert tarnow.opening_hours == stats.Spread(6.5, pytest.approx(10.1))
    assert tarnow.wall_clock_hours == stats.Spread(22.5, pytest.approx(38.9))
    assert every.first_response.of_office("KRK-RONDO").answered == 0

    assert every.containment == stats.Containment(conversations=4, with_ticket=2)
    assert every.containment.rate == 0.5
    assert every.ratings.counts == (0, 1, 0, 1, 1)
    assert every.ratings.average == pytest.approx(11 / 3)

    data = every.as_json()
    assert data["tickets"]["total"] == 7 and data["sla"]["breaches"] == 2
    assert data["days"][0] == "2025-03-10" and len(data["days"]) == 7
    assert data["first_response"]["opening_hours"] == {"median": 2.0, "p90": 9.2}
    assert data["containment"]["rate"] == 0.5
    assert data["ratings"] == {
        "counts": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1},
        "total": 3,
        "average": 3.67,
    }

    one = await stats.dashboard(session, PERIOD, "TARNOW", now=NOW)
    assert one.offices == ["TARNOW"] and one.tickets == 3 and one.breaches == 1
    assert one.first_response.overall.opening_hours.median == 6.5
    assert one.ratings.counts == (0, 1, 0, 0, 1) and one.ratings.average == 3.5
    assert one.containment == every.containment, "containment counts every point"

    shared = await stats.dashboard(session, PERIOD, stats.SHARED_QUEUE, now=NOW)
    assert shared.offices == [None] and shared.tickets == 2 and shared.breaches == 0
    assert shared.first_response.overall.wall_clock_hours.median == 1.0
    assert shared.ratings.counts == (0, 0, 0, 1, 0)

    # A week later, ticket e is past its due time too.
    later = await stats.sla_breaches(session, PERIOD, "TARNOW", now=NOW + timedelta(days=7))
    assert [(row.answered_late, row.unanswered_late) for row in later] == [(1, 1)]

    empty = await stats.dashboard(session, stats.Period(date(2025, 1, 6), date(2025, 1, 12)), now=NOW)
    assert empty.tickets == 0 and empty.breach_rate is None and empty.ratings.average is None
    assert empty.first_response.overall == stats.ResponseTimes(
        0, stats.Spread(None, None), stats.Spread(None, None)
    )
    assert empty.day_totals == [0] * 7


async def test_the_numbers_on_crafted_tickets(
    app_db: async_sessionmaker[AsyncSession], desk_staff: dict[str, str]
) -> None:
    async with app_db() as session:
        user = (await session.exec(select(StaffUser).where(StaffUser.username == "sylwia.supervisor"))).one()
        await craft(session, Actor.of(user))
        await check(session)


async def test_the_same_numbers_on_sqlite(sqlite_engine: AsyncEngine) -> None:
    async with db.transaction(db.session_factory(sqlite_engine)) as session:
        user = await create_user(
            session, username="sylwia.supervisor", password=DESK_PASSWORD, role=Role.SUPERVISOR
        )
        await craft(session, Actor.of(user))
    async with db.session_factory(sqlite_engine)() as session:
        await check(session)


def test_periods_are_whole_warsaw_days() -> None:
    period = stats.Period.last_days(7, now=datetime(2025, 3, 30, 22, 30, tzinfo=UTC))  # 31 March in Warsaw
    assert (period.first_day, period.last_day) == (date(2025, 3, 25), date(2025, 3, 31))
    assert period.since == datetime(2025, 3, 24, 23, 0, tzinfo=UTC), "CET before the change"
    assert period.until == datetime(2025, 3, 31, 22, 0, tzinfo=UTC), "CEST after it"
    assert len(stats.Period.last_days(now=NOW).days) == 30
    with pytest.raises(ValueError, match="at least one day"):
        stats.Period.last_days(0)
    assert stats.percentile([], 0.5) is None
    assert stats.percentile([3.0], 0.9) == 3.0
    assert stats.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5


# --- the pages ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/staff/dashboard", "/staff/dashboard/data?days=7"])
async def test_anonymous_visitors_are_sent_to_sign_in(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/staff/dashboard")


@pytest.mark.usefixtures("desk_staff")
@pytest.mark.parametrize("path", ["/staff/dashboard", "/staff/dashboard/data"])
async def test_consultants_are_refused(client: httpx.AsyncClient, path: str) -> None:
    await sign_in(client, "tomasz.tarnow", DESK_PASSWORD)
    response = await client.get(path)
    assert response.status_code == 403
    assert "This page is for another role" in response.text


POINT = "DASHBOARD-TEST"


def _cell(html: str, table: str, row: str, column: str) -> str:
    """The text of a `data-column` cell in the row `<tr data-…="row">` of the table with that id."""
    found = re.search(
        rf'<table id="{table}".*?<tr data-[a-z]+="{re.escape(row)}"[^>]*>(.*?)</tr>', html, re.S
    )
    assert found is not None, f"no row {row}"
    cell = re.search(rf'<td data-column="{column}">([^<]*)</td>', found.group(1))
    assert cell is not None, f"no column {column} in row {row}"
    return cell.group(1)


async def test_a_supervisor_sees_the_numbers_in_the_tables(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession], desk_staff: dict[str, str]
) -> None:
    now = utcnow()
    async with app_db() as session:
        # A point of this test's own (rolled back with it), so no other test's tickets can count here.
        session.add(
            PidOffice(
                code=POINT,
                name="Punkt testowy",
                town="Kraków",
                address="ul. Testowa 1, Kraków",
                hours={day: ["07:30", "15:30"] for day in ("mon", "tue", "wed", "thu", "fri")},
                ticket_prefix="DSH",
            )
        )
        await session.flush()
        user = (await session.exec(select(StaffUser).where(StaffUser.username == "sylwia.supervisor"))).one()
        actor = Actor.of(user)
        # Answered two hours later: within the SLA whatever the hours. Answered nine days later: late.
        quick = await _ticket(session, POINT, now - timedelta(days=10))
        await _answer(session, actor, quick, now - timedelta(days=10) + timedelta(hours=2))
        await rate_ticket(session, quick, 5)
        slow = await _ticket(session, POINT, now - timedelta(days=10))
        await _answer(session, actor, slow, now - timedelta(days=1))
        await rate_ticket(session, slow, 3)
        await _ticket(session, POINT, now - timedelta(days=10))  # never answered: past due
        await session.commit()

    await sign_in(client, "sylwia.supervisor", DESK_PASSWORD)
    page = await client.get("/staff/dashboard", params={"days": 30, "office": POINT})
    assert page.status_code == 200, page.text
    html = page.text
    assert "<h1>Supervisors&#39; dashboard</h1>" in html or "<h1>Supervisors' dashboard</h1>" in html
    assert re.search(r'id="stat-tickets">3<', html) and re.search(r'id="stat-breaches">2<', html)
    assert [
        _cell(html, "sla-table", POINT, column) for column in ("tickets", "answered_late", "unanswered_late")
    ] == [
        "3",
        "1",
        "1",
    ]
    assert _cell(html, "sla-table", POINT, "breaches") == "2"
    assert "⚠ Breached (66.7%)" in html, "breaches are marked in words, not only in colour"
    assert _cell(html, "response-table", POINT, "answered") == "2"
    assert "109.0 h by the clock" in html
    assert _cell(html, "response-table", POINT, "wall_median") == "109.0"  # (2 h + 216 h) / 2
    assert re.search(r'<tr data-rating="5"><th scope="row">5</th><td>1</td></tr>', html)
    assert re.search(r'<tr data-rating="3"><th scope="row">3</th><td>1</td></tr>', html)
    assert re.search(r'id="ratings-average">4.00<', html)
    for canvas in ("chart-tickets", "chart-sla", "chart-ratings"):
        assert f'<canvas id="{canvas}" role="img"' in html
    assert '<script src="/static/vendor/chart.umd.js"></script>' in html
    assert "<script>" not in html, "no inline script: the Content-Security-Policy forbids it"

    embedded = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', html, re.S)
    assert embedded is not None
    data = (await client.get("/staff/dashboard/data", params={"days": 30, "office": POINT})).json()
    assert data["sla"]["per_office"] == [
        {"office": POINT, "tickets": 3, "answered_late": 1, "unanswered_late": 1, "breaches": 2}
    ]
    assert data["ratings"]["counts"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}
    assert len(data["days"]) == 30 and data["office"] == POINT
    assert json.loads(embedded.group(1))["data"] == data, "the page's charts get the same numbers"

    polish = await client.get(
        "/staff/dashboard", params={"days": 30, "office": POINT}, headers={"Accept-Language": "pl"}
    )
    assert _cell(polish.text, "response-table", POINT, "wall_median") == "109,0", (
        "numbers as Polish writes them"
    )

    assert (await client.get("/staff/dashboard", params={"days": 8})).status_code == 422
    assert (await client.get("/staff/dashboard", params={"office": "NOWHERE"})).status_code == 404
    everything = await client.get("/staff/dashboard", params={"days": 7})
    assert everything.status_code == 200 and 'data-office="none"' in everything.text


async def test_admins_see_the_dashboard_too(
    client: httpx.AsyncClient, staff_accounts: dict[str, str]
) -> None:
    await sign_in(client, "anna.admin", staff_accounts["anna.admin"])
    response = await client.get("/staff/dashboard/data", params={"days": 90, "office": "none"})
    assert response.status_code == 200
    assert response.json()["offices"] == [None] and len(response.json()["days"]) == 90


# --- the browser --------------------------------------------------------------------------------------


@pytest.mark.browser
async def test_a_supervisor_sees_the_charts_drawn_without_console_errors(
    live_server: str, page: Page, pg_engine: AsyncEngine, desk_staff: dict[str, str]
) -> None:
    # The live server has its own connections: these tickets are committed, and deleted afterwards.
    ids: list[int] = []
    async with db.transaction(db.session_factory(pg_engine)) as session:
        for hours_ago, office in ((30, "TARNOW"), (54, "KRK-RONDO"), (3, "TARNOW"), (5, None)):
            ticket = await _ticket(session, office, utcnow() - timedelta(hours=hours_ago))
            assert ticket.id is not None
            ids.append(ticket.id)
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # The browser asks for /favicon.ico on its own and the app serves none (base.html names no icon):
        # that 404 is the layout's, not this page's.
        url = str(message.location.get("url", ""))
        if message.type == "error" and not url.endswith("/favicon.ico"):
            problems.append(f"{message.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        await page.emulate_media(reduced_motion="reduce")  # drawn at once, no animation to wait for
        await page.set_viewport_size({"width": 1280, "height": 900})
        await page.goto(f"{live_server}/staff/dashboard")
        await expect(page).to_have_url(f"{live_server}/login?next=/staff/dashboard")
        await page.fill("#username", "sylwia.supervisor")
        await page.fill("#password", desk_staff["sylwia.supervisor"])
        await page.click("button[type=submit]")
        await expect(page.locator("h1")).to_have_text("Supervisors' dashboard")

        for canvas_id in ("chart-tickets", "chart-sla", "chart-ratings"):
            canvas = page.locator(f"#{canvas_id}")
            await expect(canvas).to_be_visible()
            box = await canvas.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 100, (canvas_id, box)
            drawn = await page.evaluate(
                """(id) => {
                    const canvas = document.getElementById(id);
                    const chart = window.Chart && window.Chart.getChart(canvas);
                    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
                    let painted = 0;
                    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
                    return {chart: Boolean(chart), width: canvas.width, height: canvas.height, painted};
                }""",
                canvas_id,
            )
            assert drawn["chart"] and drawn["width"] > 0 and drawn["height"] > 0, (canvas_id, drawn)
            assert drawn["painted"] > 1000, f"{canvas_id} has axes and bars on it: {drawn}"
        bars = await page.evaluate(
            "() => Chart.getChart(document.getElementById('chart-tickets')).data.datasets"
            ".map((set) => set.data.reduce((a, b) => a + b, 0)).reduce((a, b) => a + b, 0)"
        )
        assert bars >= 4, "the tickets chart holds the committed tickets"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / "dashboard.png"
        await page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        assert problems == [], problems
    finally:
        async with db.transaction(db.session_factory(pg_engine)) as session:
            await session.exec(delete(Ticket).where(col(Ticket.id).in_(ids)))
