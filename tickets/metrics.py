"""The desk's metrics: handoffs and delivery failures as they happen, and its state read at scrape time.

Events are counters, incremented where they happen (a ticket opened, a delivery attempt failed). State —
tickets per point and status, tickets past their SLA, the outbox backlog — is a count in the database,
correct whichever process changed it, so it is read when Prometheus scrapes and returned as gauges in a
registry made for that scrape; keeping such gauges in the processes would be wrong with several workers
and after every restart.

Labels are a PID point's code ("shared" for the shared queue), a channel, a status: never a person, a
text or a ticket number.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow
from infoopt.core.db import after_commit
from infoopt.core.languages import Channel
from infoopt.core.metrics import REGISTRY
from tickets.models import ACTIVE_STATUSES, OutboxJob, OutboxStatus, PidOffice, Ticket, TicketStatus

log = logging.getLogger(__name__)

SHARED_QUEUE = "shared"  # the office label of tickets no point holds yet
# Outbox jobs still to deliver or needing a person; sent jobs are history, not backlog.
UNFINISHED_JOBS = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.FAILED, OutboxStatus.UNCONFIRMED)
SCRAPE_TIMEOUT_SECONDS = 3.0

HANDOFFS = Counter(
    "infoopt_handoffs_total",
    "Tickets opened for a consultant, by the channel the person came from and the PID point chosen",
    ["channel", "office"],
    registry=REGISTRY,
)
DELIVERY_FAILURES = Counter(
    "infoopt_outbox_delivery_failures_total",
    "Failed delivery attempts by channel; result: retrying (tried again later) or failed (given up)",
    ["channel", "result"],
    registry=REGISTRY,
)

DELIVERIES = Counter(
    "infoopt_outbox_delivered_total",
    "Messages delivered from the outbox, by channel (what a worker sent; a broadcast's messages included)",
    ["channel"],
    registry=REGISTRY,
)

WEBHOOK_REPLIES = Counter(
    "infoopt_telegram_webhook_replies_total",
    "Telegram replies sent back in the webhook's own response instead of through the outbox (unconfirmed)",
    registry=REGISTRY,
)


def office_label(code: str | None) -> str:
    return code or SHARED_QUEUE


def count_handoff(session: AsyncSession, ticket: Ticket) -> None:
    """Count a new ticket once its transaction commits (a rolled-back handoff was never made)."""
    labels = (ticket.channel.value, office_label(ticket.office_code))

    async def count() -> None:
        HANDOFFS.labels(*labels).inc()

    after_commit(session, count)


def count_delivered(channel: Channel, count: int = 1) -> None:
    """Count messages the outbox delivered on a channel."""
    if count:
        DELIVERIES.labels(channel.value).inc(count)


def count_delivery_failure(channel: Channel, *, given_up: bool) -> None:
    """Count one failed delivery attempt (the outbox records it on the job as well)."""
    DELIVERY_FAILURES.labels(channel.value, "failed" if given_up else "retrying").inc()


@dataclass(frozen=True, slots=True)
class DeskState:
    """The desk's counts at one moment; every point and channel is present, with 0 when it has none."""

    tickets: dict[tuple[str, str], int] = field(default_factory=dict)  # (office, status)
    past_sla: dict[str, int] = field(default_factory=dict)  # office
    outbox: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, status)
    outbox_due: dict[str, int] = field(default_factory=dict)  # channel
    oldest_due_seconds: dict[str, float] = field(default_factory=dict)  # channel


