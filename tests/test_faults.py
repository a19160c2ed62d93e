"""Faults, with real servers going away and coming back: Redis stopped under a conversation (the bot
keeps answering, /readyz says degraded, nothing is lost when it returns) and PostgreSQL restarted under
traffic (clean, retryable failures; no ticket message lost or doubled). Each test runs its own Redis or
PostgreSQL on loopback, so stopping it disturbs nothing else."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from infoopt.app import create_app
from infoopt.core import db
from infoopt.core.languages import Channel
from infoopt.core.settings import Settings
from infoopt.staff.accounts import Role, create_user
from tests.conftest import rolled_back
from tickets import service
from tickets.models import TicketMessage

pytestmark = pytest.mark.usefixtures("synced_kb")
PASSWORD = "a-long-password-for-the-fault-tests"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A redis-server of this test's own, on a port that stays the same across restarts."""

    def __init__(self, workdir: Path) -> None:
        self.port, self.workdir = free_port(), workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


async def ask(http: httpx.AsyncClient, text: str, session_id: str | None = None) -> dict[str, Any]:
    response = await http.post("/api/v1/ask", json={"text": text, "language": "pl", "session_id": session_id})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_without_redis_the_bot_keeps_answering_and_nothing_is_lost_when_it_returns(
    settings: Settings, own_redis: RedisServer, pg_engine: AsyncEngine
) -> None:
    application = create_app(settings.model_copy(update={"redis_url": own_redis.url}))
    async with application.router.lifespan_context(application), rolled_back(application, pg_engine):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            first = await ask(http, "ile kosztuje karta pobytu")
            assert first["kind"] == "answer"
            session_id = first["session_id"]

            own_redis.stop()
            down = await ask(http, "czy mogę wyjechać za granicę w trakcie sprawy", session_id)
            assert down["kind"] in ("answer", "clarify") and down["session_id"] == session_id
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"

            own_redis.start()
            back = await ask(http, "jak złożyć wniosek w MOS", session_id)
            assert back["kind"] in ("answer", "clarify")
            assert (await http.get("/readyz")).json()["status"] == "ready"
            transcript = (await http.get(f"/api/v1/conversations/{session_id}/messages")).json()
    said = [item["text"] for item in transcript["items"] if item["author"] == "person"]
    assert said == [
        "ile kosztuje karta pobytu",
        "czy mogę wyjechać za granicę w trakcie sprawy",
        "jak złożyć wniosek w MOS",
    ], "every message of the conversation is kept, the one written while Redis was away too"


# --- PostgreSQL restarted under traffic ------------------------------------------------------------


class PostgresServer:
    """A PostgreSQL cluster of this test's own (initdb in a temporary directory)."""

    def __init__(self, workdir: Path) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            pytest.fail("PostgreSQL's binaries are not installed (/usr/lib/postgresql/*/bin)")
        self.bin = found[-1].parent
        self.data, self.port = workdir / "pg", free_port()
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://infoopt@127.0.0.1:{self.port}/faults"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.run_as, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "--username=infoopt", "--auth=trust")
        self.start()
        self._run(
            str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "infoopt", "faults"
        )

    def _ctl(self, action: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        log = str(self.data.parent / "postgres.log")  # its output must not hold our pipe open
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            log,
            "-w",
            "-m",
            "fast",
            "-o",
            options,
            action,
        )

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("restart")

    def stop(self) -> None:
        self._ctl("stop")


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    # Not under pytest's tmp_path: its parents are private to root, and PostgreSQL runs as postgres.
    workdir = Path(tempfile.mkdtemp(prefix="infoopt-faults-"))
    server = PostgresServer(workdir)
    try:
        server.init()
        yield server
        server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def test_a_postgres_restart_under_traffic_fails_cleanly_and_loses_or_doubles_no_message(
    settings: Settings, own_postgres: PostgresServer
) -> None:
    await asyncio.to_thread(db.upgrade, own_postgres.url)
    application = create_app(settings.model_copy(update={"database_url": own_postgres.url}))
    async with application.router.lifespan_context(application):
        services = application.state.services
        async with db.transaction(services.sessions) as session:
            await create_user(session, username="fault.supervisor", password=PASSWORD, role=Role.SUPERVISOR)
            ticket = await service.open_ticket(
                session,
                conversation=None,
                channel=Channel.WEB,
                language="pl",
                office_code=None,
                description="?",
            )
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            login = await http.post(
                "/api/v1/auth/login", json={"username": "fault.supervisor", "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            assert (await http.post(f"/api/v1/tickets/{ticket.id}/claim", headers=headers)).status_code == 200
            refusals: list[int] = []

            async def reply(text: str) -> None:
                """A consultant's client: on a refusal it waits and sends again, as the workspace does."""
                for _attempt in range(60):
                    response = await http.post(
                        f"/api/v1/tickets/{ticket.id}/reply", json={"text": text}, headers=headers
                    )
                    if response.status_code == 200:
                        return
                    assert response.status_code == 503, response.text
                    assert response.json()["error"] == "unavailable" and response.headers["retry-after"]
                    refusals.append(response.status_code)
                    await asyncio.sleep(0.25)
                raise AssertionError(f"{text} never went through")

            async def restart_midway() -> None:
                await asyncio.sleep(0.3)
                await asyncio.to_thread(own_postgres.restart)

            texts = [f"reply {number}" for number in range(40)]

            async def consultant(batch: list[str]) -> None:
                for text in batch:
                    await reply(text)
                    await asyncio.sleep(0.02)

            await asyncio.gather(restart_midway(), *(consultant(texts[i::4]) for i in range(4)))
            assert (await http.get("/readyz")).status_code == 200
        async with services.sessions() as session:
            stored = (
                await session.exec(select(TicketMessage.text).where(TicketMessage.ticket_id == ticket.id))
            ).all()
    assert sorted(stored) == sorted(texts), "every reply stored exactly once"
    print(f"refused while PostgreSQL restarted: {len(refusals)} requests, each retried")
