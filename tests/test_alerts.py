"""Issue 16, "tell me when this changes": people subscribe under an answer on Telegram, an admin marks a
published revision as a change, and each subscriber gets exactly one message in their language through
the outbox — the real aiogram client against the fake Bot API, the admin through the real pages."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.alerts import announce_next
from infoopt.core.clock import utcnow
from infoopt.core.i18n import say
from infoopt.core.languages import Channel
from knowledge_base.changes import InvalidChange, clean_summaries, mark_change
from knowledge_base.models import TopicChange
from tests.conftest import rolled_back, sign_in
from tests.fake_telegram import FakeTelegram, Updates
from tests.telegram_chat import Bot, buttons
from tickets.models import OutboxJob, OutboxStatus, Subscription
from tickets.outbox import drain
from tickets.subscriptions import (
    MAX_SUBSCRIPTIONS,
    TooManySubscriptions,
    change_deliveries,
    fan_out,
    purge_ended,
    subscribe,
    topics_of,
)

pytestmark = pytest.mark.usefixtures("synced_kb")
TOPIC = "fees"
SUMMARY_PL = "Od 1 stycznia 2027 opłata za kartę pobytu jest inna; sprawdź nową kwotę."
SUMMARY_UK = "З 1 січня 2027 року плата за карту побиту інша; перевірте нову суму."


@pytest.fixture
async def sessions(
    telegram_app: FastAPI, pg_engine: AsyncEngine
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """This app's database for one test, rolled back after."""
    async with rolled_back(telegram_app, pg_engine) as factory:
        yield factory


