"""Admins edit a PID point's hours, SLA and ticket prefix; mistakes come back with the reason and what was
typed; new tickets' due times follow the new hours; consultants cannot edit."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.languages import Channel
from infoopt.staff.audit import audit_trail
from tests.conftest import sign_in
from tickets.models import TicketPriority
from tickets.offices import WARSAW, add_opening_hours, get_office
from tickets.service import due_time, open_ticket


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


FORM = {
    "mon_opens": "8:00",
    "mon_closes": "16:00",
    "tue_opens": "8:00",
    "tue_closes": "16:00",
    "wed_opens": "8:00",
    "wed_closes": "16:00",
    "thu_opens": "8:00",
    "thu_closes": "16:00",
    "fri_opens": "8:00",
    "fri_closes": "12:00",
    "sla_hours": "4",
    "ticket_prefix": "nsa",
    "note": "",
    "active": "on",
}


async def test_an_admin_sets_hours_and_the_sla_follows(
    client: httpx.AsyncClient, staff_accounts: dict[str, str], app_db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_in(client, "anna.admin", staff_accounts["anna.admin"])
    listing = await client.get("/admin/offices")
    assert listing.status_code == 200 and "NOWY-SACZ" in listing.text
    form = await client.get("/admin/offices/NOWY-SACZ")
    saved = await client.post("/admin/offices/NOWY-SACZ", data={**FORM, "csrf_token": csrf(form.text)})
    assert saved.status_code == 303
    async with app_db() as session:
        office = await get_office(session, "NOWY-SACZ")
        assert office.hours == {
            **{day: ["08:00", "16:00"] for day in ("mon", "tue", "wed", "thu")},
            "fri": ["08:00", "12:00"],
        }
        assert office.sla_hours == 4 and office.ticket_prefix == "NSA" and office.note is None
        # Friday 4 December 2026, 11:00: one hour left on Friday, three more from Monday 8:00.
        friday = datetime(2026, 12, 4, 11, 0, tzinfo=WARSAW)
        assert due_time(office, friday, TicketPriority.NORMAL) == datetime(2026, 12, 7, 11, 0, tzinfo=WARSAW)
        ticket = await open_ticket(
            session,
            conversation=None,
            channel=Channel.WEB,
            language="pl",
            office_code="NOWY-SACZ",
            description="x",
            now=friday,
        )
        assert ticket.number.startswith("NSA-2026-")
        trail = await audit_trail(session, object_id="NOWY-SACZ")
        assert trail and trail[0].action == "office_updated" and trail[0].actor == "anna.admin"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"mon_opens": "16:00", "mon_closes": "8:00"}, "open before it closes"),
        ({"tue_opens": "7.30"}, "HH:MM"),
        ({"sla_hours": "zero"}, "whole number"),
        ({"sla_hours": "0"}, "between 1 and 200"),
        ({"ticket_prefix": "T-R"}, "2 to 8 letters"),
    ],
)
async def test_a_mistake_comes_back_with_the_reason_and_the_typed_values(
    client: httpx.AsyncClient, staff_accounts: dict[str, str], change: dict[str, str], reason: str
) -> None:
    await sign_in(client, "anna.admin", staff_accounts["anna.admin"])
    form = await client.get("/admin/offices/TARNOW")
    response = await client.post(
        "/admin/offices/TARNOW", data={**FORM, **change, "csrf_token": csrf(form.text)}
    )
    assert response.status_code == 422 and reason in response.text and 'role="alert"' in response.text
    for value in change.values():
        assert f'value="{value}"' in response.text, "what the admin typed is kept"


async def test_christmas_eve_counts_as_closed() -> None:
    hours = {day: ["07:30", "15:30"] for day in ("mon", "tue", "wed", "thu", "fri")}
    # Wednesday 23 December 2026, 14:30: one hour that day; 24, 25, 26 are holidays, 27 a Sunday.
    due = add_opening_hours(hours, datetime(2026, 12, 23, 14, 30, tzinfo=WARSAW), timedelta(hours=8))
    assert due == datetime(2026, 12, 28, 14, 30, tzinfo=WARSAW)


async def test_consultants_cannot_edit_points(
    client: httpx.AsyncClient, staff_accounts: dict[str, str]
) -> None:
    await sign_in(client, "kasia.konsultant", staff_accounts["kasia.konsultant"])
    assert (await client.get("/admin/offices")).status_code == 403
    refused = await client.post("/admin/offices/TARNOW", data={**FORM, "csrf_token": "x"})
    assert refused.status_code == 403
