"""Issue 16 in Debian's Chromium: a person in the web chat asks to be told when an answer changes, an
admin marks a change on the real pages, and the chat shows the message while it is open."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Page, expect
from redis.asyncio import Redis
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from infoopt.core import db
from knowledge_base.events import announce_publish
from knowledge_base.models import TopicChange
from tests.conftest import sign_in
from tickets.models import OutboxJob, Subscription

pytestmark = pytest.mark.usefixtures("synced_kb")
TOPIC = "fees"
SUMMARY = "Od 1 stycznia 2027 r. zmienia się kwota opłaty (zmiana w teście)."


async def test_a_person_in_the_web_chat_follows_a_topic_and_hears_of_its_change_while_the_chat_is_open(
    live_server: str, page: Page, staff_accounts: dict[str, str], pg_engine: AsyncEngine, redis_url: str
) -> None:
    sessions = db.session_factory(pg_engine)
    try:
        await page.goto(f"{live_server}/chat")
        await page.fill("#text", "ile kosztuje karta pobytu i na jakie konto zapłacić")
        await page.press("#text", "Enter")
        answer = page.locator("li.bot").last
        await expect(answer).to_have_attribute("data-article", TOPIC)
        await answer.locator("button[data-action=subscribe]").click()
        done = page.locator("li.bot").last
        await expect(done).to_have_attribute("data-kind", "subscription")
        await expect(done).to_contain_text("Gotowe")
        await expect(done.locator("button[data-action=subscriptions]")).to_be_visible()

        async with httpx.AsyncClient(base_url=live_server) as admin:
            assert (await sign_in(admin, "anna.admin", staff_accounts["anna.admin"])).status_code == 303
            article = await admin.get(f"/admin/kb/{TOPIC}/pl")
            token = re.search(r'name="csrf_token" value="([^"]+)"', article.text)
            assert token is not None
            marked = await admin.post(
                f"/admin/kb/{TOPIC}/pl/change", data={"csrf_token": token.group(1), "summary_pl": SUMMARY}
            )
            assert marked.status_code == 303

        notice = page.locator("li.bot", has_text=SUMMARY).last
        await expect(notice).to_be_visible(timeout=20_000)  # broadcast, delivered, polled by the open chat
        await expect(notice).to_contain_text("zmieniła się")
        await expect(notice.locator("button[data-action=full_answer]")).to_be_visible()
        await notice.locator("button[data-action=unsubscribe]").click()
        await expect(page.locator("li.bot").last).to_contain_text("Nie będziesz już dostawać")

        await page.fill("#text", "ile kosztuje karta pobytu")
        await page.press("#text", "Enter")
        again = page.locator("li.bot").last
        await expect(again).to_have_attribute("data-article", TOPIC)
        await expect(again).to_contain_text("Zmiana z")
        await expect(again).to_contain_text(SUMMARY)
        async with sessions() as session:
            left = (await session.exec(select(Subscription).where(Subscription.topic_id == TOPIC))).all()
        assert left == [], "stopped: nothing kept"
    finally:
        async with db.transaction(sessions) as session:
            changes = (await session.exec(select(TopicChange.id).where(TopicChange.topic_id == TOPIC))).all()
            await session.exec(delete(OutboxJob).where(col(OutboxJob.change_id).in_(list(changes))))
            await session.exec(delete(Subscription).where(col(Subscription.topic_id) == TOPIC))
            await session.exec(delete(TopicChange).where(col(TopicChange.topic_id) == TOPIC))
        redis = Redis.from_url(redis_url)
        await announce_publish(redis, TOPIC)  # the live server drops the answer it cached with the change
        await redis.aclose()
