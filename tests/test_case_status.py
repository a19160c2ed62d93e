"""Case status for the person who owns the case, and nobody else: looked up through the web chat with the
number and the date of birth; unknown and wrong answers indistinguishable; guessing refused past the
limits, also with a new session for every try; every lookup audited; nothing of the case in the logs.
(Telegram and the phone walk the same flow in test_telegram.py and test_voice.py.)"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cases.lookup import CASE_LOOKUP_BURSTS, Asker, CaseLimits, lookup_case, purge_cases
from cases.models import CaseLookup, CaseRecord, LookupOutcome
from cases.numbers import case_digits, find_case_number, spoken_digits
from cases.service import import_cases
from infoopt.core.clock import utcnow
from infoopt.core.languages import Channel
from tests.test_cases_import import BATCH  # the two cases the import tests push
from tickets.conversations import find_conversation
from tickets.models import ConversationMessage, MessageAuthor

pytestmark = pytest.mark.usefixtures("synced_kb")


async def imported(app: FastAPI, app_db: async_sessionmaker[AsyncSession]) -> None:
    secret = app.state.services.settings.secret_key.get_secret_value()
    async with app_db() as session:
        report = await import_cases(session, BATCH, secret=secret)
        await session.commit()
    assert report.created == len(BATCH)


async def send(client: httpx.AsyncClient, **payload: object) -> dict[str, Any]:
    response = await client.post("/api/v1/ask", json=payload)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def actions(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(a["action"], a["value"]) for a in body["actions"]]


async def ask_case(
    client: httpx.AsyncClient, number: str, born: str, *, language: str = "en", session_id: str | None = None
) -> dict[str, Any]:
    """The whole lookup in one conversation: the action, the number, the date of birth."""
    start = await send(client, text="", action="case_status", language=language, session_id=session_id)
    assert start["kind"] == "case_status" and ("cancel", None) in actions(start)
    step = await send(client, text=number, session_id=start["session_id"])
    return await send(client, text=born, session_id=step["session_id"])


# --- numbers as people give them ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "digits"),
    [
        ("sześć tysięcy sto pięćdziesiąt jeden", "6151"),
        ("шість один п'ять один", "6151"),
        (
            "шестьдесят один пятьдесят один двенадцать тридцать четыре две тысячи двадцать шесть",
            "615112342026",
        ),
        ("two thousand twenty six", "2026"),
        ("one hundred twenty three", "123"),
        ("zero jeden dwa", "012"),
        ("nineteen ninety", "1990"),
    ],
)
def test_numbers_said_in_words_become_digits(said: str, digits: str) -> None:
    assert spoken_digits(said) == digits


@pytest.mark.parametrize(
    ("message", "found"),
    [
        ("Який статус моєї справи wsc ii s 6151 1234 2026?", "WSC II S 6151 1234 2026"),
        ("номер WSC-ІІ-S.6151.1234.2026", "WSC-II-S.6151.1234.2026"),  # Cyrillic І
        ("my case is 6151/1234/2026 please", "6151/1234/2026"),
        ("how long does a residence card take", None),
        ("I paid 440 zł on 17.05.2026", None),
    ],
)
def test_a_case_number_is_found_inside_a_message(message: str, found: str | None) -> None:
    assert find_case_number(message) == found


# --- the web chat -----------------------------------------------------------------------------------


async def test_a_ukrainian_typing_the_number_loosely_gets_the_stage_in_ukrainian(
    client: httpx.AsyncClient, app: FastAPI, app_db: async_sessionmaker[AsyncSession]
) -> None:
    await imported(app, app_db)
    first = await send(client, text="Який статус моєї справи wsc ii s 6151 1234 2026?", language="uk")
    assert first["kind"] == "case_status" and first["language"] == "uk"
    assert "дата народження" in first["answer"], "the number was taken from the message; the date is asked"
    answer = await send(client, text="17.05.1990", session_id=first["session_id"])
    assert answer["kind"] == "case_status" and answer["language"] == "uk"
    assert answer["case"] == {
        "number": "WSC-II-S.6151.1234.2026",
        "stage": "missing_documents",
        "stage_date": "2026-11-20",
    }
    assert "запит на відсутні документи" in answer["answer"] and "20 листопада 2026" in answer["answer"]
    assert "Управлінню потрібні від вас додаткові документи" in answer["answer"]
    assert ("full_answer", "missing_documents_summons") in actions(answer)
    assert ("consultant", None) in actions(answer)
    more = await send(
        client,
        text="",
        action="full_answer",
        value="missing_documents_summons",
        session_id=answer["session_id"],
    )
    assert more["kind"] == "full_answer" and more["article_id"] == "missing_documents_summons"


async def test_every_common_way_of_writing_the_date_works_and_the_card_stage_links_the_card_answer(
    client: httpx.AsyncClient, app: FastAPI, app_db: async_sessionmaker[AsyncSession]
) -> None:
    await imported(app, app_db)
    for number, born in (
        ("wsc-ii-p-6151-88-2025", "02.01.1985"),
        ("WSC II P 6151 88 2025", "1985-01-02"),
        ("615188 2025", "2/1/1985"),  # the digits alone, as the keypad gives them
    ):
        answer = await ask_case(client, number, born)
        assert answer["case"]["stage"] == "card_ready", (number, born, answer["answer"])
        assert ("full_answer", "residence_card") in actions(answer)
        assert "residence card ready" in answer["answer"] and "November 28, 2026" in answer["answer"]


async def test_unknown_case_and_wrong_date_of_birth_get_the_same_words(
    client: httpx.AsyncClient, app: FastAPI, app_db: async_sessionmaker[AsyncSession]
) -> None:
    await imported(app, app_db)
    wrong_birth = await ask_case(client, "WSC-II-S.6151.1234.2026", "18.05.1990")
    unknown = await ask_case(client, "WSC-II-S.6151.9999.2026", "17.05.1990")
    for reply in (wrong_birth, unknown):
        reply.pop("session_id")
    assert wrong_birth == unknown
    assert wrong_birth["case"] is None and "could not find a case" in wrong_birth["answer"]
    assert actions(wrong_birth) == [("case_status", None), ("consultant", None)]


async def test_guessing_is_refused_past_the_limit_even_with_a_new_session_every_time(
    client: httpx.AsyncClient, app: FastAPI, app_db: async_sessionmaker[AsyncSession]
) -> None:
    await imported(app, app_db)
    limits = app.state.services.conversation.cases.limits
    session_id = None
    for day in range(1, limits.per_conversation + 1):  # one conversation guessing the date
        reply = await ask_case(client, "WSC-II-S.6151.1234.2026", f"{day:02d}.01.1990", session_id=session_id)
        session_id = reply["session_id"]
        assert "could not find" in reply["answer"]
    refused = await ask_case(client, "WSC-II-S.6151.1234.2026", "17.05.1990", session_id=session_id)
    assert refused["case"] is None and "too many attempts" in refused["answer"]
    assert actions(refused) == [("consultant", None)], "the way to a person, not another try"

    # A new session for every guess: the address and the case number still count.
    fresh = await ask_case(client, "WSC-II-S.6151.1234.2026", "17.05.1990")
    assert "too many attempts" in fresh["answer"], "the case number's own limit holds"
    for serial in range(limits.per_origin):  # other numbers, each from a new session
        await ask_case(client, f"WSC-II-S.6151.{5000 + serial}.2026", "17.05.1990")
    other_case = await ask_case(client, "WSC-II-P.6151.88.2025", "02.01.1985")
    assert other_case["case"] is None and "too many attempts" in other_case["answer"]

    async with app_db() as session:
        outcomes = (await session.exec(select(CaseLookup.outcome))).all()
    assert len(outcomes) == limits.per_conversation + 2 + limits.per_origin + 1, "every lookup audited"
    assert outcomes.count(LookupOutcome.FOUND) == 0


async def test_the_date_of_birth_stays_out_of_the_transcript_and_the_logs(
    client: httpx.AsyncClient,
    app: FastAPI,
    app_db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await imported(app, app_db)
    caplog.set_level(logging.DEBUG)
    answer = await ask_case(client, "WSC-II-S.6151.1234.2026", "17.05.1990")
    assert answer["case"]["stage"] == "missing_documents"
    async with app_db() as session:
        conversation = await find_conversation(session, Channel.WEB, answer["session_id"])
        assert conversation is not None
        said = (
            await session.exec(
                select(ConversationMessage.text)
                .where(ConversationMessage.conversation_id == conversation.id)
                .where(ConversationMessage.author == MessageAuthor.PERSON)
            )
        ).all()
        audit = (await session.exec(select(CaseLookup))).one()
    assert said == ["[case_status]", "WSC-II-S.6151.1234.2026", "[birth]"]
    assert "6151" not in " ".join((audit.person_ref, audit.origin_ref, audit.case_ref))
    # The message and what was passed with it; not the record's own timings, whose digits may contain
    # "1990" by chance (relativeCreated 126606.31990… once did).
    own = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
    logged = "\n".join(
        record.getMessage() + str({key: value for key, value in record.__dict__.items() if key not in own})
        for record in caplog.records
    )
    assert "6151" not in logged and "1990" not in logged


async def test_an_unreadable_date_is_asked_again_and_a_new_question_leaves_the_flow(
    client: httpx.AsyncClient, app: FastAPI, app_db: async_sessionmaker[AsyncSession]
) -> None:
    await imported(app, app_db)
    start = await send(client, text="", action="case_status", language="pl")
    step = await send(client, text="WSC-II-S.6151.1234.2026", session_id=start["session_id"])
    again = await send(client, text="31.02.1990", session_id=step["session_id"])
    assert again["kind"] == "case_status" and again["answer"].startswith("Nie potrafię odczytać tej daty")
    away = await send(client, text="Ile kosztuje karta pobytu?", session_id=step["session_id"])
    assert away["kind"] != "case_status", "a question instead of a date is answered as a question"
    async with app_db() as session:
        assert (await session.exec(select(func.count()).select_from(CaseLookup))).one() == 0


# --- the lookup itself ------------------------------------------------------------------------------

SECRET = "a-secret-key-for-the-case-tests-0123456789"


async def test_the_per_case_limit_holds_across_addresses_and_a_burst_raises_the_alarm(
    session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    await import_cases(session, BATCH, secret=SECRET)
    limits = CaseLimits(per_case=3, burst_cases=4)
    now = utcnow()
    for guess in range(3):  # three addresses, one case
        asker = Asker("web", f"web:s{guess}", f"10.0.0.{guess}")
        result = await lookup_case(
            session,
            "WSC-II-S.6151.1234.2026",
            date(1990, 1, guess + 1),
            asker=asker,
            secret=SECRET,
            now=now,
            limits=limits,
        )
        assert result.outcome is LookupOutcome.NO_MATCH
    owner = Asker("web", "web:owner", "192.0.2.1")
    refused = await lookup_case(
        session, "615112342026", date(1990, 5, 17), asker=owner, secret=SECRET, now=now, limits=limits
    )
    assert refused.outcome is LookupOutcome.REFUSED, "the digits alone are the same case"
    tomorrow = await lookup_case(
        session,
        "WSC-II-S.6151.1234.2026",
        date(1990, 5, 17),
        asker=owner,
        secret=SECRET,
        now=now + timedelta(days=1, minutes=1),
        limits=limits,
    )
    assert tomorrow.outcome is LookupOutcome.FOUND and tomorrow.record is not None

    caplog.set_level(logging.WARNING, logger="cases.lookup")
    bursts = CASE_LOOKUP_BURSTS._value.get()
    for serial in range(4):  # four more numbers fail within minutes, from four addresses
        asker = Asker("telegram", f"telegram:{serial}", f"telegram:{serial}")
        await lookup_case(
            session,
            f"WSC-II-S.6151.{700 + serial}.2026",
            date(1990, 1, 1),
            asker=asker,
            secret=SECRET,
            now=now,
            limits=limits,
        )
    assert CASE_LOOKUP_BURSTS._value.get() == bursts + 1
    alarms = [record for record in caplog.records if record.getMessage() == "cases.lookup_burst"]
    assert len(alarms) == 1 and "6151" not in str(alarms[0].__dict__)


async def test_records_are_purged_after_their_case_closes(session: AsyncSession) -> None:
    closed = [{**BATCH[0], "stage": "closed", "stage_date": "2026-01-10"}, BATCH[1]]
    await import_cases(session, closed, secret=SECRET)
    assert (await session.exec(select(CaseRecord.case_digits))).all()
    gone = await purge_cases(session, closed_before=date(2026, 4, 10), lookups_before=utcnow())
    assert gone == 1
    left = (await session.exec(select(CaseRecord.case_number))).all()
    assert left == ["WSC-II-P.6151.88.2025"] and case_digits(left[0]) == "6151882025"
