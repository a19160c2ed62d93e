"""Admins manage staff accounts: add a consultant at a point, switch an account off (signed out at once,
their tickets back in the queue); supervisors take over a ticket an absent consultant holds."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import bearer, sign_in
from tests.test_tickets_api import find, person_with_ticket

pytestmark = pytest.mark.usefixtures("synced_kb", "desk_staff")


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_an_admin_adds_a_consultant_who_then_signs_in(
    client: httpx.AsyncClient, staff_accounts: dict[str, str]
) -> None:
    await sign_in(client, "anna.admin", staff_accounts["anna.admin"])
    page = await client.get("/admin/users")
    assert page.status_code == 200 and "kasia.konsultant" in page.text
    token = csrf(page.text)
    no_office = await client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "nowy.konsultant",
            "role": "consultant",
            "office": "",
            "password": "x" * 12,
        },
    )
    assert no_office.status_code == 422 and "choose one" in no_office.text
    assert 'value="nowy.konsultant"' in no_office.text, "what was typed stays"
    short = await client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "nowy.konsultant",
            "role": "consultant",
            "office": "TARNOW",
            "password": "short",
        },
    )
    assert short.status_code == 422 and "12 characters" in short.text
    for unsafe in ("nowy/konsultant", "nowy konsultant", "../admin", "_nowy"):
        refused = await client.post(
            "/admin/users",
            data={
                "csrf_token": token,
                "username": unsafe,
                "role": "consultant",
                "office": "TARNOW",
                "password": "Nowe-haslo-2026!",
            },
        )
        assert refused.status_code == 422 and "letters, digits" in refused.text, unsafe
    created = await client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "nowy.konsultant",
            "role": "consultant",
            "office": "TARNOW",
            "password": "Nowe-haslo-2026!",
        },
    )
    assert created.status_code == 303
    headers = await bearer(client, "nowy.konsultant", "Nowe-haslo-2026!")
    assert (await client.get("/api/v1/tickets", headers=headers)).status_code == 200


async def test_switching_a_consultant_off_signs_them_out_and_frees_their_tickets(
    client: httpx.AsyncClient, staff_accounts: dict[str, str]
) -> None:
    _session, number = await person_with_ticket(client)
    ola = await bearer(client, "ola.tarnow")
    ticket = await find(client, ola, number)
    assert ticket is not None
    await client.post(f"/api/v1/tickets/{ticket['id']}/claim", headers=ola)

    await sign_in(client, "anna.admin", staff_accounts["anna.admin"])
    token = csrf((await client.get("/admin/users")).text)
    off = await client.post("/admin/users/ola.tarnow/active", data={"csrf_token": token, "active": "no"})
    assert off.status_code == 303
    assert (await client.get("/api/v1/tickets", headers=ola)).status_code == 401, "signed out at once"
    freed = await find(client, await bearer(client, "tomasz.tarnow"), number)
    assert freed is not None and freed["assignee"] is None and freed["status"] == "new"
    itself = await client.post("/admin/users/anna.admin/active", data={"csrf_token": token, "active": "no"})
    assert itself.status_code == 409 and "your own account" in itself.text
    await client.post("/admin/users/ola.tarnow/active", data={"csrf_token": token, "active": "yes"})


async def test_a_supervisor_takes_over_a_held_ticket_and_a_consultant_cannot(
    client: httpx.AsyncClient,
) -> None:
    _session, number = await person_with_ticket(client)
    tomasz, ola, sylwia = (
        await bearer(client, "tomasz.tarnow"),
        await bearer(client, "ola.tarnow"),
        await bearer(client, "sylwia.supervisor"),
    )
    ticket_id = (await find(client, tomasz, number))["id"]  # type: ignore[index]
    await client.post(f"/api/v1/tickets/{ticket_id}/claim", headers=tomasz)
    refused = await client.post(f"/api/v1/tickets/{ticket_id}/claim?take_over=true", headers=ola)
    assert refused.status_code == 409
    taken = await client.post(f"/api/v1/tickets/{ticket_id}/claim?take_over=true", headers=sylwia)
    assert taken.status_code == 200 and taken.json()["assignee"] == "sylwia.supervisor"
    detail = (await client.get(f"/api/v1/tickets/{ticket_id}", headers=sylwia)).json()
    assert detail["events"][-1]["kind"] == "taken_over"


async def test_only_admins_manage_accounts(client: httpx.AsyncClient) -> None:
    from tests.conftest import DESK_PASSWORD

    await sign_in(client, "sylwia.supervisor", DESK_PASSWORD)
    assert (await client.get("/admin/users")).status_code == 403
