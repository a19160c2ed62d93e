"""Privacy by design: a consultant exports what is kept about a person (audited, only for tickets they
may see); tickets closed long ago lose their texts; personal data never reaches the logs."""

from __future__ import annotations

import importlib
import io
import json
import logging
import re
import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow
from infoopt.core.languages import Channel
from infoopt.core.logs import JsonFormatter, MaskPersonalData, uvicorn_log_config
from infoopt.staff.audit import AuditEntry
from knowledge_base.backlog import record_failure
from knowledge_base.models import BotFailure, FailureKind
from tests.conftest import DESK_PASSWORD, bearer, sign_in
from tickets import service
from tickets.conversations import EXPIRED, open_conversation, record_messages
from tickets.models import (
    MessageAuthor,
    OutboxJob,
    OutboxStatus,
    Subscription,
    Ticket,
    TicketAuthor,
    TicketMessage,
    TicketStatus,
)

pytestmark = pytest.mark.usefixtures("synced_kb", "desk_staff")


async def tarnow_ticket(app_db: async_sessionmaker[AsyncSession]) -> tuple[Ticket, str]:
    """A Telegram person's conversation and their ticket at Tarnów, with a consultant's reply and a note."""
    person = f"tg-{secrets.token_hex(4)}"
    async with app_db() as session:
        conversation = await open_conversation(session, Channel.TELEGRAM, person, language="uk")
        await record_messages(
            session,
            conversation,
            [
                (MessageAuthor.PERSON, "Моя карта побиту загубилась", "text"),
                (MessageAuthor.BOT, "…", "answer"),
            ],
        )
        ticket = await service.open_ticket(
            session,
            conversation=conversation,
            channel=Channel.TELEGRAM,
            language="uk",
            office_code="TARNOW",
            description="Загубила карту побиту, що робити?",
        )
        session.add(TicketMessage(ticket_id=ticket.id or 0, author=TicketAuthor.CONSULTANT, text="Zgłoś to."))
        session.add(TicketMessage(ticket_id=ticket.id or 0, author=TicketAuthor.NOTE, text="internal only"))
        session.add(
            Subscription(channel=Channel.TELEGRAM, recipient=person, topic_id="residence_card", language="uk")
        )
        await session.commit()
    return ticket, person


async def test_a_consultant_exports_what_is_kept_about_the_person_and_the_export_is_audited(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    ticket, person = await tarnow_ticket(app_db)
    tomasz = await bearer(client, "tomasz.tarnow")
    assert (
        await client.get(f"/api/v1/tickets/{ticket.id}/person-data", headers=tomasz)
    ).status_code == 405, (
        "an audited export is not a GET: prefetchers and crawlers must not write to the audit trail"
    )
    response = await client.post(f"/api/v1/tickets/{ticket.id}/person-data", headers=tomasz)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    assert data["channel"] == "telegram" and data["person"] == person
    assert [m["text"] for m in data["messages"]] == ["Моя карта побиту загубилась", "…"]
    (exported,) = data["tickets"]
    assert exported["number"] == ticket.number and exported["description"].startswith("Загубила")
    assert [m["text"] for m in exported["messages"]] == ["Zgłoś to."], "staff notes are not the person's data"
    assert [(s["topic"], s["active"]) for s in data["subscriptions"]] == [("residence_card", True)]
    async with app_db() as session:
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "export_person_data"))
        ).all()
    assert [(entry.actor, entry.object_id) for entry in audit] == [("tomasz.tarnow", ticket.number)]

    rafal = await bearer(client, "rafal.rondo")  # another point's consultant
    refused = await client.post(f"/api/v1/tickets/{ticket.id}/person-data", headers=rafal)
    assert refused.status_code in (403, 404)
    assert (await client.post(f"/api/v1/tickets/{ticket.id}/person-data")).status_code == 401


async def test_the_ticket_page_downloads_the_export_through_a_form_with_its_csrf_token(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    ticket, person = await tarnow_ticket(app_db)
    assert (await sign_in(client, "tomasz.tarnow", DESK_PASSWORD)).status_code == 303
    page = await client.get(f"/staff/tickets/{ticket.id}")
    form = re.search(
        rf'<form method="post" action="(/staff/tickets/{ticket.id}/person-data)">'
        r'<input type="hidden" name="csrf_token" value="([^"]+)">',
        page.text,
    )
    assert form is not None, "the ticket page offers the export as a form"
    action, token = form.groups()

    forged = await client.post(action, data={"csrf_token": "not-the-token"})
    assert forged.status_code in (400, 403)
    downloaded = await client.post(action, data={"csrf_token": token})
    assert downloaded.status_code == 200, downloaded.text
    assert (
        downloaded.headers["content-disposition"]
        == f'attachment; filename="{ticket.number}-person-data.json"'
    )
    assert json.loads(downloaded.text)["person"] == person
    async with app_db() as session:
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "export_person_data"))
        ).all()
    assert [(entry.actor, entry.object_id) for entry in audit] == [("tomasz.tarnow", ticket.number)], (
        "the forged request exported nothing; the real one is audited once"
    )


