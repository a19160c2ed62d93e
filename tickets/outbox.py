"""The outbox: messages to people, stored with what caused them, delivered by workers that share it safely.

A job is written in the same transaction as the reply it carries, so a reply is never stored without
its delivery or sent without being stored. A worker claims a batch of due jobs in one statement
(`WITH due AS MATERIALIZED (SELECT … LIMIT n FOR UPDATE SKIP LOCKED) UPDATE … WHERE id IN due
RETURNING …`: on PostgreSQL two workers take different jobs and neither waits for the other; SQLite
has one writer at a time), so no job is taken twice.

Each channel registers a `Deliverer`. A *transactional* one (the web chat: the message is a row in
the person's conversation) delivers inside the claiming transaction, so it happens exactly once. Any
other (Telegram, SMS) sends over the network under a lease, the batch side by side within the
channel's own limits. If the worker dies mid-send, the lease expires; a channel with a `SendLog` then
knows which of the worker's jobs never left (they go back to pending, for another worker) and which
may have (`unconfirmed`, for a consultant to resend): nothing is silently sent twice. Failures are
retried with exponential backoff (or the channel's own `retry_after`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import bindparam, delete, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core import db
from infoopt.core.clock import utcnow
from infoopt.core.errors import DomainError
from infoopt.core.languages import Channel
from infoopt.core.loops import stop_if_cancelled
from tickets.metrics import count_delivered, count_delivery_failure
from tickets.models import Conversation, Delivery, OutboxJob, OutboxStatus, TicketMessage
from tickets.subscriptions import deactivate_recipient

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 15 * 60.0
BATCH = 50  # jobs a worker claims at once


class DeliveryFailed(Exception):
    """A channel could not deliver. `permanent`: retrying cannot help (the chat is gone, the bot blocked)."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        unreachable: bool = False,
    ) -> None:
        super().__init__(reason)
        self.permanent = permanent or unreachable
        self.retry_after = retry_after
        # The person refused the channel for good (blocked the bot): nothing more is sent there.
        self.unreachable = unreachable


class NotResendable(DomainError):
    status_code = 409
    code = "wrong_state"


