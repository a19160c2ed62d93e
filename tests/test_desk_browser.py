"""The whole way to a person and back, in Chromium: a person in the web chat asks for a consultant, picks
Tarnów, describes and consents; the ticket appears live in a signed-in Tarnów consultant's queue; the
consultant claims it, inserts a suggested answer, edits and sends it; the reply appears in the chat; the
person rates it; a supervisor sees it counted on the dashboard."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import DESK_PASSWORD
from tests.test_chat_browser import PHONE, shot

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("desk_staff")]


async def staff_page(browser: Browser, live_server: str, username: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{live_server}/login")
    await page.fill("#username", username)
    await page.fill("#password", DESK_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"/staff/tickets$"))
    return page


async def test_a_person_reaches_a_tarnow_consultant_and_the_answer_comes_back(
    live_server: str, page: Page
) -> None:
    browser = page.context.browser
    assert browser is not None
    errors: list[str] = []
    consultant = await staff_page(browser, live_server, "tomasz.tarnow")
    consultant.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    await expect(consultant.locator("#live-state")).to_have_text(re.compile("Live|Na żywo"), timeout=10_000)

    # The person, on a phone.
    await page.set_viewport_size(PHONE)
    await page.goto(f"{live_server}/chat")
    await page.select_option("#language", "en")
    await page.fill("#text", "I want to talk to a consultant")
    await page.press("#text", "Enter")
    await expect(
        page.locator("li.bot").last.locator("button[data-action=choose_office]").first
    ).to_be_visible()
    await page.locator("li.bot").last.locator('button[data-value="TARNOW"]').click()
    await expect(page.locator("li.bot").last).to_contain_text("Describe your question")
    await page.fill("#text", "How much is the fee for a temporary residence card and where do I pay it?")
    await page.press("#text", "Enter")
    await page.locator("li.bot").last.locator('button[data-action=consent][data-value="yes"]').click()
    handed = page.locator("li.bot.handoff").last
    await expect(handed).to_have_attribute("data-ticket", re.compile(r"^TAR-\d{4}-\d{6}$"))
    number = await handed.get_attribute("data-ticket")
    assert number
    await shot(page, "desk-1-person-got-a-number")

    # The ticket appears in the consultant's queue without a reload.
    row = consultant.locator(f'tr[data-number="{number}"]')
    await expect(row).to_be_visible(timeout=10_000)
    await expect(consultant.locator("#announcer")).to_contain_text(number)
    await shot(consultant, "desk-2-queue-live")
    await row.locator("a").click()
    await consultant.click("#claim")
    suggestion = consultant.locator('.suggestion[data-topic="fees"]')
    await expect(suggestion).to_be_visible()
    await suggestion.locator("button.insert").first.click()
    reply = consultant.locator("#reply")
    inserted = await reply.input_value()
    assert len(inserted) > 20, "the suggested short answer went into the reply"
    await reply.press("End")
    await reply.type("\n\nBest regards, PID Tarnów")
    await consultant.reload()  # a draft survives a reload
    await expect(reply).to_have_value(re.compile("Best regards, PID Tarnów$"))
    await shot(consultant, "desk-3-ticket-with-suggestion")
    await consultant.click("#send-reply")
    await expect(consultant.locator(".msg-consultant").last).to_contain_text("Best regards, PID Tarnów")

    # The answer reaches the person's chat.
    answer = page.locator("li.bot.consultant").last
    await expect(answer).to_contain_text("Best regards, PID Tarnów", timeout=20_000)
    await expect(answer).to_contain_text(inserted[:40])
    await expect(consultant.locator(".msg-consultant .delivery").last).to_have_text(
        re.compile("delivered|dostarczono"), timeout=15_000
    )
    assert await consultant.locator("#reply").input_value() == "", "a sent reply leaves no draft behind"

    # A supervisor's dashboard before the rating, to see it counted after.
    supervisor = await staff_page(browser, live_server, "sylwia.supervisor")
    await supervisor.goto(f"{live_server}/staff/dashboard?days=7&office=TARNOW")
    fives = supervisor.locator('#ratings-table tr[data-rating="5"] td')
    fives_before = int(await fives.inner_text())

    # Resolved: the person is asked for a rating and gives one.
    await consultant.click("#resolve")
    await consultant.wait_for_url(re.compile(r"/staff/tickets$"))
    rating = page.locator("li.bot.notice").last
    await expect(rating.locator("button[data-action=rate]")).to_have_count(5, timeout=20_000)
    await rating.locator('button[data-value="5"]').click()
    await expect(page.locator("li.bot").last).to_contain_text(number)
    await shot(page, "desk-4-person-rated")

    await supervisor.reload()
    await expect(fives).to_have_text(str(fives_before + 1))
    await expect(supervisor.locator("#chart-ratings")).to_be_visible()
    await shot(supervisor, "desk-5-dashboard")
    assert errors == []
