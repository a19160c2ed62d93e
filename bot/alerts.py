"""Telling people a rule changed: the message each subscriber gets, and the notice on every answer.

An admin marks a published revision as a change (knowledge_base.changes). A worker then takes the
oldest change not yet announced and, in one transaction, puts a message for every active subscriber
of the topic into the outbox, in the subscriber's language: what changed (the admin's summary, or
the generic line where that language has none), the new short answer, and buttons for the full
answer and for stopping these messages. The outbox sends them within the channel's limits. A crash
before the commit leaves the change unannounced for the next round; the outbox's unique (change,
person) index keeps anyone from getting it twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from babel.dates import format_date
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.replies import Action, ActionName, actions_to_json
from infoopt.core import db
from infoopt.core.clock import utcnow
from infoopt.core.i18n import say
from infoopt.core.loops import stop_if_cancelled
from knowledge_base.changes import ChangeNote, unannounced
from knowledge_base.service import PublishedArticle
from tickets.offices import WARSAW
from tickets.subscriptions import Announcement, fan_out, subscribed_languages

log = logging.getLogger(__name__)

ArticleLookup = Callable[[str, str], Awaitable[PublishedArticle | None]]
# How long every answer on a topic says "changed on …" after a marked change.
NOTICE_FOR = timedelta(days=30)


def changed_on(change: ChangeNote, language: str) -> str:
    """The date of a change as people read it: "3 grudnia 2026"."""
    return format_date(change.changed_at.astimezone(WARSAW).date(), "long", locale=language)


def change_notice(
    article: PublishedArticle, language: str, now: datetime, *, window: timedelta
) -> str | None:
    """The line an answer starts with for a while after its topic changed, or None."""
    change = article.change
    if change is None or now - change.changed_at > window:
        return None
    summary = change.summary(language)
    when = changed_on(change, language)
    if summary:
        return say(language, "Changed on {date}: {summary}", date=when, summary=summary)
    return say(language, "The answer about “{title}” changed on {date}.", title=article.title, date=when)


def announcement(article: PublishedArticle, change: ChangeNote, language: str) -> Announcement:
    """The message a subscriber gets in `language` (the article in that language, already published)."""
    when = changed_on(change, language)
    lines = [say(language, "The answer about “{title}” changed on {date}.", title=article.title, date=when)]
    summary = change.summary(language)
    if summary:
        lines.append(summary)
    lines.append(article.short_answer)
    actions = [
        Action(ActionName.FULL_ANSWER, article.topic_id, say(language, "Full answer")),
        Action(ActionName.UNSUBSCRIBE, article.topic_id, say(language, "Stop messages about this topic")),
    ]
    return Announcement(text="\n\n".join(lines), actions=actions_to_json(actions))


async def announce_next(
    sessions: async_sessionmaker[AsyncSession], articles: ArticleLookup, *, now: datetime | None = None
) -> int | None:
    """Broadcast the oldest unannounced change: how many messages it queued, or None when there was none."""
    async with db.transaction(sessions) as session:
        change = await unannounced(session)
        if change is None:
            return None
        assert change.id is not None
        note = ChangeNote(change.changed_at, dict(change.summaries))
        announcements = {}
        for language in await subscribed_languages(session, change.topic_id):
            article = await articles(change.topic_id, language)
            if article is not None:  # nothing published in that language: nothing to send there
                announcements[language] = announcement(article, note, language)
        moment = now or utcnow()
        queued = await fan_out(session, change.id, change.topic_id, announcements, now=moment)
        change.announced_at, change.recipients = moment, change.recipients + queued
        session.add(change)
    log.info("alerts.announced", extra={"change": change.id, "topic": change.topic_id, "messages": queued})
    return queued


async def announce_changes(
    sessions: Callable[[], async_sessionmaker[AsyncSession]],
    articles: ArticleLookup,
    wake_outbox: Callable[[], Awaitable[None]],
    *,
    every_seconds: float = 1.0,
) -> None:
    """For the life of a worker: broadcast marked changes as they appear, then wake the outbox."""
    while True:
        stop_if_cancelled()
        try:
            while (queued := await announce_next(sessions(), articles)) is not None:
                if queued:
                    await wake_outbox()
        except Exception:  # the database away for a moment: the change waits for the next round
            log.exception("alerts.failed")
        await asyncio.sleep(every_seconds)
