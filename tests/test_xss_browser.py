"""Script injection, proven inert in Chromium: payloads in what a person wrote, a ticket's description, a
Telegram file's name, a consultant's name, a consultant's reply and note, a PID point's note, and a
knowledge-base article's title, short answer and body; then every page that shows them is opened —
the consultants' queue and ticket, the admin pages, the editor with its live preview, and the public
web chat rendering the answer and the reply.

The browser runs with the Content-Security-Policy switched off (`bypass_csp`), so what is proven is the
escaping itself: with the policy on, it is a second wall, not the only one. On every page: no dialog
fires, no element or attribute the payloads carry exists in the DOM, and the payload reads as text.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Dialog, Page, expect
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from infoopt.core import db
from infoopt.core.languages import Channel
from infoopt.staff.accounts import Role, create_user, set_active
from knowledge_base import service as kb
from knowledge_base.events import announce_publish
from tests.conftest import DESK_PASSWORD, sign_in
from tests.test_chat_browser import PHONE, shot
from tickets import service as tickets
from tickets.offices import get_office

pytestmark = pytest.mark.usefixtures("desk_staff", "staff_accounts")

OFFICE = "KRK-CHLOPICKIEGO"  # a point no other test's queue depends on
TOPIC, LANGUAGE = "employer_obligations", "en"
ADMIN, ADMIN_PASSWORD = "anna.admin", "Admin-password-2026"

NAME = "\"><svg onload=alert('name')>"
PERSON_TYPED = (
    "Ask about my card \"quoted\" & <img src=x onerror=alert('typed')"  # tags are cleaned; this stays
)
DESCRIPTION = "<img src=x onerror=alert('description')> \"><svg onload=alert('description2')>"
MESSAGE = "<script>alert('message')</script> <a href=\"javascript:alert('message2')\">my file</a>"
FILE_NAME = "\"><img src=x onerror=alert('file')>.html"
REPLY = "<img src=x onerror=alert('reply')> \"><svg onload=alert('reply2')> javascript:alert('reply3')"
STAFF_NOTE = "<script>alert('staff-note')</script>"
OFFICE_NOTE = "<img src=x onerror=alert('office-note')>"
KB_TITLE = "<script>alert('kb-title')</script> Duties \"><svg onload=alert('kb-title2')>"
KB_SHORT = "<img src=x onerror=alert('kb-short')> Check the documents first, then sign a written contract."
KB_BODY = (
    "## Duties <img src=x onerror=alert('kb-heading')>\n\n"
    "<script>alert('kb-script')</script>\n\n"
    "[open the form](javascript:alert('kb-link')) and <a href=\"javascript:alert('kb-a')\">this</a>\n\n"
    "\"><svg onload=alert('kb-svg')> <iframe src=\"javascript:alert('kb-iframe')\"></iframe>\n"
)

# Whatever the payloads could have planted: handlers, script URLs, frames, scripts, the broken image.
INJECTED = """() => {
  const found = [];
  for (const node of document.querySelectorAll("*")) {
    for (const attribute of node.attributes) {
      if (/^on/i.test(attribute.name)) found.push(node.tagName + "[" + attribute.name + "]");
      if (/^(href|src|action|formaction|xlink:href)$/i.test(attribute.name)
          && /^\\s*javascript:/i.test(attribute.value)) found.push(node.tagName + " javascript: URL");
    }
    if (["IFRAME", "OBJECT", "EMBED", "svg"].includes(node.tagName)) found.push(node.tagName);
    if (node.tagName === "SCRIPT" && !node.src && node.type !== "application/json") found.push("inline script");
    if (node.tagName === "IMG" && node.getAttribute("src") === "x") found.push("img src=x");
  }
  return found;
}"""


class Watched:
    """Pages whose dialogs are recorded: one alert from any payload is a failure."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []

    async def _dismiss(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    async def page(self, context: BrowserContext) -> Page:
        page = await context.new_page()
        page.on("dialog", self._dismiss)
        return page

    async def assert_inert(self, page: Page, where: str) -> None:
        await page.wait_for_load_state("networkidle")
        injected = await page.evaluate(INJECTED)
        assert injected == [], f"{where}: injected into the page: {injected}"
        assert self.dialogs == [], f"{where}: a payload ran: {self.dialogs}"


async def context_of(browser: Browser, **options: Any) -> BrowserContext:
    """A browser context that ignores the Content-Security-Policy, so only escaping stands in the way."""
    return await browser.new_context(bypass_csp=True, **options)


async def signed_in(watch: Watched, browser: Browser, live_server: str, username: str, password: str) -> Page:
    page = await watch.page(await context_of(browser, viewport={"width": 1280, "height": 900}))
    await page.goto(f"{live_server}/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"/(staff/tickets|admin/kb)$"))
    return page


@pytest.fixture
async def planted(pg_engine: AsyncEngine, redis_url: str, synced_kb: None) -> AsyncIterator[dict[str, Any]]:
    """The payloads stored where people and staff put text; the point's note and the article restored
    after the test, the payload-named account switched off."""
    sessions = db.session_factory(pg_engine)
    redis = Redis.from_url(redis_url)
    async with db.transaction(sessions) as session:
        user = await create_user(
            session, username="payload.name", password=DESK_PASSWORD, role=Role.CONSULTANT, office_code=OFFICE
        )
        # New usernames are letters, digits and . _ - @ only; an account from before that rule (or written
        # straight into the database) may still carry anything, and every page must show it as text.
        user.username = NAME
        session.add(user)
        office = await get_office(session, OFFICE)
        original_note = office.note
        office.note = f"{original_note or ''} {OFFICE_NOTE}".strip()
        session.add(office)
        published = await kb.get_published(session, TOPIC, LANGUAGE)
        assert published is not None
        document = replace(published.document(), title=KB_TITLE, short_answer=KB_SHORT, body=KB_BODY)
        draft = await kb.create_draft(session, document, actor=ADMIN, note="payloads")
        assert draft.id is not None
        await kb.publish_revision(session, draft.id, actor=ADMIN, reason="xss test", second_person=False)
        telegram = await tickets.open_ticket(
            session,
            conversation=None,
            channel=Channel.TELEGRAM,
            language="uk",
            office_code=OFFICE,
            description=DESCRIPTION,
        )
        await tickets.add_person_message(
            session,
            telegram,
            MESSAGE,
            attachment={
                "kind": "document",
                "name": FILE_NAME,
                "size": 2048,
                "mime": "text/html",
                "file_id": "f1",
            },
        )
    await announce_publish(redis, TOPIC, None)
    try:
        yield {"telegram_ticket": telegram.id, "telegram_number": telegram.number}
    finally:
        async with db.transaction(sessions) as session:
            office = await get_office(session, OFFICE)
            office.note = original_note
            session.add(office)
            await kb.rollback_to(session, published.revision_id, actor=ADMIN, reason="after the xss test")
            await set_active(session, NAME, active=False)
        await announce_publish(redis, TOPIC, None)
        await redis.aclose()


@pytest.mark.browser
async def test_payloads_everywhere_stay_text_in_chromium(
    live_server: str, page: Page, planted: dict[str, Any]
) -> None:
    browser = page.context.browser
    assert browser is not None
    watch = Watched()

    # A person in the web chat: a knowledge-base answer, then a question for a consultant.
    person = await watch.page(await context_of(browser, viewport=PHONE))
    await person.goto(f"{live_server}/chat")
    await person.select_option("#language", "en")
    await person.fill("#text", "employer obligations when hiring foreigner")
    await person.press("#text", "Enter")
    answer = person.locator("li.bot").last
    await expect(answer).to_have_attribute("data-article", TOPIC)
    await expect(answer.locator("h2.title")).to_have_text(KB_TITLE)
    await expect(answer).to_contain_text("<img src=x onerror=alert('kb-short')>")
    await answer.locator("button[data-action=full_answer]").click()
    full = person.locator("li.bot").last
    await expect(full).to_have_attribute("data-kind", "full_answer")
    await expect(full.locator("h2:not(.title)")).to_contain_text("Duties")
    await expect(full).to_contain_text("open the form")
    await watch.assert_inert(person, "the chat's knowledge-base answer")
    await shot(person, "xss-1-chat-answer")

    await person.fill("#text", "I want to talk to a consultant")
    await person.press("#text", "Enter")
    await person.locator("li.bot").last.locator(f'button[data-value="{OFFICE}"]').click()
    await expect(person.locator("li.bot").last).to_contain_text("Describe your question")
    await person.fill("#text", PERSON_TYPED)
    await person.press("#text", "Enter")
    await person.locator("li.bot").last.locator('button[data-action=consent][data-value="yes"]').click()
    handed = person.locator("li.bot.handoff").last
    await expect(handed).to_have_attribute("data-ticket", re.compile(r"-\d{4}-\d{6}$"))
    number = await handed.get_attribute("data-ticket")
    assert number
    await watch.assert_inert(person, "the chat after the handoff")

    # The payload-named consultant at that point: the queue, the person's ticket, the Telegram ticket.
    consultant = await signed_in(watch, browser, live_server, NAME, DESK_PASSWORD)
    await expect(consultant.locator(f'tr[data-number="{number}"]')).to_be_visible()
    await expect(consultant.locator(f'tr[data-number="{planted["telegram_number"]}"]')).to_contain_text(
        "<img src=x onerror=alert('description')>"
    )
    await watch.assert_inert(consultant, "the queue")
    await consultant.locator(f'tr[data-number="{number}"] a').click()
    await expect(consultant.locator(".card.question")).to_contain_text("<img src=x onerror=alert('typed')")
    await consultant.click("#claim")
    await consultant.fill("#reply", REPLY)
    await consultant.click("#send-reply")
    await expect(consultant.locator(".msg-consultant").last).to_contain_text(REPLY)
    await expect(consultant.locator(".msg-consultant .msg-head").last).to_contain_text(NAME)
    await consultant.fill("#note", STAFF_NOTE)
    await consultant.locator("form[action$='/note'] button[type=submit]").click()
    await expect(consultant.locator(".msg-note").last).to_contain_text(STAFF_NOTE)
    await expect(consultant.locator("dl.facts")).to_contain_text(NAME)
    await watch.assert_inert(consultant, "the ticket with the reply and the note")
    await shot(consultant, "xss-2-ticket")

    await consultant.goto(f"{live_server}/staff/tickets/{planted['telegram_ticket']}")
    await expect(consultant.locator(".card.question")).to_have_text(DESCRIPTION)
    await expect(consultant.locator(".msg-person .msg-text").last).to_have_text(MESSAGE)
    attachment = consultant.locator(".msg-person .attachment a").last
    await expect(attachment).to_have_text(FILE_NAME)
    assert re.fullmatch(r"/staff/tickets/\d+/files/\d+", await attachment.get_attribute("href") or "")
    await watch.assert_inert(consultant, "the Telegram ticket with a file")
    await consultant.goto(f"{live_server}/staff/tickets?assignee=me")
    await expect(consultant.locator(f'tr[data-number="{number}"]')).to_contain_text(NAME)
    await watch.assert_inert(consultant, "the queue with the payload-named holder")

    # The reply reaches the chat, live and after a reload.
    reply = person.locator("li.bot.consultant").last
    await expect(reply.locator(".text")).to_have_text(REPLY, timeout=20_000)
    await watch.assert_inert(person, "the chat with the consultant's reply")
    await person.reload()
    await expect(person.locator("li.bot.consultant").last.locator(".text")).to_have_text(REPLY)
    await expect(
        person.locator("li.person").filter(has_text="<img src=x onerror=alert('typed')")
    ).to_have_count(1)
    await watch.assert_inert(person, "the chat restored after a reload")
    await shot(person, "xss-3-chat-reply")

    # An admin's pages: accounts, audit trail, points, the editor.
    admin = await signed_in(watch, browser, live_server, ADMIN, ADMIN_PASSWORD)
    pages = {
        "/admin/users": "table",
        "/admin/audit": "table",
        "/admin/offices": "table",
        f"/admin/offices/{OFFICE}": "#note",
        "/admin/kb": "table",
        f"/admin/kb/{TOPIC}/{LANGUAGE}": "h1",
        f"/admin/kb/{TOPIC}/{LANGUAGE}/diff": "body",
        "/admin/kb-search?q=duties+employer": "body",
    }
    for path, shown in pages.items():
        await admin.goto(f"{live_server}{path}")
        await expect(admin.locator(shown).first).to_be_visible()
        await watch.assert_inert(admin, path)
    await admin.goto(f"{live_server}/admin/users")
    await expect(admin.locator("tr[data-user]").filter(has_text=NAME)).to_have_count(1)
    await admin.goto(f"{live_server}/admin/offices")
    await expect(admin.locator("table")).to_contain_text(OFFICE_NOTE)
    await admin.goto(f"{live_server}/admin/offices/{OFFICE}")
    assert OFFICE_NOTE in (await admin.locator("#note").input_value())
    await admin.goto(f"{live_server}/admin/kb/{TOPIC}/{LANGUAGE}")
    await expect(admin.locator(".rendered")).to_contain_text("open the form")
    assert await admin.locator(".rendered a[href^='javascript']").count() == 0
    await admin.goto(f"{live_server}/admin/kb/{TOPIC}/{LANGUAGE}/edit")
    await expect(admin.locator("#title")).to_have_value(KB_TITLE)
    await expect(admin.locator("#preview h2")).to_contain_text(
        "Duties"
    )  # the server's preview, via innerHTML
    await admin.fill("#body", KB_BODY + "\n<img src=x onerror=alert('preview')>")
    await admin.click("#preview-button")
    await expect(admin.locator("#preview")).to_contain_text("open the form")
    await watch.assert_inert(admin, "the editor's live preview")
    await shot(admin, "xss-4-editor")


class HostileFile:
    """A channel's file store that hands back markup, as a person's upload might be."""

    async def fetch(self, file_id: str) -> bytes:
        return b"<html><script>alert('file-body')</script></html>"


async def test_a_file_with_a_hostile_name_is_handed_over_as_a_download_never_shown(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with app.state.services.sessions() as session:
        ticket = await tickets.open_ticket(
            session,
            conversation=None,
            channel=Channel.TELEGRAM,
            language="uk",
            office_code="TARNOW",
            description="Plik w załączniku",
        )
        message = await tickets.add_person_message(
            session, ticket, "plik", attachment={"kind": "document", "name": FILE_NAME, "file_id": "f1"}
        )
        await session.commit()
    monkeypatch.setitem(app.state.services.files, Channel.TELEGRAM, HostileFile())
    assert (await sign_in(client, "tomasz.tarnow", DESK_PASSWORD)).status_code == 303
    response = await client.get(f"/staff/tickets/{ticket.id}/files/{message.id}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"] == f"attachment; filename*=UTF-8''{quote(FILE_NAME)}"
    assert not set('"<>;\r\n') & set(response.headers["content-disposition"].split("''", 1)[1])
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in response.headers["content-security-policy"]
