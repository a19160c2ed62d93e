"""Sign-in that neither stalls the server nor lets a stranger lock an admin out, and the staff API token."""

from __future__ import annotations

import re
import threading
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.staff import accounts, throttle
from infoopt.staff.accounts import Role, create_user

pytestmark = pytest.mark.usefixtures("synced_kb")

PASSWORD = "Right-password-2026"


def _client(app: FastAPI, address: str | None = None) -> httpx.AsyncClient:
    address = address or f"2001:db8:5::{uuid.uuid4().hex[:4]}"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 41000)), base_url="http://t"
    )


async def _form_sign_in(
    http: httpx.AsyncClient, username: str, password: str, nxt: str = ""
) -> httpx.Response:
    form = await http.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    data = {"username": username, "password": password, "csrf_token": token.group(1), "next": nxt}
    return await http.post("/login", data=data)


@pytest.fixture
async def owner(app_db: async_sessionmaker[AsyncSession]) -> str:
    username = f"owner.{uuid.uuid4().hex[:6]}"
    async with app_db() as session:
        await create_user(session, username=username, password=PASSWORD, role=Role.ADMIN)
        await session.commit()
    return username


async def test_password_checks_run_off_the_event_loop(
    app: FastAPI, owner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = accounts._matches

    def recording(password_hash: str, password: str) -> bool:
        threads.append(threading.current_thread().name)
        return real(password_hash, password)

    monkeypatch.setattr(accounts, "_matches", recording)
    async with _client(app) as http:
        assert (await _form_sign_in(http, owner, "wrong-password")).status_code == 401
        assert (await _form_sign_in(http, owner, PASSWORD)).status_code == 303
    assert len(threads) == 2 and all(name.startswith("argon2") for name in threads), threads
    assert threading.main_thread().name not in threads


async def test_a_stranger_cannot_lock_the_owner_out(app: FastAPI, owner: str) -> None:
    async with _client(app) as stranger:
        statuses = [(await _form_sign_in(stranger, owner, f"guess-{n}")).status_code for n in range(5)]
        waiting = await _form_sign_in(stranger, owner, PASSWORD)
    assert statuses[: throttle.FREE_FAILURES + 1] == [401] * (throttle.FREE_FAILURES + 1)
    assert statuses[-1] == 429, "after a few failures this address waits before trying again"
    assert waiting.status_code == 429 and int(waiting.headers["Retry-After"]) >= 1
    async with _client(app) as the_owner:
        signed_in = await _form_sign_in(the_owner, owner, PASSWORD)
    assert signed_in.status_code == 303, "the owner, from their own address, is not held up"


async def test_every_failure_does_the_same_work_and_says_the_same(
    app: FastAPI, owner: str, app_db: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real = accounts._matches
    monkeypatch.setattr(accounts, "_matches", lambda h, p: checks.append(p) or real(h, p))
    async with app_db() as session:
        disabled = await create_user(
            session, username=f"gone.{uuid.uuid4().hex[:6]}", password=PASSWORD, role=Role.ADMIN
        )
        disabled.active = False
        session.add(disabled)
        await session.commit()
    bodies = []
    for username, password in [
        (owner, "wrong-password"),
        ("nobody.here", PASSWORD),
        (disabled.username, PASSWORD),
    ]:
        async with _client(app) as http:
            response = await _form_sign_in(http, username, password)
        assert response.status_code == 401
        bodies.append(re.sub(r'value="[^"]*"', "", response.text))
    assert len(checks) == 3, "an unknown or disabled account still costs one password check"
    assert bodies[0] == bodies[1] == bodies[2], "the same words whether or not the account exists"


async def test_one_address_spraying_many_usernames_is_slowed_down(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "ADDRESS_FAILURES", 3)
    async with _client(app) as sprayer:
        statuses = [(await _form_sign_in(sprayer, f"user{n}", "Password123!")).status_code for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


async def test_the_staff_api_gives_a_bearer_token_under_the_same_throttle(app: FastAPI, owner: str) -> None:
    async with _client(app) as http:
        wrong = await http.post("/api/v1/auth/login", json={"username": owner, "password": "nope"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "sign_in_failed"
        granted = await http.post("/api/v1/auth/login", json={"username": owner, "password": PASSWORD})
        assert granted.status_code == 200
        body = granted.json()
        assert body["token_type"] == "bearer" and body["role"] == "admin" and len(body["access_token"]) >= 40
        search = await http.get(
            "/api/v1/kb/search",
            params={"q": "karta pobytu"},
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )
        assert search.status_code == 200 and search.json()
        forged = await http.get(
            "/api/v1/kb/search", params={"q": "karta"}, headers={"Authorization": "Bearer x" * 3}
        )
        assert forged.status_code == 401
        for _ in range(throttle.FREE_FAILURES + 1):
            await http.post("/api/v1/auth/login", json={"username": owner, "password": "nope"})
        throttled = await http.post("/api/v1/auth/login", json={"username": owner, "password": PASSWORD})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"].isdigit()


async def test_a_consultant_lands_on_a_page_they_can_use(
    app: FastAPI, staff_accounts: dict[str, str]
) -> None:
    async with _client(app) as http:
        signed_in = await _form_sign_in(http, "kasia.konsultant", staff_accounts["kasia.konsultant"])
        assert signed_in.headers["location"] == "/staff/tickets"
        assert (await http.get("/staff/tickets")).status_code == 200
        refused = await http.get("/admin/kb")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html"), "a page, not raw JSON"
    assert 'href="/admin/kb-search"' in refused.text


async def test_one_username_failing_from_many_addresses_waits_a_minute_at_most(
    app: FastAPI, owner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "USERNAME_FAILURES_PER_MINUTE", 3)
    statuses = []
    for _ in range(4):
        async with _client(app) as somewhere:  # a new address each time, as a botnet's would be
            statuses.append((await _form_sign_in(somewhere, owner, "wrong-password")).status_code)
    assert statuses == [401, 401, 401, 429]
    async with _client(app) as the_owner:
        waiting = await _form_sign_in(the_owner, owner, PASSWORD)
    assert waiting.status_code == 429 and int(waiting.headers["Retry-After"]) <= 60, (
        "a short wait, never a lockout"
    )
