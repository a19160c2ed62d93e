"""The web chat in Debian's Chromium: a newcomer tries the bot right after ./scripts/run.sh."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from knowledge_base.files import ARTICLES_DIR, read_articles

pytestmark = pytest.mark.browser


async def test_a_question_gets_an_answer_with_sources_and_buttons(live_server: str, page: Page) -> None:
    await page.goto(f"{live_server}/chat")
    await page.fill("#text", "ile kosztuje karta pobytu i na jakie konto zapłacić")
    await page.press("#text", "Enter")
    answer = page.locator("li.bot").last
    await expect(answer).to_have_attribute("data-kind", "answer")
    await expect(answer).to_have_attribute("data-article", "fees")
    await expect(answer.locator(".meta a").first).to_have_attribute("href", "https://infoopt.pl/oplaty/")
    fees = next(d for d in read_articles(ARTICLES_DIR) if (d.topic_id, d.language) == ("fees", "pl"))
    await expect(answer.locator(".verified")).to_have_text(f"✔ Sprawdzono: {fees.verified_on:%d.%m.%Y}")
    full = answer.locator(".full")
    await expect(full).to_be_hidden()
    await answer.locator("button[data-action=full]").click()
    await expect(full).to_be_visible()
    await answer.locator("button[data-action=not_helpful]").click()
    await expect(answer.locator(".feedback")).to_contain_text("Przykro mi")


async def test_choosing_a_language_and_a_clarification_option(live_server: str, page: Page) -> None:
    await page.goto(f"{live_server}/chat")
    await page.select_option("#language", "uk")
    await page.fill("#text", "робота і штамп")
    await page.press("#text", "Enter")
    reply = page.locator("li.bot").last
    await expect(reply).to_have_attribute("data-kind", "clarify")
    await reply.locator("button[data-action=option]").first.click()
    article = page.locator("li.bot").last
    await expect(article).to_have_attribute("data-kind", "answer")
    await expect(article.locator(".title")).not_to_be_empty()


async def test_the_consultant_button_always_reaches_a_person(live_server: str, page: Page) -> None:
    await page.goto(f"{live_server}/chat")
    await page.fill("#text", "qwrtzp vbnmx")
    await page.press("#text", "Enter")
    await page.locator("li.bot").last.locator("button[data-action=consultant]").click()
    handed = page.locator("li.bot.handoff").last
    await expect(handed).to_contain_text("12 210 20 20")
