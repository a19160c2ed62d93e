"""Tables of the knowledge base: an article per topic and language, its revisions, the audit trail
and the backlog of what the bot failed at."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from infoopt.core.clock import utcnow
from infoopt.core.columns import enum_column


class RevisionStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class PublishReview(StrEnum):
    """Who checked a revision before it went out."""

    SECOND_PERSON = "second_person"  # an admin other than the author approved it
    SINGLE_ADMIN = "single_admin"  # the installation switched the second review off
    ARTICLE_FILES = "article_files"  # `kb sync` loaded it from the files reviewed in the repository
    ROLLBACK = "rollback"  # earlier content that was reviewed when it was first published


class Article(SQLModel, table=True):
    """One topic in one language; points at the revision the bot serves."""

    __tablename__ = "kb_article"
    __table_args__ = (UniqueConstraint("topic_id", "language", name="uq_kb_article_topic_language"),)

    id: int | None = Field(default=None, primary_key=True)
    topic_id: str = Field(max_length=64, index=True)
    language: str = Field(max_length=2)
    # Articles and revisions point at each other; the constraint is added after both tables exist.
    published_revision_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("kb_revision.id", use_alter=True, name="fk_kb_article_published"),
            nullable=True,
        ),
    )
    # A translation goes stale when the Polish master is republished, until someone re-verifies it.
    stale_since: datetime | None = None
    stale_reason: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ArticleRevision(SQLModel, table=True):
    """An immutable version of an article's content, moving through draft → review → published → archived."""

    __tablename__ = "kb_revision"
    __table_args__ = (UniqueConstraint("article_id", "number", name="uq_kb_revision_number"),)

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="kb_article.id", index=True)
    number: int
    status: RevisionStatus = Field(
        default=RevisionStatus.DRAFT,
        sa_column=Column(enum_column(RevisionStatus), nullable=False, index=True),
    )
    title: str = Field(max_length=300)
    short_answer: str = Field(sa_column=Column(Text, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    sources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    legal_basis: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    verified_on: date
    valid_until: date | None = None
    # For a translation: the Polish revision it was written or re-verified against.
    master_revision_id: int | None = Field(default=None, foreign_key="kb_revision.id")
    # Lower-cased, diacritics-free title + answers, for full-text search.
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # Set when `kb sync` made this revision: the hash of the file it came from.
    file_hash: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=500)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    submitted_by: str | None = Field(default=None, max_length=64)
    submitted_at: datetime | None = None
    # Set when a reviewer sends the revision back to its author: who, when and why.
    returned_by: str | None = Field(default=None, max_length=64)
    returned_at: datetime | None = None
    return_comment: str | None = Field(default=None, max_length=1000)
    published_by: str | None = Field(default=None, max_length=64)
    published_at: datetime | None = None
    publish_review: PublishReview | None = Field(
        default=None, sa_column=Column(enum_column(PublishReview), nullable=True)
    )


class TopicChange(SQLModel, table=True):
    """A published revision an admin marked as a change people must hear about, with a one-line summary
    per language (Polish required). Subscribers of the topic are told once; every answer on the topic
    says "changed on …" for a while after."""

    __tablename__ = "kb_topic_change"

    id: int | None = Field(default=None, primary_key=True)
    topic_id: str = Field(max_length=64, index=True)
    revision_id: int = Field(foreign_key="kb_revision.id")
    summaries: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    changed_at: datetime = Field(default_factory=utcnow, index=True)
    marked_by: str = Field(max_length=64)
    # Set once every subscriber's message is in the outbox; until then a worker (re)does the broadcast.
    announced_at: datetime | None = None
    recipients: int = 0  # messages the broadcast put in the outbox


class FailureKind(StrEnum):
    FALLBACK = "fallback"
    NOT_HELPFUL = "not_helpful"
    HANDOFF = "handoff"


class BotFailure(SQLModel, table=True):
    """Something the bot could not answer well: raw material for training examples and better answers."""

    __tablename__ = "kb_bot_failure"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    kind: FailureKind = Field(sa_column=Column(enum_column(FailureKind), nullable=False, index=True))
    text: str = Field(sa_column=Column(Text, nullable=False))
    language: str | None = Field(default=None, max_length=2)
    topic_id: str | None = Field(default=None, max_length=64)
    channel: str = Field(default="api", max_length=16)
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(default=None, max_length=64)
    resolution: str | None = Field(default=None, max_length=300)
