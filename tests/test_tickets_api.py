"""The consultants' API on PostgreSQL: who sees what, claim, reply through the outbox to the web chat,
notes, transfer, resolve with a rating request, reopening, and clear 4xx for everything out of turn."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.conftest import bearer
from tickets.models import OutboxJob, OutboxStatus
from tickets.outbox import drain

pytestmark = pytest.mark.usefixtures("synced_kb", "desk_staff")


async def ask(client: httpx.AsyncClient, **payload: object) -> dict[str, object]:
    response = await client.post("/api/v1/ask", json=payload)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def person_with_ticket(
    client: httpx.AsyncClient, office: str = "TARNOW", language: str = "uk"
) -> tuple[str, str]:
    """A person in the web chat who handed over to a consultant; (session id, ticket number)."""
    start = await ask(client, text="", action="consultant", language=language)
    session_id = str(start["session_id"])
    await ask(client, session_id=session_id, action="choose_office", value=office)
    await ask(client, session_id=session_id, text="Як змінити роботодавця, якщо в мене карта побуту?")
    done = await ask(client, session_id=session_id, action="consent", value="yes")
    return session_id, str(done["ticket"]["number"])  # type: ignore[index]


async def find(client: httpx.AsyncClient, headers: dict[str, str], number: str) -> dict[str, object] | None:
    response = await client.get("/api/v1/tickets", headers=headers)
    assert response.status_code == 200, response.text
    return next((t for t in response.json()["items"] if t["number"] == number), None)


async def deliver(app: FastAPI, app_db: async_sessionmaker[AsyncSession]) -> None:
    await drain(app_db, app.state.services.deliverers)


async def chat_messages(client: httpx.AsyncClient, session_id: str) -> list[dict[str, object]]:
    response = await client.get(f"/api/v1/conversations/{session_id}/messages")
    assert response.status_code == 200
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def test_consultants_see_their_point_and_supervisors_see_all(client: httpx.AsyncClient) -> None:
    _session_id, number = await person_with_ticket(client)
    tarnow, rondo, supervisor = (
        await bearer(client, "tomasz.tarnow"),
        await bearer(client, "rafal.rondo"),
        await bearer(client, "sylwia.supervisor"),
    )
    listed = await find(client, tarnow, number)
    assert listed is not None
    assert listed["status"] == "new" and listed["office"] == "TARNOW" and listed["channel"] == "web"
    assert listed["language"] == "uk" and listed["assignee"] is None and listed["sla_due_at"]
    assert await find(client, rondo, number) is None
    assert await find(client, supervisor, number) is not None
    forbidden = await client.get(f"/api/v1/tickets/{listed['id']}", headers=rondo)
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "other_office"


async def test_the_queue_is_ordered_by_sla_due_time(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await person_with_ticket(client)
    items = (await client.get("/api/v1/tickets", headers=await bearer(client, "tomasz.tarnow"))).json()[
        "items"
    ]
    due = [item["sla_due_at"] for item in items]
    assert len(due) >= 3 and due == sorted(due)


async def test_claim_reply_and_the_answer_reaches_the_web_chat(
    client: httpx.AsyncClient, app: FastAPI, app_db: async_sessionmaker[AsyncSession]
) -> None:
    session_id, number = await person_with_ticket(client)
    tomasz, ola = await bearer(client, "tomasz.tarnow"), await bearer(client, "ola.tarnow")
    ticket = await find(client, tomasz, number)
    assert ticket is not None
    ticket_id = ticket["id"]

    early = await client.post(
        f"/api/v1/tickets/{ticket_id}/reply", json={"text": "Dzień dobry"}, headers=tomasz
    )
    assert early.status_code == 409 and early.json()["error"] == "not_holder"
    claimed = await client.post(f"/api/v1/tickets/{ticket_id}/claim", headers=tomasz)
    assert claimed.status_code == 200 and claimed.json()["assignee"] == "tomasz.tarnow"
    assert claimed.json()["status"] == "open"
    taken = await client.post(f"/api/v1/tickets/{ticket_id}/claim", headers=ola)
    assert taken.status_code == 409 and taken.json()["error"] == "held_by_another"
    assert "tomasz.tarnow" in taken.json()["detail"]

    answer = "Добрий день! Зміну роботодавця треба повідомити протягом 15 робочих днів."
    sent = await client.post(f"/api/v1/tickets/{ticket_id}/reply", json={"text": answer}, headers=tomasz)
    assert sent.status_code == 200 and sent.json()["delivery"] == "pending"
    assert not any(m["text"] == answer for m in await chat_messages(client, session_id)), (
        "not before delivery"
    )

    await deliver(app, app_db)
    delivered = [m for m in await chat_messages(client, session_id) if m["text"] == answer]
    assert [m["author"] for m in delivered] == ["consultant"]
    await deliver(app, app_db)
    assert len([m for m in await chat_messages(client, session_id) if m["text"] == answer]) == 1, "once"

    detail = (await client.get(f"/api/v1/tickets/{ticket_id}", headers=tomasz)).json()
    assert detail["status"] == "waiting"
    assert [(m["author"], m["delivery"]) for m in detail["messages"]] == [("consultant", "sent")]
    assert detail["transcript"][0]["author"] == "person", "the bot conversation comes with the ticket"
    assert [e["kind"] for e in detail["events"]] == ["created", "claimed", "replied"]


async def test_notes_stay_inside_and_replies_are_checked(
    client: httpx.AsyncClient, app: FastAPI, app_db: async_sessionmaker[AsyncSession]
) -> None:
    session_id, number = await person_with_ticket(client)
    tomasz = await bearer(client, "tomasz.tarnow")
    ticket_id = (await find(client, tomasz, number))["id"]  # type: ignore[index]
    note = await client.post(
        f"/api/v1/tickets/{ticket_id}/note",
        json={"text": "Sprawdzić w systemie <b>jutro</b>"},
        headers=tomasz,
    )
    assert note.status_code == 200 and note.json()["author"] == "note" and note.json()["delivery"] == "none"
    await deliver(app, app_db)
    assert not any("Sprawdzić" in str(m["text"]) for m in await chat_messages(client, session_id))

    await client.post(f"/api/v1/tickets/{ticket_id}/claim", headers=tomasz)
    for bad in ({"text": ""}, {"text": "   "}, {"text": "x" * 4001}, {}, {"text": "a", "extra": 1}):
        response = await client.post(f"/api/v1/tickets/{ticket_id}/reply", json=bad, headers=tomasz)
        assert response.status_code == 422, bad
    missing = await client.post("/api/v1/tickets/2147483647/claim", headers=tomasz)
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_ticket"


async def test_transfer_moves_the_ticket_with_a_reason(client: httpx.AsyncClient) -> None:
    _session_id, number = await person_with_ticket(client)
    tomasz, rafal = await bearer(client, "tomasz.tarnow"), await bearer(client, "rafal.rondo")
    ticket_id = (await find(client, tomasz, number))["id"]  # type: ignore[index]
    await client.post(f"/api/v1/tickets/{ticket_id}/claim", headers=tomasz)
    unknown = await client.post(
        f"/api/v1/tickets/{ticket_id}/transfer", json={"office": "ZAKOPANE", "reason": "x"}, headers=tomasz
    )
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_office"
    no_reason = await client.post(
        f"/api/v1/tickets/{ticket_id}/transfer", json={"office": "KRK-RONDO", "reason": ""}, headers=tomasz
    )
    assert no_reason.status_code == 422
    moved = await client.post(
        f"/api/v1/tickets/{ticket_id}/transfer",
        json={"office": "KRK-RONDO", "reason": "Karta Polaka: Przy Rondzie"},
        headers=tomasz,
    )
    assert moved.status_code == 200
    assert moved.json()["office"] == "KRK-RONDO" and moved.json()["status"] == "new"
    assert moved.json()["assignee"] is None
    assert await find(client, tomasz, number) is None
    detail = (await client.get(f"/api/v1/tickets/{ticket_id}", headers=rafal)).json()
    transfer = detail["events"][-1]
    assert transfer["kind"] == "transferred" and transfer["detail"]["reason"] == "Karta Polaka: Przy Rondzie"
    assert transfer["detail"]["from"] == "TARNOW" and transfer["actor"] == "tomasz.tarnow"


async def test_resolve_asks_for_a_rating_and_a_late_message_reopens(
    client: httpx.AsyncClient, app: FastAPI, app_db: async_sessionmaker[AsyncSession]
) -> None:
    session_id, number = await person_with_ticket(client, language="en")
    tomasz = await bearer(client, "tomasz.tarnow")
    ticket_id = (await find(client, tomasz, number))["id"]  # type: ignore[index]
    await client.post(f"/api/v1/tickets/{ticket_id}/claim", headers=tomasz)
    resolved = await client.post(f"/api/v1/tickets/{ticket_id}/resolve", headers=tomasz)
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    again = await client.post(f"/api/v1/tickets/{ticket_id}/claim", headers=tomasz)
    assert again.status_code == 409 and again.json()["error"] == "wrong_state"
    twice = await client.post(f"/api/v1/tickets/{ticket_id}/resolve", headers=tomasz)
    assert twice.status_code == 409

    await deliver(app, app_db)
    notice = (await chat_messages(client, session_id))[-1]
    assert number in str(notice["text"]) and "resolved" in str(notice["text"])
    assert [a["value"] for a in notice["actions"]] == ["1", "2", "3", "4", "5"]  # type: ignore[union-attr]
    rated = await ask(client, session_id=session_id, action="rate", value="5")
    assert number in str(rated["answer"])

    late = await ask(client, session_id=session_id, text="One more thing: do I need a new work permit?")
    assert late["kind"] == "ticket" and "open again" in str(late["answer"])
    detail = (await client.get(f"/api/v1/tickets/{ticket_id}", headers=tomasz)).json()
    assert detail["status"] == "open" and detail["rating"] == 5
    assert detail["events"][-1]["kind"] == "reopened"


async def test_take_next_claims_the_most_urgent_unclaimed_ticket(client: httpx.AsyncClient) -> None:
    numbers = [(await person_with_ticket(client))[1] for _ in range(2)]
    tomasz = await bearer(client, "tomasz.tarnow")
    items = (await client.get("/api/v1/tickets?status=new", headers=tomasz)).json()["items"]
    most_urgent = items[0]["number"]
    taken = await client.post("/api/v1/tickets/next", headers=tomasz)
    assert taken.status_code == 200
    assert taken.json()["number"] == most_urgent and taken.json()["assignee"] == "tomasz.tarnow"
    assert set(numbers) & {t["number"] for t in items}


async def test_an_outbox_job_is_stored_with_its_reply(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    session_id, number = await person_with_ticket(client)
    tomasz = await bearer(client, "tomasz.tarnow")
    ticket_id = (await find(client, tomasz, number))["id"]  # type: ignore[index]
    await client.post(f"/api/v1/tickets/{ticket_id}/claim", headers=tomasz)
    reply = await client.post(
        f"/api/v1/tickets/{ticket_id}/reply", json={"text": "Odpowiedź"}, headers=tomasz
    )
    async with app_db() as session:
        job = (
            await session.exec(select(OutboxJob).where(OutboxJob.ticket_message_id == reply.json()["id"]))
        ).one()
    assert job.status is OutboxStatus.PENDING and job.recipient == session_id and job.channel.value == "web"


async def test_every_ticket_route_refuses_anonymous_callers(client: httpx.AsyncClient, app: FastAPI) -> None:
    paths = {p: ops for p, ops in app.openapi()["paths"].items() if p.startswith("/api/v1/tickets")}
    operations = [(method.upper(), path) for path, ops in paths.items() for method in ops]
    assert len(operations) >= 10
    for method, template in operations:
        path = template.replace("{ticket_id}", "1").replace("{message_id}", "1")
        response = await client.request(method, path, json={"text": "x", "office": "TARNOW", "reason": "x"})
        assert response.status_code == 401, (method, path, response.status_code)


async def test_a_cookie_session_needs_the_csrf_header(
    client: httpx.AsyncClient, staff_accounts: dict[str, str]
) -> None:
    from tests.conftest import sign_in

    await sign_in(client, "kasia.konsultant", staff_accounts["kasia.konsultant"])
    refused = await client.post("/api/v1/tickets/next")
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_rejected"
