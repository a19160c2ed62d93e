"""The consultants' queue on PostgreSQL at 100,000 tickets: list, claim and reply p50/p95/p99 under 50 consultants.

    .venv/bin/python benchmarks/queue_ops.py [--database-url postgresql://infoopt@127.0.0.1:55432/infoopt_bench]
        [--consultants 50] [--rounds 20] [--pause-ms 1000] [--processes 1] [--pre-ping] [--gc-freeze]
        [--out benchmarks/results/queue_ops.md]

Creates the database if it is missing and migrates it, then EMPTIES its ticket, outbox, conversation and
staff tables (so it refuses a database whose name does not contain "bench") and seeds, with COPY, 100,000
tickets over the five PID points and the shared queue (3,000 still active, the rest resolved or closed,
due times spread over weeks, ids in order of arrival) and 50 consultants spread over the points.

Every consultant, an asyncio task with its own pooled connection, then runs its rounds: list its queue
(`list_tickets` with the default filter: its point and the shared queue, active, the 200 most urgent),
claim a ticket (`claim_ticket` on a new one among the first 20 it saw in even rounds, `take_next` in odd
ones or when it saw none; a ticket someone else won first, or an empty queue, is a normal outcome), and
reply to it (`reply_to_person`: the message and its outbox job). Each operation is one `db.transaction`,
timed with its commit. Two runs, each on a fresh seed: without any pause (the most 50 consultants can
ask of this machine), and with a random pause before each action (`--pause-ms`, mean; 0 skips this run).

`--processes 1` (the default) runs every consultant in this one process, on one event loop: an operation
then also waits for the other consultants' Python work. In production the workspace is served by
`infoopt serve --workers 2`; `--processes 2` splits the consultants over two processes (multiprocessing,
each with its own event loop and pool), which is what those two workers do. The engine is
`db.create_engine`'s, without a pre-ping on checkout as it now has it; `--pre-ping` measures the former
setting (three more round trips a transaction).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infoopt.core import db
from infoopt.staff.accounts import Role, StaffUser, create_user
from tickets import service
from tickets.models import Ticket, TicketMessage
from tickets.service import Actor, HeldByAnother, NothingToTake, QueueFilter, WrongState

DEFAULT_URL = "postgresql://infoopt@127.0.0.1:55432/infoopt_bench"
OFFICES = ("KRK-RONDO", "KRK-BASZTOWA", "KRK-CHLOPICKIEGO", "TARNOW", "NOWY-SACZ")
PREFIXES = {
    "KRK-RONDO": "KRK",
    "KRK-BASZTOWA": "KRK",
    "KRK-CHLOPICKIEGO": "KRK",
    "TARNOW": "TAR",
    "NOWY-SACZ": "NSA",
}
# Where tickets go: the big Kraków point gets most, the shared queue (None) a fifth.
QUEUE_WEIGHTS = {
    "KRK-RONDO": 25,
    "KRK-BASZTOWA": 15,
    "KRK-CHLOPICKIEGO": 10,
    "TARNOW": 15,
    "NOWY-SACZ": 15,
    None: 20,
}
ACTIVE = 3_000  # new, open or waiting; the rest are resolved (recently) or closed
PICK_AMONG = 20  # claim_ticket: a new ticket among the first this many the consultant saw
# Tables the run empties (CASCADE also empties what refers to them: sessions, KB reviews, audit entries).
EMPTIED = (
    "outbox_job",
    "ticket_event",
    "ticket_message",
    "ticket",
    "ticket_counter",
    "conversation_message",
    "conversation",
    "staff_session",
    "staff_user",
)
OPERATIONS = ("list", "claim_ticket", "take_next", "reply")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident memory (VmRSS now, VmHWM the peak), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuTime:
    """Seconds of CPU so far: this process, PostgreSQL's backends serving the bench database (all of
    PostgreSQL's processes when none are named), the whole machine."""

    own: float
    postgres: float
    machine: float

    @classmethod
    def now(cls, backends: frozenset[int] = frozenset()) -> CpuTime:
        postgres = 0
        stats = [Path(f"/proc/{pid}/stat") for pid in backends] or Path("/proc").glob("[0-9]*/stat")
        for stat in stats:
            try:
                fields = stat.read_text().rsplit(")", 1)
            except OSError:  # the process has just ended
                continue
            if fields[0].endswith("(postgres"):
                postgres += sum(int(value) for value in fields[1].split()[11:13])  # utime, stime
        busy = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        machine = sum(int(value) for value in busy) - int(busy[3]) - int(busy[4])  # all but idle, iowait
        return cls(time.process_time(), postgres / TICKS, machine / TICKS)

    def __sub__(self, earlier: CpuTime) -> CpuTime:
        return CpuTime(
            self.own - earlier.own, self.postgres - earlier.postgres, self.machine - earlier.machine
        )


