"""WCAG 2.1 AA in Debian's Chromium (issue 17): axe-core on every page and state that matters, reflow at
320 px, reduced motion, keyboard-only walks through the chat and the consultants' desk, and the
accessibility statement in Polish and English.

axe-core comes from the npm registry, pinned in tests/a11y/package-lock.json; scripts/test.sh installs it
once into ~/.cache/infoopt/ and names the file in INFOOPT_TEST_AXE (unset: these tests fail, as every test
of a missing service does). The tests put it into each page from that local file: nothing is downloaded
while they run. Every run asks for ZERO violations of the WCAG 2.0 and 2.1 A and AA rules, and of axe's
rules for landmarks and headings in order.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import accessibility
from infoopt.core import db
from infoopt.core.clock import utcnow
from infoopt.core.languages import Channel
from infoopt.core.settings import Settings
from infoopt.staff.accounts import Role, StaffUser, create_user
from knowledge_base import service as kb
from knowledge_base.backlog import record_failure
from knowledge_base.models import FailureKind
from tests.conftest import CHROMIUM_ARGS, required_env
from tickets import service as tickets

pytestmark = pytest.mark.browser

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
NARROW = {"width": 320, "height": 640}  # WCAG 1.4.10: 1280 px at 400 % zoom
DESKTOP = {"width": 1280, "height": 900}
OFFICE = "KRK-BASZTOWA"  # a point whose queue no other browser test reads
CONSULTANT, SUPERVISOR, ADMIN = "ala.a11y", "olek.a11y", "ewa.a11y"
PASSWORD = "Accessible-pass-2026"

# Beyond the WCAG-tagged rules, axe's best-practice rules for what issue 17 names: landmarks, headings in order.
STRUCTURE_RULES = [
    "region",
    "landmark-one-main",
    "landmark-unique",
    "landmark-no-duplicate-banner",
    "landmark-no-duplicate-contentinfo",
    "landmark-no-duplicate-main",
    "landmark-banner-is-top-level",
    "landmark-contentinfo-is-top-level",
    "landmark-main-is-top-level",
    "page-has-heading-one",
    "heading-order",
    "empty-heading",
    "skip-link",
]

AXE_RUN = """async ([tags, extra]) => {
  const rules = Object.fromEntries(extra.map((rule) => [rule, { enabled: true }]));
  const result = await axe.run(document, { runOnly: { type: "tag", values: tags }, rules, resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 6).map((n) => n.target.join(" ") + " :: " + (n.failureSummary || "").replace(/\\s+/g, " ")),
  }));
}"""

# What shows where the keyboard is: an outline (or a ring) of at least 2 px on the focused element.
FOCUS_SHOWN = """() => {
  const node = document.activeElement;
  if (!node || node === document.body) return "nothing focused";
  const style = getComputedStyle(node);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
  return outline || style.boxShadow !== "none" ? "" : node.outerHTML.slice(0, 120);
}"""


# The outermost elements that stick out of the screen (their parent fits), to name in a failure.
TOO_WIDE = """() => {
  const edge = document.documentElement.clientWidth, found = [];
  for (const node of document.body.querySelectorAll("*")) {
    const parent = node.parentElement;
    if (node.getBoundingClientRect().right > edge + 0.5 && parent.getBoundingClientRect().right <= edge + 0.5) {
      found.push(node.tagName.toLowerCase() + (node.id ? "#" + node.id : "") + (node.className ? "." + String(node.className).split(" ").join(".") : ""));
    }
  }
  return found.slice(0, 6);
}"""


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe.min.js installed from the npm registry by scripts/test.sh (never fetched by the tests)."""
    path = Path(required_env("INFOOPT_TEST_AXE"))
    if not path.is_file():
        pytest.fail(f"INFOOPT_TEST_AXE={path} is not a file: run ./scripts/test.sh, which installs axe-core")
    return path


@pytest.fixture(scope="module")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    """One Chromium for the module (a launch per test would cost more than the checks)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile in English (the staff pages follow Accept-Language). The pages' CSP allows
    scripts from the site only; it is bypassed so that axe can be put in from the local file (the other
    browser tests run the same pages with the CSP on)."""
    fresh = await browser.new_context(viewport=DESKTOP, locale="en-GB", bypass_csp=True)
    try:
        yield fresh
    finally:
        await fresh.close()


