"""People who asked to hear when a topic's answer changes, and the outbox jobs that tell them.

A subscription is one person (a channel and the channel's id for them) and one topic. A marked change
is announced by `fan_out`: one outbox job per active subscriber, written by the database itself
(`INSERT … SELECT`, a statement per language) and skipped where the same change already has a job for
that person (the unique index on outbox_job (change_id, channel, recipient)). A broadcast cut short by
a crash is therefore simply run again: those told are not told twice, the rest get their message.
The outbox sends the jobs within each channel's limits, like any other message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, delete, func, literal, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.languages import Channel
from tickets.models import Conversation, OutboxJob, OutboxStatus, Subscription

# The channels a person can subscribe on: those that can reach them later, unasked.
SUBSCRIBABLE = frozenset({Channel.TELEGRAM, Channel.WEB})
MAX_SUBSCRIPTIONS = 50  # per person; more is a script, not a person
JOBS: Table = OutboxJob.__table__  # type: ignore[attr-defined]


class TooManySubscriptions(Exception):
    """The person already follows the most topics one person may."""


@dataclass(frozen=True, slots=True)
class Announcement:
    """What one language's subscribers receive about a change."""

    text: str
    actions: list[dict[str, str | None]]


async def subscribe(
    session: AsyncSession, channel: Channel, recipient: str, topic_id: str, language: str
) -> bool:
    """Follow a topic (again). False when the person already follows it."""
    existing = (
        await session.exec(
            select(Subscription).where(
                Subscription.channel == channel,
                Subscription.recipient == recipient,
                Subscription.topic_id == topic_id,
            )
        )
    ).first()
    if existing is not None and existing.active:
        if existing.language != language:
            existing.language = language
            session.add(existing)
        return False
    if len(await topics_of(session, channel, recipient)) >= MAX_SUBSCRIPTIONS:
        raise TooManySubscriptions
    subscription = existing or Subscription(
        channel=channel, recipient=recipient, topic_id=topic_id, language=language
    )
    subscription.active, subscription.ended_at, subscription.language = True, None, language
    session.add(subscription)
    await session.flush()
    return True