# --- the database -------------------------------------------------------------------------------------


async def ensure_database(url: str) -> None:
    """Create the bench database when it is missing (from the server's maintenance database)."""
    parsed = db.async_database_url(url)
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            found = await connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            )
            if found.first() is None:
                await connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        await admin.dispose()


async def bench_backends(url: str) -> frozenset[int]:
    """The PostgreSQL backends connected to the bench database, i.e. the consultants': on a server other
    work shares, theirs is the CPU to count."""
    engine = create_async_engine(db.async_database_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return frozenset(int(pid) for (pid,) in rows)
    finally:
        await engine.dispose()


def check_bench(url: str) -> None:
    parsed = db.async_database_url(url)
    if parsed.drivername != "postgresql+asyncpg":
        raise SystemExit("this benchmark is for PostgreSQL: give a postgresql:// URL")
    if "bench" not in (parsed.database or ""):
        raise SystemExit(f"refusing to empty {parsed.database!r}: the database name must contain 'bench'")


async def seed(engine: AsyncEngine, *, tickets: int, consultants: int, rng: random.Random) -> list[Actor]:
    """Empty the tables, then 50 consultants over the points and `tickets` tickets, by COPY."""
    sessions = db.session_factory(engine)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(EMPTIED)} RESTART IDENTITY CASCADE"))
    # One argon2 hash for everyone: hashing 50 passwords would only measure argon2.
    async with db.transaction(sessions) as session:
        first = await create_user(
            session,
            username="bench-c00",
            password="bench-password-123",  # noqa: S106
            role=Role.CONSULTANT,
            office_code=OFFICES[0],
        )
        password_hash = first.password_hash
        for number in range(1, consultants):
            session.add(
                StaffUser(
                    username=f"bench-c{number:02d}",
                    password_hash=password_hash,
                    role=Role.CONSULTANT,
                    office_code=OFFICES[number % len(OFFICES)],
                )
            )
    async with db.transaction(sessions) as session:
        users = (await session.exec(select(StaffUser).order_by(col(StaffUser.id)))).all()
        actors = [Actor.of(user) for user in users]
    by_office: dict[str, list[int]] = defaultdict(list)
    for actor in actors:
        by_office[actor.office_code or ""].append(actor.user_id)
    everyone = [actor.user_id for actor in actors]

    now = datetime.now(UTC)
    queues, weights = list(QUEUE_WEIGHTS), list(QUEUE_WEIGHTS.values())
    counters: Counter[tuple[str, int]] = Counter()
    ticket_rows: list[tuple[Any, ...]] = []
    event_rows: list[tuple[Any, ...]] = []
    # Tickets in the order they came (ids and heap follow time); the active ones are the recent ones.
    drawn = sorted(
        [(now - timedelta(minutes=rng.uniform(5, 21 * 24 * 60)), True) for _ in range(min(ACTIVE, tickets))]
        + [(now - timedelta(days=rng.uniform(1, 365)), False) for _ in range(tickets - min(ACTIVE, tickets))]
    )
    for index, (created, active) in enumerate(drawn):
        office = rng.choices(queues, weights)[0]
        holders = by_office.get(office or "", everyone)[:3]  # a few consultants hold each point's tickets
        if active:
            status = rng.choices(("new", "open", "waiting"), (50, 30, 20))[0]
        else:
            status = "resolved" if created > now - timedelta(days=7) else "closed"
        due = created + timedelta(hours=rng.uniform(2, 14 * 24))
        assignee = None if status == "new" else rng.choice(holders)
        answered = None if status in ("new", "open") else created + timedelta(hours=rng.uniform(0.2, 48))
        resolved = (
            answered + timedelta(hours=rng.uniform(0, 24))
            if status in ("resolved", "closed") and answered
            else None
        )
        closed = min(now, resolved + service.REOPEN_WINDOW) if status == "closed" and resolved else None
        prefix = PREFIXES.get(office or "", service.SHARED_QUEUE_PREFIX)
        counters[(prefix, created.year)] += 1
        ticket_id = index + 1
        ticket_rows.append(
            (
                ticket_id,
                f"{prefix}-{created.year}-{counters[(prefix, created.year)]:06d}",
                None,
                rng.choice(("web", "web", "web", "telegram", "voice", "sms")),
                rng.choice(("pl", "pl", "uk", "en")),
                None,
                office,
                status,
                "high" if rng.random() < 0.05 else "normal",
                assignee,
                "Dzień dobry, chciałbym zapytać o dofinansowanie do pompy ciepła i termin złożenia wniosku.",
                None,
                due,
                created,
                closed or resolved or answered or created,
                answered,
                resolved,
                closed,
                rng.randint(1, 5) if closed and rng.random() < 0.3 else None,
            )
        )
        event_rows.append((ticket_id, "created", "person", "{}", created))
    async with engine.begin() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.copy_records_to_table(
            "ticket",
            records=ticket_rows,
            columns=[
                "id",
                "number",
                "conversation_id",
                "channel",
                "language",
                "topic_id",
                "office_code",
                "status",
                "priority",
                "assignee_id",
                "description",
                "contact",
                "sla_due_at",
                "created_at",
                "updated_at",
                "first_response_at",
                "resolved_at",
                "closed_at",
                "rating",
            ],
        )
        await raw.copy_records_to_table(
            "ticket_event", records=event_rows, columns=["ticket_id", "kind", "actor", "detail", "created_at"]
        )
        await connection.execute(text("SELECT setval('ticket_id_seq', :last)"), {"last": tickets})
        await raw.executemany(
            "INSERT INTO ticket_counter (prefix, year, value) VALUES ($1, $2, $3)",
            [(prefix, year, value) for (prefix, year), value in counters.items()],
        )
    # Fresh statistics and a visibility map, as autovacuum would leave them on a running service.
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE ticket, ticket_event, staff_user"))
    return actors