async def test_tickets_closed_long_ago_lose_their_texts_but_keep_their_numbers(
    app: FastAPI, app_db: async_sessionmaker[AsyncSession]
) -> None:
    services = app.state.services
    old, _person = await tarnow_ticket(app_db)
    recent, _other = await tarnow_ticket(app_db)
    days = services.settings.ticket_personal_data_days
    async with app_db() as session:
        for ticket, closed in ((old, utcnow() - timedelta(days=days + 1)), (recent, utcnow())):
            row = await session.get(Ticket, ticket.id)
            assert row is not None
            row.status, row.closed_at, row.rating, row.contact = (
                TicketStatus.CLOSED,
                closed,
                4,
                "+48600111222",
            )
            session.add(row)
        await session.commit()
    await services.tidy()
    async with app_db() as session:
        scrubbed = await session.get(Ticket, old.id)
        kept = await session.get(Ticket, recent.id)
        assert scrubbed is not None and kept is not None
        assert (
            scrubbed.description == EXPIRED and scrubbed.contact is None and scrubbed.conversation_id is None
        )
        assert scrubbed.number == old.number and scrubbed.rating == 4 and scrubbed.office_code == "TARNOW"
        assert (
            await session.exec(select(TicketMessage).where(TicketMessage.ticket_id == old.id))
        ).all() == []
        assert kept.description.startswith("Загубила") and kept.contact == "+48600111222"
        assert (await session.exec(select(TicketMessage).where(TicketMessage.ticket_id == recent.id))).all()


def test_phone_numbers_emails_and_case_numbers_are_masked_in_every_log_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskPersonalData())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.privacy")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "sms to %s failed for %s",
            "+48 600 123 456",
            "anna.k@example.com",
            extra={"case": "wsc ii s 6151 1234 2026"},
        )
        logger.warning("ticket TAR-2026-000123 at 2026-12-02T17:05, took 0.123456789 s, chat 987654321")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "sms to +48…456 failed for …@example.com"
    assert first["case"] == "[case number]"
    assert second["event"] == "ticket TAR-2026-000123 at 2026-12-02T17:05, took 0.123456789 s, chat 987…321"


def test_uvicorn_workers_log_through_the_same_mask() -> None:
    config = uvicorn_log_config()
    assert config["handlers"]["stderr"]["filters"] == ["personal"]
    module, _dot, name = config["filters"]["personal"]["()"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is MaskPersonalData


async def test_old_outbox_jobs_and_backlog_entries_are_deleted_and_the_backlog_keeps_no_phone_numbers(
    app: FastAPI, app_db: async_sessionmaker[AsyncSession]
) -> None:
    services = app.state.services
    settings = services.settings
    long_ago = utcnow() - timedelta(
        days=max(settings.outbox_retention_days, settings.failure_retention_days) + 1
    )
    async with app_db() as session:
        old = OutboxJob(
            channel=Channel.TELEGRAM, recipient="123456789", text="Zgłoś to.", status=OutboxStatus.SENT
        )
        old.created_at = long_ago
        fresh = OutboxJob(
            channel=Channel.TELEGRAM, recipient="123456789", text="Hej", status=OutboxStatus.SENT
        )
        session.add_all([old, fresh])
        stale = await record_failure(
            session, kind=FailureKind.FALLBACK, text="call me 600 123 456", language="pl"
        )
        stale.at = long_ago
        session.add(stale)
        kept = await record_failure(
            session,
            kind=FailureKind.FALLBACK,
            text="mój numer WSC-II-S.6151.1234.2026, tel +48 600 123 456",
            language="pl",
        )
        await session.commit()
    assert kept.text == "mój numer [case number], tel +48…456"
    await services.tidy()
    async with app_db() as session:
        assert (
            await session.get(OutboxJob, old.id) is None
            and await session.get(OutboxJob, fresh.id) is not None
        )
        assert (
            await session.get(BotFailure, stale.id) is None
            and await session.get(BotFailure, kept.id) is not None
        )