async def unsubscribe(session: AsyncSession, channel: Channel, recipient: str, topic_id: str) -> bool:
    """Stop following a topic; nothing of it is kept. False when the person did not follow it."""
    result = await session.exec(
        delete(Subscription)
        .where(
            col(Subscription.channel) == channel,
            col(Subscription.recipient) == recipient,
            col(Subscription.topic_id) == topic_id,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def purge_ended(session: AsyncSession, *, ended_before: datetime) -> int:
    """Delete the subscriptions that ended (the person blocked the bot) before a moment."""
    result = await session.exec(
        delete(Subscription)
        .where(col(Subscription.active).is_(False), col(Subscription.ended_at) < ended_before)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def topics_of(session: AsyncSession, channel: Channel, recipient: str) -> list[str]:
    """The topics a person follows, in the order they subscribed."""
    rows = await session.exec(
        select(Subscription.topic_id)
        .where(
            Subscription.channel == channel,
            Subscription.recipient == recipient,
            col(Subscription.active).is_(True),
        )
        .order_by(col(Subscription.created_at), col(Subscription.id))
    )
    return list(rows.all())


async def forget_subscriptions(session: AsyncSession, channel: Channel, recipient: str) -> int:
    """Remove every subscription of a person (they asked to be forgotten). How many there were."""
    result = await session.exec(
        delete(Subscription)
        .where(col(Subscription.channel) == channel, col(Subscription.recipient) == recipient)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def deactivate_recipient(
    session: AsyncSession, channel: Channel, recipient: str, now: datetime
) -> None:
    """The person blocked the bot: their subscriptions stop (they can subscribe again after writing)."""
    await session.exec(
        update(Subscription)
        .where(
            col(Subscription.channel) == channel,
            col(Subscription.recipient) == recipient,
            col(Subscription.active).is_(True),
        )
        .values(active=False, ended_at=now)
        .execution_options(synchronize_session=False)
    )


async def subscribed_languages(session: AsyncSession, topic_id: str) -> list[str]:
    """The languages the topic's active subscribers are written to in."""
    rows = await session.exec(
        select(Subscription.language)
        .where(Subscription.topic_id == topic_id, col(Subscription.active).is_(True))
        .distinct()
    )
    return sorted(rows.all())


async def fan_out(
    session: AsyncSession,
    change_id: int,
    topic_id: str,
    announcements: Mapping[str, Announcement],
    *,
    now: datetime,
) -> int:
    """Put one job per active subscriber of the topic into the outbox, in the subscriber's language;
    none for a person this change already has a job for. How many jobs were added."""
    added = 0
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    blocked = select(Conversation.id).where(  # they blocked the bot: skipped (and marked when it fails)
        col(Conversation.channel) == Subscription.channel,
        col(Conversation.external_id) == Subscription.recipient,
        col(Conversation.blocked_at).is_not(None),
    )
    for language, announcement in announcements.items():
        subscribers = sa_select(
            col(Subscription.channel),
            col(Subscription.recipient),
            literal(announcement.text).label("text"),
            literal("text").label("format"),
            literal(announcement.actions, JOBS.c.actions.type).label("actions"),
            literal(change_id).label("change_id"),
            literal(OutboxStatus.PENDING, JOBS.c.status.type).label("status"),
            literal(0).label("attempts"),
            literal(now, JOBS.c.next_attempt_at.type).label("next_attempt_at"),
            literal(now, JOBS.c.created_at.type).label("created_at"),
        ).where(
            col(Subscription.topic_id) == topic_id,
            col(Subscription.language) == language,
            col(Subscription.active).is_(True),
            col(Subscription.channel).in_(list(SUBSCRIBABLE)),
            ~blocked.exists(),
        )
        columns = [
            "channel",
            "recipient",
            "text",
            "format",
            "actions",
            "change_id",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
        ]
        builder = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            builder(JOBS)
            .from_select(columns, subscribers)
            .on_conflict_do_nothing(index_elements=["change_id", "channel", "recipient"])
        )
        result = await session.exec(statement)
        added += result.rowcount or 0
    return added


@dataclass(frozen=True, slots=True)
class ChangeDeliveries:
    """What became of the messages announcing changes (since a moment)."""

    queued: int  # waiting for their turn or being sent
    delivered: int
    failed: int  # given up on (blocked bot, chat gone, too many attempts)
    unconfirmed: int  # a worker stopped mid-send: maybe arrived, never sent twice

    @property
    def total(self) -> int:
        return self.queued + self.delivered + self.failed + self.unconfirmed


async def change_deliveries(session: AsyncSession, *, since: datetime | None = None) -> ChangeDeliveries:
    query = (
        select(OutboxJob.status, func.count())
        .where(col(OutboxJob.change_id).is_not(None))
        .group_by(col(OutboxJob.status))
    )
    if since is not None:
        query = query.where(col(OutboxJob.created_at) >= since)
    counts: dict[str, int] = dict((await session.exec(query)).all())
    return ChangeDeliveries(
        queued=counts.get(OutboxStatus.PENDING, 0) + counts.get(OutboxStatus.SENDING, 0),
        delivered=counts.get(OutboxStatus.SENT, 0),
        failed=counts.get(OutboxStatus.FAILED, 0),
        unconfirmed=counts.get(OutboxStatus.UNCONFIRMED, 0),
    )


async def followers(session: AsyncSession, topic_id: str) -> dict[str, int]:
    """How many people follow a topic now, by the language they are written to in."""
    count = func.count().label("count")
    rows = await session.exec(
        select(Subscription.language, count)
        .where(Subscription.topic_id == topic_id, col(Subscription.active).is_(True))
        .group_by(col(Subscription.language))
    )
    return dict(rows.all())


async def subscriptions_per_topic(session: AsyncSession) -> Sequence[tuple[str, int]]:
    """Active subscriptions per topic, the most followed first."""
    count = func.count().label("count")
    rows = await session.exec(
        select(Subscription.topic_id, count)
        .where(col(Subscription.active).is_(True))
        .group_by(col(Subscription.topic_id))
        .order_by(count.desc(), col(Subscription.topic_id))
    )
    return list(rows.all())
