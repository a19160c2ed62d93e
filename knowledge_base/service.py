"""Knowledge-base rules: revisions and their workflow, Polish as the master, staleness, expiry,
rollback, diff, the audit trail, search and the sync with the article files.

Services flush and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date
from enum import StrEnum
from pathlib import Path

from sqlalchemy import func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow
from infoopt.core.errors import DomainError, Forbidden, NotFound
from infoopt.core.languages import LANGUAGES
from infoopt.staff.audit import record_audit
from knowledge_base.changes import MASTER_LANGUAGE as MASTER_LANGUAGE  # re-exported: kb.MASTER_LANGUAGE
from knowledge_base.changes import ChangeNote, latest_changes
from knowledge_base.files import ArticleDocument, read_articles, render_article, write_article
from knowledge_base.models import Article, ArticleRevision, PublishReview, RevisionStatus
from knowledge_base.text import fold
from knowledge_base.topics import catalogue

SYSTEM_ACTOR = "system"


class UnknownArticle(NotFound):
    code = "unknown_article"


class InvalidRevision(DomainError):
    status_code = 422
    code = "invalid_revision"


class WrongRevisionState(DomainError):
    code = "wrong_revision_state"


class OwnRevision(Forbidden):
    """The two-person rule: whoever wrote or submitted a revision does not approve it."""

    code = "own_revision"


def _required_reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidRevision(f"say in a few words why you {what} (it goes to the audit trail)")
    return text


class ArticleState(StrEnum):
    """What the topic × language matrix shows for one cell."""

    PUBLISHED = "published"
    STALE = "stale"
    MISSING = "missing"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class PublishedArticle:
    """What the bot and the API serve for one topic and language."""

    topic_id: str
    language: str
    revision_id: int
    revision_number: int
    title: str
    short_answer: str
    body: str
    sources: tuple[str, ...]
    legal_basis: str | None
    verified_on: date
    valid_until: date | None
    stale: bool
    change: ChangeNote | None = None  # the topic's latest change marked for people to hear about

    def expired(self, today: date) -> bool:
        """Past its `valid_until`: not to be served as current information."""
        return self.valid_until is not None and self.valid_until < today

    def document(self) -> ArticleDocument:
        """The served content in the article-file form."""
        return ArticleDocument(
            topic_id=self.topic_id,
            language=self.language,
            title=self.title,
            short_answer=self.short_answer,
            body=self.body,
            sources=self.sources,
            legal_basis=self.legal_basis,
            verified_on=self.verified_on,
            valid_until=self.valid_until,
        )


def search_text(*parts: str | None) -> str:
    """The folded text search matches against, so 'oplata' finds 'opłata'."""
    return fold(" ".join(part for part in parts if part))


def _form_date(value: str, field: str, errors: list[str]) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(f"{field}: use the form YYYY-MM-DD")
        return None


def document_from_form(
    topic_id: str, language: str, form: dict[str, str]
) -> tuple[ArticleDocument | None, list[str]]:
    """An article document from the editor's fields, normalised, with every problem found (never raises).

    Whitespace in the short answer collapses (it is read aloud), line ends become "\n", one URL a line.
    """
    errors: list[str] = []
    verified = _form_date(form.get("verified_on", ""), "verified on", errors)
    until = _form_date(form.get("valid_until", ""), "valid until", errors)
    if verified is None and not errors:
        errors.append("verified on: the date you checked the text against its sources is required")
    if verified is None:
        return None, errors
    document = ArticleDocument(
        topic_id=topic_id,
        language=language,
        title=form.get("title", "").strip(),
        short_answer=" ".join(form.get("short_answer", "").split()),
        body=form.get("body", "").replace("\r\n", "\n").strip() + "\n",
        sources=tuple(line.strip() for line in form.get("sources", "").splitlines() if line.strip()),
        legal_basis=form.get("legal_basis", "").strip() or None,
        verified_on=verified,
        valid_until=until,
    )
    return document, errors + document.problems()


def _validate(document: ArticleDocument) -> None:
    if catalogue().topic(document.topic_id) is None:
        raise UnknownArticle(f"unknown topic {document.topic_id!r}")
    problems = document.problems()
    if problems:
        raise InvalidRevision("; ".join(problems))


async def get_article(session: AsyncSession, topic_id: str, language: str) -> Article | None:
    return (
        await session.exec(select(Article).where(Article.topic_id == topic_id, Article.language == language))
    ).first()


async def _article_for_update(session: AsyncSession, topic_id: str, language: str) -> Article:
    """The article row, created on first use and locked against concurrent edits (PostgreSQL)."""
    if catalogue().topic(topic_id) is None or language not in LANGUAGES:
        raise UnknownArticle(f"unknown article {topic_id}/{language}")
    statement = select(Article).where(Article.topic_id == topic_id, Article.language == language)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        statement = statement.with_for_update()
    article = (await session.exec(statement)).first()
    if article is None:
        article = Article(topic_id=topic_id, language=language)
        session.add(article)
        await session.flush()
    return article


async def _next_number(session: AsyncSession, article_id: int) -> int:
    latest = (
        await session.exec(
            select(func.max(ArticleRevision.number)).where(ArticleRevision.article_id == article_id)
        )
    ).one()
    return int(latest or 0) + 1


def _object_id(topic_id: str, language: str) -> str:
    return f"{topic_id}/{language}"


async def _audit_article(
    session: AsyncSession,
    article: Article | ArticleDocument,
    action: str,
    *,
    actor: str,
    reason: str | None = None,
    details: dict[str, object],
) -> None:
    await record_audit(
        session,
        actor=actor,
        action=action,
        object_type="article",
        object_id=_object_id(article.topic_id, article.language),
        reason=reason,
        details=details,
    )


async def create_draft(
    session: AsyncSession,
    document: ArticleDocument,
    *,
    actor: str,
    note: str | None = None,
    file_hash: str | None = None,
) -> ArticleRevision:
    """A new draft revision of the document's article."""
    _validate(document)
    article = await _article_for_update(session, document.topic_id, document.language)
    assert article.id is not None
    master_id = None
    if document.language != MASTER_LANGUAGE:
        master = await get_article(session, document.topic_id, MASTER_LANGUAGE)
        master_id = master.published_revision_id if master else None
    revision = ArticleRevision(
        article_id=article.id,
        number=await _next_number(session, article.id),
        status=RevisionStatus.DRAFT,
        title=document.title,
        short_answer=document.short_answer,
        body=document.body,
        sources=list(document.sources),
        legal_basis=document.legal_basis,
        verified_on=document.verified_on,
        valid_until=document.valid_until,
        master_revision_id=master_id,
        search_text=search_text(document.title, document.short_answer, document.body),
        note=note,
        file_hash=file_hash,
        created_by=actor,
    )
    session.add(revision)
    await session.flush()
    await _audit_article(
        session, document, "revision.draft", actor=actor, reason=note, details={"revision": revision.number}
    )
    return revision