@pytest.fixture(scope="module")
async def a11y_staff(pg_engine: AsyncEngine, synced_kb: None) -> dict[str, StaffUser]:
    """A consultant at OFFICE, a supervisor and an admin of this module's own (password PASSWORD)."""
    accounts = {
        CONSULTANT: (Role.CONSULTANT, OFFICE),
        SUPERVISOR: (Role.SUPERVISOR, None),
        ADMIN: (Role.ADMIN, None),
    }
    users = {}
    async with db.transaction(db.session_factory(pg_engine)) as session:
        for username, (role, office) in accounts.items():
            users[username] = await create_user(
                session, username=username, password=PASSWORD, role=role, office_code=office
            )
    return users


@pytest.fixture(scope="module")
async def desk(pg_engine: AsyncEngine, a11y_staff: dict[str, StaffUser]) -> AsyncIterator[dict[str, int]]:
    """Tickets at OFFICE: one past its SLA, one held by the consultant with a note; a draft revision of
    an article (for the diff) and failures in the backlog. The draft is withdrawn after the module."""
    actor = tickets.Actor.of(a11y_staff[CONSULTANT])
    sessions = db.session_factory(pg_engine)
    async with db.transaction(sessions) as session:
        late = await tickets.open_ticket(
            session,
            conversation=None,
            channel=Channel.WEB,
            language="uk",
            office_code=OFFICE,
            description="Чи можу я поїхати до Львова, поки триває моя справа?",
            now=utcnow() - timedelta(days=6),
        )
        held = await tickets.open_ticket(
            session,
            conversation=None,
            channel=Channel.WEB,
            language="en",
            office_code=OFFICE,
            description="How much is the fee for a temporary residence card?",
        )
        assert late.id is not None and held.id is not None
        await tickets.claim_ticket(session, actor, held.id)
        await tickets.add_note(session, actor, held.id, "Asked the Tarnów point about the fee too.")
        for text in ("gdzie zaparkować przy urzędzie", "gdzie parking przy urzędzie wojewódzkim"):
            await record_failure(session, kind=FailureKind.FALLBACK, text=text, language="pl")
        published = await kb.get_published(session, "fees", "en")
        assert published is not None
        document = replace(published.document(), short_answer=published.short_answer + " (Checked again.)")
        draft = await kb.create_draft(session, document, actor=ADMIN, note="accessibility test draft")
        assert draft.id is not None
    yield {"late": late.id, "held": held.id, "draft": draft.id, "published": published.revision_id}
    async with db.transaction(sessions) as session:
        await kb.archive_revision(session, draft.id, actor=ADMIN, note="accessibility test done")


async def violations(page: Page, axe: Path, where: str) -> list[str]:
    """axe-core's WCAG 2.0/2.1 A and AA rules on the page as it is now, one line per rule broken."""
    # A reply fading in is half transparent for a moment: judge the colours once it has arrived.
    await page.wait_for_function("document.getAnimations().every((a) => a.playState !== 'running')")
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(axe))
    found = await page.evaluate(AXE_RUN, [WCAG_TAGS, STRUCTURE_RULES])
    return [
        f"{where}: {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in found
    ]


async def sideways_scroll(page: Page, where: str) -> list[str]:
    """At 320 px wide nothing may scroll sideways (a wide table scrolls inside its own region)."""
    size = page.viewport_size
    await page.set_viewport_size(NARROW)
    width = await page.evaluate("document.documentElement.scrollWidth")
    wide = await page.evaluate(TOO_WIDE) if width > NARROW["width"] else []
    if size:
        await page.set_viewport_size(size)
    if width <= NARROW["width"]:
        return []
    return [f"{where}: {width} px wide on a {NARROW['width']} px screen; too wide: {', '.join(wide)}"]


class Audit:
    """What every checked page broke, gathered so that one run names all of it."""

    def __init__(self, axe: Path) -> None:
        self.axe = axe
        self.problems: list[str] = []

    async def check(self, page: Page, where: str) -> None:
        """axe at the page's width, then the reflow at 320 px."""
        self.problems += await violations(page, self.axe, where)
        self.problems += await sideways_scroll(page, where)

    def assert_clean(self) -> None:
        assert self.problems == [], f"{len(self.problems)} problems:\n" + "\n".join(self.problems)


