"""Changes people must hear about: a published revision an admin marks, with a one-line summary per
language. The Polish summary is required (it is the master language); a language without one gets
the bot's generic "the answer about … changed on …" in that language.

Marking is audited like a publish. The broadcast to subscribers is the channels' business (a worker
finds the changes not yet announced, `unannounced`); the knowledge base keeps the change and when
it was announced, and every answer on the topic shows it for a while (`PublishedArticle.change`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow
from infoopt.core.errors import DomainError
from infoopt.core.languages import LANGUAGES
from infoopt.staff.audit import record_audit
from knowledge_base.models import Article, ArticleRevision, TopicChange

MASTER_LANGUAGE = "pl"
MAX_SUMMARY = 200  # one line: it leads a Telegram message and is read out on the phone


class InvalidChange(DomainError):
    status_code = 422
    code = "invalid_change"


@dataclass(frozen=True, slots=True)
class ChangeNote:
    """The latest marked change of a topic, as an answer shows it."""

    changed_at: datetime
    summaries: Mapping[str, str]

    def summary(self, language: str) -> str | None:
        return self.summaries.get(language)


def clean_summaries(summaries: Mapping[str, str | None]) -> dict[str, str]:
    """One line each, trimmed; languages without text left out. The Polish one is required."""
    cleaned: dict[str, str] = {}
    for language, text in summaries.items():
        if language not in LANGUAGES:
            raise InvalidChange(f"unknown language {language!r}")
        line = " ".join((text or "").split())
        if len(line) > MAX_SUMMARY:
            raise InvalidChange(f"the {language} summary has {len(line)} characters; at most {MAX_SUMMARY}")
        if line:
            cleaned[language] = line
    if MASTER_LANGUAGE not in cleaned:
        raise InvalidChange("write the Polish summary: one line saying what changed")
    return cleaned


async def mark_change(
    session: AsyncSession,
    topic_id: str,
    language: str,
    summaries: Mapping[str, str | None],
    *,
    actor: str,
    now: datetime | None = None,
) -> TopicChange:
    """Mark the revision served now in this language as a change subscribers must hear about."""
    cleaned = clean_summaries(summaries)
    article = (
        await session.exec(select(Article).where(Article.topic_id == topic_id, Article.language == language))
    ).first()
    if article is None or article.published_revision_id is None:
        raise InvalidChange("nothing is published in this language: publish the new revision first")
    revision_id = article.published_revision_id
    already = (await session.exec(select(TopicChange).where(TopicChange.revision_id == revision_id))).first()
    if already is not None:
        raise InvalidChange("this revision is already marked as a change; subscribers are told once")
    revision = await session.get(ArticleRevision, revision_id)
    change = TopicChange(
        topic_id=topic_id,
        revision_id=revision_id,
        summaries=cleaned,
        changed_at=now or utcnow(),
        marked_by=actor,
    )
    session.add(change)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action="change.mark",
        object_type="article",
        object_id=f"{topic_id}/{language}",
        reason=cleaned[MASTER_LANGUAGE],
        details={"revision": revision.number if revision else None, "languages": sorted(cleaned)},
    )
    return change


async def changes_of(session: AsyncSession, topic_id: str, *, limit: int = 10) -> Sequence[TopicChange]:
    """A topic's marked changes, the latest first."""
    rows = await session.exec(
        select(TopicChange)
        .where(TopicChange.topic_id == topic_id)
        .order_by(col(TopicChange.changed_at).desc(), col(TopicChange.id).desc())
        .limit(limit)
    )
    return rows.all()


async def latest_changes(session: AsyncSession, topic_id: str | None = None) -> dict[str, ChangeNote]:
    """Each topic's latest marked change (or one topic's), for the answers to show."""
    latest = select(TopicChange.topic_id, func.max(TopicChange.changed_at).label("at")).group_by(
        col(TopicChange.topic_id)
    )
    if topic_id is not None:
        latest = latest.where(TopicChange.topic_id == topic_id)
    newest = latest.subquery()
    rows = await session.exec(
        select(TopicChange)
        .join(
            newest,
            (col(TopicChange.topic_id) == newest.c.topic_id) & (col(TopicChange.changed_at) == newest.c.at),
        )
        .order_by(col(TopicChange.id))
    )
    return {change.topic_id: ChangeNote(change.changed_at, dict(change.summaries)) for change in rows.all()}


async def unannounced(session: AsyncSession) -> TopicChange | None:
    """The oldest change whose broadcast is not finished, locked for this transaction (another worker
    skips it on PostgreSQL)."""
    return (
        await session.exec(
            select(TopicChange)
            .where(col(TopicChange.announced_at).is_(None))
            .order_by(col(TopicChange.id))
            .limit(1)
            .with_for_update(skip_locked=True)
        )
    ).first()