async def get_revision(session: AsyncSession, revision_id: int) -> tuple[ArticleRevision, Article]:
    found = (
        await session.exec(
            select(ArticleRevision, Article)
            .join(Article, col(Article.id) == ArticleRevision.article_id)
            .where(ArticleRevision.id == revision_id)
        )
    ).first()
    if found is None:
        raise NotFound(f"no revision {revision_id}")
    return found


async def submit_for_review(
    session: AsyncSession, revision_id: int, *, actor: str, note: str | None = None
) -> ArticleRevision:
    """Move a draft into review, where an admin other than its author approves or returns it."""
    revision, article = await get_revision(session, revision_id)
    if revision.status is not RevisionStatus.DRAFT:
        raise WrongRevisionState(f"revision {revision.number} is {revision.status}, not a draft")
    revision.status = RevisionStatus.IN_REVIEW
    revision.submitted_by = actor
    revision.submitted_at = utcnow()
    session.add(revision)
    await _audit_article(
        session, article, "revision.submit", actor=actor, reason=note, details={"revision": revision.number}
    )
    return revision


async def return_to_author(
    session: AsyncSession, revision_id: int, *, actor: str, comment: str
) -> ArticleRevision:
    """Send a revision in review back to its author as a draft, saying what to change."""
    revision, article = await get_revision(session, revision_id)
    comment = _required_reason(comment, "send it back: the author reads it")
    if revision.status is not RevisionStatus.IN_REVIEW:
        raise WrongRevisionState(f"revision {revision.number} is {revision.status}, not in review")
    revision.status = RevisionStatus.DRAFT
    revision.returned_by = actor
    revision.returned_at = utcnow()
    revision.return_comment = comment[:1000]
    session.add(revision)
    await _audit_article(
        session,
        article,
        "revision.return",
        actor=actor,
        reason=comment,
        details={"revision": revision.number},
    )
    return revision


