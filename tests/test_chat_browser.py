"""The web chat in Debian's Chromium, on a phone-sized screen, as a foreigner would use it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from knowledge_base.files import ARTICLES_DIR, read_articles

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}


async def shot(page: Page, name: str) -> None:
    """A full-page screenshot in test-artifacts/screenshots/ (printed in the test output)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


async def no_horizontal_scroll(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px screen"


async def test_on_a_phone_a_question_is_answered_the_full_answer_is_formatted_and_a_topic_can_be_picked(
    live_server: str, page: Page
) -> None:
    await page.set_viewport_size(PHONE)
    await page.goto(f"{live_server}/chat")
    await expect(page.locator("#examples button")).to_have_count(3)
    assert await page.evaluate("getComputedStyle(document.getElementById('text')).fontSize") == "16px"
    await shot(page, "chat-1-first-screen")

    await page.fill("#text", "ile kosztuje karta pobytu i na jakie konto zapłacić")
    await page.press("#text", "Enter")
    answer = page.locator("li.bot").last
    await expect(answer).to_have_attribute("data-kind", "answer")
    await expect(answer).to_have_attribute("data-article", "fees")
    await expect(page.locator("html")).to_have_attribute("lang", "pl")
    fees = next(d for d in read_articles(ARTICLES_DIR) if (d.topic_id, d.language) == ("fees", "pl"))
    await expect(answer.locator(".verified")).to_have_text(f"✔ Sprawdzono: {fees.verified_on:%d.%m.%Y}")
    first_source = answer.locator(".sources a").first
    await expect(first_source).to_have_attribute("href", fees.sources[0])
    assert not (await first_source.inner_text()).startswith("http"), "sources are labels, not raw URLs"
    for button in await answer.locator(".buttons button").all():
        box = await button.bounding_box()
        assert box is not None and box["height"] >= 44, "44 px touch targets"
    await shot(page, "chat-2-answer")

    await answer.locator("button[data-action=full_answer]").click()
    full = page.locator("li.bot").last
    await expect(full).to_have_attribute("data-kind", "full_answer")
    await expect(full.locator(".formatted h2").first).to_be_visible()
    await expect(full.locator(".formatted li").first).to_be_visible()
    await expect(full.locator('a[href="tel:+48122102020"]').first).to_be_visible()
    await no_horizontal_scroll(page)
    await shot(page, "chat-3-full-answer")

    await page.select_option("#language", "uk")
    await expect(page.locator("#text")).to_have_attribute("placeholder", "Напишіть запитання…")
    await page.fill("#text", "робота і штамп")
    await page.press("#text", "Enter")
    clarify = page.locator("li.bot").last
    await expect(clarify).to_have_attribute("data-kind", "clarify")
    option = clarify.locator("button[data-action=choose_topic]").first
    chosen = await option.get_attribute("data-value")
    await option.click()
    article = page.locator("li.bot").last
    await expect(article).to_have_attribute("data-kind", "answer")
    await expect(article).to_have_attribute("data-article", str(chosen))
    await expect(article).to_have_attribute("lang", "uk")
    await expect(article.locator(".verified")).to_contain_text("Перевірено")
    await no_horizontal_scroll(page)
    await shot(page, "chat-4-clarification-chosen")


async def test_the_consultant_button_leads_to_a_ticket_number(live_server: str, page: Page) -> None:
    await page.set_viewport_size(PHONE)
    await page.goto(f"{live_server}/chat")
    await page.select_option("#language", "en")
    await page.fill("#text", "qwrtzp vbnmx")
    await page.press("#text", "Enter")
    await page.locator("li.bot").last.locator("button[data-action=consultant]").click()
    offer = page.locator("li.bot").last
    await expect(offer.locator("button[data-action=choose_office]")).to_have_count(6)
    await offer.locator('button[data-value="KRK-RONDO"]').click()
    await expect(page.locator("li.bot").last).to_contain_text("Describe your question")
    await page.fill("#text", "I need to know which documents to bring for my fingerprints appointment")
    await page.press("#text", "Enter")
    await page.locator("li.bot").last.locator('button[data-action=consent][data-value="yes"]').click()
    handed = page.locator("li.bot.handoff").last
    await expect(handed).to_have_attribute("data-ticket", re.compile(r"^KRK-\d{4}-\d{6}$"))
    await expect(handed).to_contain_text("expect an answer by")
    await expect(handed.locator("button[data-action=close_ticket]")).to_be_visible()
    await no_horizontal_scroll(page)
    await shot(page, "chat-5-consultant")


async def test_a_reload_keeps_the_conversation_and_a_consultants_reply_appears(
    live_server: str, page: Page, pg_engine: object
) -> None:
    from infoopt.core import db
    from infoopt.core.languages import Channel
    from tickets.conversations import find_conversation, record_message
    from tickets.models import MessageAuthor

    await page.goto(f"{live_server}/chat")
    await page.fill("#text", "скільки коштує карта побиту")
    await page.press("#text", "Enter")
    await expect(page.locator("li.bot").last).to_have_attribute("data-kind", "answer")
    session_id = await page.evaluate("localStorage.getItem('infoopt.session')")
    assert session_id

    await page.reload()
    await expect(page.locator("li.person").first).to_have_text("скільки коштує карта побиту")
    await expect(page.locator("#welcome")).to_be_hidden()

    async with db.transaction(db.session_factory(pg_engine)) as session:  # type: ignore[arg-type]
        conversation = await find_conversation(session, Channel.WEB, session_id)
        assert conversation is not None
        await record_message(
            session,
            conversation,
            author=MessageAuthor.CONSULTANT,
            text="Dzień dobry, tu konsultantka PID Tarnów.",
        )
    await expect(page.locator("li.consultant").last.locator(".text")).to_have_text(
        "Dzień dobry, tu konsultantka PID Tarnów.", timeout=12_000
    )


async def test_a_person_erases_their_data_from_the_chat(live_server: str, page: Page) -> None:
    await page.set_viewport_size(PHONE)
    await page.goto(f"{live_server}/chat")
    await page.fill("#text", "ile kosztuje karta pobytu")
    await page.press("#text", "Enter")
    await expect(page.locator("li.bot").last).to_have_attribute("data-kind", "answer")
    session = await page.evaluate("localStorage.getItem('infoopt.session')")
    assert session
    await no_horizontal_scroll(page)

    await page.click("#your-data")
    privacy = page.locator("li.bot").last
    await expect(privacy).to_have_attribute("data-kind", "info")
    await expect(privacy).to_contain_text("usunąć")
    await privacy.locator("button[data-action=forget]").click()
    confirm = page.locator("li.bot").last
    await confirm.locator("button[data-action=forget][data-value=yes]").click()
    gone = page.locator("li.bot").last
    await expect(gone).to_have_attribute("data-kind", "forgotten")
    assert await page.evaluate("localStorage.getItem('infoopt.session')") is None
    response = await page.context.request.get(f"{live_server}/api/v1/conversations/{session}/messages")
    assert response.status == 404, "nothing of the conversation is kept"
