"""Shared fixtures: the real PostgreSQL, Redis and Rasa started by scripts/test.sh, and the app on them.

Every service comes from an INFOOPT_TEST_* variable that scripts/test.sh sets. A test that needs a
service which is not configured FAILS with the reason — it never skips silently.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Page
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.app import create_app
from infoopt.core import db
from infoopt.core.settings import Environment, Settings
from tests.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent


def required_env(name: str) -> str:
    """The value of a test service variable, or a loud failure telling how to get one."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the suite with ./scripts/test.sh, which starts the service")
    return value


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return required_env("INFOOPT_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return required_env("INFOOPT_TEST_REDIS_URL")


@pytest.fixture(scope="session")
def rasa_url() -> str:
    return required_env("INFOOPT_TEST_RASA_URL")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = required_env("INFOOPT_TEST_CHROMIUM")
    if not Path(path).exists():
        pytest.fail(f"INFOOPT_TEST_CHROMIUM={path} does not exist: install Debian's chromium")
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
async def migrated_postgres(postgres_url: str) -> AsyncIterator[str]:
    """The test database, emptied and migrated to head once per session."""
    engine = db.create_engine(postgres_url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    await db.upgrade_async(postgres_url)
    yield postgres_url


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated SQLite database of the test's own: the zero-setup default."""
    url = f"sqlite:///{tmp_path / 'infoopt.sqlite3'}"
    await db.upgrade_async(url)
    engine = db.create_engine(url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def pg_engine(migrated_postgres: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(migrated_postgres)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(pg_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test, whatever it committed."""
    async with pg_engine.connect() as connection:
        outer = await connection.begin()
        session = AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield session
        finally:
            await session.close()
            await outer.rollback()


@pytest.fixture(scope="session")
def settings(migrated_postgres: str, redis_url: str, data_dir: Path) -> Settings:
    """The app's settings on the real PostgreSQL and Redis, with the embedded NLU."""
    return Settings(
        env=Environment.TEST,
        database_url=migrated_postgres,
        redis_url=redis_url,
        rasa_url=None,
        data_dir=data_dir,
        ask_limit_per_minute=10_000,  # the suite asks fast from one address; one test checks the limit
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """One application for the session, with its lifespan running."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def rolled_back(
    app: FastAPI, pg_engine: AsyncEngine
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """An app's database for one test: every request works inside one transaction, rolled back after.

    Requests still commit as in production, but their commits release savepoints of the test's own
    transaction, so no test sees another's leftovers. Read what a request wrote through these sessions.
    """
    services = app.state.services
    async with pg_engine.connect() as connection:
        outer = await connection.begin()
        sessions = async_sessionmaker(
            bind=connection,
            class_=AsyncSession,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
        )
        original, services.sessions = services.sessions, sessions
        try:
            yield sessions
        finally:
            services.sessions = original
            services.kb_cache.invalidate()  # nothing the rolled-back transaction published stays cached
            await outer.rollback()


@pytest.fixture
async def app_db(app: FastAPI, pg_engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The shared app's database for one test, rolled back after (see `rolled_back`)."""
    async with rolled_back(app, pg_engine) as sessions:
        yield sessions


@pytest.fixture(autouse=True)
def _http_tests_roll_back(request: pytest.FixtureRequest) -> None:
    """Tests on the shared app run in a rolled-back transaction unless marked `commits`."""
    if "app" in request.fixturenames and request.node.get_closest_marker("commits") is None:
        request.getfixturevalue("app_db")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No INFOOPT_/TELEGRAM_/TWILIO_ variables from the caller leak into a settings test."""
    for name in list(os.environ):
        if name.startswith(("INFOOPT_", "TELEGRAM_", "TWILIO_")) and not name.startswith("INFOOPT_TEST_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture(scope="session")
async def synced_kb(pg_engine: AsyncEngine) -> None:
    """The 144 seed articles, published in the test database (committed, once per session)."""
    from knowledge_base.files import ARTICLES_DIR
    from knowledge_base.service import sync_from_files

    async with db.transaction(db.session_factory(pg_engine)) as session:
        report = await sync_from_files(session, ARTICLES_DIR)
    assert report.problems == []


@pytest.fixture(scope="session")
async def staff_accounts(pg_engine: AsyncEngine) -> dict[str, str]:
    """Two admins (an author and a reviewer) and a consultant; returns username -> password."""
    from infoopt.staff.accounts import Role, create_user

    accounts = {
        "anna.admin": ("admin", "Admin-password-2026"),
        "marek.admin": ("admin", "Reviewer-password-2026"),
        "kasia.konsultant": ("consultant", "Consultant-pass-2026"),
    }
    async with db.transaction(db.session_factory(pg_engine)) as session:
        for username, (role, password) in accounts.items():
            await create_user(
                session, username=username, password=password, role=Role(role), office_code="KRK-RONDO"
            )
    return {username: password for username, (_role, password) in accounts.items()}


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """Fill the real sign-in form: fetch it (for the CSRF cookie), then post it."""
    import re

    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    return await client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1), "next": "/admin/kb"},
    )


TELEGRAM_WEBHOOK_SECRET = "webhook-secret-for-the-tests-0123456789"


@pytest.fixture(scope="session")
async def fake() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API (tests/fake_telegram.py) on a loopback port, for the Telegram tests."""
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def telegram_app(settings: Settings, fake: FakeTelegram) -> AsyncIterator[FastAPI]:
    """The app with the Telegram channel against the fake Bot API. One per test session: the bot's
    handlers are one aiogram router, which attaches to one dispatcher."""
    from pydantic import SecretStr

    from infoopt.core.settings import TelegramSettings

    configured = settings.model_copy(
        update={
            "telegram": TelegramSettings(
                bot_token=SecretStr(fake.token),
                webhook_secret=SecretStr(TELEGRAM_WEBHOOK_SECRET),
                api_base=fake.url,
            )
        }
    )
    application = create_app(configured)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def live_server(settings: Settings, synced_kb: None) -> Iterator[str]:
    """The app under uvicorn on a loopback port, in a thread, for the browser tests."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    # Like `infoopt serve` on one machine: the outbox worker runs inside, so replies reach the chat.
    served = create_app(settings.model_copy(update={"outbox_in_process": True}))
    server = uvicorn.Server(uvicorn.Config(served, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def page(chromium_path: str) -> AsyncIterator[Page]:
    """A fresh page in Debian's Chromium, driven by Playwright; the browser closes after the test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


DESK_PASSWORD = "Desk-password-2026"


@pytest.fixture(scope="session")
async def desk_staff(pg_engine: AsyncEngine) -> dict[str, str]:
    """Consultants at Tarnów (two) and Przy Rondzie, and a supervisor; all with DESK_PASSWORD."""
    from infoopt.staff.accounts import Role, create_user

    accounts = {
        "tomasz.tarnow": (Role.CONSULTANT, "TARNOW"),
        "ola.tarnow": (Role.CONSULTANT, "TARNOW"),
        "rafal.rondo": (Role.CONSULTANT, "KRK-RONDO"),
        "sylwia.supervisor": (Role.SUPERVISOR, None),
    }
    async with db.transaction(db.session_factory(pg_engine)) as session:
        for username, (role, office) in accounts.items():
            await create_user(
                session, username=username, password=DESK_PASSWORD, role=role, office_code=office
            )
    return dict.fromkeys(accounts, DESK_PASSWORD)


async def bearer(client: httpx.AsyncClient, username: str, password: str = DESK_PASSWORD) -> dict[str, str]:
    """Authorization headers for a staff member, from the real login API."""
    response = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