async def sign_in(context: BrowserContext, live_server: str, username: str) -> Page:
    """A new page of the context, signed in through the form."""
    page = await context.new_page()
    await page.goto(f"{live_server}/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")
    await page.wait_for_url(re.compile(r"/(staff/tickets|admin/kb)$"))
    return page


async def last_reply(page: Page, kind: str) -> Locator:
    """The bot's latest reply, once it is of this kind."""
    reply = page.locator("li.bot").last
    await expect(reply).to_have_attribute("data-kind", kind)
    return reply


# --- axe on every page and state -------------------------------------------------------------------


async def test_the_chat_in_every_state_has_no_violations(
    live_server: str, context: BrowserContext, axe_script: Path
) -> None:
    audit = Audit(axe_script)
    page = await context.new_page()
    await page.goto(f"{live_server}/chat")
    await expect(page.locator("#examples button")).to_have_count(3)
    await audit.check(page, "chat, empty")

    await page.select_option("#language", "pl")
    await page.fill("#text", "ile kosztuje karta pobytu i na jakie konto zapłacić")
    await page.press("#text", "Enter")
    answer = await last_reply(page, "answer")
    await audit.check(page, "chat, an answer")
    await answer.locator("button[data-action=full_answer]").click()
    await last_reply(page, "full_answer")
    await audit.check(page, "chat, the full answer")

    await page.select_option("#language", "uk")
    await page.fill("#text", "робота і штамп")
    await page.press("#text", "Enter")
    await last_reply(page, "clarify")
    await expect(page.locator("html")).to_have_attribute("lang", "uk")
    await audit.check(page, "chat in Ukrainian, a clarification")

    await page.select_option("#language", "en")
    await page.locator("li.bot").last.locator("button[data-action=consultant]").click()
    offices = page.locator("li.bot").last.locator("button[data-action=choose_office]")
    await expect(offices.first).to_be_visible()
    await audit.check(page, "chat, handoff: the points")
    await page.locator("li.bot").last.locator(f'button[data-value="{OFFICE}"]').click()
    await expect(page.locator("li.bot").last).to_contain_text("Describe your question")
    await page.fill("#text", "Which documents do I bring to the fingerprints appointment?")
    await page.press("#text", "Enter")
    consent = page.locator("li.bot").last.locator("button[data-action=consent]")
    await expect(consent.first).to_be_visible()
    await audit.check(page, "chat, handoff: consent")
    await consent.and_(page.locator('[data-value="yes"]')).click()
    handed = page.locator("li.bot.handoff").last
    await expect(handed).to_have_attribute("data-ticket", re.compile(r"^KRK-\d{4}-\d{6}$"))
    await audit.check(page, "chat, handoff: the ticket number")
    audit.assert_clean()


async def test_the_staff_pages_have_no_violations(
    live_server: str, context: BrowserContext, axe_script: Path, desk: dict[str, int]
) -> None:
    audit = Audit(axe_script)
    anonymous = await context.new_page()
    await anonymous.goto(f"{live_server}/login")
    await audit.check(anonymous, "sign-in")
    await anonymous.fill("#username", CONSULTANT)
    await anonymous.fill("#password", "not the password")
    await anonymous.press("#password", "Enter")
    await expect(anonymous.locator(".errors")).to_be_visible()
    await audit.check(anonymous, "sign-in, wrong password")
    await anonymous.close()

    consultant = await sign_in(context, live_server, CONSULTANT)
    await expect(consultant.locator(f'tr[data-ticket="{desk["late"]}"]')).to_be_visible()
    await audit.check(consultant, "the queue")
    await consultant.goto(f"{live_server}/staff/tickets/{desk['held']}")
    await audit.check(consultant, "a ticket held by the consultant")
    await consultant.goto(f"{live_server}/staff/tickets/{desk['late']}")
    await audit.check(consultant, "a ticket past its SLA")
    await consultant.goto(f"{live_server}/admin/kb")
    await audit.check(consultant, "not allowed")
    await consultant.goto(f"{live_server}/admin/kb-search?q=karta")
    await audit.check(consultant, "search answers")
    await consultant.close()

    await context.clear_cookies()
    supervisor = await sign_in(context, live_server, SUPERVISOR)
    await supervisor.goto(f"{live_server}/staff/dashboard")
    await audit.check(supervisor, "the dashboard")
    await supervisor.close()

    await context.clear_cookies()
    admin = await sign_in(context, live_server, ADMIN)
    pages = {
        "the knowledge base": "/admin/kb",
        "an article": "/admin/kb/fees/en",
        "the editor": f"/admin/kb/fees/en/edit?revision={desk['draft']}",
        "the diff": f"/admin/kb/fees/en/diff?from={desk['published']}&to={desk['draft']}",
        "the backlog": "/admin/kb-backlog",
        "the audit trail": "/admin/audit",
        "the points": "/admin/offices",
        "a point": f"/admin/offices/{OFFICE}",
        "the staff accounts": "/admin/users",
    }
    for where, path in pages.items():
        await admin.goto(f"{live_server}{path}")
        await audit.check(admin, where)
    audit.assert_clean()


