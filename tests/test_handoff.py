"""The handoff through the web channel: choose a PID point, describe, consent, get a ticket number and
the time to expect an answer; later messages join the ticket; the person closes it and rates it."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.languages import Channel
from tickets.conversations import find_conversation
from tickets.models import Ticket, TicketAuthor, TicketEvent, TicketMessage, TicketStatus

pytestmark = pytest.mark.usefixtures("synced_kb")


async def send(client: httpx.AsyncClient, **payload: object) -> dict[str, object]:
    response = await client.post("/api/v1/ask", json=payload)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def actions(body: dict[str, object]) -> list[tuple[str, str | None]]:
    listed = body["actions"]
    assert isinstance(listed, list)
    return [(a["action"], a["value"]) for a in listed]


async def ticket_by_number(app_db: async_sessionmaker[AsyncSession], number: str) -> Ticket:
    async with app_db() as session:
        return (await session.exec(select(Ticket).where(Ticket.number == number))).one()


async def test_the_consultant_button_offers_every_point_with_todays_hours_and_any_point(
    client: httpx.AsyncClient,
) -> None:
    start = await send(client, text="", action="consultant", language="en")
    assert start["handoff"] is True and start["kind"] == "handoff"
    offices = [(a, v) for a, v in actions(start) if a == "choose_office"]
    assert {v for _a, v in offices} == {
        "KRK-RONDO",
        "KRK-BASZTOWA",
        "KRK-CHLOPICKIEGO",
        "TARNOW",
        "NOWY-SACZ",
        "any",
    }
    labels = {a["value"]: a["label"] for a in start["actions"]}  # type: ignore[union-attr]
    assert "to be confirmed" in labels["KRK-BASZTOWA"]
    assert "Tarnów" in labels["TARNOW"]
    assert actions(start)[-1] == ("cancel", None), "a person can always leave the flow"


async def test_a_person_picks_tarnow_describes_consents_and_gets_a_ticket(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    start = await send(client, text="", action="consultant", language="en")
    session_id = start["session_id"]
    asked = await send(client, session_id=session_id, action="choose_office", value="TARNOW")
    assert asked["kind"] == "flow" and "Describe your question" in str(asked["answer"])
    consent = await send(
        client,
        session_id=session_id,
        text="My employer changed and I do not know what to report, case WSC-II-S.6151.1.2026",
    )
    assert ("consent", "yes") in actions(consent) and ("consent", "no") in actions(consent)
    assert "Do you agree" in str(consent["answer"])
    done = await send(client, session_id=session_id, action="consent", value="yes")

    assert done["handoff"] is True and done["kind"] == "handoff"
    ticket_ref = done["ticket"]
    assert isinstance(ticket_ref, dict)
    number = str(ticket_ref["number"])
    assert number.startswith(f"TAR-{datetime.now().year}-") and len(number) == len("TAR-2026-000123")
    assert ticket_ref["office"] == "TARNOW" and ticket_ref["status"] == "new"
    expected = datetime.fromisoformat(str(ticket_ref["expected_reply_by"]))
    assert expected.utcoffset() is not None and expected > datetime.now(expected.tzinfo)
    assert number in str(done["answer"]) and "expect an answer by" in str(done["answer"])
    assert ("close_ticket", number) in actions(done)

    ticket = await ticket_by_number(app_db, number)
    assert ticket.channel.value == "web" and ticket.language == "en" and ticket.office_code == "TARNOW"
    assert "WSC-II-S.6151.1.2026" in ticket.description
    assert ticket.sla_due_at is not None


async def test_no_consent_passes_nothing_on_and_gives_the_phone_number(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    start = await send(client, text="", action="consultant", language="pl")
    session_id = start["session_id"]
    await send(client, session_id=session_id, action="choose_office", value="KRK-RONDO")
    await send(client, session_id=session_id, text="Chcę zapytać o swoją sprawę pobytową")
    refused = await send(client, session_id=session_id, action="consent", value="no")
    assert refused["handoff"] is False and refused.get("ticket") is None
    assert "12 210 20 20" in str(refused["answer"])
    async with app_db() as session:
        conversation = await find_conversation(session, Channel.WEB, str(session_id))
        assert conversation is not None
        tickets = (await session.exec(select(Ticket).where(Ticket.conversation_id == conversation.id))).all()
    assert tickets == []


async def test_a_question_that_says_enough_is_not_asked_for_again(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    question = "czy mogę wyjechać na Ukrainę na święta, gdy moja sprawa o kartę pobytu jeszcze trwa"
    answer = await send(client, text=question, language="pl")
    start = await send(client, session_id=answer["session_id"], action="consultant")
    consent = await send(client, session_id=answer["session_id"], action="choose_office", value="any")
    assert ("consent", "yes") in actions(consent), "the description step was skipped"
    done = await send(client, session_id=answer["session_id"], text="tak")
    ticket = await ticket_by_number(app_db, str(done["ticket"]["number"]))  # type: ignore[index]
    assert ticket.description == question
    assert ticket.office_code is None, "no point chosen and no town named: the shared queue"
    assert str(done["ticket"]["number"]).startswith("OPT-")  # type: ignore[index]
    assert ticket.topic_id is not None, "the ticket carries the detected topic"
    assert start["handoff"] is True


async def test_a_town_named_routes_any_point_to_the_nearest(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    asked = await send(client, text="chcę porozmawiać z konsultantem w Tarnowie", language="pl")
    assert asked["handoff"] is True
    first_office = next(v for a, v in actions(asked) if a == "choose_office")
    assert first_office == "TARNOW", "the town the person named is offered first"
    session_id = asked["session_id"]
    await send(client, session_id=session_id, action="choose_office", value="any")
    await send(client, session_id=session_id, text="Potrzebuję pomocy z wnioskiem o pobyt czasowy")
    done = await send(client, session_id=session_id, action="consent", value="yes")
    assert done["ticket"]["office"] == "TARNOW"  # type: ignore[index]


async def make_ticket(client: httpx.AsyncClient, language: str = "uk") -> tuple[str, str]:
    start = await send(client, text="", action="consultant", language=language)
    session_id = str(start["session_id"])
    await send(client, session_id=session_id, action="choose_office", value="TARNOW")
    await send(client, session_id=session_id, text="Мій роботодавець змінився, що мені робити з дозволом?")
    done = await send(client, session_id=session_id, action="consent", value="yes")
    return session_id, str(done["ticket"]["number"])  # type: ignore[index]


async def test_while_a_ticket_is_open_what_the_person_writes_joins_its_thread(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    session_id, number = await make_ticket(client)
    added = await send(client, session_id=session_id, text="Ще забула: у мене є карта побуту до 2027 року")
    assert added["kind"] == "ticket" and number in str(added["answer"])
    again = await send(client, session_id=session_id, action="consultant")
    assert again["kind"] == "ticket", "a second handoff points to the open ticket instead of a new one"
    ticket = await ticket_by_number(app_db, number)
    async with app_db() as session:
        thread = (await session.exec(select(TicketMessage).where(TicketMessage.ticket_id == ticket.id))).all()
    assert [(m.author, m.text) for m in thread] == [
        (TicketAuthor.PERSON, "Ще забула: у мене є карта побуту до 2027 року")
    ]


async def test_the_person_closes_the_ticket_and_rates_it(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    session_id, number = await make_ticket(client, language="ru")
    closed = await send(client, session_id=session_id, action="close_ticket", value=number)
    assert [a for a, _v in actions(closed)] == ["rate"] * 5
    rated = await send(client, session_id=session_id, action="rate", value="4")
    assert number in str(rated["answer"])
    again = await send(client, session_id=session_id, action="rate", value="1")
    assert again["kind"] == "feedback"
    ticket = await ticket_by_number(app_db, number)
    assert ticket.status is TicketStatus.CLOSED and ticket.rating == 4, "the first rating counts"
    async with app_db() as session:
        kinds = [
            e.kind
            for e in (
                await session.exec(
                    select(TicketEvent)
                    .where(TicketEvent.ticket_id == ticket.id)
                    .order_by(col(TicketEvent.id))
                )
            ).all()
        ]
    assert kinds == ["created", "closed", "rated"]
    after = await send(client, session_id=session_id, text="а сколько стоит карта побыту")
    assert after["kind"] != "ticket", "a closed ticket no longer swallows new questions"


@pytest.mark.parametrize(("action", "value"), [("close_ticket", "TAR-2026-999999"), ("rate", "7")])
async def test_bad_ticket_actions_get_a_clear_404(client: httpx.AsyncClient, action: str, value: str) -> None:
    start = await send(client, text="hello", language="en")
    response = await client.post(
        "/api/v1/ask", json={"session_id": start["session_id"], "action": action, "value": value}
    )
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_value"


async def test_a_ticket_described_in_words_carries_the_topic_the_nlu_finds(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    start = await send(client, text="chcę rozmawiać z człowiekiem", language="pl")
    session_id = start["session_id"]
    await send(client, session_id=session_id, action="choose_office", value="KRK-RONDO")
    await send(client, session_id=session_id, text="ile kosztuje karta pobytu i na jakie konto zapłacić")
    done = await send(client, session_id=session_id, action="consent", value="yes")
    ticket = await ticket_by_number(app_db, str(done["ticket"]["number"]))  # type: ignore[index]
    assert ticket.topic_id == "fees"
