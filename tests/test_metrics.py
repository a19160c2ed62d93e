"""/metrics: the business metrics (questions, handoffs, delivery failures), the desk's state read from the
database at scrape time, and — with `infoopt serve --workers 2` as a real process — every worker's numbers
summed into one scrape."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core import db
from infoopt.core.clock import utcnow
from infoopt.core.languages import Channel
from infoopt.core.settings import Settings
from tickets.models import OutboxJob, Ticket, TicketStatus
from tickets.outbox import DeliveryFailed, drain, enqueue
from tickets.service import open_ticket

ROOT = Path(__file__).resolve().parent.parent
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(value for (sample, have), value in samples.items() if sample == name and wanted <= have)


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


# --- the business metrics, in one process -----------------------------------------------------------


async def ask(client: httpx.AsyncClient, **payload: object) -> dict[str, object]:
    response = await client.post("/api/v1/ask", json=payload)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.mark.usefixtures("synced_kb")
async def test_questions_and_handoffs_are_counted_by_channel_language_outcome_and_point(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    asked = [
        ({"text": "Скільки коштує карта побуту?"}, "text"),
        ({"text": "my employer changed, what should i do with my work permit"}, "text"),
        ({"text": "jaka jest pogoda na marsie"}, "text"),
    ]
    replies = [(await ask(client, **payload), given) for payload, given in asked]
    start = await ask(client, text="", action="consultant", language="uk")
    session_id = str(start["session_id"])
    handoff = [
        (start, "action"),
        (await ask(client, session_id=session_id, action="choose_office", value="TARNOW"), "action"),
        (await ask(client, session_id=session_id, text="Як змінити роботодавця з картою побуту?"), "text"),
        (await ask(client, session_id=session_id, action="consent", value="yes"), "action"),
    ]
    number = str(handoff[-1][0]["ticket"]["number"])  # type: ignore[index]
    response = await client.get("/metrics")
    after = parse(response.text)

    expected = collections.Counter(
        (str(body["language"]), given, str(body["kind"])) for body, given in replies + handoff
    )
    assert {"answer", "handoff"} <= {kind for _language, _given, kind in expected}, expected
    for (language, given, kind), count in expected.items():
        labels = {"channel": "web", "language": language, "input": given, "outcome": kind}
        grown = total(after, "infoopt_questions_total", **labels) - total(
            before, "infoopt_questions_total", **labels
        )
        assert grown == count, (labels, grown, count)
    assert total(after, "infoopt_questions_total") - total(before, "infoopt_questions_total") == 7
    handoffs = {"channel": "web", "office": "TARNOW"}
    assert total(after, "infoopt_handoffs_total", **handoffs) - total(
        before, "infoopt_handoffs_total", **handoffs
    ) == pytest.approx(1)
    # Low-cardinality labels only: nobody's words, session or ticket number becomes a time series.
    for private in (session_id, number, "роботодавця", "marsie"):
        assert private not in response.text


@pytest.mark.usefixtures("synced_kb")
async def test_requests_are_counted_by_route_template_and_status_without_a_base_http_middleware(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """The request metrics are a plain ASGI middleware (no task group and streams per request), counting
    under the route's template, with the status the client got."""
    from starlette.middleware.base import BaseHTTPMiddleware

    from infoopt.core.metrics import RequestMetrics

    assert any(entry.cls is RequestMetrics for entry in app.user_middleware)
    assert not any(entry.cls is BaseHTTPMiddleware for entry in app.user_middleware)
    before = await scrape(client)
    assert (await client.get("/api/v1/kb/articles/fees", params={"language": "uk"})).status_code == 200
    assert (await client.get("/api/v1/kb/articles/fees", params={"language": "pl"})).status_code == 200
    refused = (await client.get("/api/v1/kb/articles/no_such_topic")).status_code
    assert refused >= 400
    after = await scrape(client)
    route = {"method": "GET", "route": "/api/v1/kb/articles/{topic_id}"}
    for status, count in (("200", 2), (str(refused), 1)):
        name = "infoopt_http_requests_total"
        grown = total(after, name, status=status, **route) - total(before, name, status=status, **route)
        assert grown == count, (status, grown)
    timed = total(after, "infoopt_http_request_seconds_count", **route) - total(
        before, "infoopt_http_request_seconds_count", **route
    )
    assert timed == 3


