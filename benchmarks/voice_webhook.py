"""The voice line's webhooks over HTTP, signed as Twilio signs them: latency per step of a call.

    .venv/bin/python benchmarks/voice_webhook.py [--calls 120] [--out benchmarks/results/voice_webhook.md]

Starts `infoopt serve` (one worker, the zero-setup defaults: SQLite, in-process Redis, embedded NLU)
with a Twilio configuration, then plays whole calls — the incoming call, the language by keypad, a
held-out question as speech, and "hear it again" — one call at a time and eight at once. Target on
this 2-core machine: webhook p99 ≤ 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from server import running_server

from bot.nlu.evaluation import read_test_file

TOKEN = "benchmark-twilio-token-0123456789abcdef"  # noqa: S105 - a throwaway token for a local server
PUBLIC = "https://bench.infoopt.example"
DIGITS = {"pl": "1", "uk": "2", "ru": "3", "en": "4"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def post(
    http: httpx.AsyncClient, path: str, params: dict[str, str], timings: dict[str, list[float]], step: str
) -> None:
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    started = time.perf_counter()
    response = await http.post(path, data=params, headers={"X-Twilio-Signature": signature})
    timings[step].append((time.perf_counter() - started) * 1000)
    if response.status_code != 200 or "<Response" not in response.text:
        raise SystemExit(f"{path} answered {response.status_code}: {response.text[:200]}")


async def one_call(
    http: httpx.AsyncClient, question: tuple[str, str], timings: dict[str, list[float]]
) -> None:
    text, language = question
    base = {
        "CallSid": f"CA{random.getrandbits(128):032x}",
        "From": f"+48600{random.randint(100000, 999999)}",
        "To": "+48122102020",
    }
    await post(http, "/twilio/voice", base, timings, "incoming call")
    await post(http, "/twilio/voice/language", {**base, "Digits": DIGITS[language]}, timings, "language")
    await post(http, "/twilio/voice/turn", {**base, "SpeechResult": text}, timings, "question (speech)")
    await post(http, "/twilio/voice/turn", {**base, "Digits": "1"}, timings, "hear it again")


async def run(
    base: str, questions: list[tuple[str, str]], workers: int
) -> tuple[dict[str, list[float]], float]:
    timings: dict[str, list[float]] = defaultdict(list)
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for question in questions:
        queue.put_nowait(question)

    async def worker(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            await one_call(http, queue.get_nowait(), timings)

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await asyncio.gather(*(worker(http) for _ in range(workers)))
    return timings, time.perf_counter() - started


def table(title: str, timings: dict[str, list[float]], seconds: float) -> list[str]:
    everything = [value for values in timings.values() for value in values]
    lines = [
        f"### {title}",
        "",
        "| step | requests | p50 ms | p95 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for step, values in [*timings.items(), ("all webhooks", everything)]:
        lines.append(
            f"| {step} | {len(values)} | {percentile(values, 50):.1f} | {percentile(values, 95):.1f} | "
            f"{percentile(values, 99):.1f} | {max(values):.1f} |"
        )
    lines += [
        "",
        f"{len(everything)} webhooks in {seconds:.1f} s = {len(everything) / seconds:.0f} per second",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=120)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "voice_webhook.md")
    parser.add_argument("--database-url", help="PostgreSQL instead of the SQLite default")
    parser.add_argument("--redis-url", help="Redis instead of the in-process stand-in")
    args = parser.parse_args()
    examples = read_test_file(ROOT / "nlu_data" / "tests" / "test_nlu.yml")
    questions = [(example.text, example.language) for example in examples if example.language in DIGITS]
    random.Random(20261202).shuffle(questions)
    questions = questions[: args.calls]
    environment = {
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "INFOOPT_PUBLIC_URL": PUBLIC,
    }
    lines = [
        "# Voice webhooks: latency per step of a call",
        "",
        f"{time.strftime('%Y-%m-%d')}, this machine (2 cores), one `infoopt serve` worker on the zero-setup "
        "defaults (SQLite, in-process Redis, embedded NLU). Each call: incoming call, language by keypad, a "
        f'held-out question as speech, "hear it again"; {len(questions)} calls. Target: p99 ≤ 150 ms.',
        "",
    ]
    settings = {
        key: value
        for key, value in {"database_url": args.database_url, "redis_url": args.redis_url}.items()
        if value
    }
    setup = "PostgreSQL and Redis" if settings else "the zero-setup defaults (SQLite, in-process Redis)"
    lines[2] = lines[2].replace(
        "the zero-setup defaults (SQLite, in-process Redis, embedded NLU)", setup + ", embedded NLU"
    )
    with running_server(environment_extra=environment, **settings) as base:
        asyncio.run(run(base, questions[:10], 2))  # warm up
        for workers in (1, 8):
            timings, seconds = asyncio.run(run(base, questions, workers))
            lines += table(f"{workers} call{'s' if workers > 1 else ''} at a time", timings, seconds)
    report = "\n".join(lines)
    print(report)
    args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
