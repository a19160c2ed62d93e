"""The admin editor in Debian's Chromium, driven by Playwright, as an admin would use it."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, expect

pytestmark = pytest.mark.browser


async def _sign_in(page: Page, live_server: str, username: str, password: str) -> None:
    await page.goto(f"{live_server}/login?next=/admin/kb")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Knowledge base")


async def test_an_author_submits_a_second_admin_approves_and_the_bot_answers_with_it(
    live_server: str, page: Page, staff_accounts: dict[str, str]
) -> None:
    new_short = "Тест: штамп у паспорті замінила довідка (zaświadczenie) з MOS; вона підтверджує легальне перебування."
    await page.goto(f"{live_server}/admin/kb")
    await expect(page).to_have_url(f"{live_server}/login?next=/admin/kb")
    await page.fill("#username", "anna.admin")
    await page.fill("#password", staff_accounts["anna.admin"])
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Knowledge base")

    await page.click('td[data-cell="stamp_and_legal_stay/uk"] a')
    await page.click("text=Edit")
    await expect(page.locator("#preview h2").first).to_be_visible()  # the server-rendered preview
    assert await page.locator("#publish-button").count() == 0, "an author cannot publish alone"

    await page.fill("#short_answer", new_short)
    await expect(page.locator("#short-counter")).to_have_text(str(len(new_short)))
    await page.fill("#body", "## Новий розділ\n\n**Важливо:** <script>alert(1)</script> текст.\n")
    await expect(page.locator("#preview")).to_contain_text("Новий розділ")
    await expect(page.locator("#preview strong")).to_have_text("Важливо:")
    assert await page.locator("#preview script").count() == 0
    await page.fill("#note", "зміна після запуску MOS")
    await page.click("#review-button")

    await expect(page.locator("h1")).to_contain_text("stamp_and_legal_stay")
    await expect(page.locator("tr[data-revision]").first).to_contain_text(
        "waiting for another admin's review"
    )
    await expect(page.locator(".card").first).not_to_contain_text(new_short)
    await page.click("text=Sign out")

    await _sign_in(page, live_server, "marek.admin", staff_accounts["marek.admin"])
    await expect(page.locator("#to-review")).to_contain_text("stamp_and_legal_stay")
    await page.click('#to-review a:has-text("stamp_and_legal_stay")')
    row = page.locator("tr[data-revision]").first
    await row.locator('input[name="reason"]').first.fill("звірено з art. 108 u.c.")
    await row.locator("text=Approve and publish").click()

    await expect(page.locator(".card").first).to_contain_text(new_short)
    await expect(page.locator("tr[data-revision]").first).to_contain_text(
        "reviewed and published by marek.admin"
    )
    await expect(page.locator("table").last).to_contain_text("revision.publish")

    async with httpx.AsyncClient(base_url=live_server) as http:
        served = (
            await http.get("/api/v1/kb/articles/stamp_and_legal_stay", params={"language": "uk"})
        ).json()
        question = {"text": "що дає штамп у паспорті, чи я легально тут", "language": "uk"}
        asked = (await http.post("/api/v1/ask", json=question)).json()
    assert served["short_answer"] == new_short
    assert "Новий розділ" in served["body"]
    assert asked["article_id"] == "stamp_and_legal_stay"
    assert asked["answer"] == new_short, "the bot answers with the text the second admin approved"


async def test_over_long_short_answer_is_shown_red_and_refused(
    live_server: str, page: Page, staff_accounts: dict[str, str]
) -> None:
    await page.goto(f"{live_server}/login")
    await page.fill("#username", "anna.admin")
    await page.fill("#password", staff_accounts["anna.admin"])
    await page.click("button[type=submit]")
    await page.goto(f"{live_server}/admin/kb/fees/en/edit")
    await page.fill("#short_answer", "x" * 401)
    await expect(page.locator("#short-counter")).to_have_class("counter over")
    await page.fill("#note", "too long on purpose")
    await page.click("#review-button")
    await expect(page.locator(".errors")).to_contain_text("at most 400")
    assert await page.input_value("#short_answer") == "x" * 401