async def test_a_request_that_fails_with_an_exception_counts_as_the_500_it_becomes() -> None:
    from infoopt.core.metrics import REGISTRY, RequestMetrics

    broken = FastAPI()
    broken.add_middleware(RequestMetrics)

    @broken.get("/broken/{part}")
    async def fail(part: str) -> None:
        raise RuntimeError(part)

    labels = {"method": "GET", "route": "/broken/{part}", "status": "500"}
    before = REGISTRY.get_sample_value("infoopt_http_requests_total", labels) or 0.0
    transport = httpx.ASGITransport(app=broken, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.get("/broken/x")).status_code == 500
    assert REGISTRY.get_sample_value("infoopt_http_requests_total", labels) == before + 1


async def test_a_rolled_back_handoff_is_not_counted(app_db: async_sessionmaker[AsyncSession]) -> None:
    from infoopt.core.metrics import REGISTRY

    labels = {"channel": "telegram", "office": "TARNOW"}
    before = REGISTRY.get_sample_value("infoopt_handoffs_total", labels) or 0.0

    async def fail_after_writing() -> None:
        async with db.transaction(app_db) as session:
            await open_ticket(
                session, conversation=None, channel=Channel.TELEGRAM, language="uk", office_code="TARNOW",
                description="rolled back",
            )  # fmt: skip
            raise RuntimeError("the request failed after the ticket was written")

    with pytest.raises(RuntimeError):
        await fail_after_writing()
    assert (REGISTRY.get_sample_value("infoopt_handoffs_total", labels) or 0.0) == before
    async with db.transaction(app_db) as session:
        await open_ticket(
            session, conversation=None, channel=Channel.TELEGRAM, language="uk", office_code="TARNOW",
            description="committed",
        )  # fmt: skip
    assert REGISTRY.get_sample_value("infoopt_handoffs_total", labels) == before + 1


class RefusingSms:
    """An SMS channel that fails every job: `permanent` ones for good, the others for a retry."""

    channel = Channel.SMS
    transactional = False

    async def deliver(self, session: AsyncSession, job: OutboxJob) -> None:
        raise DeliveryFailed("carrier said no", permanent=job.text == "permanent")


