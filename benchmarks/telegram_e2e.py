"""Telegram end to end: updates into `POST /telegram/webhook` → `sendMessage` at a fake Bot API.

    .venv/bin/python benchmarks/telegram_e2e.py [--rates 5,10,25,50,100,200,300] [--seconds 30]
        [--warmup 5] [--chats 2000] [--max-connections 20] [--outbox-workers 2] [--send-limit 5000]
        [--cost 1000] [--keep-going] [--through-outbox] [--profile RATE]
        [--database-url postgresql://infoopt@127.0.0.1:55432/infoopt_bench_tg]
        [--redis-url redis://127.0.0.1:56379/14] [--out benchmarks/results/telegram_e2e.md]

Starts the fake Bot API (tests/fake_telegram.py, in this process), `infoopt serve --workers 2` on
PostgreSQL and Redis with the outbox out of process, and `infoopt worker` processes delivering the
outbox. Then, rate after rate, many chats send held-out questions as Telegram updates on a fixed
schedule, each due whatever the answers to earlier ones, and the fake times each `sendMessage`. As
Telegram does, at most `--max-connections` webhook requests are open at once (setWebhook's
max_connections; 0: no cap, every update sent the moment it is due). Latencies count from the moment
an update was due, so waiting on Telegram's side, or a client that falls behind, shows as latency,
not as a gentler load. Once most updates of a rate fail, higher
rates are not run (`--keep-going` runs them anyway). `--profile RATE` then samples the app workers and
an outbox worker with py-spy at that rate. The database is emptied first (its name must contain
`bench`), and so is the Redis database; the trained NLU models are cached in var/nlu.

Target on this 2-core machine: ≥ 300 updates/s sustained with webhook p99 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import psutil
import uvloop
from aiohttp import web
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from server import free_port

from bot.nlu.evaluation import read_test_file
from tests.fake_telegram import Call, FakeTelegram, Updates

SECRET = "benchmark-webhook-secret-0123456789abcdef"  # noqa: S105 - a throwaway secret for a local server
REQUEST_TIMEOUT_SECONDS = 10.0
START_SECONDS = 600  # training the NLU on a busy 2-core machine takes minutes the first time
NLU_CACHE = ROOT / "var" / "nlu"
PROFILE_SECONDS = 20
PROFILE_ROWS = 30
COST_CONCURRENCY = 8  # updates in flight at once while measuring CPU per update
SETTLE_SECONDS = 120  # at most, between rates, for the service to finish what abandoned clients asked
FIRST_CHAT = 700_000_000
# Where the hand-written analysis starts: everything below this line survives a rerun of the script.
FINDINGS_MARKER = "<!-- findings: written by hand, kept when the script rewrites the numbers above -->"


def percentile(values: list[float], q: float, *, missing: int = 0) -> float:
    """The q-th percentile, counting `missing` values as infinitely late (replies that never came)."""
    total = len(values) + missing
    if total == 0:
        return float("nan")
    index = min(total - 1, max(0, round(q / 100 * total) - 1))
    return sorted(values)[index] if index < len(values) else float("inf")


def shown(milliseconds: float, limit_seconds: float) -> str:
    if milliseconds == float("inf"):
        return f"> {limit_seconds:.0f} s"
    if milliseconds != milliseconds:  # NaN: nothing measured
        return "–"
    return f"{milliseconds:,.0f}" if milliseconds >= 100 else f"{milliseconds:.1f}"


@dataclass
class Ledger:
    """One rate's bookkeeping: which updates wait for a reply (per chat, oldest first), and the timings."""

    window_start: float = 0.0
    window_end: float = float("inf")
    waiting: dict[int, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    webhook_ms: list[float] = field(default_factory=list)
    end_to_end_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    measured: int = 0
    deliveries: list[float] = field(default_factory=list)
    unmatched: int = 0
    send_lag_ms: float = 0.0
    in_response: int = 0  # replies that came back in the webhook's response (the rest came from the outbox)

    def in_window(self, due: float) -> bool:
        return self.window_start <= due < self.window_end

    def sent(self, chat: int, due: float) -> None:
        self.waiting[chat].append(due)
        if self.in_window(due):
            self.measured += 1

    def answered(self, due: float, status: int | str) -> None:
        if not self.in_window(due):
            return
        if status == 200:
            self.webhook_ms.append((time.perf_counter() - due) * 1000)
        else:
            self.errors[str(status)] += 1

    def delivered(self, chat: int, arrived: float) -> None:
        """A sendMessage reached the fake: it answers the chat's oldest update still waiting."""
        self.deliveries.append(arrived)
        if not self.waiting.get(chat):
            self.unmatched += 1
            return
        due = self.waiting[chat].popleft()
        if self.in_window(due):
            self.end_to_end_ms.append((arrived - due) * 1000)

    def undelivered(self) -> int:
        return sum(1 for queue in self.waiting.values() for due in queue if self.in_window(due))


class TimedTelegram(FakeTelegram):
    """The fake Bot API, telling the current ledger when each successful sendMessage arrives: called, or
    given back in a webhook's response (which Telegram runs as a call)."""

    ledger: Ledger | None = None

    def webhook_response(self, body: bytes) -> Call | None:
        arrived = time.perf_counter()
        call = super().webhook_response(body)
        if call is not None and call.method == "sendMessage" and call.ok and self.ledger is not None:
            self.ledger.delivered(int(call.params["chat_id"]), arrived)
            self.ledger.in_response += 1
        self.calls.clear()
        return call

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        response = await super()._handle(request)
        if request.match_info["method"] == "sendMessage" and response.status == 200:
            params = await self._params(request)  # aiohttp keeps the parsed body: no second read
            if self.ledger is not None:
                self.ledger.delivered(int(params["chat_id"]), arrived)
        self.calls.clear()  # the fake's own record would only grow; the ledger keeps what counts
        return response


# --- the processes -----------------------------------------------------------------------------------


@dataclass
class Stack:
    """`infoopt serve --workers 2` and the outbox workers, with their logs."""

    base: str
    serve: subprocess.Popen[bytes]
    outbox: list[subprocess.Popen[bytes]]
    logs: Path

    def app_workers(self) -> list[psutil.Process]:
        children = psutil.Process(self.serve.pid).children()
        return [child for child in children if "resource_tracker" not in " ".join(child.cmdline())]

    def processes(self) -> list[tuple[str, psutil.Process]]:
        """Every process of the service, named for the table."""
        named = [("uvicorn master", psutil.Process(self.serve.pid))]
        named += [(f"app worker {n}", p) for n, p in enumerate(self.app_workers(), start=1)]
        named += [(f"outbox worker {n}", psutil.Process(p.pid)) for n, p in enumerate(self.outbox, start=1)]
        named.append(("benchmark (fake Bot API + load)", psutil.Process()))
        return named


def environment(
    data: Path,
    database_url: str,
    redis_url: str,
    fake: FakeTelegram,
    send_limit: float,
    reply_in_webhook: bool = True,
) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INFOOPT_", "TELEGRAM_", "TWILIO_"))}
    # The database pool's settings (INFOOPT_DB_POOL_SIZE, …) pass through, to compare pools.
    pool = {k: v for k, v in os.environ.items() if k.startswith("INFOOPT_DB_")}
    return (
        clean
        | pool
        | {
            "INFOOPT_DATA_DIR": str(data),
            "INFOOPT_DATABASE_URL": database_url,
            "INFOOPT_REDIS_URL": redis_url,
            "INFOOPT_LOG_LEVEL": "WARNING",
            "INFOOPT_OUTBOX_IN_PROCESS": "false",
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_API_BASE": fake.url,
            # The fake has no limit: the workers' shared one is raised so that it measures their cost.
            "TELEGRAM_MESSAGES_PER_SECOND": str(send_limit),
            "TELEGRAM_REPLY_IN_WEBHOOK": "true" if reply_in_webhook else "false",
        }
    )


def launch(arguments: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "infoopt.cli", *arguments],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def wait_until(check: Any, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll `check()` until it is true; give up (showing the log) if the process dies or time runs out."""
    deadline = time.monotonic() + START_SECONDS
    while not await check():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start; its log ends:\n{log.read_text()[-3000:]}")
        await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def running_stack(
    fake: FakeTelegram,
    database_url: str,
    redis_url: str,
    outbox_workers: int,
    keep_logs: Path | None,
    send_limit: float,
    reply_in_webhook: bool = True,
) -> Any:
    with tempfile.TemporaryDirectory(prefix="infoopt-bench-tg-") as temporary:
        data = Path(temporary)
        # The trained NLU models are cached where `infoopt serve` keeps them by default: training them
        # in every process of every run would take minutes on a busy machine.
        NLU_CACHE.mkdir(parents=True, exist_ok=True)
        (data / "nlu").symlink_to(NLU_CACHE, target_is_directory=True)
        env = environment(data, database_url, redis_url, fake, send_limit, reply_in_webhook)
        port = free_port()
        serve_log = data / "serve.log"
        serve = launch(["serve", "--port", str(port), "--workers", "2"], env, serve_log)
        stack = Stack(f"http://127.0.0.1:{port}", serve, [], data)
        try:
            async with aiohttp.ClientSession() as http:

                async def ready() -> bool:
                    """Both workers have finished starting: each counts itself in /metrics then."""
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        async with http.get(f"{stack.base}/metrics", timeout=aiohttp.ClientTimeout(2)) as r:
                            return r.status == 200 and "\ninfoopt_http_workers 2.0" in await r.text()
                    return False

                await wait_until(ready, "infoopt serve", serve, serve_log)
            for number in range(1, outbox_workers + 1):
                log = data / f"worker-{number}.log"
                worker = launch(["worker"], env, log)
                stack.outbox.append(worker)

                async def started(log: Path = log) -> bool:
                    return "outbox worker started" in log.read_text()

                await wait_until(started, f"outbox worker {number}", worker, log)
            yield stack
        finally:
            for process in [*stack.outbox, serve]:
                process.terminate()
            for process in [*stack.outbox, serve]:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            if keep_logs is not None:
                keep_logs.mkdir(parents=True, exist_ok=True)
                for log in data.glob("*.log"):
                    shutil.copy(log, keep_logs / log.name)


async def empty_database(database_url: str) -> None:
    """Drop everything in the benchmark's database (`infoopt serve` migrates it again)."""
    name = urlsplit(database_url).path.lstrip("/")
    if "bench" not in name:
        raise SystemExit(f"refusing to empty {name!r}: the benchmark's database name must contain 'bench'")
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("drop schema public cascade; create schema public")
    finally:
        await connection.close()


async def outbox_backlog(database: asyncpg.Connection) -> int:
    """Replies queued and not yet delivered (pending, or being sent right now)."""
    return int(
        await database.fetchval("select count(*) from outbox_job where status in ('pending', 'sending')")
    )


# --- the load ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    base: str
    chats: list[int]
    questions: list[tuple[str, str]]
    updates: Updates
    telegram: TimedTelegram
    redis_url: str  # Telegram's side: it also runs what a webhook's response asks for


async def send_update(
    http: aiohttp.ClientSession, load: Load, ledger: Ledger, chat: int, question: tuple[str, str], due: float
) -> None:
    text, language = question
    update = load.updates.message(chat, text, language=language)
    ledger.sent(chat, due)
    try:
        async with http.post(
            f"{load.base}/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        ) as response:
            body = await response.read()
            ledger.answered(due, response.status)
            if response.status == 200:
                load.telegram.webhook_response(body)
    except TimeoutError:
        ledger.answered(due, "timeout")
    except aiohttp.ClientError as error:
        ledger.answered(due, type(error).__name__)


async def offer(
    http: aiohttp.ClientSession, load: Load, ledger: Ledger, rate: float, seconds: float, first: int
) -> list[asyncio.Task[None]]:
    """Send `rate` updates a second for `seconds`, each when it is due; the tasks still answering."""
    start = time.perf_counter()
    tasks = []
    for number in range(round(rate * seconds)):
        due = start + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        ledger.send_lag_ms = max(ledger.send_lag_ms, (time.perf_counter() - due) * 1000)
        index = first + number
        chat = load.chats[index % len(load.chats)]
        question = load.questions[index % len(load.questions)]
        tasks.append(asyncio.create_task(send_update(http, load, ledger, chat, question, due)))
    return tasks


class FullCollections:
    """This process's own full garbage collections (generation 2): while one runs, no update goes out and
    no response is read, so a pause here would count as the service's latency."""

    def __init__(self) -> None:
        self.count = 0
        self.longest_ms = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.longest_ms = max(self.longest_ms, (time.perf_counter() - self._started) * 1000)


@dataclass
class CpuSnapshot:
    """CPU seconds so far: per process of ours, and the whole machine's busy time."""

    per_process: dict[int, float]
    machine_busy: float
    at: float

    @classmethod
    def take(cls, processes: list[psutil.Process]) -> CpuSnapshot:
        per_process = {}
        for process in processes:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                per_process[process.pid] = times.user + times.system
        machine = psutil.cpu_times()
        busy = machine.user + machine.system + machine.nice + machine.irq + machine.softirq + machine.steal
        return cls(per_process, busy, time.perf_counter())

    def seconds_since(self, earlier: CpuSnapshot, pids: list[int]) -> float:
        """CPU seconds these processes used since `earlier`. A pid whose count went down is a new process
        that reused the number (PostgreSQL opens and closes connections under load): all of it counts."""
        total = 0.0
        for pid in set(pids):
            now, then = self.per_process.get(pid, 0.0), earlier.per_process.get(pid, 0.0)
            total += now - then if now >= then else now
        return total

    def cores_since(self, earlier: CpuSnapshot, pids: list[int]) -> float:
        return self.seconds_since(earlier, pids) / (self.at - earlier.at)


def redis_server(url: str) -> list[psutil.Process]:
    """The Redis server the service uses, if it runs on this machine (its CPU is counted with the rest:
    while the benchmark runs, nothing else uses it)."""
    port = urlsplit(url).port or 6379
    for process in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            command = " ".join(process.info["cmdline"] or [])
            if "redis-server" in (process.info["name"] or "") + command and f":{port}" in command:
                return [process]
    return []


async def postgres_backends(database: asyncpg.Connection, name: str) -> list[psutil.Process]:
    pids = await database.fetch("select pid from pg_stat_activity where datname = $1", name)
    found = []
    for row in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(row["pid"]))
    return found


@dataclass
class RateResult:
    rate: int
    load_average: tuple[float, float, float]
    ledger: Ledger
    args: argparse.Namespace
    backlog_jobs: int
    waiting_updates: int
    cpu_cores: dict[str, float]
    rss_mib: dict[str, float]
    settling_seconds: float
    transactions: int  # PostgreSQL transactions in this database (everyone's) during the measured seconds

    @property
    def delivered(self) -> int:
        """sendMessage calls that arrived within the measured seconds (to whichever update)."""
        ledger = self.ledger
        return sum(1 for t in ledger.deliveries if ledger.window_start <= t < ledger.window_end)

    @property
    def collapsed(self) -> bool:
        """Most measured updates failed or timed out: higher rates can only do worse."""
        return sum(self.ledger.errors.values()) > self.ledger.measured / 2

    def cpu_ms_per(self, part: str, count: int) -> float:
        return self.cpu_cores[part] * self.args.seconds * 1000 / count if count else float("nan")


@dataclass
class Cost:
    """What a fixed number of updates cost, sent a few at a time: CPU seconds per part, whatever the rest
    of the machine was doing meanwhile (only the latencies suffer from a busy machine, not these)."""

    updates: int
    delivered: int
    cpu_seconds: dict[str, float]
    transactions: int
    load_average: float
    in_response: int = 0

    def ms_per(self, part: str, count: int) -> float:
        return self.cpu_seconds[part] * 1000 / count if count else float("nan")


async def measure_cost(
    stack: Stack,
    load: Load,
    fake: TimedTelegram,
    database: asyncpg.Connection,
    database_name: str,
    count: int,
    first: int,
) -> Cost:
    """Send `count` updates, COST_CONCURRENCY at a time (a closed loop: never more than the service can
    take), and wait until every reply has reached the fake; the CPU each part used meanwhile. One update
    from each chat goes first, unmeasured: the service then runs as it does all day (every chat has its
    conversation; every pooled connection is open and has planned its statements)."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS * 3)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100), timeout=timeout) as http:

        async def closed_loop(numbers: range, ledger: Ledger) -> None:
            indexes = iter(numbers)

            async def sender() -> None:
                for index in indexes:
                    chat = load.chats[index % len(load.chats)]
                    question = load.questions[index % len(load.questions)]
                    await send_update(http, load, ledger, chat, question, time.perf_counter())

            await asyncio.gather(*(sender() for _ in range(COST_CONCURRENCY)))

        await closed_loop(range(first, first + len(load.chats)), Ledger())
        first += len(load.chats)
        await asyncio.sleep(2)  # the last replies of the warm-up out of the outbox
        load_average = os.getloadavg()[0]
        ledger = Ledger(window_start=time.perf_counter())
        fake.ledger = ledger
        named = stack.processes() + [("Redis server", process) for process in redis_server(load.redis_url)]
        backends = await postgres_backends(database, database_name)
        before = CpuSnapshot.take([process for _, process in named] + backends)
        transactions = await transactions_so_far(database, database_name)
        await closed_loop(range(first, first + count), ledger)
    for _ in range(1200):  # every reply delivered, or a minute gone
        if len(ledger.deliveries) >= count:
            break
        await asyncio.sleep(0.05)
    fake.ledger = None
    backends += await postgres_backends(database, database_name)
    after = CpuSnapshot.take([process for _, process in named] + backends)
    transactions = await transactions_so_far(database, database_name) - transactions

    parts = {
        "app workers": [process.pid for name, process in named if name.startswith("app worker")],
        "outbox workers": [process.pid for name, process in named if name.startswith("outbox worker")],
        "PostgreSQL": [process.pid for process in backends],
        "Redis server": [process.pid for name, process in named if name == "Redis server"],
    }
    cpu = {part: after.seconds_since(before, pids) for part, pids in parts.items()}
    return Cost(count, len(ledger.deliveries), cpu, transactions, load_average, ledger.in_response)


def cost_rows(cost: Cost) -> list[str]:
    answered = cost.updates
    rows = {
        "app workers, per update": cost.ms_per("app workers", answered),
        "PostgreSQL (this database's connections), per update": cost.ms_per("PostgreSQL", answered),
        "outbox workers, per update": cost.ms_per("outbox workers", answered),
        "Redis server, per update": cost.ms_per("Redis server", answered),
    }
    total = sum(rows.values())
    cores = os.cpu_count() or 1
    return [
        f"After one update from each chat (not measured), {cost.updates:,} updates, {COST_CONCURRENCY} in "
        "flight at a time, each answered with a sendMessage "
        f"({cost.delivered:,} arrived, {cost.in_response:,} of them in the webhook's response, the rest from "
        f"the outbox); load average {cost.load_average:.2f} at the start.",
        "",
        "| CPU ms | per update |",
        "| --- | ---: |",
        *[f"| {name} | {value:.2f} |" for name, value in rows.items()],
        f"| **together** | **{total:.2f}** |",
        f"| PostgreSQL transactions per update (everyone's in this database) | "
        f"{cost.transactions / max(1, answered):.1f} |",
        "",
        f"So {cores} otherwise idle cores could take at most about {cores * 1000 / total:.0f} updates/s end "
        f"to end; the target of 300/s needs at most {cores * 1000 / 300:.1f} ms.",
        "",
    ]


def memory(stack: Stack) -> dict[str, float]:
    sizes = {}
    for name, process in stack.processes():
        with contextlib.suppress(psutil.Error):
            sizes[name] = process.memory_info().rss / 2**20
    return sizes


async def transactions_so_far(database: asyncpg.Connection, name: str) -> int:
    """Transactions committed or rolled back in the database so far (PostgreSQL's statistics)."""
    return int(
        await database.fetchval(
            "select xact_commit + xact_rollback from pg_stat_database where datname = $1", name
        )
    )


async def settle(database: asyncpg.Connection, database_name: str) -> float:
    """Wait until the service has no transaction in flight (it goes on with requests whose client gave
    up); how many seconds that took."""
    began = time.perf_counter()
    quiet = 0
    while quiet < 3 and time.perf_counter() - began < SETTLE_SECONDS:
        busy = await database.fetchval(
            "select count(*) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid() "
            "and state in ('active', 'idle in transaction')",
            database_name,
        )
        quiet = quiet + 1 if busy == 0 else 0
        await asyncio.sleep(0.5)
    return time.perf_counter() - began


async def run_rate(
    stack: Stack,
    load: Load,
    fake: TimedTelegram,
    database: asyncpg.Connection,
    database_name: str,
    rate: int,
    args: argparse.Namespace,
    first: int,
) -> RateResult:
    """One rate: warm up, measure, note the backlog and every process's RSS, then let the service settle
    and clear the outbox, so that the next rate starts afresh."""
    load_average = os.getloadavg()
    ledger = Ledger()
    fake.ledger = ledger
    ledger.window_start = time.perf_counter() + args.warmup
    ledger.window_end = ledger.window_start + args.seconds
    named = stack.processes() + [("Redis server", process) for process in redis_server(load.redis_url)]
    # Telegram holds at most max_connections webhook requests open at once; updates due meanwhile wait on
    # its side (the wait counts: times start when an update was due). 0: no cap, every update sent when due.
    connector = aiohttp.TCPConnector(limit=args.max_connections or 5000)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        sending = asyncio.create_task(offer(http, load, ledger, rate, args.warmup + args.seconds, first))
        await asyncio.sleep(max(0.0, ledger.window_start - time.perf_counter()))
        backends = await postgres_backends(database, database_name)
        before = CpuSnapshot.take([process for _, process in named] + backends)
        transactions = await transactions_so_far(database, database_name)
        tasks = await sending
        transactions = await transactions_so_far(database, database_name) - transactions
        # Connections the pools opened meanwhile count from zero.
        backends += await postgres_backends(database, database_name)
        after = CpuSnapshot.take([process for _, process in named] + backends)
        backlog = await outbox_backlog(database)
        waiting = sum(len(queue) for queue in ledger.waiting.values())
        rss = memory(stack)
        # Replies to the measured updates may still come for a while; later ones count as never.
        await asyncio.sleep(args.grace)
        await asyncio.gather(*tasks)
    fake.ledger = None
    settling = await settle(database, database_name)
    await database.execute("delete from outbox_job where status = 'pending'")
    await asyncio.sleep(2)  # jobs already being sent finish before the next rate starts
    app = [process.pid for name, process in named if name.startswith("app worker")]
    outbox = [process.pid for name, process in named if name.startswith("outbox worker")]
    postgres = sorted({process.pid for process in backends})
    ours = [process.pid for _, process in named] + postgres
    machine = (after.machine_busy - before.machine_busy) / (after.at - before.at)
    cores = {
        "app workers": after.cores_since(before, app),
        "outbox workers": after.cores_since(before, outbox),
        "PostgreSQL (this database's connections)": after.cores_since(before, postgres),
        "benchmark (fake Bot API + load)": after.cores_since(before, [os.getpid()]),
        "Redis server": after.cores_since(
            before, [process.pid for name, process in named if name == "Redis server"]
        ),
    }
    cores["everything else on the machine"] = max(0.0, machine - after.cores_since(before, ours))
    return RateResult(rate, load_average, ledger, args, backlog, waiting, cores, rss, settling, transactions)


# --- profiling ---------------------------------------------------------------------------------------


FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^():]+)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """`function (file:line)` → `function (short/path.py)`: lines merged, paths relative."""
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["path"]
    for anchor in ("site-packages/", str(ROOT) + "/", "/lib/python3.11/"):
        if anchor in path:
            path = path.split(anchor, 1)[1]
    return f"{match['function']} ({path})"


def area(frame: str) -> str:
    """Which library or part of the project a frame belongs to."""
    match = FRAME.match(frame.strip())
    path = match["path"] if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if path.startswith(str(ROOT) + "/"):
        return "project: " + path.removeprefix(str(ROOT) + "/").split("/", 1)[0]
    if "/lib/python3" in path:
        return "stdlib: " + path.rsplit("/lib/python3", 1)[1].split("/", 1)[1].split("/", 1)[0]
    return "other"


# Innermost frames that mean a thread waits, though py-spy (not pausing the process) may count it as busy:
# an idle thread pool, a plain asyncio loop in select(), uvicorn's health pipe.
WAITING_FRAMES = (
    ("_worker", "concurrent/futures/thread.py"),
    ("EpollSelector.select", "selectors.py"),
    ("Connection._recv", "multiprocessing/connection.py"),
    ("Condition.wait", "threading.py"),
)


def waiting(frame: str) -> bool:
    name = frame_name(frame)
    return any(name.startswith(function + " (") and path in name for function, path in WAITING_FRAMES)


def read_profile(paths: list[Path]) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """py-spy's raw (collapsed) stacks: samples, and time by leaf frame, by frame anywhere, by area."""
    total, own, inclusive, areas = 0, Counter[str](), Counter[str](), Counter[str]()
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [
                frame for frame in stack.split(";") if frame and not frame.startswith(("process ", "thread "))
            ]
            if not frames or waiting(frames[-1]):
                continue
            total += count
            own[frame_name(frames[-1])] += count
            areas[area(frames[-1])] += count
            for name in {frame_name(frame) for frame in frames}:
                inclusive[name] += count
    return total, own, inclusive, areas


def record(spy: Path, pid: int, output: Path, seconds: int) -> subprocess.Popen[bytes]:
    """py-spy sampling one process without pausing it, its stacks collapsed into `output`."""
    options = ["--nonblocking", "--full-filenames", "--format", "raw", "--rate", "100"]
    return subprocess.Popen(
        [
            str(spy),
            "record",
            *options,
            "--duration",
            str(seconds),
            "--pid",
            str(pid),
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def profile_tables(paths: list[Path], seconds: int) -> list[str]:
    """Where the sampled processes spent their active time: by library, by function with its callees,
    and by function alone."""
    total, own, inclusive, areas = read_profile([path for path in paths if path.exists()])
    if total == 0:
        return ["py-spy recorded nothing (does this machine allow ptrace?)", ""]
    possible = seconds * 100 * len(paths)
    lines = [
        f"{total:,} samples of {possible:,} possible: active {total / possible:.0%} of the time (threads "
        "waiting in a thread pool, select() or a pipe left out); the shares below are of the active samples. "
        "`Runner.run` on its own is uvloop's C code and the C extensions it calls without a Python frame "
        "(asyncpg's protocol, httptools).",
        "",
        "| where the time went (the innermost frame's library or package) | share |",
        "| --- | ---: |",
        *[f"| {name} | {count / total:.1%} |" for name, count in areas.most_common(12)],
        "",
        "| function, with everything it calls | share |",
        "| --- | ---: |",
    ]
    # Frames on (nearly) every stack, the process's and the event loop's, say nothing.
    telling = [(name, count) for name, count in inclusive.most_common() if count < 0.9 * total]
    lines += [f"| `{name}` | {count / total:.1%} |" for name, count in telling[:PROFILE_ROWS]]
    lines += ["", "| function, its own time | share |", "| --- | ---: |"]
    lines += [f"| `{name}` | {count / total:.1%} |" for name, count in own.most_common(15)]
    return [*lines, ""]


async def profile(
    stack: Stack, load: Load, fake: TimedTelegram, rate: int, first: int, folder: Path
) -> list[str]:
    """py-spy on both app workers and one outbox worker while `rate` updates a second come in."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install -e '.[dev]'")
    folder.mkdir(parents=True, exist_ok=True)
    seconds = PROFILE_SECONDS
    ledger = Ledger(window_start=time.perf_counter())
    fake.ledger = ledger
    app = [folder / f"app-worker-{process.pid}.txt" for process in stack.app_workers()]
    outbox = [folder / f"outbox-worker-{process.pid}.txt" for process in stack.outbox[:1]]
    pids = [process.pid for process in stack.app_workers()] + [process.pid for process in stack.outbox[:1]]
    recorders = [record(spy, pid, output, seconds) for pid, output in zip(pids, app + outbox, strict=True)]
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=5000), timeout=aiohttp.ClientTimeout(REQUEST_TIMEOUT_SECONDS)
    ) as http:
        tasks = await offer(http, load, ledger, rate, seconds + 1, first)
        await asyncio.gather(*tasks)
    for recorder in recorders:
        await asyncio.to_thread(recorder.wait, 60)
    fake.ledger = None
    return [
        f"## Profile at {rate} updates/s for {seconds} s (py-spy, 100 Hz, not in the tables above)",
        "",
        f"Meanwhile: webhook p50 {shown(percentile(ledger.webhook_ms, 50), REQUEST_TIMEOUT_SECONDS)} ms, p99 "
        f"{shown(percentile(ledger.webhook_ms, 99), REQUEST_TIMEOUT_SECONDS)} ms; "
        f"{sum(ledger.errors.values())} of {ledger.measured} updates failed or timed out; load average "
        f"{os.getloadavg()[0]:.2f} at the end.",
        "",
        "### Both app workers",
        "",
        *profile_tables(app, seconds),
        "### One outbox worker",
        "",
        *profile_tables(outbox, seconds),
    ]


# --- the report --------------------------------------------------------------------------------------


def result_rows(results: list[RateResult], skipped: list[int]) -> list[str]:
    lines = [
        "| offered updates/s | load avg (1 min) at start | webhook p50 ms | webhook p99 ms | errors, timeouts "
        "| end-to-end p50 ms | end-to-end p99 ms | sendMessage/s achieved | not delivered | "
        "backlog at end: jobs / updates waiting | settled after |",
        "| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        ledger, grace = result.ledger, result.args.grace
        missing = ledger.undelivered()
        errors = ", ".join(f"{count} × {kind}" for kind, count in ledger.errors.most_common()) or "0"
        lines.append(
            f"| {result.rate} | {result.load_average[0]:.2f} | "
            f"{shown(percentile(ledger.webhook_ms, 50), REQUEST_TIMEOUT_SECONDS)} | "
            f"{shown(percentile(ledger.webhook_ms, 99), REQUEST_TIMEOUT_SECONDS)} | {errors} | "
            f"{shown(percentile(ledger.end_to_end_ms, 50, missing=missing), grace)} | "
            f"{shown(percentile(ledger.end_to_end_ms, 99, missing=missing), grace)} | "
            f"{result.delivered / result.args.seconds:.1f} | {missing:,} of {ledger.measured:,} | "
            f"{result.backlog_jobs:,} / {result.waiting_updates:,} | {result.settling_seconds:.0f} s |"
        )
    lines += [
        f"| {rate} | not run: most updates already failed at a lower rate | | | | | | | | | |"
        for rate in skipped
    ]
    return lines


def resource_rows(results: list[RateResult]) -> list[str]:
    names = list(results[0].rss_mib)
    rates = " | ".join(f"{r.rate}/s" for r in results)
    align = " | ".join("---:" for _ in results)
    lines = [f"| RSS (MiB) at the end of each rate | {rates} |", f"| --- | {align} |"]
    for name in names:
        cells = " | ".join(f"{r.rss_mib.get(name, float('nan')):.0f}" for r in results)
        lines.append(f"| {name} | {cells} |")
    lines += ["", f"| CPU, in cores, during the measured seconds | {rates} |", f"| --- | {align} |"]
    for name in results[0].cpu_cores:
        cells = " | ".join(f"{r.cpu_cores[name]:.2f}" for r in results)
        lines.append(f"| {name} | {cells} |")
    per_update: dict[str, Callable[[RateResult], float]] = {
        "app workers, per answered update": lambda r: r.cpu_ms_per("app workers", len(r.ledger.webhook_ms)),
        "PostgreSQL, per answered update": lambda r: r.cpu_ms_per(
            "PostgreSQL (this database's connections)", len(r.ledger.webhook_ms)
        ),
        "outbox workers, per answered update": lambda r: r.cpu_ms_per(
            "outbox workers", len(r.ledger.webhook_ms)
        ),
        "Redis server, per answered update": lambda r: r.cpu_ms_per("Redis server", len(r.ledger.webhook_ms)),
    }
    lines += ["", f"| per update (– where most updates failed) | {rates} |", f"| --- | {align} |"]
    for name, value in per_update.items():
        cells = " | ".join("–" if r.collapsed else f"{value(r):.1f}" for r in results)
        lines.append(f"| CPU ms: {name} | {cells} |")
    cells = " | ".join(
        "–" if r.collapsed else f"{r.transactions / max(1, len(r.ledger.webhook_ms)):.1f}" for r in results
    )
    lines.append(f"| PostgreSQL transactions per answered update (app and outbox workers) | {cells} |")
    cells = " | ".join(f"{r.ledger.in_response / max(1, len(r.ledger.deliveries)):.0%}" for r in results)
    lines.append(
        f"| replies that came back in the webhook's response (the rest: from the outbox) | {cells} |"
    )
    calm = results[0]  # the lowest rate: the service keeps up, so CPU per update is least inflated
    total = sum(value(calm) for value in per_update.values())
    cores = os.cpu_count() or 1
    lines += [
        "",
        f"At {calm.rate}/s one update costs about {total:.0f} ms of CPU from webhook to sendMessage (the "
        f"benchmark's own not counted), so {cores} otherwise idle cores could take at most about "
        f"{cores * 1000 / total:.0f} updates/s end to end; the target of 300/s needs about "
        f"{cores * 1000 / 300:.1f} ms.",
    ]
    return lines


def header(args: argparse.Namespace, questions: int) -> list[str]:
    memory_gib = psutil.virtual_memory().total / 2**30
    return [
        "# Telegram end to end: webhook → conversation → sendMessage (in the webhook's response, or from the outbox)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, this machine ({os.cpu_count()} cores, {memory_gib:.0f} GiB), "
        "a virtual machine whose CPU speed varies from run to run by ±20 % (the load average "
        "at the start of each rate is in the table; the CPU table shows what everything else on the "
        "machine took). `infoopt serve --workers 2` on PostgreSQL 15 and Redis (both on loopback, "
        f"used by nothing else meanwhile), embedded NLU, `INFOOPT_OUTBOX_IN_PROCESS=false`, {args.outbox_workers} "
        "`infoopt worker` process(es) delivering the outbox to a fake Bot API (tests/fake_telegram.py, in the "
        "benchmark's process, answering at once). "
        + (
            "`TELEGRAM_REPLY_IN_WEBHOOK=false`: every reply through the outbox."
            if args.through_outbox
            else "A reply of one message goes back in the webhook's response when the sending limits allow "
            "(`TELEGRAM_REPLY_IN_WEBHOOK`, on by default); Telegram's side, here the benchmark, runs it as a "
            "sendMessage the moment the response arrives."
        ),
        "",
        f"Load: {args.chats:,} private chats in turn, each update one of {questions:,} held-out questions "
        "(nlu_data/tests/test_nlu.yml) in its language, due at a fixed rate for "
        f"{args.warmup:g} s of warm-up and then {args.seconds:g} s measured, "
        + (
            f"sent with at most {args.max_connections} requests open at once, as Telegram does "
            "(`TELEGRAM_WEBHOOK_MAX_CONNECTIONS`; the README advises app processes × pooled connections, "
            "2 × 10 here by default): an update due while all are busy waits on Telegram's side. "
            if args.max_connections
            else "each sent the moment it is due, however many are open (open loop; Telegram itself "
            "never holds more than 100 open). "
        )
        + "Times count from the moment an update was due, so waiting on Telegram's side counts. End to end: from then until the fake received the sendMessage to that chat (each "
        "chat's replies answer its updates in order). A reply that had not arrived "
        f"{args.grace:g} s after the last update counts as infinitely late (shown as `> {args.grace:g} s`). "
        "Backlog at end: outbox jobs pending or being sent, and measured or warm-up updates with no reply "
        "yet, the moment the last update went out; the pending jobs are then deleted, so each rate starts "
        "with an empty outbox.",
        "",
        "Target (issue 14): ≥ 300 updates/s sustained with webhook p99 ≤ 100 ms.",
        "",
    ]


def write_report(path: Path, lines: list[str]) -> None:
    """Write the numbers; keep the hand-written findings below the marker, if the file has them."""
    kept = ""
    if path.exists() and FINDINGS_MARKER in path.read_text():
        kept = path.read_text().split(FINDINGS_MARKER, 1)[1]
    path.write_text("\n".join(lines).rstrip() + "\n\n" + FINDINGS_MARKER + (kept or "\n"))


# --- main --------------------------------------------------------------------------------------------


def questions_in_turn() -> list[tuple[str, str]]:
    examples = read_test_file(ROOT / "nlu_data" / "tests" / "test_nlu.yml")
    questions = [(example.text, example.language or "pl") for example in examples]
    random.Random(20261202).shuffle(questions)
    return questions


async def benchmark(args: argparse.Namespace) -> list[str]:
    rates = [int(rate) for rate in args.rates.split(",") if rate]
    questions = questions_in_turn()
    await empty_database(args.database_url)
    redis = Redis.from_url(args.redis_url)
    await redis.flushdb()
    await redis.aclose()
    fake = TimedTelegram()
    await fake.start()
    database = await asyncpg.connect(args.database_url)
    database_name = urlsplit(args.database_url).path.lstrip("/")
    lines = header(args, len(questions))
    try:
        async with running_stack(
            fake,
            args.database_url,
            args.redis_url,
            args.outbox_workers,
            args.keep_logs,
            args.send_limit,
            not args.through_outbox,
        ) as stack:
            chats = [FIRST_CHAT + number for number in range(args.chats)]
            load = Load(stack.base, chats, questions, Updates(), fake, args.redis_url)
            results: list[RateResult] = []
            sent = 0
            # What the benchmark built so far lives to its end: out of the collector's full passes, which
            # over it would stall the load generator (the service's processes do the same at start-up).
            gc.collect()
            gc.freeze()
            collections = FullCollections()
            gc.callbacks.append(collections)
            if args.cost:
                cost = await measure_cost(stack, load, fake, database, database_name, args.cost, sent)
                sent += len(chats) + args.cost
                await settle(database, database_name)
                lines += ["## CPU per update (closed loop)", "", *cost_rows(cost)]
                print(f"cost measured (load average {cost.load_average:.2f})", file=sys.stderr)
            for rate in rates:
                if results and results[-1].collapsed and not args.keep_going:
                    break
                result = await run_rate(stack, load, fake, database, database_name, rate, args, sent)
                sent += round(rate * (args.warmup + args.seconds))
                results.append(result)
                print(f"{rate}/s done (load average {result.load_average[0]:.2f})", file=sys.stderr)
            skipped = rates[len(results) :]
            lag = max((result.ledger.send_lag_ms for result in results), default=0.0)
            lines += (
                []
                if not results
                else [
                    "## Rates",
                    "",
                    *result_rows(results, skipped),
                    "",
                    f"The load generator sent every update at most {lag:.0f} ms after it was due; its process made "
                    f"{collections.count} full garbage collection(s), the longest {collections.longest_ms:.0f} ms "
                    "(start-up objects frozen out of them). Settled after: "
                    "how long the service went on working, after the last update, on requests whose client had "
                    f"given up ({REQUEST_TIMEOUT_SECONDS:g} s timeout) before no transaction was left open. "
                    f"Outbox workers: {args.outbox_workers}, sharing one send limit of {args.send_limit:g} "
                    "messages a second (`TELEGRAM_MESSAGES_PER_SECOND`, kept in Redis; Telegram's own is about 30 "
                    "for one bot, which the fake does not enforce, so the benchmark raises it to measure the "
                    "workers' cost).",
                    "",
                    "## Memory and CPU",
                    "",
                    *resource_rows(results),
                    "",
                ]
            )
            if args.profile:
                with tempfile.TemporaryDirectory(prefix="infoopt-bench-tg-profile-") as temporary:
                    folder = args.profile_dir or Path(temporary)
                    lines += await profile(stack, load, fake, args.profile, sent, folder)
    finally:
        await database.close()
        await fake.stop()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rates", default="5,10,25,50,100,200,300", help="offered updates a second, comma separated"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds at each rate")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds at each rate before measuring")
    parser.add_argument(
        "--grace", type=float, default=5.0, help="seconds a reply may come after the last update"
    )
    parser.add_argument("--chats", type=int, default=2000)
    parser.add_argument(
        "--max-connections",
        type=int,
        default=20,
        help="webhook requests Telegram's side holds open at once (setWebhook's max_connections, "
        "TELEGRAM_WEBHOOK_MAX_CONNECTIONS; 20 = the service's 2 processes × 10 pooled connections, as "
        "the README advises; 0: no cap, every update sent the moment it is due)",
    )
    parser.add_argument("--outbox-workers", type=int, default=2)
    parser.add_argument(
        "--send-limit",
        type=float,
        default=5000.0,
        help="TELEGRAM_MESSAGES_PER_SECOND for the workers (the fake Bot API has no limit of its own)",
    )
    parser.add_argument("--keep-going", action="store_true", help="run every rate, even after a collapse")
    parser.add_argument(
        "--through-outbox",
        action="store_true",
        help="TELEGRAM_REPLY_IN_WEBHOOK=false: every reply through the outbox workers (as before)",
    )
    parser.add_argument(
        "--cost",
        type=int,
        default=1000,
        metavar="UPDATES",
        help="first measure CPU per update over this many updates, a few at a time (0: skip)",
    )
    parser.add_argument("--profile", type=int, metavar="RATE", help="then py-spy the service at this rate")
    parser.add_argument("--profile-dir", type=Path, help="keep py-spy's raw stacks here")
    parser.add_argument(
        "--keep-logs", type=Path, metavar="DIR", help="copy the service's logs here at the end"
    )
    parser.add_argument("--database-url", default="postgresql://infoopt@127.0.0.1:55432/infoopt_bench_tg")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:56379/14")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "telegram_e2e.md")
    args = parser.parse_args()
    lines = uvloop.run(benchmark(args))
    print("\n".join(lines))
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