async def test_error_states_and_a_second_staff_language_have_no_violations(
    live_server: str, browser: Browser, axe_script: Path, desk: dict[str, int]
) -> None:
    audit = Audit(axe_script)
    context = await browser.new_context(viewport=DESKTOP, locale="pl-PL", bypass_csp=True)
    try:
        admin = await sign_in(context, live_server, ADMIN)
        await expect(admin.locator("html")).to_have_attribute("lang", "pl")
        await admin.goto(f"{live_server}/admin/kb/fees/en/edit?revision={desk['draft']}")
        await expect(admin.locator("#short_answer")).to_have_attribute("lang", "en")
        await admin.fill("#title", "")
        await admin.fill("#short_answer", "x" * 401)
        await expect(admin.locator("#short-over")).to_have_text(re.compile("Za długie"))
        await audit.check(admin, "the editor in Polish, an answer too long")
        await admin.locator("#title").evaluate("(node) => node.removeAttribute('required')")
        await admin.click("button[value=draft]")
        await expect(admin.locator(".errors[role=alert]")).to_be_visible()
        await audit.check(admin, "the editor in Polish, refused")
        await admin.goto(f"{live_server}/admin/users")
        await admin.fill("#new-username", "za.krotkie.haslo")
        await admin.fill("#new-password", "short")
        await admin.click("form[action='/admin/users'] button[type=submit]")
        await expect(admin.locator("#error")).to_be_visible()
        await audit.check(admin, "a new account refused")
        await admin.goto(f"{live_server}/staff/tickets")
        late_row = admin.locator(f'tr[data-ticket="{desk["late"]}"]')
        await expect(late_row).to_contain_text("SLA")  # said in words, not only by the row's colour
        await expect(late_row.locator("td.description")).to_have_attribute("lang", "uk")
        await audit.check(admin, "the queue in Polish")
    finally:
        await context.close()
    audit.assert_clean()


async def test_the_accessibility_statement_in_polish_and_english_is_public_and_has_no_violations(
    live_server: str, context: BrowserContext, axe_script: Path
) -> None:
    audit = Audit(axe_script)
    page = await context.new_page()
    await page.goto(f"{live_server}/chat")
    link = page.locator("#statement-link")
    await expect(link).to_have_attribute("href", "/accessibility")
    await page.select_option("#language", "pl")
    await expect(link).to_have_text("Deklaracja dostępności")
    await link.click()

    await expect(page).to_have_url(f"{live_server}/deklaracja-dostepnosci")
    await expect(page.locator("html")).to_have_attribute("lang", "pl")
    await expect(page.locator("h1")).to_have_text("Deklaracja dostępności")
    main = page.locator("main")
    await expect(main).to_contain_text(
        "ustawą z dnia 4 kwietnia 2019 r. o dostępności cyfrowej stron internetowych i aplikacji mobilnych"
    )
    await expect(page.locator("#a11y-data-publikacja")).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
    await expect(page.locator("#a11y-data-aktualizacja")).to_be_visible()
    await expect(page.locator("#a11y-status")).to_contain_text("częściowo zgodna")
    await expect(main).to_contain_text("axe-core")
    await expect(main).to_contain_text("Rzecznika Praw Obywatelskich")
    await expect(page.locator("#contact-unset")).to_contain_text("INFOOPT_ACCESSIBILITY_CONTACT")
    await audit.check(page, "the statement in Polish")

    await page.locator("a[hreflang=en]").click()
    await expect(page).to_have_url(f"{live_server}/accessibility")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("h1")).to_have_text("Accessibility statement")
    await expect(page.locator("main")).to_contain_text("partially compliant")
    await expect(page.locator("main")).to_contain_text("Commissioner for Human Rights")
    await audit.check(page, "the statement in English")

    await page.goto(f"{live_server}/login")
    await expect(page.locator("footer a")).to_have_attribute("href", "/accessibility")
    audit.assert_clean()


