"""`infoopt worker` as its own process: it delivers what the app queued, woken over Redis, loads no NLU
model, and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from infoopt.core import db
from infoopt.core.languages import Channel
from infoopt.core.settings import Settings
from tickets.conversations import open_conversation
from tickets.live import TicketFeed
from tickets.models import Conversation, ConversationMessage
from tickets.outbox import enqueue

pytestmark = pytest.mark.commits


async def test_the_worker_process_delivers_a_queued_reply(
    pg_engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    heartbeat = tmp_path / "alive"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        metrics_port = int(probe.getsockname()[1])
    environment = {
        # A worker is one process: not the multiprocess metrics directory an earlier test left set here.
        **{key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"},
        "INFOOPT_ENV": "test",
        "INFOOPT_DATABASE_URL": settings.database_url,
        "INFOOPT_REDIS_URL": settings.redis_url or "",
        "INFOOPT_DATA_DIR": str(tmp_path / "data"),  # fresh: a worker that loaded NLU would train here
        "INFOOPT_LOG_JSON": "false",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infoopt.cli",
        "worker",
        "--heartbeat",
        str(heartbeat),
        "--metrics-port",
        str(metrics_port),
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    sessions = db.session_factory(pg_engine)
    session_id = f"worker-{secrets.token_hex(8)}"
    try:
        assert process.stdout is not None
        output = b""
        while b"outbox worker started" not in output:
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            assert line, output  # the process ended before it started working
            output += line
        assert not (tmp_path / "data" / "nlu").exists(), "the worker never parses: it loads no NLU model"
        async with db.transaction(sessions) as session:
            conversation = await open_conversation(session, Channel.WEB, session_id, language="uk")
            enqueue(session, channel=Channel.WEB, recipient=session_id, text="Відповідь консультанта")
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url or "")
        await TicketFeed(redis).wake_outbox()
        await redis.aclose()
        deadline = time.monotonic() + 20
        delivered: list[str] = []
        while time.monotonic() < deadline and not delivered:
            await asyncio.sleep(0.2)
            async with sessions() as session:
                delivered = list(
                    (
                        await session.exec(
                            select(ConversationMessage.text).where(
                                ConversationMessage.conversation_id == conversation.id
                            )
                        )
                    ).all()
                )
        assert delivered == ["Відповідь консультанта"]
        # Its own metrics, at its own port (it serves no other HTTP). Which process delivered this reply is
        # not known here (an app of the test session delivers web replies too), so only the endpoint and
        # its delivery counters are checked; the counting itself is tests/test_outbox_batch.py's.
        async with httpx.AsyncClient() as http:
            scrape = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scrape.status_code == 200
        assert "# TYPE infoopt_outbox_delivered_total counter" in scrape.text
        assert "# TYPE infoopt_outbox_delivery_failures_total counter" in scrape.text
        assert heartbeat.exists() and time.time() - heartbeat.stat().st_mtime < 30
    finally:
        process.send_signal(signal.SIGINT)
        # communicate(), not wait(): it reads what the worker still writes, which wait() would leave in a full
        # pipe, blocking the worker's exit (asyncio's documented deadlock).
        await asyncio.wait_for(process.communicate(), 30)
        async with db.transaction(sessions) as session:
            stale = (
                await session.exec(select(Conversation).where(Conversation.external_id == session_id))
            ).first()
            if stale is not None:
                await session.delete(stale)