# --- the consultants ------------------------------------------------------------------------------------


class Timings:
    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.outcomes: dict[str, Counter[str]] = defaultdict(Counter)

    async def time(self, operation: str, work: Callable[[], Awaitable[Any]]) -> Any:
        """Run one operation, commit included; a domain refusal is an outcome, timed like a success."""
        started = time.perf_counter()
        try:
            result = await work()
        except (HeldByAnother, WrongState, NothingToTake) as refusal:
            result = None
            self.outcomes[operation][refusal.code] += 1
        else:
            self.outcomes[operation]["ok"] += 1
        self.ms[operation].append((time.perf_counter() - started) * 1000)
        return result


class Start:
    """Everyone starts together, once every consultant has its connection."""

    def __init__(self, consultants: int) -> None:
        self.waiting = consultants
        self.all_ready = asyncio.Event()
        self.go = asyncio.Event()

    async def ready(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.all_ready.set()
        await self.go.wait()


async def consultant(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    rounds: int,
    pause_ms: float,
    timings: Timings,
    rng: random.Random,
    start: Start,
) -> None:
    async def pause() -> None:
        if pause_ms:
            await asyncio.sleep(rng.expovariate(1000 / pause_ms))

    async def listing() -> list[service.QueueRow]:
        async with db.transaction(sessions) as session:
            return await service.list_tickets(session, actor, QueueFilter())

    async def claim(ticket_id: int) -> Ticket:
        async with db.transaction(sessions) as session:
            return await service.claim_ticket(session, actor, ticket_id)

    async def take() -> Ticket:
        async with db.transaction(sessions) as session:
            return await service.take_next(session, actor)

    async def reply(ticket_id: int) -> TicketMessage:
        async with db.transaction(sessions) as session:
            return await service.reply_to_person(
                session,
                actor,
                ticket_id,
                "Dzień dobry, wniosek można złożyć do końca miesiąca.",
                recipient="bench-session",
            )

    await listing()  # warm-up, untimed: the connection and the statement caches
    await start.ready()
    for number in range(rounds):
        await pause()
        rows = await timings.time("list", listing)
        seen = [row.ticket.id for row in rows if row.ticket.status == "new" and row.assignee is None]
        del rows  # as a request would: the 200 loaded tickets must not outlive the listing
        await pause()
        if number % 2 == 0 and seen:
            chosen = rng.choice(seen[:PICK_AMONG])
            ticket = await timings.time("claim_ticket", lambda: claim(chosen))  # noqa: B023
        else:  # odd rounds, and when no new ticket is among the 200 listed
            ticket = await timings.time("take_next", take)
        if ticket is None:
            continue
        await pause()
        held = ticket.id
        await timings.time("reply", lambda: reply(held))  # noqa: B023


async def explain_list(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], actor: Actor) -> str:
    """The list query as `list_tickets` sends it, EXPLAIN ANALYZEd: its plan's key line and its time."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with db.transaction(sessions) as session:
            await service.list_tickets(session, actor, QueueFilter())
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    statement, parameters = next((s, p) for s, p in captured if "FROM ticket" in s)
    times = []
    async with engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        for _ in range(5):
            plan = await raw.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *parameters)
            found = plan[0][0]  # the driver decodes JSON itself when SQLAlchemy has set its codec
            document = (json.loads(found) if isinstance(found, str) else found)[0]
            times.append(document["Execution Time"] + document["Planning Time"])
    node, scans = document["Plan"], []
    while node.get("Plans"):
        scans.append(node["Node Type"])
        node = node["Plans"][0]
    scans.append(f"{node['Node Type']} ({node.get('Index Name', node.get('Relation Name', ''))})")
    return f"{' → '.join(scans)}; {sorted(times)[2]:.1f} ms in PostgreSQL (planning + execution, median of 5)"


def bench_engine(url: str, connections: int, *, pre_ping: bool) -> AsyncEngine:
    """As db.create_engine, but one connection per consultant instead of 10 + 10."""
    return create_async_engine(
        db.async_database_url(url),
        pool_size=connections,
        max_overflow=0,
        pool_pre_ping=pre_ping,
        pool_timeout=60,
    )


@dataclass
class Run:
    """What the consultants did: their timings, the wall time, and the CPU their processes used."""

    timings: Timings = field(default_factory=Timings)
    elapsed: float = 0.0
    cpu: CpuTime = field(default_factory=lambda: CpuTime(0.0, 0.0, 0.0))


async def consultants_here(
    sessions: async_sessionmaker[AsyncSession],
    actors: list[Actor],
    args: argparse.Namespace,
    pause_ms: float,
    *,
    ready: Callable[[], Awaitable[None]],
) -> tuple[Timings, float]:
    """Run these consultants on this process's event loop; `ready` returns when every process may start.
    The timings, and the CPU seconds this process used from the start to the end."""
    timings = Timings()
    start = Start(len(actors))
    tasks = [
        asyncio.create_task(
            consultant(
                sessions,
                actor,
                rounds=args.rounds,
                pause_ms=pause_ms,
                timings=timings,
                rng=random.Random(actor.user_id),
                start=start,
            )
        )
        for actor in actors
    ]
    await start.all_ready.wait()
    if args.gc_freeze:  # as the service would once started: long-lived objects out of the collector's way
        gc.collect()
        gc.freeze()
    await ready()
    began = time.process_time()
    start.go.set()
    await asyncio.gather(*tasks)
    used = time.process_time() - began
    if args.gc_freeze:
        gc.unfreeze()
    return timings, used


async def in_this_process(
    engine: AsyncEngine, actors: list[Actor], args: argparse.Namespace, pause_ms: float
) -> Run:
    """Every consultant an asyncio task of this one process."""
    backends, cpu, began = frozenset[int](), CpuTime.now(), time.perf_counter()

    async def ready() -> None:  # everyone is connected: the clocks start
        nonlocal backends, cpu, began
        backends = await bench_backends(args.database_url)
        cpu, began = CpuTime.now(backends), time.perf_counter()

    timings, _ = await consultants_here(db.session_factory(engine), actors, args, pause_ms, ready=ready)
    return Run(timings, time.perf_counter() - began, CpuTime.now(backends) - cpu)


def worker_process(
    actors: list[Actor],
    args: argparse.Namespace,
    pause_ms: float,
    ready: Any,
    go: Any,
    results: Any,
    finished: Any,
) -> None:
    """One of `--processes` processes (as one `infoopt serve` worker): its share of the consultants."""

    async def work() -> None:
        engine = bench_engine(args.database_url, len(actors), pre_ping=args.pre_ping)

        async def all_ready() -> None:
            await asyncio.to_thread(ready.wait)  # every process has its consultants connected...
            await asyncio.to_thread(go.wait)  # ...and the parent has taken its CPU reading

        try:
            timings, used = await consultants_here(
                db.session_factory(engine), actors, args, pause_ms, ready=all_ready
            )
            results.put((dict(timings.ms), {name: dict(n) for name, n in timings.outcomes.items()}, used))
            # Connected until the parent has read PostgreSQL's CPU: a backend that ends takes its count along.
            await asyncio.to_thread(finished.wait, 600)
        finally:
            await engine.dispose()

    asyncio.run(work())


async def in_processes(actors: list[Actor], args: argparse.Namespace, pause_ms: float) -> Run:
    """The consultants dealt round-robin over `--processes` processes, started together."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, as a uvicorn worker is
    ready, go, results = context.Barrier(args.processes + 1), context.Event(), context.Queue()
    finished = context.Event()
    shares = [actors[number :: args.processes] for number in range(args.processes)]
    processes = [
        context.Process(target=worker_process, args=(share, args, pause_ms, ready, go, results, finished))
        for share in shares
    ]
    for process in processes:
        process.start()
    run = Run()
    try:
        await asyncio.to_thread(ready.wait, 300)
        backends = await bench_backends(args.database_url)
        cpu, began = CpuTime.now(backends), time.perf_counter()
        go.set()
        reports = [await asyncio.to_thread(results.get, True, 3600) for _ in processes]
        run.elapsed, run.cpu = time.perf_counter() - began, CpuTime.now(backends) - cpu
    finally:
        finished.set()
        for process in processes:
            process.join(60)
    own = 0.0
    for ms, outcomes, used in reports:
        own += used
        for operation, values in ms.items():
            run.timings.ms[operation] += values
        for operation, counted in outcomes.items():
            run.timings.outcomes[operation].update(counted)
    # The consultants' CPU is theirs, not this (waiting) parent's; the machine's total stays as measured.
    run.cpu = CpuTime(own, run.cpu.postgres, run.cpu.machine - run.cpu.own)
    return run