async def test_the_statement_names_the_contact_once_it_is_set() -> None:
    # The statement's routes alone, on settings with the contact set: nothing else of the app is needed.
    contact = "Anna Nowak, Biuro Obsługi, dostepnosc@example.gov.pl, 12 392 11 11"
    settings = Settings(accessibility_contact=contact, _env_file=None)  # type: ignore[call-arg]
    application = FastAPI()
    application.include_router(accessibility.pages)
    application.state.services = SimpleNamespace(settings=settings)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        polish = await client.get("/deklaracja-dostepnosci")
        english = await client.get("/accessibility")
    assert polish.status_code == 200 and english.status_code == 200
    assert 'href="mailto:dostepnosc@example.gov.pl"' in polish.text and "Anna Nowak" in polish.text
    assert 'href="tel:+48123921111"' in english.text
    assert "INFOOPT_ACCESSIBILITY_CONTACT" not in polish.text + english.text, "the to-be-set notice is gone"


# --- reduced motion --------------------------------------------------------------------------------

# Elements that move: a running animation, or a transition that takes time.
MOVING = """() => {
  const lasts = (value) => value.split(",").some((part) => parseFloat(part) > 0);
  return [...document.querySelectorAll("*")].filter((node) => {
    const style = getComputedStyle(node);
    return (style.animationName !== "none" && lasts(style.animationDuration)) || lasts(style.transitionDuration);
  }).map((node) => node.tagName.toLowerCase() + (node.className ? "." + String(node.className).split(" ").join(".") : ""));
}"""


async def test_reduced_motion_stops_the_chats_and_the_dashboards_animations(
    live_server: str, browser: Browser, a11y_staff: dict[str, StaffUser]
) -> None:
    for motion in ("no-preference", "reduce"):
        context = await browser.new_context(viewport=DESKTOP, locale="en-GB", reduced_motion=motion)
        try:
            chat = await context.new_page()
            await chat.goto(f"{live_server}/chat")
            await chat.fill("#text", "How much does a residence card cost?")
            await chat.press("#text", "Enter")
            await expect(chat.locator("li.bot")).to_have_count(1)
            moving = await chat.evaluate(MOVING)
            dashboard = await sign_in(context, live_server, SUPERVISOR)
            await dashboard.goto(f"{live_server}/staff/dashboard")
            await expect(dashboard.locator("#chart-tickets")).to_be_visible()
            moving += await dashboard.evaluate(MOVING)
            animated = await dashboard.evaluate(
                "() => Chart.getChart(document.getElementById('chart-tickets')).options.animation !== false"
            )
            if motion == "reduce":
                assert moving == [], f"with reduced motion these still move: {moving}"
                assert not animated, "the dashboard's charts still animate"
            else:  # the check above can fail: without the preference, these do move
                assert any(node.startswith("li.bot") for node in moving), moving
                assert any(node.startswith("button") for node in moving), moving
                assert animated
        finally:
            await context.close()


# --- keyboard only ---------------------------------------------------------------------------------