async def publish_revision(
    session: AsyncSession,
    revision_id: int,
    *,
    actor: str,
    reason: str,
    second_person: bool,
) -> ArticleRevision:
    """Serve this revision from now on; the previous one is archived.

    Every publish states its reason. With `second_person` (the installation's rule) only a revision
    in review can be published, and only by someone other than its author and submitter.
    Publishing Polish (the master) marks the other languages of the topic stale; publishing a
    translation re-verifies it against the current Polish revision.
    """
    revision, article = await get_revision(session, revision_id)
    reason = _required_reason(reason, "publish this revision")
    if second_person:
        if revision.status is not RevisionStatus.IN_REVIEW:
            raise WrongRevisionState(
                f"revision {revision.number} is {revision.status}: send it to review; "
                "another admin approves and publishes it"
            )
        if actor in (revision.created_by, revision.submitted_by):
            raise OwnRevision(
                f"you wrote or submitted revision {revision.number}; another admin must review and publish it"
            )
    review = PublishReview.SECOND_PERSON if second_person else PublishReview.SINGLE_ADMIN
    return await _publish(session, revision, article, actor=actor, reason=reason, review=review)


async def _publish(
    session: AsyncSession,
    revision: ArticleRevision,
    article: Article,
    *,
    actor: str,
    reason: str,
    review: PublishReview,
) -> ArticleRevision:
    if revision.status not in (RevisionStatus.DRAFT, RevisionStatus.IN_REVIEW):
        raise WrongRevisionState(
            f"revision {revision.number} is {revision.status}; publish a draft or one in review"
        )
    now = utcnow()
    previous_id = article.published_revision_id
    if previous_id is not None:
        previous = await session.get(ArticleRevision, previous_id)
        if previous is not None:
            previous.status = RevisionStatus.ARCHIVED
            session.add(previous)
    revision.status = RevisionStatus.PUBLISHED
    revision.published_by = actor
    revision.published_at = now
    revision.publish_review = review
    article.published_revision_id = revision.id
    article.updated_at = now
    # A new revision is current by definition: a translation is verified against today's master.
    article.stale_since = None
    article.stale_reason = None
    if article.language != MASTER_LANGUAGE:
        master = await get_article(session, article.topic_id, MASTER_LANGUAGE)
        revision.master_revision_id = master.published_revision_id if master else None
    session.add_all([revision, article])
    await session.flush()
    if article.language == MASTER_LANGUAGE and previous_id is not None:
        await _mark_translations_stale(session, article, revision, actor=actor)
    await _audit_article(
        session,
        article,
        "revision.publish",
        actor=actor,
        reason=reason,
        details={
            "revision": revision.number,
            "previous_revision_id": previous_id,
            "review": review.value,
            "author": revision.created_by,
        },
    )
    return revision


async def _mark_translations_stale(
    session: AsyncSession, master: Article, revision: ArticleRevision, *, actor: str
) -> None:
    translations = (
        await session.exec(
            select(Article).where(Article.topic_id == master.topic_id, Article.language != MASTER_LANGUAGE)
        )
    ).all()
    now = utcnow()
    for translation in translations:
        if translation.published_revision_id is None or translation.stale_since is not None:
            continue
        translation.stale_since = now
        translation.stale_reason = f"Polish revision {revision.number} published; re-verify this language"
        session.add(translation)
        await _audit_article(
            session, translation, "article.stale", actor=actor, details={"master_revision": revision.number}
        )
    await session.flush()


async def verify_translation(
    session: AsyncSession, topic_id: str, language: str, *, actor: str, note: str | None = None
) -> Article:
    """Confirm a stale translation still matches the Polish master without changing its text."""
    article = await _article_for_update(session, topic_id, language)
    if language == MASTER_LANGUAGE:
        raise WrongRevisionState("the Polish master is never stale")
    if article.published_revision_id is None:
        raise WrongRevisionState(f"{topic_id}/{language} has nothing published to verify")
    master = await get_article(session, topic_id, MASTER_LANGUAGE)
    revision = await session.get(ArticleRevision, article.published_revision_id)
    assert revision is not None
    revision.master_revision_id = master.published_revision_id if master else None
    revision.verified_on = utcnow().date()
    article.stale_since = None
    article.stale_reason = None
    session.add_all([article, revision])
    await session.flush()
    await _audit_article(
        session, article, "article.verify", actor=actor, reason=note, details={"revision": revision.number}
    )
    return article