async def scenario(
    engine: AsyncEngine, args: argparse.Namespace, pause_ms: float
) -> tuple[Run, dict[str, int], float, str]:
    """Seed afresh, then the consultants' rounds: what they did, the tickets by status, seeding seconds, plan."""
    started = time.perf_counter()
    actors = await seed(
        engine, tickets=args.tickets, consultants=args.consultants, rng=random.Random(20261202)
    )
    seeding = time.perf_counter() - started
    async with engine.connect() as connection:
        counts: dict[str, int] = dict(
            (await connection.execute(text("SELECT status, count(*) FROM ticket GROUP BY status"))).all()
        )
    plan = await explain_list(engine, db.session_factory(engine), actors[0])
    if args.processes > 1:
        await engine.dispose()  # the consultants' processes bring their own connections
        run = await in_processes(actors, args, pause_ms)
    else:
        run = await in_this_process(engine, actors, args, pause_ms)
    return run, counts, seeding, plan


def table(timings: Timings) -> list[str]:
    lines = [
        "| operation | count | p50 ms | p95 ms | p99 ms | max ms | outcomes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for operation in OPERATIONS:
        values = timings.ms.get(operation, [])
        outcome = ", ".join(f"{n} {name}" for name, n in timings.outcomes[operation].most_common())
        if values:
            lines.append(
                f"| {operation} | {len(values)} | {percentile(values, 50):.1f} | {percentile(values, 95):.1f} | "
                f"{percentile(values, 99):.1f} | {max(values):.1f} | {outcome} |"
            )
    everything = [value for values in timings.ms.values() for value in values]
    lines.append(
        f"| all | {len(everything)} | {percentile(everything, 50):.1f} | {percentile(everything, 95):.1f} | "
        f"{percentile(everything, 99):.1f} | {max(everything):.1f} | |"
    )
    return lines


async def run(args: argparse.Namespace) -> str:
    load = os.getloadavg()[0]  # other work on the machine shows in every number below
    await ensure_database(args.database_url)
    await asyncio.to_thread(db.upgrade, args.database_url)
    engine = bench_engine(args.database_url, args.consultants, pre_ping=args.pre_ping)
    pauses = [0.0] + ([args.pause_ms] if args.pause_ms else [])
    sections: list[str] = []
    who = "this process" if args.processes == 1 else f"the {args.processes} consultants' processes"
    try:
        for pause_ms in pauses:
            result, counts, seeding, plan = await scenario(engine, args, pause_ms)
            timings, elapsed, cpu = result.timings, result.elapsed, result.cpu
            total = sum(len(values) for values in timings.ms.values())
            how = (
                "without pause (each starts its next operation as soon as the last one commits)"
                if not pause_ms
                else f"pausing before each operation (exponential, mean {pause_ms / 1000:g} s)"
            )
            sections += [
                f"## {args.consultants} consultants {how}",
                "",
                *table(timings),
                "",
                f"{total / elapsed:.0f} operations/s ({total} in {elapsed:.1f} s). CPU, in cores: {who} "
                f"{cpu.own / elapsed:.2f} ({cpu.own / total * 1000:.1f} ms per operation), PostgreSQL's "
                f"backends for them {cpu.postgres / elapsed:.2f} ({cpu.postgres / total * 1000:.1f} ms per "
                "operation), everything else on the machine "
                f"{max(0.0, cpu.machine - cpu.own - cpu.postgres) / elapsed:.2f}. "
                f"Seeded in {seeding:.1f} s. List query: {plan}.",
                "",
            ]
        version = await server_version(engine)
    finally:
        await engine.dispose()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    statuses = ", ".join(
        f"{counts.get(s, 0):,} {s}" for s in ("new", "open", "waiting", "resolved", "closed")
    )
    where = (
        "each an asyncio task in this one process"
        if args.processes == 1
        else f"dealt over {args.processes} processes (as `infoopt serve --workers {args.processes}`), "
        "each consultant an asyncio task there"
    )
    return "\n".join(
        [
            "# The consultants' queue at 100,000 tickets on PostgreSQL",
            "",
            f"This machine: {os.cpu_count()} cores, {memory:.0f} GiB; PostgreSQL {version} on the same machine, "
            f"over loopback; load average {load:.2f} at the start; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
            f"{'; with gc.freeze() after start-up' if args.gc_freeze else ''}; "
            f"{'a pre-ping on every checkout' if args.pre_ping else 'no pre-ping on checkout'}.",
            f"{args.tickets:,} tickets ({statuses}) over five PID points and the shared queue; "
            f"{args.consultants} consultants, {where}, with its own pooled "
            f"connection, {args.rounds} rounds each: list (own point + shared queue, 200 most urgent) → claim "
            "(`claim_ticket` on a new ticket it saw, or `take_next`, alternately) → reply (message + outbox "
            "job). Each operation is one transaction, timed with its commit. Target: list, claim and reply "
            "p99 ≤ 30 ms.",
            "",
            *sections,
            f"Benchmark process RSS: {rss_mib():.0f} MiB at the end, {rss_mib('VmHWM'):.0f} MiB at its peak "
            "(the peak is the seeding)"
            + ("." if args.processes == 1 else "; the consultants' processes are not counted."),
            "",
        ]
    )


async def server_version(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return str((await connection.execute(text("SHOW server_version"))).scalar_one()).split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--consultants", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument(
        "--pause-ms",
        type=float,
        default=1000,
        help="mean pause before each action in the second run; 0: none",
    )
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() before the consultants start")
    parser.add_argument(
        "--processes", type=int, default=1, help="split the consultants over this many processes"
    )
    parser.add_argument("--pre-ping", action="store_true", help="a pre-ping on every pool checkout")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "queue_ops.md")
    args = parser.parse_args()
    check_bench(args.database_url)
    report = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
