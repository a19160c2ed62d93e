"""Ticket changes as they happen, across every app worker: Redis pub/sub behind the live queue.

A change is announced only after its transaction commits, so a consultant's page never shows a
ticket that was rolled back. Outbox workers are woken the moment a reply is queued, one worker per
wake-up (a Redis list of tokens).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.db import after_commit
from infoopt.core.loops import stop_if_cancelled
from infoopt.core.redis_store import channel, is_in_process
from tickets.models import OutboxJob, Ticket, TicketMessage

log = logging.getLogger(__name__)

TICKETS_CHANNEL = "tickets"  # in this Redis database (redis_store.channel)
OUTBOX_WAKE = "infoopt:outbox:wake"
# Tokens kept at most: each wakes one worker, and one worker's claim takes everything that is due.
WAKE_TOKENS = 8
# A worker's blocking wait for a token, renewed: shorter than the client's socket timeout (redis-py's
# default is 5 s), which would otherwise end the wait with an error.
WAKE_WAIT_SECONDS = 2


@dataclass(frozen=True, slots=True)
class TicketChange:
    ticket_id: int
    number: str
    office: str | None
    status: str
    kind: str  # created, claimed, replied, person_wrote, transferred, resolved, ...

    @classmethod
    def loads(cls, raw: str | bytes) -> TicketChange | None:
        try:
            data = json.loads(raw)
            return cls(
                int(data["ticket_id"]),
                str(data["number"]),
                data.get("office"),
                str(data["status"]),
                str(data["kind"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


class TicketFeed:
    """Publishes ticket changes and outbox wake-ups; hands out subscriptions to them."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.local_wakeups: list[Callable[[], None]] = []  # workers in this process, woken directly

    def announce(self, session: AsyncSession, ticket: Ticket, kind: str, *, outbox: bool = False) -> None:
        """After the transaction commits: tell every worker's live queue, and wake the outbox if asked."""
        assert ticket.id is not None
        change = TicketChange(ticket.id, ticket.number, ticket.office_code, ticket.status.value, kind)

        async def publish() -> None:
            await self.publish(change)
            if outbox:
                await self.wake_outbox()

        after_commit(session, publish)

    def wake_after_commit(self, session: AsyncSession) -> None:
        """Wake the outbox workers once this transaction's jobs are committed."""
        after_commit(session, self.wake_outbox)

    async def job_settled(self, session: AsyncSession, job: OutboxJob) -> None:
        """An outbox job's delivery changed: the ticket it belongs to shows the new status live."""
        if job.ticket_message_id is None:
            return
        message = await session.get(TicketMessage, job.ticket_message_id)
        ticket = await session.get(Ticket, message.ticket_id) if message else None
        if ticket is not None:
            self.announce(session, ticket, "delivery")

    async def publish(self, change: TicketChange) -> None:
        try:
            await self.redis.publish(channel(self.redis, TICKETS_CHANNEL), json.dumps(asdict(change)))
        except RedisError as error:  # the queue pages also refresh on a timer; nothing is lost
            log.warning("tickets.feed_unavailable", extra={"error": str(error)})

    async def wake_outbox(self) -> None:
        """Wake one outbox worker: this process's own, and a token for one worker elsewhere (a list, not
        pub/sub, so that a job wakes one worker rather than all of them to race for it)."""
        for wake in self.local_wakeups:
            wake()
        if is_in_process(self.redis):  # one process: its workers are woken above
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.lpush(OUTBOX_WAKE, "1")
                pipe.ltrim(OUTBOX_WAKE, 0, WAKE_TOKENS - 1)
                await pipe.execute()
        except RedisError as error:  # workers poll as well
            log.warning("outbox.wake_unavailable", extra={"error": str(error)})

    async def changes(self) -> AsyncIterator[TicketChange | None]:
        """Ticket changes as they come; None every 15 s of quiet (a heartbeat for the stream)."""
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(channel(self.redis, TICKETS_CHANNEL))
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=15.0)
                if message is None:
                    yield None
                    continue
                change = TicketChange.loads(message["data"])
                if change is not None:
                    yield change
        finally:
            await pubsub.unsubscribe(channel(self.redis, TICKETS_CHANNEL))
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def outbox_wakeups(self, wake: Callable[[], None]) -> None:
        """Call `wake` for each wake-up token this worker takes (until cancelled); each token wakes one
        worker, whichever is waiting first."""
        if is_in_process(self.redis):  # one process: `local_wakeups` reach its workers
            return
        while True:
            try:
                taken = await self.redis.brpop([OUTBOX_WAKE], timeout=WAKE_WAIT_SECONDS)
                stop_if_cancelled()  # redis-py's read timeout can swallow a cancellation while it waits
                if taken:
                    wake()
            except RedisError as error:
                log.warning("outbox.wakeups_unavailable", extra={"error": str(error)})
                await asyncio.sleep(5)
