"""`POST /api/v1/ask` end to end over HTTP: latency p50/p99 one request at a time, and throughput.

    .venv/bin/python benchmarks/ask_latency.py [--redis-url URL] [--out benchmarks/results/ask_latency.md]

Starts `infoopt serve` (one worker) on the zero-setup defaults — SQLite, in-process Redis, embedded
NLU — in a temporary data directory, or on a real Redis with --redis-url, and asks it every held-out
question, each with its own session, so language detection, NLU, the knowledge-base lookup and the
conversation state all run as they do for a person.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from server import running_server

from bot.nlu.evaluation import read_test_file

TEST = ROOT / "nlu_data" / "tests" / "test_nlu.yml"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def concurrent(base: str, questions: list[str], workers: int) -> tuple[float, list[float]]:
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for number, question in enumerate(questions):
        queue.put_nowait((number, question))
    latencies: list[float] = []

    async def worker(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            _number, question = queue.get_nowait()
            started = time.perf_counter()
            response = await http.post("/api/v1/ask", json={"text": question})  # a new conversation each
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(workers)))
        return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ask_latency.md")
    args = parser.parse_args()
    questions = [example.text for example in read_test_file(TEST)]
    settings = {"redis_url": args.redis_url} if args.redis_url else {}
    with running_server(**settings) as base:
        sequential: list[float] = []
        with httpx.Client(base_url=base, timeout=30) as http:
            for question in questions[:100]:  # warm-up: caches fill as in a running service
                http.post("/api/v1/ask", json={"text": question})
            for question in questions:
                started = time.perf_counter()
                response = http.post("/api/v1/ask", json={"text": question})
                sequential.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
        elapsed, parallel = asyncio.run(concurrent(base, questions, workers=8))
    redis = "a real Redis" if args.redis_url else "in-process Redis"
    text = "\n".join(
        [
            "# `POST /api/v1/ask` latency",
            "",
            f"One `infoopt serve` worker on SQLite, {redis} and the embedded NLU, on this machine (2 cores);",
            f"client and server on loopback. {len(questions)} held-out questions, each with its own session.",
            "",
            "| run | requests | p50 ms | p99 ms | max ms | throughput |",
            "| --- | --- | --- | --- | --- | --- |",
            f"| one at a time | {len(sequential)} | {percentile(sequential, 50):.2f} | {percentile(sequential, 99):.2f} | "
            f"{max(sequential):.2f} | {len(sequential) / (sum(sequential) / 1000):.0f} req/s |",
            f"| 8 concurrent clients | {len(parallel)} | {percentile(parallel, 50):.2f} | {percentile(parallel, 99):.2f} | "
            f"{max(parallel):.2f} | {len(parallel) / elapsed:.0f} req/s |",
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