async def read_desk_state(session: AsyncSession, *, now: datetime) -> DeskState:
    """Count tickets by point and status, unanswered tickets past their due time, and the outbox backlog.

    Grouped counts over indexed columns: a handful of rows whatever the size of the tables.
    """
    offices = [office_label(code) for code in (await session.exec(select(PidOffice.code))).all()]
    offices.append(SHARED_QUEUE)
    state = DeskState(
        tickets={(office, status.value): 0 for office in offices for status in TicketStatus},
        past_sla=dict.fromkeys(offices, 0),
        outbox={(channel.value, status.value): 0 for channel in Channel for status in UNFINISHED_JOBS},
        outbox_due={channel.value: 0 for channel in Channel},
        oldest_due_seconds={channel.value: 0.0 for channel in Channel},
    )
    office, status = col(Ticket.office_code), col(Ticket.status)
    for code, ticket_status, count in (
        await session.exec(select(office, status, func.count()).group_by(office, status))
    ).all():
        state.tickets[(office_label(code), TicketStatus(ticket_status).value)] = int(count)
    # Past its SLA: still in play, no consultant has answered, and the due time has gone by.
    past = (
        select(office, func.count())
        .where(
            status.in_(ACTIVE_STATUSES),
            col(Ticket.first_response_at).is_(None),
            col(Ticket.sla_due_at) < now,
        )
        .group_by(office)
    )
    for code, count in (await session.exec(past)).all():
        state.past_sla[office_label(code)] = int(count)
    channel, job_status, due_at = (
        col(OutboxJob.channel),
        col(OutboxJob.status),
        col(OutboxJob.next_attempt_at),
    )
    jobs = select(channel, job_status, func.count()).where(job_status.in_(UNFINISHED_JOBS))
    for job_channel, each_status, count in (await session.exec(jobs.group_by(channel, job_status))).all():
        state.outbox[(Channel(job_channel).value, OutboxStatus(each_status).value)] = int(count)
    due = (
        select(channel, func.count(), func.min(due_at))
        .where(job_status == OutboxStatus.PENDING, due_at <= now)
        .group_by(channel)
    )
    for job_channel, count, oldest in (await session.exec(due)).all():
        state.outbox_due[Channel(job_channel).value] = int(count)
        state.oldest_due_seconds[Channel(job_channel).value] = max(0.0, (now - oldest).total_seconds())
    return state


class DeskCollector(Collector):
    """Hands one scrape's `DeskState` to Prometheus as gauges (made per scrape: no process keeps them)."""

    def __init__(self, state: DeskState | None) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "infoopt_desk_metrics_up", "1 when this scrape could read the desk's state from the database"
        )
        up.add_metric([], 1.0 if self.state is not None else 0.0)
        yield up
        if self.state is None:
            return
        yield _family(
            "infoopt_tickets",
            "Tickets by PID point and status",
            ["office", "status"],
            self.state.tickets.items(),
        )
        yield _family(
            "infoopt_tickets_past_sla",
            "Tickets in play (new, open, waiting) with no consultant reply yet, past their SLA due time",
            ["office"],
            (((office,), count) for office, count in self.state.past_sla.items()),
        )
        yield _family(
            "infoopt_outbox_jobs",
            "Outbox jobs not delivered yet (pending, sending) or needing a person (failed, unconfirmed)",
            ["channel", "status"],
            self.state.outbox.items(),
        )
        yield _family(
            "infoopt_outbox_due_jobs",
            "Pending outbox jobs whose time has come (waiting for a worker)",
            ["channel"],
            (((channel,), count) for channel, count in self.state.outbox_due.items()),
        )
        yield _family(
            "infoopt_outbox_oldest_due_seconds",
            "How long the oldest due outbox job has waited (0 when none is due)",
            ["channel"],
            (((channel,), seconds) for channel, seconds in self.state.oldest_due_seconds.items()),
        )


def _family(
    name: str, documentation: str, labels: list[str], values: Iterable[tuple[Sequence[str], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in sorted(values):
        family.add_metric(list(label_values), float(value))
    return family


async def desk_registry(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> CollectorRegistry:
    """This scrape's desk gauges; with the database slow or away, only `infoopt_desk_metrics_up 0`, so the
    process's own metrics are still served."""
    try:
        async with sessions() as session:
            state: DeskState | None = await asyncio.wait_for(
                read_desk_state(session, now=now or utcnow()), SCRAPE_TIMEOUT_SECONDS
            )
    except Exception:
        log.exception("metrics.desk_unreadable")
        state = None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeskCollector(state))
    return registry
