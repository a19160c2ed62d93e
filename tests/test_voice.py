"""The voice line end to end: Twilio's webhooks signed with the real RequestValidator, the call followed
through the TwiML's own action URLs, the SMS arriving at a local fake of Twilio's REST API."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from aiohttp import web
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from twilio.request_validator import RequestValidator

from bot.voice.calls import CallStore
from bot.voice.routes import _spoken_yes_or_no
from cases.service import import_cases
from infoopt.app import create_app
from infoopt.core.clock import utcnow
from infoopt.core.i18n import say
from infoopt.core.languages import Channel
from infoopt.core.settings import Settings, TwilioSettings
from tests.conftest import rolled_back
from tests.fake_telegram import serve_on_loopback
from tickets.models import OutboxJob, OutboxStatus, Ticket, TicketPriority
from tickets.outbox import drain, enqueue

pytestmark = pytest.mark.usefixtures("synced_kb")
TOKEN = "twilio-auth-token-for-the-tests-0123"
PUBLIC = "https://infoopt.example.gov.pl"
VERBS = {"Response", "Say", "Gather", "Hangup", "Redirect", "Dial", "Number", "Pause", "Play"}


class FakeTwilio:
    """Twilio's REST API as far as sending an SMS goes: records the messages."""

    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []
        self.failures: list[tuple[int, int, str]] = []
        self.attempts = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._message)
        self._runner, self.url = await serve_on_loopback(app)

    def fail_next(self, status: int, code: int, message: str) -> None:
        """Answer the next SMS with Twilio's error instead of accepting it."""
        self.failures.append((status, code, message))

    async def _message(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.attempts += 1
        if self.failures:
            status, code, message = self.failures.pop(0)
            return web.json_response({"code": code, "message": message, "status": status}, status=status)
        self.messages.append(form)
        return web.json_response(
            {
                "sid": f"SM{len(self.messages):032d}",
                "status": "queued",
                "to": form.get("To"),
                "body": form.get("Body"),
            },
            status=201,
        )

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


@pytest.fixture(scope="module")
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    server = FakeTwilio()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def voice_app(settings: Settings, fake_twilio: FakeTwilio) -> AsyncIterator[FastAPI]:
    configured = settings.model_copy(
        update={
            "public_url": PUBLIC,
            "twilio": TwilioSettings(
                account_sid="AC" + "0" * 32,
                auth_token=SecretStr(TOKEN),
                from_number="+48120000000",
                api_base=fake_twilio.url,
            ),
        }
    )
    application = create_app(configured)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def sessions(
    voice_app: FastAPI, pg_engine: AsyncEngine
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """This app's database for one test, rolled back after."""
    async with rolled_back(voice_app, pg_engine) as factory:
        yield factory


class Call:
    """A caller: posts what Twilio would post, signed, and follows the TwiML's action URLs."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.sid = f"CA{random.getrandbits(128):032x}"
        self.caller = f"+48600{random.randint(100000, 999999)}"
        self.action = "/twilio/voice"

    async def post(self, path: str, params: dict[str, str], *, sign: bool = True) -> ET.Element:
        params = {"CallSid": self.sid, "From": self.caller, "To": "+48122102020", **params}
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params) if sign else "forged"
        response = await self.http.post(path, data=params, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        root = ET.fromstring(response.text)  # noqa: S314 - our own TwiML under test
        assert root.tag == "Response" and {element.tag for element in root.iter()} <= VERBS, response.text
        gather = root.find("Gather")
        if gather is not None:
            self.action = urljoin(path, gather.get("action", path))
        return root

    async def next(self, **params: str) -> ET.Element:
        return await self.post(self.action, params)


def spoken(root: ET.Element) -> str:
    return " ".join(say.text or "" for say in root.iter("Say"))


@pytest.fixture
async def call(voice_app: FastAPI, sessions: Any) -> AsyncIterator[Call]:
    transport = httpx.ASGITransport(app=voice_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Call(http)


async def test_a_caller_hears_the_answer_gets_the_sms_and_reaches_a_consultant(
    call: Call, voice_app: FastAPI, sessions: Any, fake_twilio: FakeTwilio
) -> None:
    menu = await call.post("/twilio/voice", {})
    assert menu.find("Gather") is not None and "INFO.OPT" in spoken(menu)
    question = await call.next(Digits="2")
    gather = question.find("Gather")
    assert (
        gather is not None and gather.get("language") == "uk-UA" and "speech" in (gather.get("input") or "")
    )
    assert {say.get("voice") for say in question.iter("Say")} == {"Google.uk-UA-Standard-A"}
    assert "MOS" in (gather.get("hints") or ""), "the topics' titles help the recogniser"

    answer = await call.next(SpeechResult="скільки коштує карта побиту куди платити")
    words = spoken(answer)
    assert "http" not in words and "](" not in words and "**" not in words
    assert "злот" in words, "amounts said as words of the language"
    sms = await call.next(Digits="3")
    assert say("uk", "I am sending the answer by SMS to the number you are calling from.") in spoken(sms)
    await drain(sessions, voice_app.state.services.deliverers)
    (message,) = [m for m in fake_twilio.messages if m["To"] == call.caller]
    assert "https://" in message["Body"] and message["From"] == "+48120000000"
    again = await call.next(Digits="3")
    await drain(sessions, voice_app.state.services.deliverers)
    assert len([m for m in fake_twilio.messages if m["To"] == call.caller]) == 1, (
        "one SMS, however often 3 is pressed"
    )
    assert again.find("Gather") is not None

    offices = await call.next(Digits="0")
    assert "Tarnów" in spoken(offices)
    tarnow_digit = next(
        digit
        for digit in "12345678"
        if f"{digit}: Tarnów" in spoken(offices) or f"{digit}: Тарнів" in spoken(offices)
    )
    consent = await call.next(Digits=tarnow_digit)
    assert "1:" in spoken(consent)
    done = await call.next(Digits="1")
    assert done.find("Hangup") is not None
    async with sessions() as session:
        ticket = (await session.exec(select(Ticket).where(Ticket.contact == call.caller))).one()
    assert ticket.channel.value == "voice" and ticket.office_code == "TARNOW" and ticket.language == "uk"
    assert ticket.priority is TicketPriority.HIGH, "a caller waiting for a call back goes first"
    assert ticket.number in spoken(done).replace(" ", "") or ticket.number.split("-")[-1].lstrip(
        "0"
    ) in spoken(done)


async def test_when_unsure_the_phone_asks_one_yes_or_no_question_said_or_keyed(
    call: Call, voice_app: FastAPI
) -> None:
    """Issue 15: on the phone one confirmation of the likeliest topic, not a list of three to listen to;
    a spoken yes gives the answer, a no asks for the question in other words."""
    await call.post("/twilio/voice", {})
    await call.next(Digits="4")
    unsure = "i applied but there's no decision yet am i allowed to work in the meantime"
    confirm = await call.next(SpeechResult=unsure)
    words = spoken(confirm)
    assert "Do you mean: " in words, words
    title = words.split("Do you mean: ", 1)[1].split("?", 1)[0]
    assert "Press 1: yes." in words and "Press 2: no, I will ask in other words." in words
    assert "Press 3" not in words, "one topic to confirm, not a list"

    answer = await call.next(SpeechResult="Yes.")
    assert "Press 3: get the full answer by SMS." in spoken(answer)
    state = await CallStore(voice_app.state.services.redis).load(call.sid)
    assert state is not None and state.sms_text.startswith(title), "the confirmed topic is answered"

    await call.next(Digits="2")
    await call.next(SpeechResult=unsure)
    again = await call.next(Digits="2")  # no: not that topic
    assert "Ask your question in a few words" in spoken(again)
    question = again.find("Gather")
    assert question is not None and "speech" in (question.get("input") or "")


def test_only_a_short_yes_or_no_counts_as_one() -> None:
    assert _spoken_yes_or_no("Tak, tak.", "pl") == "1"
    assert _spoken_yes_or_no("ні", "uk") == "2"
    assert _spoken_yes_or_no("да конечно", "ru") == "1"
    assert _spoken_yes_or_no("no", "pl") == "2", "English words are understood in every language"
    assert _spoken_yes_or_no("nie wiem jak złożyć wniosek o kartę", "pl") == "", "a question in other words"
    assert _spoken_yes_or_no("karta pobytu", "pl") == ""


async def test_a_forged_signature_is_refused(call: Call) -> None:
    params = {"CallSid": call.sid, "From": call.caller}
    response = await call.http.post("/twilio/voice", data=params, headers={"X-Twilio-Signature": "forged"})
    assert response.status_code == 403
    response = await call.http.post("/twilio/voice", data=params)
    assert response.status_code == 403


async def test_silence_and_wrong_keys_get_a_reprompt_then_a_consultant(call: Call) -> None:
    await call.post("/twilio/voice", {})
    await call.next(Digits="1")
    first = await call.next()
    assert first.find("Gather") is not None and spoken(first)
    await call.next(Digits="7")
    last = await call.next()
    assert "0" in spoken(last) and last.find("Gather") is not None


async def test_a_call_the_app_does_not_know_starts_over_politely(call: Call) -> None:
    unknown = await call.post("/twilio/voice/turn", {"SpeechResult": "halo"})
    assert unknown.find("Gather") is not None and "INFO.OPT" in spoken(unknown)


async def test_saying_the_language_works_too(call: Call) -> None:
    await call.post("/twilio/voice", {})
    question = await call.next(SpeechResult="English please")
    gather = question.find("Gather")
    assert gather is not None and gather.get("language") == "en-US"


async def test_during_opening_hours_the_caller_is_put_through_and_a_missed_transfer_leaves_a_callback(
    call: Call, voice_app: FastAPI, sessions: Any
) -> None:
    from datetime import datetime

    from tickets.models import PidOffice, VoiceCall
    from tickets.offices import WARSAW

    async with sessions() as session:
        office = (await session.exec(select(PidOffice).where(PidOffice.code == "TARNOW"))).one()
        office.phone = "+48146000000"
        session.add(office)
        await session.commit()
    conversation = voice_app.state.services.conversation
    monday_morning = datetime(2026, 12, 7, 10, 0, tzinfo=WARSAW)
    original_now = conversation.now
    conversation.now = lambda: monday_morning
    try:
        await call.post("/twilio/voice", {})
        await call.next(Digits="1")
        listing = await call.next(SpeechResult="chcę rozmawiać z konsultantem")
        tarnow = next(d for d in "12345678" if f"{d}: Tarnów" in spoken(listing))
        described = await call.next(Digits=tarnow)
        if "1:" not in spoken(described):  # asked to describe the question first
            described = await call.next(SpeechResult="potrzebuję pomocy z wnioskiem o kartę pobytu dla żony")
        transfer = await call.next(Digits="1")
    finally:
        conversation.now = original_now
    dial = transfer.find("Dial")
    assert dial is not None and dial.findtext("Number") == "+48146000000"
    assert dial.get("action") == "/twilio/voice/dial"
    missed = await call.post("/twilio/voice/dial", {"DialCallStatus": "no-answer"})
    assert missed.find("Hangup") is not None
    assert spoken(missed) == say(
        "pl",
        "Nobody could answer just now. Your request is saved and a consultant will call you back at this number. Goodbye.",
    )
    await call.post("/twilio/voice/status", {"CallStatus": "completed", "CallDuration": "95"})
    async with sessions() as session:
        record = (await session.exec(select(VoiceCall).where(VoiceCall.call_sid == call.sid))).one()
        ticket = (await session.exec(select(Ticket).where(Ticket.contact == call.caller))).one()
    assert record.outcome.value == "callback" and record.duration_seconds == 95
    assert record.ticket_number == ticket.number and call.caller not in record.caller, "the number is masked"


async def test_a_retried_webhook_gets_the_same_answer_once(call: Call, sessions: Any) -> None:
    from tickets.models import Conversation, ConversationMessage

    await call.post("/twilio/voice", {})
    await call.next(Digits="1")
    params = {
        "CallSid": call.sid,
        "From": call.caller,
        "To": "+48122102020",
        "SpeechResult": "ile kosztuje karta pobytu",
    }
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/voice/turn", params)
    headers = {"X-Twilio-Signature": signature, "I-Twilio-Idempotency-Token": f"retry-{call.sid}"}
    first = await call.http.post("/twilio/voice/turn", data=params, headers=headers)
    second = await call.http.post("/twilio/voice/turn", data=params, headers=headers)
    assert first.status_code == second.status_code == 200 and first.text == second.text
    async with sessions() as session:
        conversation = (
            await session.exec(select(Conversation).where(Conversation.external_id == call.sid))
        ).one()
        said = (
            await session.exec(
                select(ConversationMessage).where(ConversationMessage.conversation_id == conversation.id)
            )
        ).all()
    assert len(said) == 2, "one question and one answer, not two of each"


async def test_a_caller_who_hangs_up_at_the_menu_is_counted_as_abandoned(call: Call, sessions: Any) -> None:
    from tickets.models import VoiceCall

    await call.post("/twilio/voice", {})
    await call.post("/twilio/voice/status", {"CallStatus": "completed", "CallDuration": "4"})
    async with sessions() as session:
        record = (await session.exec(select(VoiceCall).where(VoiceCall.call_sid == call.sid))).one()
    assert record.outcome.value == "abandoned"


async def test_the_dashboard_counts_calls_by_outcome(call: Call, voice_app: FastAPI, sessions: Any) -> None:
    from tickets.stats import Period, voice_calls

    await call.post("/twilio/voice", {})
    await call.post("/twilio/voice/status", {"CallStatus": "completed", "CallDuration": "12"})
    async with sessions() as session:
        calls = await voice_calls(session, Period.last_days(7))
    assert calls.counts["abandoned"] >= 1 and calls.total >= 1 and calls.average_seconds is not None


async def test_a_caller_keys_in_the_case_number_and_date_of_birth_and_hears_the_stage(
    call: Call, voice_app: FastAPI, sessions: Any, fake_twilio: FakeTwilio
) -> None:
    secret = voice_app.state.services.settings.secret_key.get_secret_value()
    async with sessions() as session:
        await import_cases(
            session,
            [
                {
                    "case_number": "WSC-II-P.6151.88.2025",
                    "date_of_birth": "1985-01-02",
                    "stage": "card_ready",
                    "stage_date": "2026-11-28",
                }
            ],
            secret=secret,
        )
        await session.commit()
    await call.post("/twilio/voice", {})
    await call.next(Digits="2")
    key_number = await call.next(SpeechResult="я хочу дізнатися статус своєї справи")
    gather = key_number.find("Gather")
    assert gather is not None and gather.get("input") == "dtmf" and gather.get("finishOnKey") == "#"
    assert "решітку" in spoken(key_number)
    key_birth = await call.next(Digits="6151882025")
    assert "вісьмома цифрами" in spoken(key_birth) and key_birth.find("Gather").get("input") == "dtmf"  # type: ignore[union-attr]
    stage = await call.next(Digits="02011985")
    words = spoken(stage)
    assert "карта побиту готова" in words and "28 листопада 2026" in words and "WSC" not in words
    assert stage.find("Gather").get("input") == "speech dtmf"  # type: ignore[union-attr]
    await call.next(Digits="3")
    await drain(sessions, voice_app.state.services.deliverers)
    (message,) = [m for m in fake_twilio.messages if m["To"] == call.caller]
    assert message["Body"].startswith("WSC-II-P.6151.88.2025\n") and "карта побиту готова" in message["Body"]
    more = await call.next(Digits="4")
    assert "карт" in spoken(more), "the residence-card answer that goes with the stage"


async def test_on_the_phone_a_wrong_date_and_an_unknown_case_sound_the_same(call: Call) -> None:
    await call.post("/twilio/voice", {})
    await call.next(Digits="4")
    heard = []
    for number in ("6151882025", "6151992025"):
        await call.next(SpeechResult="what is the status of my case")
        await call.next(Digits=number)
        heard.append(spoken(await call.next(Digits="01011985")))
    assert heard[0] == heard[1] and "could not find a case" in heard[0]


async def test_twilio_refusing_an_sms_with_429_or_500_is_retried_and_sent_once(
    voice_app: FastAPI, sessions: Any, fake_twilio: FakeTwilio
) -> None:
    caller = f"+48600{random.randint(100000, 999999)}"
    async with sessions() as session:
        enqueue(session, channel=Channel.SMS, recipient=caller, text="Karta pobytu: 100 zł")
        await session.commit()
    fake_twilio.fail_next(429, 20429, "Too Many Requests")
    fake_twilio.fail_next(500, 20500, "Internal Server Error")
    deliverers = voice_app.state.services.deliverers
    await drain(sessions, deliverers)
    async with sessions() as session:
        (job,) = (await session.exec(select(OutboxJob).where(OutboxJob.recipient == caller))).all()
    assert job.status is OutboxStatus.PENDING and "429" in (job.last_error or "")
    await drain(sessions, deliverers, now=lambda: utcnow() + timedelta(minutes=5))
    await drain(sessions, deliverers, now=lambda: utcnow() + timedelta(minutes=30))
    assert [m["Body"] for m in fake_twilio.messages if m["To"] == caller] == ["Karta pobytu: 100 zł"]

    fake_twilio.fail_next(400, 21211, "The 'To' number is not a valid phone number.")
    async with sessions() as session:
        enqueue(session, channel=Channel.SMS, recipient="+4800", text="x")
        await session.commit()
    await drain(sessions, deliverers)
    async with sessions() as session:
        (refused,) = (await session.exec(select(OutboxJob).where(OutboxJob.recipient == "+4800"))).all()
    assert refused.status is OutboxStatus.FAILED, "a number Twilio will never take is not retried"