async def test_delivery_failures_are_counted_by_channel_and_result(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    before = await scrape(client)
    async with db.transaction(app_db) as session:
        enqueue(session, channel=Channel.SMS, recipient="+48500100200", text="permanent")
        enqueue(session, channel=Channel.SMS, recipient="+48500100200", text="try again")
    report = await drain(app_db, {Channel.SMS: RefusingSms()})
    assert (report.failed, report.retried) == (1, 1)
    after = await scrape(client)

    def grown(result: str) -> float:
        labels = {"channel": "sms", "result": result}
        name = "infoopt_outbox_delivery_failures_total"
        return total(after, name, **labels) - total(before, name, **labels)

    assert (grown("failed"), grown("retrying")) == (1, 1)
    # The same jobs seen from the database: one failed for good, one pending again (not yet due).
    assert total(after, "infoopt_outbox_jobs", channel="sms", status="failed") - total(
        before, "infoopt_outbox_jobs", channel="sms", status="failed"
    ) == pytest.approx(1)
    assert total(after, "infoopt_outbox_jobs", channel="sms", status="pending") - total(
        before, "infoopt_outbox_jobs", channel="sms", status="pending"
    ) == pytest.approx(1)


# --- the desk's state, read at scrape time ----------------------------------------------------------


async def test_desk_gauges_count_tickets_by_point_and_status_and_those_past_their_sla(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    before = await scrape(client)
    now = utcnow()
    long_ago = now - timedelta(days=30)
    async with db.transaction(app_db) as session:

        async def ticket(office: str, *, at: datetime = now, **changes: object) -> Ticket:
            created = await open_ticket(
                session, conversation=None, channel=Channel.WEB, language="pl", office_code=office,
                description="metrics", now=at,
            )  # fmt: skip
            for name, value in changes.items():
                setattr(created, name, value)
            session.add(created)
            await session.flush()
            return created

        fresh = await ticket("TARNOW")
        overdue = await ticket("TARNOW", at=long_ago)
        await ticket(
            "TARNOW", at=long_ago, status=TicketStatus.OPEN, first_response_at=long_ago + timedelta(hours=1)
        )
        await ticket("KRK-RONDO", at=long_ago, status=TicketStatus.CLOSED)
        enqueue(session, channel=Channel.TELEGRAM, recipient="1", text="due", now=now - timedelta(minutes=5))
        enqueue(session, channel=Channel.TELEGRAM, recipient="1", text="later", now=now + timedelta(hours=1))
    assert fresh.sla_due_at is not None and fresh.sla_due_at > now, "a point with hours promises an SLA"
    assert overdue.sla_due_at is not None and overdue.sla_due_at < now
    after = await scrape(client)

    def grown(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert total(after, "infoopt_desk_metrics_up") == 1
    assert grown("infoopt_tickets", office="TARNOW", status="new") == 2
    assert grown("infoopt_tickets", office="TARNOW", status="open") == 1
    assert grown("infoopt_tickets", office="KRK-RONDO", status="closed") == 1
    assert grown("infoopt_tickets", office="KRK-RONDO", status="new") == 0
    # Past the SLA: only the unanswered overdue ticket; the answered one and the closed one are not.
    assert grown("infoopt_tickets_past_sla", office="TARNOW") == 1
    assert grown("infoopt_tickets_past_sla", office="KRK-RONDO") == 0
    assert grown("infoopt_outbox_jobs", channel="telegram", status="pending") == 2
    assert grown("infoopt_outbox_due_jobs", channel="telegram") == 1
    assert total(after, "infoopt_outbox_oldest_due_seconds", channel="telegram") >= 5 * 60
    # Every point and channel is there even with nothing to count, so an alert can see it at 0.
    assert ("infoopt_tickets_past_sla", frozenset({("office", "shared")})) in after
    assert ("infoopt_outbox_due_jobs", frozenset({("channel", "voice")})) in after


async def test_metrics_are_still_served_when_the_database_is_away(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    services = app.state.services

    def no_database() -> AsyncSession:
        raise ConnectionRefusedError("the database is away")

    original, services.sessions = services.sessions, no_database
    try:
        samples = await scrape(client)
    finally:
        services.sessions = original
    assert total(samples, "infoopt_desk_metrics_up") == 0
    assert not any(name == "infoopt_tickets" for name, _labels in samples)
    assert total(samples, "infoopt_http_requests_total") > 0, "the process's own metrics are still there"


# --- several workers: `infoopt serve --workers 2` ---------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def per_worker(directory: Path, name: str, **labels: str) -> dict[int, float]:
    """What each worker process counted, read from its own multiprocess file (pid -> value)."""
    counts: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for metric in MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
            for sample in metric.samples
        }
        counts[pid] = total(samples, name, **labels)
    return counts


def started_workers(directory: Path) -> set[int]:
    """The workers whose own live gauge says they serve (a killed one's file says so until pruned)."""
    pids = set()
    for path in directory.glob("gauge_livesum_*.db"):
        merged = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        if any(sample.value == 1 for metric in merged for sample in metric.samples):
            pids.add(int(path.stem.rsplit("_", 1)[1]))
    return pids


def a_stale_counter(directory: Path) -> None:
    """A file like one a worker of an earlier run left: 1,000 /healthz requests of a long-gone process."""
    directory.mkdir(parents=True)
    stale = MmapedDict(str(directory / "counter_999999.db"))  # type: ignore[no-untyped-call]
    key = mmap_key(
        "infoopt_http_requests",
        "infoopt_http_requests_total",
        ["method", "route", "status"],
        ["GET", "/healthz", "200"],
        "HTTP requests by route and status",
    )
    stale.write_value(key, 1000.0, 0.0)  # type: ignore[no-untyped-call]
    stale.close()  # type: ignore[no-untyped-call]
    (directory / "README").write_text("not a metrics file: start-up leaves it alone")


@pytest.fixture
def two_workers(
    settings: Settings, synced_kb: None, app: FastAPI, tmp_path: Path
) -> Iterator[tuple[str, Path, int]]:
    """`infoopt serve --workers 2` on the test PostgreSQL and Redis: (base URL, metrics dir, server pid).

    `app` is asked for so the session's app has trained the NLU model into the shared data directory:
    the workers load it instead of each training its own while uvicorn waits for them.
    """
    metrics_dir = tmp_path / "metrics"
    a_stale_counter(metrics_dir)
    port = _free_port()
    environment = {
        **{
            key: value for key, value in os.environ.items() if not key.startswith(("INFOOPT_", "PROMETHEUS_"))
        },
        "INFOOPT_ENV": "test",
        "INFOOPT_DATABASE_URL": settings.database_url,
        "INFOOPT_REDIS_URL": settings.redis_url or "",
        "INFOOPT_DATA_DIR": str(settings.data_dir),
        "INFOOPT_METRICS_DIR": str(metrics_dir),
        "INFOOPT_ASK_LIMIT_PER_MINUTE": "10000",
        "INFOOPT_LOG_JSON": "false",
        "INFOOPT_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "infoopt.cli", "serve", "--workers", "2", "--port", str(port), "--no-kb-sync"],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_workers(base, server, tmp_path / "serve.log", count=2)
        yield base, metrics_dir, server.pid
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


def wait_for_workers(base: str, server: subprocess.Popen[bytes], log: Path, *, count: int) -> None:
    """Until /metrics says `count` workers serve (each needs its NLU model loaded first)."""
    deadline = time.monotonic() + 180
    while True:
        try:
            response = httpx.get(f"{base}/metrics", timeout=5)
            if total(parse(response.text), "infoopt_http_workers") == count:
                return
        except httpx.HTTPError:
            pass
        assert server.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.3)


async def healthz_on_new_connections(base: str, count: int) -> None:
    """`count` requests, each on its own connection, twenty at a time: the kernel hands new connections to
    whichever worker accepts first, so both get some."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as http:
        for _ in range(0, count, 20):
            responses = await asyncio.gather(*(http.get("/healthz") for _ in range(20)))
            assert all(response.status_code == 200 for response in responses)


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.commits
async def test_two_workers_metrics_are_summed_in_one_scrape(
    two_workers: tuple[str, Path, int], pg_engine: AsyncEngine
) -> None:
    base, metrics_dir, server_pid = two_workers
    assert not (metrics_dir / "counter_999999.db").exists(), "start-up empties the earlier run's metrics"
    assert (metrics_dir / "README").exists(), "and leaves anything else alone"
    healthz = {"route": "/healthz", "status": "200"}

    sent = 0
    while True:  # until both workers have served some: the per-process files say who served what
        await healthz_on_new_connections(base, 100)
        sent += 100
        counted = per_worker(metrics_dir, "infoopt_http_requests_total", **healthz)
        served = {pid: value for pid, value in counted.items() if value > 0}
        if len(served) >= 2 or sent >= 2000:
            break
    assert len(served) == 2, counted
    assert sum(served.values()) == sent
    assert all(parent_of(pid) == server_pid for pid in served), "the files are this server's workers'"

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        scraped = parse((await http.get("/metrics")).text)
    assert total(scraped, "infoopt_http_requests_total", **healthz) == sent, "every worker's requests"
    assert total(scraped, "infoopt_http_workers") == 2

    # The business metrics and the desk's gauges through the same workers: questions and a handoff.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        before = parse((await http.get("/metrics")).text)

        async def ask(**payload: object) -> dict[str, object]:
            response = await http.post("/api/v1/ask", json=payload)
            assert response.status_code == 200, response.text
            body: dict[str, object] = response.json()
            return body

        turns = [(await ask(text=text), "text") for text in ("ile kosztuje karta pobytu", "hello", "?")]
        start = await ask(text="", action="consultant", language="uk")
        session_id = start["session_id"]
        turns += [
            (start, "action"),
            (await ask(session_id=session_id, action="choose_office", value="TARNOW"), "action"),
            (await ask(session_id=session_id, text="Як змінити роботодавця з картою побуту?"), "text"),
            (await ask(session_id=session_id, action="consent", value="yes"), "action"),
        ]
        number = str(turns[-1][0]["ticket"]["number"])  # type: ignore[index]
        after = parse((await http.get("/metrics")).text)
    try:

        def grown(name: str, **labels: str) -> float:
            return total(after, name, **labels) - total(before, name, **labels)

        assert grown("infoopt_questions_total", channel="web") == 7
        expected = collections.Counter(
            (str(body["language"]), given, str(body["kind"])) for body, given in turns
        )
        for (language, given, kind), count in expected.items():
            labels = {"channel": "web", "language": language, "input": given, "outcome": kind}
            assert grown("infoopt_questions_total", **labels) == count, (labels, count)
        assert grown("infoopt_handoffs_total", channel="web", office="TARNOW") == 1
        assert grown("infoopt_tickets", office="TARNOW", status="new") == 1
        assert total(after, "infoopt_desk_metrics_up") == 1

        # A worker killed outright: uvicorn starts another; the dead one's requests stay in the sum, and
        # its live gauge leaves it, so the scrape still says two workers, not three.
        serving = started_workers(metrics_dir)
        assert set(served) <= serving, (served, serving)
        victim = max(served, key=lambda pid: served[pid])
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 180
        while not started_workers(metrics_dir) - serving:  # until uvicorn's replacement has started
            assert time.monotonic() < deadline, started_workers(metrics_dir)
            await asyncio.sleep(0.5)
        async with httpx.AsyncClient(timeout=10) as http:
            scraped = parse((await http.get(f"{base}/metrics")).text)
        assert total(scraped, "infoopt_http_workers") == 2
        assert total(scraped, "infoopt_http_requests_total", **healthz) == sent
        assert not (metrics_dir / f"gauge_livesum_{victim}.db").exists()
    finally:
        # The handoff committed for real: take its ticket out again so no later test counts it.
        async with db.transaction(db.session_factory(pg_engine)) as session:
            await session.exec(delete(Ticket).where(col(Ticket.number) == number))
