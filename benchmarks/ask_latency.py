"""`POST /api/v1/ask` end to end over HTTP: throughput and p50/p99 at concurrency 1, 16 and 64, with the
embedded engine and with Rasa side by side.

    .venv/bin/python benchmarks/ask_latency.py [--database-url URL --redis-url URL --workers 2]
        [--rasa-url URL | --no-rasa] [--questions 600] [--out benchmarks/results/ask_latency.md]

Starts `infoopt serve` in a temporary data directory — on the zero-setup defaults (SQLite, in-process
Redis, one worker), or on PostgreSQL and Redis with several workers as in production — once with the
embedded engine alone and once with the Rasa server in front of it (the production set-up; without
--rasa-url, scripts/rasa.sh trains or reuses the model and starts the server). Every question opens its
own session, so language detection, NLU, the knowledge-base lookup and the conversation state all run
as they do for a person. Concurrency N means N clients, each sending its next question as soon as the
last is answered (closed loop).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from server import running_server

from bot.nlu.evaluation import read_test_file

TEST = ROOT / "nlu_data" / "tests" / "test_nlu.yml"
RASA = ROOT / "scripts" / "rasa.sh"
CONCURRENCY = (1, 16, 64)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def closed_loop(base: str, questions: list[str], clients: int) -> tuple[float, list[float], int]:
    """Every question once, by `clients` clients at a time: elapsed seconds, latencies in ms, errors."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for question in questions:
        queue.put_nowait(question)
    latencies: list[float] = []
    errors = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            question = queue.get_nowait()
            started = time.perf_counter()
            response = await http.post("/api/v1/ask", json={"text": question})  # a new conversation each
            latencies.append((time.perf_counter() - started) * 1000)
            errors += response.status_code != 200

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return time.perf_counter() - started, latencies, errors


def service_rss_mib(base_port: int) -> float:
    """Resident memory of the service: the process listening on the port and its workers."""
    total = 0.0
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "serve" in cmdline and str(base_port) in cmdline:
            family = [process, *process.children(recursive=True)]
            total = sum(member.memory_info().rss for member in family) / 2**20
    return total


def measure(base: str, questions: list[str]) -> list[tuple[int, float, list[float], int]]:
    with httpx.Client(base_url=base, timeout=60) as http:
        for question in questions[:100]:  # warm-up: caches fill as in a running service
            http.post("/api/v1/ask", json={"text": question})
    return [(clients, *asyncio.run(closed_loop(base, questions, clients))) for clients in CONCURRENCY]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def rasa_server(url: str | None) -> Iterator[str]:
    """The Rasa server at `url`, or one trained (or reused) and started by scripts/rasa.sh for this run."""
    if url:
        yield url
        return
    state = ROOT / ".rasa" / "benchmark-ask"
    environment = {**os.environ, "INFOOPT_RASA_STATE": str(state)}
    subprocess.run(["bash", str(RASA), "train"], check=True)
    port = free_port()
    subprocess.run(["bash", str(RASA), "start", str(port)], check=True, env=environment)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(RASA), "stop"], check=False, env=environment)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help="PostgreSQL for a production-like run (default: SQLite)")
    parser.add_argument("--redis-url")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rasa-url")
    parser.add_argument("--no-rasa", action="store_true", help="the embedded engine only")
    parser.add_argument("--questions", type=int, default=600, help="held-out questions per run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ask_latency.md")
    args = parser.parse_args()
    questions = [example.text for example in read_test_file(TEST)][: args.questions]
    settings = {
        name: value
        for name, value in (("database_url", args.database_url), ("redis_url", args.redis_url))
        if value
    }
    rows: list[str] = []

    def run(engine: str, **extra: str) -> None:
        with running_server(workers=args.workers, **settings, **extra) as base:
            results = measure(base, questions)
            memory = service_rss_mib(int(base.rsplit(":", 1)[1]))
        for clients, elapsed, latencies, errors in results:
            rows.append(
                f"| {engine} | {clients} | {len(latencies)} | {errors} | {percentile(latencies, 50):.1f} | "
                f"{percentile(latencies, 99):.1f} | {max(latencies):.1f} | {len(latencies) / elapsed:.0f} | {memory:.0f} |"
            )

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()[0]
    run("embedded")
    if not args.no_rasa:
        with rasa_server(args.rasa_url) as url:
            run("Rasa, embedded as fallback", rasa_url=url)
    database = "PostgreSQL" if args.database_url else "SQLite"
    redis = "Redis" if args.redis_url else "in-process Redis"
    text = "\n".join(
        [
            "# `POST /api/v1/ask`: throughput and latency, embedded engine and Rasa",
            "",
            f"{started}, this machine (2 cores, 24 GiB), load average {load:.2f} at the start. `infoopt serve "
            f"--workers {args.workers}` on {database} and {redis}; client, service and Rasa server on loopback.",
            f"{len(questions)} held-out questions (nlu_data/tests/test_nlu.yml), each in a new conversation, after",
            "100 warm-up questions. Concurrency N: N clients, each sending its next question as soon as the last",
            "is answered. With Rasa the service calls the Rasa server (one process) for every question and keeps",
            "the embedded engine for when Rasa fails or times out. Memory: the service's processes, at the end.",
            "",
            "| engine | concurrency | requests | errors | p50 ms | p99 ms | max ms | requests/s | service RSS MiB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