async def tab_to(page: Page, selector: str, *, backwards: bool = False, limit: int = 60) -> None:
    """Press Tab (or Shift+Tab) until the element is focused; every stop on the way must show focus."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(limit):
        await page.keyboard.press(key)
        hidden = await page.evaluate(FOCUS_SHOWN)
        assert hidden == "", f"focus is not visible on {hidden}"
        if await page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{selector} not reached with {limit} presses of {key}")


async def test_by_keyboard_alone_a_person_asks_reads_the_full_answer_and_reaches_a_consultant(
    live_server: str, context: BrowserContext
) -> None:
    page = await context.new_page()
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(f"{live_server}/chat")
    await expect(page.locator("html")).to_have_attribute("lang", "en")  # the browser's language
    await expect(page.locator("#messages")).to_have_attribute("aria-live", "polite")

    await tab_to(page, "#text")
    await page.keyboard.type("How much does a residence card cost and where do I pay?")
    await page.keyboard.press("Enter")
    answer = await last_reply(page, "answer")
    await expect(answer).to_have_attribute("lang", "en")

    await tab_to(page, "li.bot:last-child button[data-action=full_answer]", backwards=True)
    await page.keyboard.press("Enter")
    full = await last_reply(page, "full_answer")
    await expect(full.locator(".formatted h2").first).to_be_visible()

    await tab_to(page, "li.bot:last-child button[data-action=consultant]")
    await page.keyboard.press("Enter")
    await expect(
        page.locator("li.bot").last.locator("button[data-action=choose_office]").first
    ).to_be_visible()
    await tab_to(page, f'li.bot:last-child button[data-value="{OFFICE}"]')
    await page.keyboard.press("Space")
    # The question asked above says what the person needs: the bot asks for consent, not a description.
    await expect(page.locator("li.bot").last.locator("button[data-action=consent]").first).to_be_visible()
    await tab_to(page, 'li.bot:last-child button[data-action=consent][data-value="yes"]')
    await page.keyboard.press("Enter")
    handed = page.locator("li.bot.handoff").last
    await expect(handed).to_have_attribute("data-ticket", re.compile(r"^KRK-\d{4}-\d{6}$"))
    await expect(handed).to_contain_text(re.compile("expect an answer by", re.IGNORECASE))


async def test_by_keyboard_alone_a_consultant_signs_in_claims_a_ticket_and_replies(
    live_server: str, context: BrowserContext, pg_engine: AsyncEngine, a11y_staff: dict[str, StaffUser]
) -> None:
    async with db.transaction(db.session_factory(pg_engine)) as session:
        ticket = await tickets.open_ticket(
            session,
            conversation=None,
            channel=Channel.WEB,
            language="en",
            office_code=OFFICE,
            description="Can I change my employer while my work permit case is pending?",
        )
    page = await context.new_page()
    await page.goto(f"{live_server}/login")
    await expect(page.locator("#username")).to_be_focused()  # the form starts where the typing does
    await page.keyboard.type(CONSULTANT)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"/staff/tickets$"))
    await expect(page.locator("#announcer")).to_have_attribute("aria-live", "polite")

    await page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()  # past the header's links in one step

    await tab_to(page, f'a[href="/staff/tickets/{ticket.id}"]')
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(rf"/staff/tickets/{ticket.id}$"))
    await tab_to(page, "#claim")
    await page.keyboard.press("Enter")
    await expect(page.locator("#send-reply")).to_be_enabled()

    await tab_to(page, "#reply")
    reply = "Yes: you can change employer, but the new employer needs its own permit for you first."
    await page.keyboard.type(reply)
    await tab_to(page, "#send-reply")
    await page.keyboard.press("Enter")
    await expect(page.locator(".msg-consultant").last).to_contain_text(reply)


def test_nothing_waits_for_a_mouse_no_hover_only_content_and_no_dragging() -> None:
    """Content shown on hover alone, or a control worked by dragging or pointer events alone, cannot be
    reached by keyboard (WCAG 2.1.1, 1.4.13): none in the stylesheets, scripts or templates."""
    root = Path(__file__).resolve().parent.parent
    static = root / "infoopt" / "core" / "static"  # vendor/ (Chart.js) is not ours and stays out
    hover_reveals = re.compile(r":hover[^{]*\{[^}]*\b(display|visibility|opacity|max-height)\b")
    pointer_only = re.compile(
        r"\b(dragstart|dragover|drop|mouseover|mouseenter|mouseleave|mousedown|dblclick)\b"
    )
    found = [
        f"{sheet.name}: {m.group(0)}"
        for sheet in static.glob("*.css")
        for m in hover_reveals.finditer(sheet.read_text())
    ]
    found += [
        f"{script.name}: {m.group(0)}"
        for script in static.glob("*.js")
        for m in pointer_only.finditer(script.read_text())
    ]
    templates = [*root.glob("*/templates/*.html"), *root.glob("infoopt/core/templates/*.html")]
    assert templates, "the templates were found"
    found += [f"{page.name}: draggable" for page in templates if "draggable" in page.read_text()]
    assert found == []
