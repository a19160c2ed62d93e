"""Prometheus metrics: request counts and latencies by route, exposed at /metrics, summed over workers.

One process keeps its numbers in memory. `infoopt serve --workers N` (N > 1) runs N uvicorn processes, and
a scrape reaches only one of them, so there the numbers live in prometheus_client's multiprocess files:
`prepare_multiprocess` empties a directory and names it in PROMETHEUS_MULTIPROC_DIR before the workers
start (prometheus_client reads that variable when it is first imported, which in a worker is after it),
and every scrape sums all the workers' files. Counters of a worker that died stay in the sum, so totals
never go backwards; only the live gauge of workers forgets it (`prune_dead_workers`).

Labels stay few and fixed (a route template, a channel, a language, a PID point), never a person's words
or a case or ticket number: each label value is a time series kept for as long as Prometheus keeps data.
"""

from __future__ import annotations

import contextlib
import glob
import hmac
import os
import re
import time
from pathlib import Path

from aiohttp import web
from fastapi import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The files prometheus_client writes, one per kind of metric and process: counter_123.db, gauge_livesum_123.db
_METRIC_FILE = re.compile(r"^(counter|gauge|histogram|summary)_[a-z_]*?\d+\.db$")

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "infoopt_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "infoopt_http_request_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
NLU_PARSES = Counter(
    "infoopt_nlu_parses_total", "NLU parses by engine that answered", ["engine"], registry=REGISTRY
)
HTTP_WORKERS = Gauge(
    "infoopt_http_workers",
    "Processes serving HTTP that are alive (uvicorn workers)",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)


class RequestMetrics:
    """Count and time each HTTP request under its route template, not its raw path.

    A plain ASGI middleware: Starlette's `BaseHTTPMiddleware` (`app.middleware("http")`) would add a task
    group and a pair of streams to every request. A request the application fails with an exception
    counts as the 500 the client gets.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except Exception:
            _count(scope, status, started)
            raise
        _count(scope, status, started)


def _count(scope: Scope, status: int, started: float) -> None:
    # The router puts the matched route into the scope it was given, which is this one.
    template = getattr(scope.get("route"), "path", None) or "unmatched"
    HTTP_REQUESTS.labels(scope["method"], template, str(status)).inc()
    HTTP_LATENCY.labels(scope["method"], template).observe(time.perf_counter() - started)


def prepare_multiprocess(directory: Path) -> None:
    """Empty `directory` of earlier runs' metric files and make it this run's multiprocess directory.

    Call it in the process that starts the workers, before they start: they inherit the variable. Only
    prometheus_client's own files are removed, so a directory pointed at by mistake loses nothing else.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.is_file() and _METRIC_FILE.match(entry.name):
            entry.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)


def multiprocess_directory() -> str | None:
    """The directory the workers share their metrics in, or None when this process counts alone."""
    return os.environ.get(MULTIPROC_ENV) or None


def worker_started() -> None:
    """This process now serves HTTP (called from the app's start-up)."""
    HTTP_WORKERS.inc()


def worker_stopped() -> None:
    """This process stops serving: in multiprocess mode its live gauges leave the sum at once."""
    HTTP_WORKERS.dec()
    directory = multiprocess_directory()
    if directory:
        with contextlib.suppress(FileNotFoundError):
            multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


def prune_dead_workers(directory: str) -> None:
    """Forget the live gauges of workers that died without stopping (killed; uvicorn starts another).

    The workers of one `infoopt serve` share a machine, so a process id that no longer exists is a dead
    worker of ours.
    """
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        pid = int(path.rsplit("_", 1)[1].removesuffix(".db"))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(FileNotFoundError):  # another worker's scrape got there first
                multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, under another user
            continue


def exposition(*extra: CollectorRegistry) -> bytes:
    """This process's metrics (or, with several workers, all of theirs summed) and `extra` registries."""
    directory = multiprocess_directory()
    if directory:
        prune_dead_workers(directory)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    return b"".join(generate_latest(each) for each in (registry, *extra))


def scrape_allowed(authorization: str | None, token: str | None, *, production: bool) -> bool:
    """Whether a scrape may read the metrics: with a token set (always, in production) only with
    `Authorization: Bearer <token>`."""
    if not token and not production:
        return True
    given = (authorization or "").removeprefix("Bearer ").strip()
    return bool(token) and hmac.compare_digest(given.encode(), (token or "").encode())


async def serve_worker_metrics(host: str, port: int, token: str | None, *, production: bool) -> web.AppRunner:
    """`GET /metrics` for a process that serves no HTTP of its own (an outbox worker): its delivery
    counters, guarded like the app's /metrics. Returns the runner; `await runner.cleanup()` stops it."""

    async def metrics(request: web.Request) -> web.Response:
        if not scrape_allowed(request.headers.get("Authorization"), token, production=production):
            raise web.HTTPNotFound()
        return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def metrics_response(*extra: CollectorRegistry) -> Response:
    """The current metrics in Prometheus' text format; `extra` holds gauges computed for this scrape."""
    return Response(exposition(*extra), media_type=CONTENT_TYPE_LATEST)
