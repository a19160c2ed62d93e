"""The outbox: messages to people, stored with what caused them, delivered by workers that share it safely.

A job is written in the same transaction as the reply it carries, so a reply is never stored without
its delivery or sent without being stored. Workers claim due jobs one at a time with a conditional
UPDATE (on PostgreSQL also skipping rows another worker has locked), so no job is taken twice.

Each channel registers a `Deliverer`. A *transactional* one (the web chat: the message is a row in
the person's conversation) delivers inside the claiming transaction, so it happens exactly once. Any
other (Telegram, SMS) sends over the network under a lease; if the worker dies mid-send, the lease
expires and the job is marked `unconfirmed` for a consultant to resend, never silently sent twice.
Failures are retried with exponential backoff (or the channel's own `retry_after`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core import db
from infoopt.core.clock import utcnow
from infoopt.core.errors import DomainError
from infoopt.core.languages import Channel
from tickets.metrics import count_delivery_failure
from tickets.models import Conversation, Delivery, OutboxJob, OutboxStatus, TicketMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 15 * 60.0


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


class Deliverer(Protocol):
    """Sends outbox jobs on one channel; implemented by each channel and registered by the wiring."""

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


async def _take(session: AsyncSession, job_id: int, now: datetime, lease_until: datetime) -> bool:
    result = await session.exec(
        update(OutboxJob)
        .where(col(OutboxJob.id) == job_id, col(OutboxJob.status) == OutboxStatus.PENDING)
        .values(status=OutboxStatus.SENDING, lease_until=lease_until, attempts=col(OutboxJob.attempts) + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def _settle(
    session: AsyncSession, job: OutboxJob, error: DeliveryFailed | None, now: datetime
) -> OutboxStatus:
    """Record the outcome of one attempt on the job and on the ticket message it carries."""
    if error is None:
        job.status, job.sent_at, job.lease_until, job.last_error = OutboxStatus.SENT, now, None, None
        await _mark_message(session, job, Delivery.SENT, None)
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
    else:
        count_delivery_failure(job.channel, given_up=False)
        wait = timedelta(seconds=error.retry_after) if error.retry_after else backoff(job.attempts)
        job.status, job.lease_until, job.last_error = OutboxStatus.PENDING, None, str(error)[:300]
        job.next_attempt_at = now + wait
        await _mark_message(session, job, Delivery.PENDING, f"retrying: {error}")
    session.add(job)
    await session.flush()
    return job.status


async def recover_expired(session: AsyncSession, transactional: set[Channel], *, now: datetime) -> int:
    """Jobs whose worker died mid-send: a transactional channel's go back to pending; others are
    marked unconfirmed, since they may have arrived (never sent twice behind anyone's back)."""
    expired = (
        await session.exec(
            select(OutboxJob).where(
                OutboxJob.status == OutboxStatus.SENDING, col(OutboxJob.lease_until) < now
            )
        )
    ).all()
    for job in expired:
        if job.channel in transactional:
            job.status, job.lease_until = OutboxStatus.PENDING, None
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


Settled = Callable[[AsyncSession, OutboxJob], Awaitable[None]]


async def drain(
    sessions: async_sessionmaker[AsyncSession],
    deliverers: Mapping[Channel, Deliverer],
    *,
    batch: int = 50,
    now: Callable[[], datetime] = utcnow,
    settled: Settled | None = None,
) -> DrainReport:
    """Deliver what is due now, one job per transaction; safe to run in several workers at once."""
    transactional = {channel for channel, deliverer in deliverers.items() if deliverer.transactional}
    async with db.transaction(sessions) as session:
        recovered = await recover_expired(session, transactional, now=now())
    async with sessions() as session:
        due = (
            await session.exec(
                select(OutboxJob.id)
                .where(
                    OutboxJob.status == OutboxStatus.PENDING,
                    col(OutboxJob.next_attempt_at) <= now(),
                    col(OutboxJob.channel).in_(list(deliverers)),
                )
                .order_by(col(OutboxJob.next_attempt_at), col(OutboxJob.id))
                .limit(batch)
            )
        ).all()
    counts = {OutboxStatus.SENT: 0, OutboxStatus.PENDING: 0, OutboxStatus.FAILED: 0}
    for job_id in due:
        assert job_id is not None
        status = await _deliver_one(sessions, deliverers, job_id, now, settled)
        if status in counts:
            counts[status] += 1
    return DrainReport(
        sent=counts[OutboxStatus.SENT],
        retried=counts[OutboxStatus.PENDING],
        failed=counts[OutboxStatus.FAILED],
        recovered=recovered,
    )


async def _deliver_one(
    sessions: async_sessionmaker[AsyncSession],
    deliverers: Mapping[Channel, Deliverer],
    job_id: int,
    now: Callable[[], datetime],
    settled: Settled | None = None,
) -> OutboxStatus | None:
    """Claim one job and deliver it; None when another worker got it first."""
    async with db.transaction(sessions) as session:
        # SKIP LOCKED: a job another worker is delivering is passed over instead of waited for.
        locked = (
            await session.exec(
                select(OutboxJob.id).where(col(OutboxJob.id) == job_id).with_for_update(skip_locked=True)
            )
        ).first()
        if locked is None or not await _take(session, job_id, now(), now() + LEASE):
            return None
        job = await session.get(OutboxJob, job_id, populate_existing=True)
        assert job is not None
        deliverer = deliverers[job.channel]
        if deliverer.transactional:
            try:
                async with session.begin_nested():
                    await deliverer.deliver(session, job)
                error = None
            except DeliveryFailed as failure:
                error = failure
            status = await _settle(session, job, error, now())
            if settled:
                await settled(session, job)
            return status
    # A network channel: the lease is committed; send outside any transaction, then record the outcome.
    try:
        async with sessions() as reading:
            await deliverer.deliver(reading, job)
        error = None
    except DeliveryFailed as failure:
        error = failure
    except Exception as unexpected:  # a bug or an unknown network error: retry, visibly
        log.exception("outbox.deliver_crashed", extra={"job": job_id})
        error = DeliveryFailed(f"{type(unexpected).__name__}: {unexpected}")
    async with db.transaction(sessions) as session:
        fresh = await session.get(OutboxJob, job_id, populate_existing=True)
        if fresh is None or fresh.status is not OutboxStatus.SENDING:
            return None  # the lease expired and the job was re-marked meanwhile
        status = await _settle(session, fresh, error, now())
        if settled:
            await settled(session, fresh)
        return status


class OutboxWorker:
    """Drains the outbox until stopped: woken right after a commit that queued a job, polling meanwhile."""

    def __init__(
        self,
        sessions: Callable[[], async_sessionmaker[AsyncSession]],
        deliverers: Mapping[Channel, Deliverer],
        *,
        poll_seconds: float = 2.0,
        settled: Settled | None = None,
    ) -> None:
        self._sessions = sessions  # looked up each round: tests swap in a rolled-back transaction
        self.deliverers = deliverers
        self.settled = settled  # told of every outcome (the live thread shows delivery status)
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(
        self, wakeups: Callable[[Callable[[], None]], Coroutine[Any, Any, None]] | None = None
    ) -> None:
        """Loop forever; `wakeups` (if given) calls `wake` whenever another process queued a job."""
        listener = asyncio.create_task(wakeups(self.wake)) if wakeups else None
        try:
            while True:
                try:
                    report = await drain(self._sessions(), self.deliverers, settled=self.settled)
                    if report.handled or report.recovered:
                        log.info(
                            "outbox.drained",
                            extra={"sent": report.sent, "retried": report.retried, "failed": report.failed},
                        )
                        if report.handled:
                            continue  # more may be due right away
                except Exception:  # the database away for a moment: keep the worker alive, try again
                    log.exception("outbox.drain_failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                self._wake.clear()
        finally:
            if listener:
                listener.cancel()


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