async def archive_revision(
    session: AsyncSession, revision_id: int, *, actor: str, note: str | None = None
) -> ArticleRevision:
    """Withdraw a draft or review revision (the published one is replaced by publishing another)."""
    revision, article = await get_revision(session, revision_id)
    if revision.status not in (RevisionStatus.DRAFT, RevisionStatus.IN_REVIEW):
        raise WrongRevisionState(
            f"revision {revision.number} is {revision.status}; only drafts are withdrawn"
        )
    revision.status = RevisionStatus.ARCHIVED
    session.add(revision)
    await _audit_article(
        session, article, "revision.archive", actor=actor, reason=note, details={"revision": revision.number}
    )
    return revision


def _document_of(revision: ArticleRevision, article: Article) -> ArticleDocument:
    return ArticleDocument(
        topic_id=article.topic_id,
        language=article.language,
        title=revision.title,
        short_answer=revision.short_answer,
        body=revision.body,
        sources=tuple(revision.sources),
        legal_basis=revision.legal_basis,
        verified_on=revision.verified_on,
        valid_until=revision.valid_until,
    )


async def rollback_to(session: AsyncSession, revision_id: int, *, actor: str, reason: str) -> ArticleRevision:
    """Publish an earlier revision's content again, as a new revision; history stays intact.

    Only content that was once published (and so reviewed then) can come back this way, so the
    two-person rule cannot be side-stepped through a rollback.
    """
    old, article = await get_revision(session, revision_id)
    reason = _required_reason(reason, "roll back")
    if old.published_at is None:
        raise WrongRevisionState(
            f"revision {old.number} was never published; only published content comes back"
        )
    restored = await create_draft(
        session, _document_of(old, article), actor=actor, note=f"rollback to revision {old.number}: {reason}"
    )
    await _audit_article(
        session,
        article,
        "revision.rollback",
        actor=actor,
        reason=reason,
        details={"from_revision": old.number, "new_revision": restored.number},
    )
    return await _publish(
        session,
        restored,
        article,
        actor=actor,
        reason=f"rollback to revision {old.number}: {reason}",
        review=PublishReview.ROLLBACK,
    )


def document_text(document: ArticleDocument) -> list[str]:
    """The lines a diff compares: every field, then the body."""
    return [
        f"title: {document.title}",
        f"short answer: {document.short_answer}",
        *(f"source: {url}" for url in document.sources),
        f"legal basis: {document.legal_basis or '-'}",
        f"verified on: {document.verified_on.isoformat()}",
        f"valid until: {document.valid_until.isoformat() if document.valid_until else '-'}",
        "",
        *document.body.splitlines(),
    ]


async def diff_revisions(session: AsyncSession, older_id: int, newer_id: int) -> list[str]:
    """A unified diff between two revisions of the same article."""
    older, article = await get_revision(session, older_id)
    newer, newer_article = await get_revision(session, newer_id)
    if article.id != newer_article.id:
        raise InvalidRevision("both revisions must belong to the same article")
    return list(
        difflib.unified_diff(
            document_text(_document_of(older, article)),
            document_text(_document_of(newer, article)),
            fromfile=f"revision {older.number}",
            tofile=f"revision {newer.number}",
            lineterm="",
        )
    )


