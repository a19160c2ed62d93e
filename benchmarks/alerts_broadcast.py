"""A marked change told to 10,000 subscribers: `infoopt worker` processes → sendMessage at a fake Bot API.

    .venv/bin/python benchmarks/alerts_broadcast.py [--people 10000] [--workers 2] [--rate 30]
        [--kill-after 3000] [--database-url postgresql://infoopt@127.0.0.1:55432/infoopt_bench_alerts]
        [--redis-url redis://127.0.0.1:56379/12] [--out benchmarks/results/alerts_broadcast.md]

The database (its name must contain `bench`; created if missing) is migrated, the knowledge base loaded
from its files, and the subscriptions, outbox and changes emptied; so is the Redis database. Then
`--people` Telegram subscriptions of one topic are written (the four languages in turn), `--workers`
outbox workers start against the fake Bot API (in this process), and an admin's change is marked.
The workers' broadcast loop queues one message per subscriber; the outbox sends them within the
bot's shared limit (`TELEGRAM_MESSAGES_PER_SECOND`, `--rate`). With `--kill-after N` the first worker
is killed (SIGKILL) once N messages arrived and a new one started: the run then also shows that
nobody is messaged twice and how many messages the dead worker left in doubt ("unconfirmed").

Reported: how long the fan-out took, the first message's delay, the rate held (overall and the busiest
second), duplicates, missing and unconfirmed messages, and the workers' memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil
from aiohttp import web
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infoopt.core import db
from infoopt.core.clock import utcnow
from infoopt.core.languages import LANGUAGES
from knowledge_base.changes import mark_change
from knowledge_base.files import ARTICLES_DIR
from knowledge_base.service import sync_from_files
from tests.fake_telegram import FakeTelegram

TOPIC = "fees"
FIRST_CHAT = 800_000_000
START_SECONDS = 120


class CountingTelegram(FakeTelegram):
    """The fake Bot API, keeping only when each chat got a message (its own record would only grow)."""

    arrivals: list[tuple[float, int]]

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        response = await super()._handle(request)
        if request.match_info["method"] == "sendMessage" and response.status == 200:
            params = await self._params(request)
            self.arrivals.append((arrived, int(params["chat_id"])))
        self.calls.clear()
        return response


async def prepare_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        raise SystemExit(f"refusing to empty {name!r}: the database name must contain 'bench'")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    connection = await asyncpg.connect(admin)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    await asyncio.to_thread(db.upgrade, url)
    engine = db.create_engine(url)
    try:
        async with db.transaction(db.session_factory(engine)) as session:
            await sync_from_files(session, ARTICLES_DIR)
        async with engine.begin() as connection:
            from sqlalchemy import text

            await connection.execute(
                text("TRUNCATE subscription, outbox_job, kb_topic_change RESTART IDENTITY")
            )
    finally:
        await engine.dispose()


async def write_subscriptions(url: str, people: int) -> None:
    parts = urlsplit(url)
    connection = await asyncpg.connect(urlunsplit(parts._replace(scheme="postgresql")))
    try:
        await connection.copy_records_to_table(
            "subscription",
            columns=["channel", "recipient", "topic_id", "language", "active", "created_at"],
            records=[
                ("telegram", str(FIRST_CHAT + n), TOPIC, LANGUAGES[n % len(LANGUAGES)], True, utcnow())
                for n in range(people)
            ],
        )
    finally:
        await connection.close()


def launch(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "infoopt.cli", "worker"],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def started(log: Path, count: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while log.read_text(errors="replace").count("outbox worker started") < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the workers did not start; see {log}")
        await asyncio.sleep(0.2)


async def outcome_counts(url: str) -> tuple[dict[str, int], float | None]:
    parts = urlsplit(url)
    connection = await asyncpg.connect(urlunsplit(parts._replace(scheme="postgresql")))
    try:
        rows = await connection.fetch(
            "SELECT status, count(*) FROM outbox_job WHERE change_id IS NOT NULL GROUP BY status"
        )
        fan_out = await connection.fetchval(
            "SELECT extract(epoch FROM announced_at - changed_at) FROM kb_topic_change ORDER BY id LIMIT 1"
        )
        return {row["status"]: row["count"] for row in rows}, float(fan_out) if fan_out is not None else None
    finally:
        await connection.close()


async def run(args: argparse.Namespace) -> list[str]:
    await prepare_database(args.database_url)
    redis = Redis.from_url(args.redis_url)
    await redis.flushdb()
    await redis.aclose()
    await write_subscriptions(args.database_url, args.people)

    fake = CountingTelegram()
    fake.arrivals = []
    await fake.start()
    logs = Path(tempfile.mkdtemp(prefix="infoopt-alerts-bench-")) / "workers.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INFOOPT_", "TELEGRAM_", "TWILIO_"))}
    env = clean | {
        "INFOOPT_DATA_DIR": str(logs.parent / "data"),
        "INFOOPT_DATABASE_URL": args.database_url,
        "INFOOPT_REDIS_URL": args.redis_url,
        "INFOOPT_LOG_LEVEL": "WARNING",
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE": fake.url,
        "TELEGRAM_MESSAGES_PER_SECOND": str(args.rate),
    }
    workers = [launch(env, logs) for _ in range(args.workers)]
    killed = False
    peak_rss: dict[int, float] = {}
    try:
        await started(logs, args.workers)
        engine = db.create_engine(args.database_url)
        async with db.transaction(db.session_factory(engine)) as session:
            await mark_change(
                session, TOPIC, "pl", {"pl": "Benchmark: nowa kwota opłaty."}, actor="benchmark"
            )
        await engine.dispose()
        marked = time.perf_counter()
        deadline = marked + args.people / args.rate * 2 + 180
        last_progress, last_count = time.perf_counter(), 0
        while True:
            received = len(fake.arrivals)
            for process in workers:
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss = psutil.Process(process.pid).memory_info().rss / 2**20
                    peak_rss[process.pid] = max(peak_rss.get(process.pid, 0.0), rss)
            if args.kill_after and not killed and received >= args.kill_after:
                workers[0].send_signal(signal.SIGKILL)
                workers[0].wait()
                workers.append(launch(env, logs))
                killed = True
            counts, _ = await outcome_counts(args.database_url)
            settled = (
                sum(counts.values()) >= args.people
                and not counts.get("pending")
                and not counts.get("sending")
            )
            if settled:
                break
            if received != last_count:
                last_progress, last_count = time.perf_counter(), received
            if time.perf_counter() > deadline or time.perf_counter() - last_progress > 150:
                print(f"stopped waiting: {received} messages, outbox {counts}", file=sys.stderr)
                break
            await asyncio.sleep(0.5)
    finally:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(30)
        await fake.stop()

    counts, fan_out = await outcome_counts(args.database_url)
    arrivals = sorted(fake.arrivals)
    per_chat = Counter(chat for _at, chat in arrivals)
    times = [at for at, _chat in arrivals]
    busiest = 0
    start = 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    rows = [
        ("subscribers", f"{args.people:,}"),
        ("outbox workers", f"{args.workers}" + (" (one killed, one started)" if killed else "")),
        ("bot's limit (TELEGRAM_MESSAGES_PER_SECOND)", f"{args.rate}"),
        ("fan-out: change marked → every message queued", f"{fan_out:.2f} s" if fan_out is not None else "–"),
        ("first message after the change was marked", f"{times[0] - marked:.1f} s" if times else "–"),
        ("messages delivered", f"{len(arrivals):,}"),
        ("first to last message", f"{span:.1f} s"),
        (
            "rate held while sending (messages / seconds with a message)",
            f"{len(times) / len({int(at - times[0]) for at in times}):.1f} /s" if times else "–",
        ),
        ("busiest second", f"{busiest} messages"),
        ("people messaged twice", f"{sum(1 for n in per_chat.values() if n > 1)}"),
        ("people not messaged", f"{args.people - len(per_chat):,}"),
        (
            "jobs sent / unconfirmed / failed",
            f"{counts.get('sent', 0):,} / {counts.get('unconfirmed', 0)} / {counts.get('failed', 0)}",
        ),
        ("peak RSS per worker", ", ".join(f"{rss:.0f} MiB" for rss in peak_rss.values())),
    ]
    lines = [
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--kill-after", type=int, default=0)
    parser.add_argument("--database-url", default="postgresql://infoopt@127.0.0.1:55432/infoopt_bench_alerts")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:56379/12")
    parser.add_argument("--out", type=Path, default=None, help="append the table to this Markdown file")
    args = parser.parse_args()
    lines = asyncio.run(run(args))
    command = " ".join(["benchmarks/alerts_broadcast.py", *sys.argv[1:]])
    table = "\n".join([f"`{command}` ({time.strftime('%Y-%m-%d')})", "", *lines, ""])
    print(table)
    if args.out:
        with args.out.open("a", encoding="utf-8") as output:
            output.write("\n" + table)


if __name__ == "__main__":
    main()