class NotYet(Exception):
    """The channel's sending rate is spoken for further ahead than a lease should wait: the job goes back
    to the outbox for later, and this does not count as an attempt."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the channel's rate is used up for {seconds:.1f} s")
        self.seconds = seconds


class SendLog:
    """Which claimed jobs a network channel has not begun to send, in Redis, shared by every worker.

    A worker notes its claimed jobs as "not begun" and removes each note just before the job's request
    leaves; the job is sent only if the removal was its own. When a worker dies, `recover_expired`
    takes the notes still there: those jobs never left and go back to pending. A job without a note
    (it left, or Redis could not be written at the claim) stays in doubt: `unconfirmed`. A job that
    recovery took back is not sent by the late worker either: its note is gone. With the in-process
    stand-in for Redis the notes die with the process, so every expired job stays in doubt, as before.
    """

    PREFIX = "infoopt:outbox:unsent:"

    def __init__(self, redis: Redis, *, ttl_seconds: int = 6 * 3600) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds

    async def claimed(self, ids: Sequence[int]) -> set[int]:
        """Note the jobs as not begun; the ones noted (none if Redis is away)."""
        if not ids:
            return set()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.set(f"{self.PREFIX}{job_id}", 1, ex=self.ttl_seconds)
                await pipe.execute()
        except RedisError as error:
            log.warning("outbox.send_log_unavailable", extra={"error": str(error)})
            return set()
        return set(ids)

    async def begin(self, job_id: int) -> bool:
        """Just before sending: True when this worker may send (its note was still there)."""
        try:
            return bool(await self.redis.delete(f"{self.PREFIX}{job_id}"))
        except RedisError as error:
            raise DeliveryFailed(f"could not note the send: {error}") from error

    async def never_begun(self, ids: Sequence[int]) -> set[int]:
        """Of these expired jobs, the ones that never left; their notes are taken, so no late worker
        sends them."""
        if not ids:
            return set()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.getdel(f"{self.PREFIX}{job_id}")
                found = await pipe.execute()
        except RedisError as error:
            log.warning("outbox.send_log_unavailable", extra={"error": str(error)})
            return set()
        return {job_id for job_id, note in zip(ids, found, strict=True) if note is not None}


# What came of one attempt: None delivered, else why not.
Outcome = DeliveryFailed | NotYet | None
# One job's sending, prepared: it touches only the network, so a batch's sendings run side by side.
Sending = Callable[[], Awaitable[None]]


class Deliverer(Protocol):
    """Sends outbox jobs on one channel; implemented by each channel and registered by the wiring.

    A network channel may also offer `prepare(session, jobs) -> list[Sending]`: it reads what the jobs
    need on `session` (one after another) and returns each job's sending, which the outbox runs side
    by side. Without it, each job's `deliver` runs side by side with a session of its own.
    """

    channel: Channel
    # True: `deliver` writes only to the database session it is given (exactly-once by transaction).
    transactional: bool

    async def deliver(self, session: AsyncSession, job: OutboxJob) -> None:
        """Deliver the job or raise DeliveryFailed."""


def enqueue(
    session: AsyncSession,
    *,
    channel: Channel,
    recipient: str,
    text: str,
    format: str = "text",
    actions: list[dict[str, str | None]] | None = None,
    ticket_message_id: int | None = None,
    now: datetime | None = None,
) -> OutboxJob:
    """Add a job to the outbox in the caller's transaction (`format`: "text", or "html" for a channel's
    own already-rendered markup)."""
    job = OutboxJob(
        channel=channel,
        recipient=recipient,
        text=text,
        format=format,
        actions=actions,
        ticket_message_id=ticket_message_id,
        next_attempt_at=now or utcnow(),
    )
    session.add(job)
    return job


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1), BACKOFF_MAX_SECONDS))


async def _mark_message(session: AsyncSession, job: OutboxJob, delivery: Delivery, error: str | None) -> None:
    if job.ticket_message_id is None:
        return
    await session.exec(
        update(TicketMessage)
        .where(col(TicketMessage.id) == job.ticket_message_id)
        .values(delivery=delivery, delivery_error=error[:300] if error else None)
        .execution_options(synchronize_session=False)
    )


async def _settle(session: AsyncSession, job: OutboxJob, error: Outcome, now: datetime) -> OutboxStatus:
    """Record the outcome of one attempt on the job and on the ticket message it carries."""
    if isinstance(error, NotYet):  # not an attempt: the channel had no room for it yet
        job.status, job.lease_until, job.attempts = OutboxStatus.PENDING, None, max(0, job.attempts - 1)
        job.next_attempt_at = now + timedelta(seconds=error.seconds)
    elif error is None:
        job.status, job.sent_at, job.lease_until, job.last_error = OutboxStatus.SENT, now, None, None
        await _mark_message(session, job, Delivery.SENT, None)
        count_delivered(job.channel)
    elif error.permanent or job.attempts >= MAX_ATTEMPTS:
        count_delivery_failure(job.channel, given_up=True)
        job.status, job.lease_until, job.last_error = OutboxStatus.FAILED, None, str(error)[:300]
        await _mark_message(session, job, Delivery.FAILED, str(error))
        if error.unreachable:
            await session.exec(
                update(Conversation)
                .where(
                    col(Conversation.channel) == job.channel, col(Conversation.external_id) == job.recipient
                )
                .values(blocked_at=now)
                .execution_options(synchronize_session=False)
            )
            await deactivate_recipient(session, job.channel, job.recipient, now)
    else:
        count_delivery_failure(job.channel, given_up=False)
        wait = timedelta(seconds=error.retry_after) if error.retry_after else backoff(job.attempts)
        job.status, job.lease_until, job.last_error = OutboxStatus.PENDING, None, str(error)[:300]
        job.next_attempt_at = now + wait
        await _mark_message(session, job, Delivery.PENDING, f"retrying: {error}")
    session.add(job)
    await session.flush()
    return job.status


async def recover_expired(
    session: AsyncSession,
    transactional: set[Channel],
    *,
    now: datetime,
    send_logs: Mapping[Channel, SendLog] | None = None,
    channels: Collection[Channel] | None = None,
) -> int:
    """Jobs whose worker died mid-send: a transactional channel's go back to pending, and so do the
    ones a channel's `SendLog` knows never left; the others are marked unconfirmed, since they may
    have arrived (never sent twice behind anyone's back). `channels`: only these channels' jobs (the
    ones this process delivers, and so knows the send log of)."""
    query = (
        select(OutboxJob)
        .where(OutboxJob.status == OutboxStatus.SENDING, col(OutboxJob.lease_until) < now)
        .with_for_update(skip_locked=True)
    )
    if channels is not None:
        query = query.where(col(OutboxJob.channel).in_(list(channels)))
    expired = (await session.exec(query)).all()
    never_begun: set[int] = set()
    for channel, send_log in (send_logs or {}).items():
        never_begun |= await send_log.never_begun(
            [job.id for job in expired if job.channel == channel and job.id is not None]
        )
    for job in expired:
        if job.channel in transactional or job.id in never_begun:
            job.status, job.lease_until = OutboxStatus.PENDING, None
            if job.id in never_begun:  # not an attempt: it never left
                job.attempts, job.next_attempt_at = max(0, job.attempts - 1), now
        else:
            job.status, job.lease_until = OutboxStatus.UNCONFIRMED, None
            job.last_error = "a worker stopped while sending; it is not known whether it arrived"
            await _mark_message(session, job, Delivery.UNCONFIRMED, job.last_error)
        session.add(job)
    await session.flush()
    return len(expired)


async def resend(session: AsyncSession, ticket_message_id: int, *, now: datetime | None = None) -> OutboxJob:
    """Queue a failed or unconfirmed message again (a consultant pressed "send again")."""
    now = now or utcnow()
    job = (
        await session.exec(
            select(OutboxJob)
            .where(OutboxJob.ticket_message_id == ticket_message_id)
            .order_by(col(OutboxJob.id).desc())
            .limit(1)
        )
    ).first()
    if job is None or job.status not in (OutboxStatus.FAILED, OutboxStatus.UNCONFIRMED):
        raise NotResendable("only a failed or unconfirmed message can be sent again")
    job.status, job.attempts, job.next_attempt_at, job.last_error = OutboxStatus.PENDING, 0, now, None
    session.add(job)
    await _mark_message(session, job, Delivery.PENDING, None)
    await session.flush()
    return job


@dataclass(frozen=True, slots=True)
class DrainReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    recovered: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed

    @classmethod
    def of(cls, statuses: list[OutboxStatus | None], recovered: int) -> DrainReport:
        return cls(
            sent=statuses.count(OutboxStatus.SENT),
            retried=statuses.count(OutboxStatus.PENDING),
            failed=statuses.count(OutboxStatus.FAILED),
            recovered=recovered,
        )


Settled = Callable[[AsyncSession, OutboxJob], Awaitable[None]]


async def recover(
    sessions: async_sessionmaker[AsyncSession], deliverers: Mapping[Channel, Deliverer], *, now: datetime
) -> int:
    """`recover_expired` in a transaction of its own; how many jobs it re-marked."""
    transactional = {channel for channel, deliverer in deliverers.items() if deliverer.transactional}
    send_logs = {
        channel: send_log
        for channel, deliverer in deliverers.items()
        if (send_log := getattr(deliverer, "send_log", None)) is not None
    }
    async with db.transaction(sessions) as session:
        return await recover_expired(
            session, transactional, now=now, send_logs=send_logs, channels=list(deliverers)
        )


def _claiming() -> Any:
    """The claim statement, built once: SQLAlchemy then also computes its cache key only once."""
    due = (
        select(OutboxJob.id)
        .where(
            OutboxJob.status == OutboxStatus.PENDING,
            col(OutboxJob.next_attempt_at) <= bindparam("now"),
            col(OutboxJob.channel).in_(bindparam("channels", expanding=True)),
        )
        .order_by(col(OutboxJob.next_attempt_at), col(OutboxJob.id))
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
        # Materialised: taken once. Inside a plain `IN (…)` PostgreSQL may run it again for each row it
        # updates, and each run skips what the earlier ones just took: the LIMIT would not hold.
        .cte("due")
        .prefix_with("MATERIALIZED")
    )
    refused = (
        select(col(Conversation.blocked_at).is_not(None))
        .where(
            col(Conversation.channel) == OutboxJob.channel,
            col(Conversation.external_id) == OutboxJob.recipient,
        )
        .correlate(OutboxJob)
        .scalar_subquery()
    )
    return (
        update(OutboxJob)
        .where(col(OutboxJob.id).in_(select(due.c.id)), col(OutboxJob.status) == OutboxStatus.PENDING)
        .values(
            status=OutboxStatus.SENDING,
            lease_until=bindparam("lease_until"),
            attempts=col(OutboxJob.attempts) + 1,
        )
        .returning(OutboxJob, refused)
    )


_CLAIM = _claiming()
# Every success of a batch at once, if the job is still under this batch's lease.
_SENT = (
    update(OutboxJob)
    .where(
        col(OutboxJob.id).in_(bindparam("ids", expanding=True)),
        col(OutboxJob.status) == OutboxStatus.SENDING,
        col(OutboxJob.lease_until) == bindparam("lease"),
    )
    .values(status=OutboxStatus.SENT, sent_at=bindparam("now"), lease_until=None, last_error=None)
    .returning(col(OutboxJob.id))
    .execution_options(synchronize_session=False)
)


async def claim(
    session: AsyncSession, channels: list[Channel], *, now: datetime, lease_until: datetime, limit: int
) -> list[tuple[OutboxJob, bool]]:
    """Take up to `limit` due jobs in one statement, oldest due first, each with whether its recipient
    refused the channel for good. On PostgreSQL rows another worker is taking are skipped, not waited
    for; SQLite has one writer at a time, so the same statement needs no locking clause there."""
    parameters = {"now": now, "channels": channels, "limit": limit, "lease_until": lease_until}
    rows = (await session.exec(_CLAIM, params=parameters)).all()
    claimed = [(job, bool(blocked)) for job, blocked in rows]
    return sorted(claimed, key=lambda row: (row[0].next_attempt_at, row[0].id or 0))


async def drain(
    sessions: async_sessionmaker[AsyncSession],
    deliverers: Mapping[Channel, Deliverer],
    *,
    batch: int = BATCH,
    now: Callable[[], datetime] = utcnow,
    settled: Settled | None = None,
    recover_first: bool = True,
) -> DrainReport:
    """Deliver up to `batch` jobs due now: claimed in one statement, a network channel's sent side by side
    and settled together. Safe to run in several workers at once. `recover_first`: mark the jobs of a
    worker that died mid-send first (`OutboxWorker` does that on a timer instead)."""
    recovered = await recover(sessions, deliverers, now=now()) if recover_first else 0
    lease_until = now() + LEASE
    statuses: list[OutboxStatus | None] = []
    network: list[OutboxJob] = []
    async with db.transaction(sessions) as session:
        claimed = await claim(session, list(deliverers), now=now(), lease_until=lease_until, limit=batch)
        for job, refused in claimed:
            deliverer = deliverers[job.channel]
            if refused:  # they blocked the bot: nothing more is tried until they write again
                outcome = DeliveryFailed("the person blocked the bot", permanent=True)
                statuses.append(await _settle(session, job, outcome, now()))
            elif deliverer.transactional:
                statuses.append(
                    await _settle(session, job, await _deliver_here(session, deliverer, job), now())
                )
            else:
                network.append(job)
                continue
            if settled:
                await settled(session, job)
    # The network channels' leases are committed: send outside any transaction, then record the outcomes.
    if network:
        outcomes = await _send(sessions, deliverers, network)
        async with db.transaction(sessions) as session:
            statuses += await _settle_sent(session, outcomes, lease_until, now(), settled)
    return DrainReport.of(statuses, recovered)


async def _deliver_here(session: AsyncSession, deliverer: Deliverer, job: OutboxJob) -> Outcome:
    """A transactional channel's delivery, inside the claiming transaction (a savepoint per job, so one
    job's failure undoes only its own writes)."""
    try:
        async with session.begin_nested():
            await deliverer.deliver(session, job)
    except DeliveryFailed as failure:
        return failure
    except Exception as unexpected:  # a bug: this job retries, visibly; the others go ahead
        log.exception("outbox.deliver_crashed", extra={"job": job.id})
        return DeliveryFailed(f"{type(unexpected).__name__}: {unexpected}")
    return None


async def _send(
    sessions: async_sessionmaker[AsyncSession],
    deliverers: Mapping[Channel, Deliverer],
    jobs: list[OutboxJob],
) -> list[tuple[OutboxJob, Outcome]]:
    """Prepare each channel's jobs on one reading session, then send them all side by side."""
    ordered: list[OutboxJob] = []
    sendings: list[Sending] = []
    async with sessions() as reading:
        for channel in dict.fromkeys(job.channel for job in jobs):
            group = [job for job in jobs if job.channel == channel]
            ordered += group
            sendings += await _prepare(sessions, reading, deliverers[channel], group)
    outcomes = await asyncio.gather(
        *(_attempt(job, send) for job, send in zip(ordered, sendings, strict=True))
    )
    return list(zip(ordered, outcomes, strict=True))


async def _prepare(
    sessions: async_sessionmaker[AsyncSession],
    reading: AsyncSession,
    deliverer: Deliverer,
    jobs: list[OutboxJob],
) -> list[Sending]:
    """Each job's sending: from the channel's `prepare` when it has one; otherwise its plain `deliver`
    with a session of its own (opened only if it reads)."""
    prepare: Callable[[AsyncSession, list[OutboxJob]], Awaitable[list[Sending]]] | None = getattr(
        deliverer, "prepare", None
    )
    if prepare is None:
        return [partial(_deliver_alone, sessions, deliverer, job) for job in jobs]
    try:
        return await prepare(reading, jobs)
    except Exception as unexpected:  # a bug: these jobs retry, visibly
        log.exception("outbox.prepare_crashed", extra={"jobs": [job.id for job in jobs]})
        return [partial(_fail, DeliveryFailed(f"{type(unexpected).__name__}: {unexpected}")) for _ in jobs]


async def _deliver_alone(
    sessions: async_sessionmaker[AsyncSession], deliverer: Deliverer, job: OutboxJob
) -> None:
    async with sessions() as own:
        await deliverer.deliver(own, job)


async def _fail(failure: DeliveryFailed) -> None:
    raise failure


async def _attempt(job: OutboxJob, send: Sending) -> Outcome:
    try:
        await send()
    except (DeliveryFailed, NotYet) as outcome:
        return outcome
    except Exception as unexpected:  # a bug or an unknown network error: retry, visibly
        log.exception("outbox.deliver_crashed", extra={"job": job.id})
        return DeliveryFailed(f"{type(unexpected).__name__}: {unexpected}")
    return None


async def _settle_sent(
    session: AsyncSession,
    outcomes: list[tuple[OutboxJob, Outcome]],
    lease_until: datetime,
    now: datetime,
    settled: Settled | None,
) -> list[OutboxStatus | None]:
    """Record a batch's outcomes: every success in one statement (and one for the ticket messages they
    carry), each failure on its own. A job whose lease ran out meanwhile was re-marked by
    `recover_expired` and is left as it is (None)."""
    mine = (
        col(OutboxJob.status) == OutboxStatus.SENDING,
        col(OutboxJob.lease_until) == lease_until,
    )
    statuses: list[OutboxStatus | None] = []
    sent = [job for job, outcome in outcomes if outcome is None]
    if sent:
        parameters = {"ids": [job.id for job in sent], "lease": lease_until, "now": now}
        done = {job_id for (job_id,) in await session.exec(_SENT, params=parameters)}
        carried = [job.ticket_message_id for job in sent if job.id in done and job.ticket_message_id]
        if carried:
            await session.exec(
                update(TicketMessage)
                .where(col(TicketMessage.id).in_(carried))
                .values(delivery=Delivery.SENT, delivery_error=None)
                .execution_options(synchronize_session=False)
            )
        for channel in {job.channel for job in sent}:
            count_delivered(channel, sum(1 for job in sent if job.channel == channel and job.id in done))
        for job in sent:
            if job.id not in done:
                statuses.append(None)
                continue
            job.status, job.sent_at, job.lease_until, job.last_error = OutboxStatus.SENT, now, None, None
            statuses.append(OutboxStatus.SENT)
            if settled:
                await settled(session, job)
    for job, outcome in outcomes:
        if outcome is None:
            continue
        fresh = (await session.exec(select(OutboxJob).where(col(OutboxJob.id) == job.id, *mine))).first()
        if fresh is None:
            statuses.append(None)
            continue
        statuses.append(await _settle(session, fresh, outcome, now))
        if settled:
            await settled(session, fresh)
    return statuses


class OutboxWorker:
    """Drains the outbox until stopped: woken right after a commit that queued a job, polling meanwhile,
    and marking the jobs of workers that died mid-send every half lease."""

    def __init__(
        self,
        sessions: Callable[[], async_sessionmaker[AsyncSession]],
        deliverers: Mapping[Channel, Deliverer],
        *,
        poll_seconds: float = 2.0,
        batch: int = BATCH,
        settled: Settled | None = None,
    ) -> None:
        self._sessions = sessions  # looked up each round: tests swap in a rolled-back transaction
        self.deliverers = deliverers
        self.settled = settled  # told of every outcome (the live thread shows delivery status)
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(
        self, wakeups: Callable[[Callable[[], None]], Coroutine[Any, Any, None]] | None = None
    ) -> None:
        """Loop forever; `wakeups` (if given) calls `wake` whenever another process queued a job."""
        background = [asyncio.create_task(self.recover_every(LEASE.total_seconds() / 2))]
        if wakeups:
            background.append(asyncio.create_task(wakeups(self.wake)))
        try:
            while True:
                stop_if_cancelled()
                self._wake.clear()  # a job queued from here on wakes the next wait
                try:
                    report = await drain(
                        self._sessions(),
                        self.deliverers,
                        batch=self.batch,
                        settled=self.settled,
                        recover_first=False,
                    )
                    if report.handled:
                        log.info(
                            "outbox.drained",
                            extra={"sent": report.sent, "retried": report.retried, "failed": report.failed},
                        )
                    if report.handled >= self.batch:
                        continue  # a full batch: more are likely due right away
                    # Otherwise wait: a job queued meanwhile has already left a wake-up for some worker.
                except Exception:  # the database away for a moment: keep the worker alive, try again
                    log.exception("outbox.drain_failed")
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns instead of raising when
                # the wake-up and a cancellation come at the same moment.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()
        finally:
            for task in background:
                task.cancel()

    async def recover_every(self, seconds: float) -> None:
        """`recover` on a timer: a lease runs out on its own clock, not when a job is queued."""
        while True:
            stop_if_cancelled()
            try:
                recovered = await recover(self._sessions(), self.deliverers, now=utcnow())
                if recovered:
                    log.info("outbox.recovered", extra={"jobs": recovered})
                    self.wake()
            except Exception:  # the database away for a moment: try again next round
                log.exception("outbox.recover_failed")
            await asyncio.sleep(seconds)


async def purge_jobs(session: AsyncSession, *, sent_before: datetime, any_before: datetime) -> int:
    """Delete delivered jobs sent before a moment, and any job (failed or unconfirmed ones too, which
    nobody sent again) created before an older one: a job holds a recipient and a text. How many went."""
    sent = await session.exec(
        delete(OutboxJob)
        .where(col(OutboxJob.status) == OutboxStatus.SENT)
        .where(col(OutboxJob.created_at) < sent_before)
    )
    stale = await session.exec(
        delete(OutboxJob)
        .where(col(OutboxJob.status).in_([OutboxStatus.FAILED, OutboxStatus.UNCONFIRMED]))
        .where(col(OutboxJob.created_at) < any_before)
    )
    return int(sent.rowcount or 0) + int(stale.rowcount or 0)