async def revisions_of(session: AsyncSession, topic_id: str, language: str) -> Sequence[ArticleRevision]:
    """Every revision of an article, newest first."""
    article = await get_article(session, topic_id, language)
    if article is None:
        return []
    return (
        await session.exec(
            select(ArticleRevision)
            .where(ArticleRevision.article_id == article.id)
            .order_by(col(ArticleRevision.number).desc())
        )
    ).all()


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A revision someone has to act on: waiting for a reviewer, or sent back to its author."""

    revision_id: int
    topic_id: str
    language: str
    number: int
    author: str
    submitted_by: str | None
    returned_by: str | None
    return_comment: str | None


async def review_queue(session: AsyncSession, *, username: str) -> tuple[list[ReviewItem], list[ReviewItem]]:
    """What waits for this admin: revisions others sent to review, and own drafts sent back."""
    rows = (
        await session.exec(
            select(ArticleRevision, Article)
            .join(Article, col(Article.id) == ArticleRevision.article_id)
            .where(
                (col(ArticleRevision.status) == RevisionStatus.IN_REVIEW)
                | (
                    (col(ArticleRevision.status) == RevisionStatus.DRAFT)
                    & col(ArticleRevision.returned_by).is_not(None)
                    & (col(ArticleRevision.created_by) == username)
                )
            )
            .order_by(col(ArticleRevision.submitted_at), col(ArticleRevision.id))
        )
    ).all()
    to_review: list[ReviewItem] = []
    returned: list[ReviewItem] = []
    for revision, article in rows:
        assert revision.id is not None
        item = ReviewItem(
            revision.id,
            article.topic_id,
            article.language,
            revision.number,
            revision.created_by,
            revision.submitted_by,
            revision.returned_by,
            revision.return_comment,
        )
        if revision.status is RevisionStatus.DRAFT:
            returned.append(item)
        elif username not in (revision.created_by, revision.submitted_by):
            to_review.append(item)
    return to_review, returned


async def get_published(session: AsyncSession, topic_id: str, language: str) -> PublishedArticle | None:
    """The revision the bot serves for this topic and language, or None."""
    found = (
        await session.exec(
            select(Article, ArticleRevision)
            .join(ArticleRevision, col(ArticleRevision.id) == Article.published_revision_id)
            .where(Article.topic_id == topic_id, Article.language == language)
        )
    ).first()
    if found is None:
        return None
    article, revision = found
    return _published(article, revision, (await latest_changes(session, topic_id)).get(topic_id))


def _published(article: Article, revision: ArticleRevision, change: ChangeNote | None) -> PublishedArticle:
    assert revision.id is not None
    document = _document_of(revision, article)
    return PublishedArticle(
        **{field.name: getattr(document, field.name) for field in fields(document)},
        revision_id=revision.id,
        revision_number=revision.number,
        stale=article.stale_since is not None,
        change=change,
    )


async def all_published(session: AsyncSession) -> list[PublishedArticle]:
    """Every served revision."""
    rows = (
        await session.exec(
            select(Article, ArticleRevision).join(
                ArticleRevision, col(ArticleRevision.id) == Article.published_revision_id
            )
        )
    ).all()
    changes = await latest_changes(session)
    return [_published(article, revision, changes.get(article.topic_id)) for article, revision in rows]


@dataclass(frozen=True, slots=True)
class MatrixCell:
    topic_id: str
    language: str
    state: ArticleState
    revision_number: int | None
    pending_drafts: int


async def matrix(session: AsyncSession, *, today: date) -> dict[tuple[str, str], MatrixCell]:
    """The topic × language overview admins work from."""
    published = {(p.topic_id, p.language): p for p in await all_published(session)}
    drafts = (
        await session.exec(
            select(Article.topic_id, Article.language, func.count(col(ArticleRevision.id)))
            .join(ArticleRevision, col(ArticleRevision.article_id) == Article.id)
            .where(col(ArticleRevision.status).in_([RevisionStatus.DRAFT, RevisionStatus.IN_REVIEW]))
            .group_by(Article.topic_id, Article.language)
        )
    ).all()
    pending = {(topic, language): int(count) for topic, language, count in drafts}
    cells: dict[tuple[str, str], MatrixCell] = {}
    for topic in catalogue().topics:
        for language in LANGUAGES:
            key = (topic.id, language)
            article = published.get(key)
            if article is None:
                state = ArticleState.MISSING
            elif article.expired(today):
                state = ArticleState.EXPIRED
            elif article.stale:
                state = ArticleState.STALE
            else:
                state = ArticleState.PUBLISHED
            cells[key] = MatrixCell(
                topic.id, language, state, article.revision_number if article else None, pending.get(key, 0)
            )
    return cells


@dataclass(frozen=True, slots=True)
class SearchHit:
    topic_id: str
    language: str
    title: str
    short_answer: str
    score: float


_WORD = re.compile(r"\w+", re.UNICODE)


async def search_published(
    session: AsyncSession, query: str, *, language: str | None = None, limit: int = 20
) -> list[SearchHit]:
    """Full-text search over the served answers (PostgreSQL full text; a word match on SQLite)."""
    words = _WORD.findall(search_text(query))[:12]
    if not words:
        return []
    base = select(Article, ArticleRevision).join(
        ArticleRevision, col(ArticleRevision.id) == Article.published_revision_id
    )
    if language:
        base = base.where(Article.language == language)
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    if dialect == "postgresql":
        # Prefix matching on every word: "karta pobyt" finds "karty pobytu".
        tsquery = " & ".join(f"{word}:*" for word in words)
        # Title words weigh most: "CUKR" finds the CUKR card before the articles that mention it.
        title = func.translate(func.lower(ArticleRevision.title), "ąćęłńóśźż", "acelnoszz")
        vector = func.setweight(func.to_tsvector(text("'simple'"), title), text("'A'")).op("||")(
            func.setweight(func.to_tsvector(text("'simple'"), ArticleRevision.search_text), text("'D'"))
        )
        query_ = func.to_tsquery(text("'simple'"), tsquery)
        rank = func.ts_rank(vector, query_)
        ranked = base.add_columns(rank).where(vector.op("@@")(query_)).order_by(rank.desc()).limit(limit)
        rows = (await session.exec(ranked)).all()  # type: ignore[call-overload]
        return [
            SearchHit(a.topic_id, a.language, r.title, r.short_answer, float(score)) for a, r, score in rows
        ]
    # Escaped: "_" is a word character, and unescaped it would be LIKE's any-character wildcard.
    condition = [col(ArticleRevision.search_text).contains(word, autoescape=True) for word in words]
    rows_plain = (await session.exec(base.where(*condition))).all()
    hits = [
        SearchHit(
            a.topic_id, a.language, r.title, r.short_answer, float(sum(r.search_text.count(w) for w in words))
        )
        for a, r in rows_plain
    ]
    return sorted(hits, key=lambda hit: hit.score, reverse=True)[:limit]


@dataclass(frozen=True, slots=True)
class SyncReport:
    created: int
    unchanged: int
    problems: list[str]
    # Articles edited in the editor since their file was last loaded: left alone unless forced.
    conflicts: list[str] = field(default_factory=list)


def file_hash(document: ArticleDocument) -> str:
    """A stable hash of a document's content, to recognise a file already loaded."""
    return hashlib.sha256(render_article(document).encode()).hexdigest()


