"""The Telegram bot end to end: the real aiogram client against a local fake of the Bot API, updates
through the webhook, replies in the webhook's response or through the outbox."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.conversation import ONLY_TEXT_TEXT
from cases.service import import_cases
from infoopt.core.clock import utcnow
from infoopt.core.i18n import say
from infoopt.core.languages import Channel
from infoopt.core.settings import Settings
from tests.conftest import TELEGRAM_WEBHOOK_SECRET as SECRET
from tests.conftest import bearer, rolled_back
from tests.fake_telegram import FakeTelegram, Updates
from tests.telegram_chat import Bot, buttons
from tickets.conversations import find_conversation, messages_after
from tickets.models import OutboxJob, OutboxStatus, Ticket, TicketMessage
from tickets.outbox import drain

pytestmark = pytest.mark.usefixtures("synced_kb", "desk_staff")
CASE_BATCH = [
    {
        "case_number": "WSC-II-S.6151.1234.2026",
        "date_of_birth": "1990-05-17",
        "stage": "missing_documents",
        "stage_date": "2026-11-20",
    }
]


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


@pytest.fixture
def updates() -> Updates:
    return Updates(start=random.randint(10_000_000, 2_000_000_000))


@pytest.fixture
def chat() -> int:
    return random.randint(100_000_000, 999_999_999)


@pytest.fixture
def through_outbox(telegram_app: FastAPI) -> Iterator[None]:
    """Every reply through the outbox for one test (TELEGRAM_REPLY_IN_WEBHOOK=false), to test its sending."""
    channel = telegram_app.state.services.telegram
    channel.reply_in_webhook = False
    yield
    channel.reply_in_webhook = True


@pytest.fixture
def person(
    http: httpx.AsyncClient,
    telegram_app: FastAPI,
    sessions: Any,
    fake: FakeTelegram,
    updates: Updates,
    chat: int,
) -> Bot:
    return Bot(http, telegram_app, sessions, fake, updates, chat)


async def test_from_start_to_a_consultants_answer_and_a_rating(person: Bot, http: httpx.AsyncClient) -> None:
    (greeting,) = await person.say("/start")
    assert "language:uk" in buttons(greeting) and "language:pl" in buttons(greeting)
    labels = [b["text"] for row in greeting["reply_markup"]["inline_keyboard"] for b in row]
    assert "✓ Українська" in labels, "pre-selected from the Telegram language"
    await person.press("language:uk")

    (answer,) = await person.say("скільки коштує карта побиту і куди платити")
    assert buttons(answer) == [
        "full_answer:fees",
        "subscribe:fees",
        "helpful:fees",
        "not_helpful:fees",
        "consultant:",
    ]
    assert answer["parse_mode"] == "HTML"
    (full, *_rest) = await person.press("full_answer:fees")
    assert "<b>" in full["text"] or "•" in full["text"]
    assert all(len(m["text"]) <= 4096 for m in [full, *_rest])

    answered_before = sum(1 for call in person.fake.calls if call.method == "answerCallbackQuery")
    (sorry,) = await person.press("not_helpful:fees")
    assert "consultant:" in buttons(sorry)
    assert sum(1 for call in person.fake.calls if call.method == "answerCallbackQuery") == answered_before + 1

    (offices,) = await person.press("consultant:")
    assert "choose_office:TARNOW" in buttons(offices) and "cancel:" in buttons(offices)
    (consent,) = await person.press("choose_office:TARNOW")
    assert "consent:yes" in buttons(consent), "the question already said enough: no description asked"
    (done,) = await person.press("consent:yes")
    number = re.search(r"TAR-\d{4}-\d{6}", done["text"])
    assert number is not None and f"close_ticket:{number.group(0)}" in buttons(done)

    (added,) = await person.say("Ще: карта побуту дійсна до 2027 року")
    assert number.group(0) in added["text"]

    tomasz = await bearer(http, "tomasz.tarnow")
    items = (await http.get("/api/v1/tickets", headers=tomasz)).json()["items"]
    ticket = next(item for item in items if item["number"] == number.group(0))
    assert ticket["channel"] == "telegram" and ticket["language"] == "uk"
    await http.post(f"/api/v1/tickets/{ticket['id']}/claim", headers=tomasz)
    await http.post(
        f"/api/v1/tickets/{ticket['id']}/reply",
        json={"text": "Добрий день! Повідомте воєводу <протягом 15 днів>."},
        headers=tomasz,
    )
    (reply,) = await person.received()
    assert reply["text"].startswith("<b>") and "Tarnów" in reply["text"]
    assert "&lt;протягом 15 днів&gt;" in reply["text"], "the consultant's text is escaped for Telegram's HTML"
    await http.post(f"/api/v1/tickets/{ticket['id']}/resolve", headers=tomasz)
    (rating,) = await person.received()
    assert buttons(rating) == [f"rate:{n}" for n in range(1, 6)]
    (thanks,) = await person.press("rate:5")
    assert number.group(0) in thanks["text"]


async def test_a_duplicate_update_is_handled_once(person: Bot, sessions: Any) -> None:
    """Telegram sends an update again when our response did not reach it: the turn is not taken twice,
    and the reply that rode in the lost response goes back in the new one (nothing lost, nothing
    doubled)."""
    update = person.updates.message(person.chat, "ile kosztuje karta pobytu")
    lost = await person.post(update, reaches_telegram=False)
    assert lost.status_code == 200 and lost.json()["method"] == "sendMessage"
    again = await person.post(update)
    assert again.status_code == 200 and again.json() == lost.json()
    assert len(await person.received()) == 1
    async with sessions() as session:
        conversation = await find_conversation(session, Channel.TELEGRAM, str(person.chat))
        assert conversation is not None
        assert len(await messages_after(session, conversation)) == 2, "one question, one answer"


@pytest.mark.usefixtures("through_outbox")
async def test_a_duplicate_update_whose_reply_is_queued_is_handled_once(person: Bot) -> None:
    update = person.updates.message(person.chat, "ile kosztuje karta pobytu")
    assert (await person.post(update)).status_code == 200
    assert (await person.post(update)).json() == {"ok": True}
    assert len(await person.received()) == 1


def count_redis_commands(person: Bot, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The commands of each round trip this app makes to Redis from now until `monkeypatch.undo()`."""
    from redis.asyncio.connection import AbstractConnection

    sent: list[list[str]] = []
    real = AbstractConnection.send_packed_command
    pool = person.app.state.services.redis.connection_pool  # not another app's (a live server's worker)

    async def counted(connection: Any, command: Any, *args: Any, **options: Any) -> None:
        packed = b"".join(command) if isinstance(command, list) else bytes(command)
        if connection in pool._in_use_connections:
            sent.append([name.decode() for name in re.findall(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n", packed)])
        await real(connection, command, *args, **options)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    return sent


async def test_a_question_costs_four_round_trips_to_redis(
    person: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admission (the update seen before? the person's limit) in one, the person's lock and state in one
    each way, and a sending moment for the reply in the webhook's response: no more, so that Redis is not
    what a turn waits on. No outbox job, so no wake-up."""
    from infoopt.core.metrics import REGISTRY

    warm = Bot(person.http, person.app, person.sessions, person.fake, person.updates, person.chat + 1)
    await warm.say("/start")  # a first turn loads the scripts into Redis
    counted = REGISTRY.get_sample_value("infoopt_telegram_webhook_replies_total") or 0.0
    sent = count_redis_commands(person, monkeypatch)
    response = await person.post(person.updates.message(person.chat, "ile kosztuje karta pobytu"))
    monkeypatch.undo()
    assert response.status_code == 200
    assert sent == [["EVALSHA"], ["EVALSHA"], ["EVALSHA"], ["EVALSHA"]], sent
    assert REGISTRY.get_sample_value("infoopt_telegram_webhook_replies_total") == counted + 1
    body = response.json()
    assert body["method"] == "sendMessage", "the answer rides back in the response"
    assert body["chat_id"] == person.chat and body["parse_mode"] == "HTML"
    assert body["link_preview_options"] == {"is_disabled": True}
    (answer,) = await person.received()
    assert "full_answer:fees" in buttons(answer)


async def test_a_returning_persons_question_costs_two_statements_on_postgresql(
    person: Bot, pg_engine: AsyncEngine
) -> None:
    """Their conversation with the ticket they may have in play, in one query; the two transcript lines
    with the conversation's own update, in one statement; both straight through asyncpg, and nothing
    through SQLAlchemy (no BEGIN or COMMIT either: in production each statement is atomic on its own; here
    the test's savepoint is all there is around them). No outbox job: the answer rides back in the
    response."""
    from sqlalchemy import event

    await person.say("ile kosztuje karta pobytu")
    await asyncio.sleep(1.0)  # one message a second to a chat: the next answer may ride the response
    through_sqlalchemy: list[str] = []
    statements: list[str] = []

    def note(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            through_sqlalchemy.append(" ".join(statement.split()))

    def logged(record: Any) -> None:
        statements.append(" ".join(record.query.split()))

    async with person.sessions() as session:  # the test's one connection, under every session
        driver = (await (await session.connection()).get_raw_connection()).driver_connection
    assert driver is not None
    event.listen(pg_engine.sync_engine, "before_cursor_execute", note)
    driver.add_query_logger(logged)
    try:
        # The same topic again: its article is in the cache now (each test starts with an empty one).
        response = await person.post(person.updates.message(person.chat, "a ile kosztuje karta pobytu?"))
    finally:
        event.remove(pg_engine.sync_engine, "before_cursor_execute", note)
        driver.remove_query_logger(logged)
    assert through_sqlalchemy == []
    assert response.status_code == 200
    assert len(statements) == 2, [statement[:70] for statement in statements]
    assert statements[0].startswith("SELECT conversation.id") and "FROM ticket" in statements[0]
    assert statements[1].startswith("WITH touched AS (UPDATE conversation")
    assert "INSERT INTO conversation_message" in statements[1]
    async with person.sessions() as session:
        conversation = await find_conversation(session, Channel.TELEGRAM, str(person.chat))
        assert conversation is not None
        transcript = await messages_after(session, conversation)
    assert [message.author.value for message in transcript] == ["person", "bot", "person", "bot"]
    assert transcript[-1].created_at == conversation.last_message_at


async def test_a_reply_the_chats_limit_holds_back_waits_in_the_outbox(person: Bot, sessions: Any) -> None:
    """One message a second to a chat: a second question right after the first is answered through the
    outbox at its moment, after the first answer, and nothing goes out twice."""
    first = await person.post(person.updates.message(person.chat, "ile kosztuje karta pobytu"))
    second = await person.post(person.updates.message(person.chat, "jak zmienić pracodawcę"))
    assert first.json()["method"] == "sendMessage"
    assert second.json() == {"ok": True}
    async with sessions() as session:
        (job,) = (await session.exec(select(OutboxJob).where(OutboxJob.recipient == str(person.chat)))).all()
    assert job.status is OutboxStatus.PENDING
    fees, employer = await person.received()
    assert "full_answer:fees" in buttons(fees)
    assert "full_answer:fees" not in buttons(employer)
    assert await person.received() == []


@pytest.mark.usefixtures("through_outbox")
async def test_through_the_outbox_a_question_costs_four_round_trips_to_redis(
    person: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With TELEGRAM_REPLY_IN_WEBHOOK=false: admission, the state taken and saved, and the outbox's
    wake-up."""
    await person.say("/start")  # a first turn loads the scripts into Redis
    sent = count_redis_commands(person, monkeypatch)
    response = await person.post(person.updates.message(person.chat, "ile kosztuje karta pobytu"))
    monkeypatch.undo()
    assert response.status_code == 200
    assert sent == [["EVALSHA"], ["EVALSHA"], ["EVALSHA"], ["LPUSH", "LTRIM"]], sent
    assert response.json() == {"ok": True}
    (answer,) = await person.received()
    assert "full_answer:fees" in buttons(answer)


async def test_reading_telegrams_answers_builds_no_model_class_after_a_garbage_collection(
    person: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiogram reads each answer as `Response[Message]`, a pydantic generic kept only weakly: without a
    strong reference every collection would make the next answer build the class and its schema again."""
    import gc

    from pydantic._internal import _generics

    built: list[str] = []
    real = _generics.create_generic_submodel

    def counted(name: str, *args: Any) -> Any:
        built.append(name)
        return real(name, *args)

    monkeypatch.setattr(_generics, "create_generic_submodel", counted)
    gc.collect()
    (answer,) = await person.say("ile kosztuje karta pobytu")  # the outbox reads the answer to sendMessage
    gc.collect()
    await person.press("helpful:fees")  # the app reads the answer to answerCallbackQuery
    assert "full_answer:fees" in buttons(answer)
    assert built == []


def test_no_filter_of_the_bot_runs_in_a_thread() -> None:
    """aiogram runs a filter that is not a coroutine in a thread, one hop for every update and handler."""
    from bot.telegram.handlers import router

    def every(router: Any) -> Any:
        yield router
        for sub in router.sub_routers:
            yield from every(sub)

    filters = [
        check
        for each in every(router)
        for observer in each.observers.values()
        for handler in [observer._handler, *observer.handlers]
        for check in handler.filters or []
    ]
    assert len(filters) > 5
    assert all(check.awaitable for check in filters), [
        check.callback for check in filters if not check.awaitable
    ]


async def test_the_secret_is_checked_and_a_malformed_update_is_acknowledged(person: Bot) -> None:
    assert (await person.post(person.updates.message(person.chat, "hi"), secret=None)).status_code == 401
    assert (await person.post(person.updates.message(person.chat, "hi"), secret="wrong")).status_code == 403
    for body in ({"update_id": "x"}, {"nothing": True}, [1, 2]):
        response = await person.post(body)  # type: ignore[arg-type]
        assert response.status_code == 200
    garbage = await person.http.post(
        "/telegram/webhook", content=b"{not json", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert garbage.status_code == 200
    assert await person.received() == []


async def test_messages_that_are_not_text_get_a_clear_reply(person: Bot, sessions: Any) -> None:
    (sticker,) = await person.say(
        "",
        sticker={
            "file_id": "s1",
            "file_unique_id": "u",
            "type": "regular",
            "width": 1,
            "height": 1,
            "is_animated": False,
            "is_video": False,
        },
    )
    assert sticker["text"] == say("uk", ONLY_TEXT_TEXT), "in the language of the person's Telegram"
    (voice,) = await person.say("", voice={"file_id": "v1", "file_unique_id": "u", "duration": 3})
    assert "12 210 20 20" in voice["text"]
    photo = [
        {"file_id": "p-small", "file_unique_id": "a", "width": 90, "height": 90, "file_size": 1000},
        {"file_id": "p-large", "file_unique_id": "b", "width": 1280, "height": 960, "file_size": 90_000},
    ]
    (no_ticket,) = await person.say("", photo=photo)
    assert "consultant:" in buttons(no_ticket)

    await person.press("consultant:")
    await person.press("choose_office:TARNOW")
    await person.say("Прошу перевірити мій документ, у мене питання щодо заяви")
    (done,) = await person.press("consent:yes")
    (added,) = await person.say("", photo=photo, caption="Ось моя заява")
    number = re.search(r"TAR-\d{4}-\d{6}", done["text"])
    assert number is not None and number.group(0) in added["text"]
    async with sessions() as session:
        ticket = (await session.exec(select(Ticket).where(Ticket.number == number.group(0)))).one()
        files = (await session.exec(select(TicketMessage).where(TicketMessage.ticket_id == ticket.id))).all()
    assert [(m.text, (m.attachment or {}).get("file_id")) for m in files] == [("Ось моя заява", "p-large")]
    tomasz = await bearer(person.http, "tomasz.tarnow")
    download = await person.http.get(f"/staff/tickets/{ticket.id}/files/{files[0].id}", headers=tomasz)
    assert download.status_code == 200 and download.content == FakeTelegram.FILE_BYTES
    assert download.headers["content-disposition"].startswith("attachment;")
    rafal = await bearer(person.http, "rafal.rondo")
    refused = await person.http.get(f"/staff/tickets/{ticket.id}/files/{files[0].id}", headers=rafal)
    assert refused.status_code == 403, "another point's consultant gets no file"
    detail = (await person.http.get(f"/api/v1/tickets/{ticket.id}", headers=tomasz)).json()
    assert detail["messages"][0]["attachment"] == {
        "kind": "photo",
        "name": detail["messages"][0]["attachment"]["name"],
        "size": 90000,
        "mime": "image/jpeg",
    }
    big = [
        {
            "file_id": "d1",
            "file_unique_id": "d",
            "file_name": "scan.pdf",
            "mime_type": "application/pdf",
            "file_size": 30_000_000,
        }
    ]
    (too_large,) = await person.say("", document=big[0])
    assert "20" in too_large["text"]


@pytest.mark.usefixtures("through_outbox")
async def test_telegrams_retry_after_is_honoured(person: Bot, sessions: Any) -> None:
    person.fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", 7)
    await person.post(person.updates.message(person.chat, "ile kosztuje karta pobytu"))
    await person.deliver()
    assert person.fake.sent(person.chat) == [], "refused once"
    async with sessions() as session:
        (job,) = (await session.exec(select(OutboxJob).where(OutboxJob.recipient == str(person.chat)))).all()
    assert job.status is OutboxStatus.PENDING and job.next_attempt_at >= utcnow() + timedelta(seconds=5)
    await person.deliver()
    assert person.fake.sent(person.chat) == [], "not before retry_after"
    await person.deliver(now=lambda: utcnow() + timedelta(seconds=8))
    assert len(person.fake.sent(person.chat)) == 1


@pytest.mark.usefixtures("through_outbox")
async def test_a_telegram_server_error_is_retried_later_and_delivered_once(
    person: Bot, sessions: Any
) -> None:
    person.fake.fail_next("sendMessage", 502, "Bad Gateway")
    person.fake.fail_next("sendMessage", 500, "Internal Server Error")
    await person.post(person.updates.message(person.chat, "ile kosztuje karta pobytu"))
    await person.deliver()
    async with sessions() as session:
        (job,) = (await session.exec(select(OutboxJob).where(OutboxJob.recipient == str(person.chat)))).all()
    assert (
        job.status is OutboxStatus.PENDING and job.attempts == 1 and "Bad Gateway" in (job.last_error or "")
    )
    await person.deliver(now=lambda: utcnow() + timedelta(minutes=5))
    await person.deliver(now=lambda: utcnow() + timedelta(minutes=30))
    assert len(person.fake.sent(person.chat)) == 1, "delivered once, after two server errors"
    assert person.fake.attempts(person.chat) == 3


async def test_a_busy_database_makes_telegram_send_the_update_again(
    person: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def pool_exhausted(*update: object) -> None:
        raise PoolTimeout("QueuePool limit of size 10 overflow 10 reached, connection timed out")

    monkeypatch.setattr(person.app.state.services.telegram, "process", pool_exhausted)
    response = await person.post(person.updates.message(person.chat, "ile kosztuje karta pobytu"))
    assert response.status_code == 503, "a 200 would lose what the person wrote"


@pytest.mark.usefixtures("through_outbox")
async def test_a_person_who_blocked_the_bot_is_marked_and_not_retried(person: Bot, sessions: Any) -> None:
    person.fake.blocked_chats.add(person.chat)
    await person.post(person.updates.message(person.chat, "ile kosztuje karta pobytu"))
    await person.deliver()
    async with sessions() as session:
        conversation = await find_conversation(session, Channel.TELEGRAM, str(person.chat))
        assert conversation is not None and conversation.blocked_at is not None
    assert person.fake.attempts(person.chat) == 1
    await person.deliver(now=lambda: utcnow() + timedelta(hours=1))
    assert person.fake.attempts(person.chat) == 1, "no retry storm"
    person.fake.blocked_chats.discard(person.chat)
    await person.post(person.updates.message(person.chat, "dziękuję"))
    await person.deliver()
    assert len(person.fake.sent(person.chat)) == 1, "writing again unblocks"


async def test_in_a_group_the_bot_points_to_a_private_chat_and_is_otherwise_silent(person: Bot) -> None:
    await person.post(person.updates.in_group(person.chat, "скільки коштує карта"))
    await person.post(person.updates.in_group(person.chat, "/start"))
    await person.deliver()
    group_messages = person.fake.sent(-person.chat)
    pointer = say("uk", "I answer only in a private chat. Write to me directly, please.")
    assert [message["text"] for message in group_messages] == [pointer], (
        "one pointer for the command, silence otherwise"
    )


async def test_commands_answer_in_the_persons_language(person: Bot) -> None:
    await person.press("language:ru")
    (topics,) = await person.say("/topics")
    assert "topics:ukraine" in buttons(topics)
    (ukraine,) = await person.press("topics:ukraine")
    assert "choose_topic:cukr_card" in buttons(ukraine)
    (privacy,) = await person.say("/privacy")
    assert "forget:" in buttons(privacy)
    (confirm,) = await person.say("/forget")
    assert "forget:yes" in buttons(confirm)
    (gone,) = await person.press("forget:yes")
    assert gone["text"]
    (status,) = await person.say("/status")
    assert "номер" in status["text"] and "cancel:" in buttons(status)


async def test_status_looks_up_the_persons_case_in_their_language(person: Bot, sessions: Any) -> None:
    secret = person.app.state.services.settings.secret_key.get_secret_value()
    async with sessions() as session:
        await import_cases(session, CASE_BATCH, secret=secret)
        await session.commit()
    await person.press("language:ru")
    (ask_number,) = await person.say("/status")
    assert "WSC-II-S.6151.1234.2026" in ask_number["text"], "an example of the number"
    (ask_birth,) = await person.say("wsc ii s 6151 1234 2026")
    assert "дата рождения" in ask_birth["text"]
    (stage,) = await person.say("17.05.1990")
    assert "Дело WSC-II-S.6151.1234.2026: запрос недостающих документов (с 20 ноября 2026" in stage["text"]
    assert buttons(stage) == ["full_answer:missing_documents_summons", "consultant:"]
    await person.press("case_status:")
    await person.say("WSC-II-S.6151.1234.2026")
    (not_found,) = await person.say("18.05.1990")
    await person.press("case_status:")
    await person.say("WSC-II-S.6151.4321.2026")
    (unknown,) = await person.say("17.05.1990")
    assert not_found["text"] == unknown["text"] and "не нашёл дела" in unknown["text"]
    assert buttons(not_found) == buttons(unknown) == ["case_status:", "consultant:"]


async def test_set_webhook_registers_the_public_url_with_the_secret(
    fake: FakeTelegram, settings: Settings
) -> None:
    import asyncio
    import os
    import sys

    environment = {
        **os.environ,
        "INFOOPT_ENV": "test",
        "INFOOPT_DATABASE_URL": settings.database_url,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE": fake.url,
        "INFOOPT_PUBLIC_URL": "https://infoopt.example.gov.pl/",
        "TELEGRAM_WEBHOOK_MAX_CONNECTIONS": "20",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infoopt.cli",
        "bot",
        "set-webhook",
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode()
    (registered,) = [call.params for call in fake.calls if call.method == "setWebhook"]
    assert registered["url"] == "https://infoopt.example.gov.pl/telegram/webhook"
    assert registered["secret_token"] == SECRET
    assert int(registered["max_connections"]) == 20, "no more requests at once than the pools can serve"
    menus = [call.params for call in fake.calls if call.method == "setMyCommands"]
    assert len(menus) == 4, "the command menu in four languages"


async def test_too_many_messages_get_a_polite_word_not_an_answer(person: Bot, telegram_app: FastAPI) -> None:
    limit = telegram_app.state.services.settings.ask_limit_per_minute
    telegram_app.state.services.settings.ask_limit_per_minute = 3
    try:
        for _ in range(4):
            await person.post(person.updates.message(person.chat, "ile kosztuje karta pobytu"))
        messages = await person.received()
    finally:
        telegram_app.state.services.settings.ask_limit_per_minute = limit
    assert len(messages) == 4
    assert messages[-1]["text"] == say("uk", "Too many questions in a short time — please wait a minute.")


async def test_an_edited_message_is_read_as_the_new_words(person: Bot) -> None:
    update = person.updates.message(person.chat, "ile kosztuje karta pobytu")
    edited = {"update_id": update["update_id"] + 1, "edited_message": {**update["message"], "edit_date": 1}}
    assert (await person.post(edited)).status_code == 200
    (answer,) = await person.received()
    assert "full_answer:fees" in buttons(answer)


async def test_long_polling_answers_like_the_webhook(
    telegram_app: FastAPI, sessions: Any, fake: FakeTelegram, updates: Updates, chat: int
) -> None:
    import asyncio

    from bot.telegram.channel import poll

    channel = telegram_app.state.services.telegram
    fake.pending_updates.append(updates.message(chat, "ile kosztuje karta pobytu"))
    asked_before = sum(1 for call in fake.calls if call.method == "getUpdates")
    polling = asyncio.create_task(poll(channel))
    try:  # the update is handled once the bot asks for the next ones
        for _ in range(200):
            await asyncio.sleep(0.05)
            if sum(1 for call in fake.calls if call.method == "getUpdates") >= asked_before + 2:
                break
    finally:
        polling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await polling
    await drain(sessions, telegram_app.state.services.deliverers)
    (answer,) = fake.sent(chat)
    assert "full_answer:fees" in buttons(answer)
    assert any(call.method == "deleteWebhook" for call in fake.calls), "polling replaces the webhook"