@pytest.fixture
async def http(telegram_app: FastAPI, sessions: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=telegram_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def new_person(
    http: httpx.AsyncClient, app: FastAPI, sessions: Any, fake: FakeTelegram, language: str
) -> Bot:
    """A new chat whose Telegram app speaks `language`."""
    updates = Updates(start=random.randint(10_000_000, 2_000_000_000))
    return Bot(http, app, sessions, fake, updates, random.randint(100_000_000, 999_999_999), language)


async def _subscribe_through_the_bot(person: Bot) -> None:
    await person.press(f"language:{person.language}")
    (answer,) = await person.press(f"choose_topic:{TOPIC}")
    assert f"subscribe:{TOPIC}" in buttons(answer), "under every answer: notify me when this changes"
    (done,) = await person.press(f"subscribe:{TOPIC}")
    assert "subscriptions:" in buttons(done) and f"unsubscribe:{TOPIC}" in buttons(done)


async def _admin(http: httpx.AsyncClient, staff_accounts: dict[str, str]) -> str:
    assert (await sign_in(http, "anna.admin", staff_accounts["anna.admin"])).status_code == 303
    page = await http.get(f"/admin/kb/{TOPIC}/pl")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None and 'action="/admin/kb/fees/pl/change"' in page.text
    return token.group(1)


async def test_three_people_in_three_languages_each_hear_of_a_marked_change_once(
    http: httpx.AsyncClient,
    telegram_app: FastAPI,
    sessions: Any,
    fake: FakeTelegram,
    staff_accounts: dict[str, str],
) -> None:
    people = [new_person(http, telegram_app, sessions, fake, language) for language in ("uk", "ru", "en")]
    for person in people:
        await _subscribe_through_the_bot(person)
    ukrainian, russian, english = people
    (listed,) = await ukrainian.say("/subscriptions")
    assert buttons(listed) == [f"unsubscribe:{TOPIC}"]

    csrf = await _admin(http, staff_accounts)
    followers = re.search(r'<p id="followers">(.*?)</p>', (await http.get(f"/admin/kb/{TOPIC}/pl")).text)
    assert followers is not None, "the admin sees who would be told"
    assert followers.group(1).startswith("3 ") and all(
        f'<span lang="{code}">{code}</span> 1' in followers.group(1) for code in ("uk", "ru", "en")
    ), followers.group(1)
    no_polish = await http.post(
        f"/admin/kb/{TOPIC}/pl/change", data={"csrf_token": csrf, "summary_uk": SUMMARY_UK}
    )
    assert no_polish.status_code == 422 and "Polish summary" in no_polish.text
    assert SUMMARY_UK in no_polish.text, "what the admin typed comes back"
    marked = await http.post(
        f"/admin/kb/{TOPIC}/pl/change",
        data={"csrf_token": csrf, "summary_pl": SUMMARY_PL, "summary_uk": f"  {SUMMARY_UK}\n"},
    )
    assert marked.status_code == 303
    page = (await http.get(f"/admin/kb/{TOPIC}/pl")).text
    assert "marked as a change" in page and page.count("no summary: the generic text") == 2, (
        "the page shows which languages have no summary (ru, en)"
    )
    again = await http.post(f"/admin/kb/{TOPIC}/pl/change", data={"csrf_token": csrf, "summary_pl": "x"})
    assert again.status_code == 422, "one revision is announced once"

    services = telegram_app.state.services
    queued = await announce_next(sessions, services.published_now)
    assert queued == 3
    assert await announce_next(sessions, services.published_now) is None, "announced: nothing left"
    received = {person.language: await person.received() for person in people}
    assert {language: len(messages) for language, messages in received.items()} == {"uk": 1, "ru": 1, "en": 1}
    (to_uk,), (to_ru,), (to_en,) = received["uk"], received["ru"], received["en"]
    assert SUMMARY_UK in to_uk["text"] and SUMMARY_PL not in to_uk["text"]
    assert "Ответ «" in to_ru["text"] and "изменился" in to_ru["text"], "no Russian summary: the generic line"
    assert to_en["text"].startswith("The answer about “") and "changed on" in to_en["text"]
    for message in (to_uk, to_ru, to_en):
        assert buttons(message) == [f"full_answer:{TOPIC}", f"unsubscribe:{TOPIC}"]

    async with sessions() as session:
        change = (await session.exec(select(TopicChange).where(TopicChange.topic_id == TOPIC))).one()
        assert change.announced_at is not None and change.recipients == 3
        assert change.id is not None
        # A broadcast resumed after a crash: those told are not told again.
        assert await fan_out(session, change.id, TOPIC, {}, now=utcnow()) == 0
        deliveries = await change_deliveries(session)
    assert (deliveries.delivered, deliveries.failed, deliveries.queued) == (3, 0, 0)
    for person in people:
        assert await person.received() == [], "nobody hears twice"

    # Every answer on the topic says what changed, for a while.
    (answer,) = await ukrainian.press(f"choose_topic:{TOPIC}")
    assert answer["text"].startswith("Зміна від ") and SUMMARY_UK in answer["text"]
    (answer,) = await english.press(f"choose_topic:{TOPIC}")
    assert answer["text"].startswith("The answer about “") and "changed on" in answer["text"]

    dashboard = await http.get("/staff/dashboard/data")
    alerts = dashboard.json()["alerts"]
    assert (
        alerts["messages"]["delivered"] == 3
        and {"topic_id": TOPIC, "subscriptions": 3} in alerts["per_topic"]
    )

    (stopped,) = await russian.press(f"unsubscribe:{TOPIC}")
    assert "subscriptions:" in buttons(stopped)
    (empty,) = await russian.say("/subscriptions")
    assert buttons(empty) == []
    async with sessions() as session:
        assert await topics_of(session, Channel.TELEGRAM, str(russian.chat)) == []
        kept = await session.exec(select(Subscription).where(Subscription.recipient == str(russian.chat)))
        assert kept.all() == [], "stopping keeps nothing"


async def test_a_person_who_blocked_the_bot_is_skipped_and_their_subscriptions_end(
    http: httpx.AsyncClient, telegram_app: FastAPI, sessions: Any, fake: FakeTelegram
) -> None:
    staying, leaving = (new_person(http, telegram_app, sessions, fake, "pl") for _ in range(2))
    for person in (staying, leaving):
        await _subscribe_through_the_bot(person)
    fake.blocked_chats.add(leaving.chat)
    try:
        async with sessions() as session, session.begin():
            await mark_change(session, TOPIC, "pl", {"pl": SUMMARY_PL}, actor="anna.admin")
        assert await announce_next(sessions, telegram_app.state.services.published_now) == 2
        assert len(await staying.received()) == 1
        assert await leaving.received() == []
    finally:
        fake.blocked_chats.discard(leaving.chat)
    async with sessions() as session:
        rows = (
            await session.exec(select(Subscription).where(Subscription.recipient == str(leaving.chat)))
        ).all()
        assert [row.active for row in rows] == [False], "blocked: the subscription ends"
        failed = (
            await session.exec(
                select(OutboxJob).where(
                    OutboxJob.recipient == str(leaving.chat), col(OutboxJob.change_id).is_not(None)
                )
            )
        ).one()
        assert failed.status is OutboxStatus.FAILED
    # The next change skips them without trying.
    async with sessions() as session, session.begin():
        later = utcnow() + timedelta(seconds=1)
        await mark_change(session, TOPIC, "uk", {"pl": SUMMARY_PL}, actor="anna.admin", now=later)
    attempts = fake.attempts(leaving.chat)
    assert await announce_next(sessions, telegram_app.state.services.published_now) == 1
    await staying.received()
    assert fake.attempts(leaving.chat) == attempts
    async with sessions() as session, session.begin():
        assert await purge_ended(session, ended_before=utcnow() - timedelta(days=1)) == 0, "kept a while"
        assert await purge_ended(session, ended_before=utcnow() + timedelta(days=1)) == 1


async def test_forget_removes_the_subscriptions_too(
    http: httpx.AsyncClient, telegram_app: FastAPI, sessions: Any, fake: FakeTelegram
) -> None:
    someone = new_person(http, telegram_app, sessions, fake, "en")
    await _subscribe_through_the_bot(someone)
    (confirm,) = await someone.say("/forget")
    assert "the topics you follow" in confirm["text"]
    await someone.press("forget:yes")
    async with sessions() as session:
        rows = (
            await session.exec(select(Subscription).where(Subscription.recipient == str(someone.chat)))
        ).all()
    assert rows == []


async def test_summaries_are_one_line_each_and_the_polish_one_is_required() -> None:
    assert clean_summaries({"pl": " Nowa  opłata\n od stycznia ", "uk": "", "en": None}) == {
        "pl": "Nowa opłata od stycznia"
    }
    with pytest.raises(InvalidChange, match="Polish"):
        clean_summaries({"uk": "Нова плата"})
    with pytest.raises(InvalidChange, match="at most"):
        clean_summaries({"pl": "x" * 201})
    with pytest.raises(InvalidChange, match="unknown language"):
        clean_summaries({"pl": "ok", "de": "neu"})


async def test_one_person_follows_a_topic_once_and_at_most_so_many(sessions: Any) -> None:
    async with sessions() as session, session.begin():
        assert await subscribe(session, Channel.WEB, "web-person", TOPIC, "pl") is True
        assert await subscribe(session, Channel.WEB, "web-person", TOPIC, "uk") is False, "already"
        assert await topics_of(session, Channel.WEB, "web-person") == [TOPIC]
        language = (
            await session.exec(select(Subscription.language).where(Subscription.recipient == "web-person"))
        ).one()
        assert language == "uk", "written to in the language they use now"
        for number in range(MAX_SUBSCRIPTIONS - 1):
            await subscribe(session, Channel.WEB, "web-person", f"topic-{number}", "pl")
        with pytest.raises(TooManySubscriptions):
            await subscribe(session, Channel.WEB, "web-person", "one-too-many", "pl")


async def test_the_web_chat_offers_it_under_an_answer_too(
    http: httpx.AsyncClient, sessions: Any, telegram_app: FastAPI
) -> None:
    ask = {"action": "choose_topic", "value": TOPIC, "language": "en"}
    reply = (await http.post("/api/v1/ask", json=ask)).json()
    offered = {"action": "subscribe", "value": TOPIC, "label": say("en", "Notify me when this changes")}
    assert offered in reply["actions"]
    subscribe_to = {
        "action": "subscribe",
        "value": TOPIC,
        "language": "en",
        "session_id": reply["session_id"],
    }
    done = (await http.post("/api/v1/ask", json=subscribe_to)).json()
    assert done["kind"] == "subscription"
    assert any(a["action"] == "unsubscribe" and a["value"] == TOPIC for a in done["actions"])
    async with sessions() as session:
        assert await topics_of(session, Channel.WEB, reply["session_id"]) == [TOPIC]

    # While the chat is open, the change arrives in it like a consultant's message does.
    async with sessions() as session, session.begin():
        await mark_change(session, TOPIC, "pl", {"pl": SUMMARY_PL}, actor="anna.admin")
    services = telegram_app.state.services
    assert await announce_next(sessions, services.published_now) == 1
    await drain(sessions, services.deliverers)
    messages = (await http.get(f"/api/v1/conversations/{reply['session_id']}/messages")).json()["items"]
    (notice,) = [m for m in messages if m["text"].startswith("The answer about “")]
    assert notice["author"] == "bot" and "changed on" in notice["text"]
    assert [(a["action"], a["value"]) for a in notice["actions"]] == [
        ("full_answer", TOPIC),
        ("unsubscribe", TOPIC),
    ]