async def _last_synced_hash(session: AsyncSession, article_id: int) -> tuple[str | None, int | None]:
    """The file hash of the newest revision `kb sync` made for this article, and that revision's id."""
    row = (
        await session.exec(
            select(ArticleRevision.file_hash, ArticleRevision.id)
            .where(ArticleRevision.article_id == article_id, col(ArticleRevision.file_hash).is_not(None))
            .order_by(col(ArticleRevision.number).desc())
            .limit(1)
        )
    ).first()
    return (row[0], row[1]) if row else (None, None)


async def sync_from_files(
    session: AsyncSession, root: Path, *, actor: str = SYSTEM_ACTOR, force: bool = False
) -> SyncReport:
    """Load the article files; a file changed since it was last loaded becomes a published revision.

    An article edited in the editor after its file was last loaded is a conflict: it is reported and
    left alone (an admin's correction is never silently overwritten) unless `force` is set.
    Polish files are applied first, so translations end up verified against the current master.
    """
    documents = sorted(
        read_articles(root), key=lambda d: (d.language != MASTER_LANGUAGE, d.topic_id, d.language)
    )
    created = unchanged = 0
    problems: list[str] = []
    conflicts: list[str] = []
    for document in documents:
        issues = document.problems()
        if catalogue().topic(document.topic_id) is None:
            issues.append("unknown topic")
        key = f"{document.topic_id}/{document.language}"
        if issues:
            problems.append(f"{key}: {'; '.join(issues)}")
            continue
        digest = file_hash(document)
        current = await get_published(session, document.topic_id, document.language)
        article = await get_article(session, document.topic_id, document.language)
        synced_hash, synced_revision = (None, None)
        if article is not None and article.id is not None:
            synced_hash, synced_revision = await _last_synced_hash(session, article.id)
        if (current is not None and _same_content(current, document)) or synced_hash == digest:
            unchanged += 1
            continue
        edited_since = current is not None and current.revision_id != synced_revision
        if edited_since and not force:
            conflicts.append(f"{key}: edited in the editor since the file was last loaded")
            continue
        revision = await create_draft(
            session, document, actor=actor, note="loaded from the article files", file_hash=digest
        )
        # The files are reviewed in the repository (see knowledge_base/reviews/) before they are loaded.
        assert revision.id is not None
        revision, owner = await get_revision(session, revision.id)
        await _publish(
            session,
            revision,
            owner,
            actor=actor,
            reason="kb sync: loaded from the article files",
            review=PublishReview.ARTICLE_FILES,
        )
        created += 1
    return SyncReport(created=created, unchanged=unchanged, problems=problems, conflicts=conflicts)


def _same_content(current: PublishedArticle, document: ArticleDocument) -> bool:
    return replace(current.document(), body=current.body.strip()) == replace(
        document, body=document.body.strip()
    )


async def export_to_files(session: AsyncSession, root: Path) -> int:
    """Write every published revision back as article files; returns how many were written."""
    count = 0
    for article in await all_published(session):
        write_article(root, article.document())
        count += 1
    return count
