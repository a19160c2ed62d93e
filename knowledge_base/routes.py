"""Knowledge-base HTTP: the public article API, search, and the admin editor pages."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from infoopt.core.clock import utcnow
from infoopt.core.db import after_commit
from infoopt.core.deps import RedisDep, SessionDep, SettingsDep, get_services
from infoopt.core.errors import DomainError, NotFound
from infoopt.core.languages import LANGUAGES, Language
from infoopt.core.limits import PublicReadLimit
from infoopt.core.web import templates
from infoopt.staff.audit import audit_trail
from infoopt.staff.auth import CurrentAdmin, CurrentKnowledgeReader, check_csrf
from knowledge_base import changes as kb_changes
from knowledge_base import service as kb
from knowledge_base.backlog import as_training_examples, group_failures, resolve_failures
from knowledge_base.cache import PublishedCache
from knowledge_base.changes import changes_of
from knowledge_base.events import announce_publish
from knowledge_base.files import SHORT_ANSWER_LIMIT, ArticleFileError
from knowledge_base.markdown import render_markdown
from knowledge_base.models import RevisionStatus
from knowledge_base.reviews import Verdict, review_log
from knowledge_base.topics import catalogue

api = APIRouter(prefix="/api/v1/kb", tags=["knowledge base"])


def get_kb_cache(request: Request) -> PublishedCache:
    cache: PublishedCache = get_services(request).kb_cache
    return cache


KbCacheDep = Annotated[PublishedCache, Depends(get_kb_cache)]
admin = APIRouter(prefix="/admin", include_in_schema=False)

LANGUAGE_NAMES = {"pl": "polski", "uk": "українська", "ru": "русский", "en": "English"}


class ArticleOut(BaseModel):
    """A published article in one language."""

    topic_id: str
    language: str
    title: str
    short_answer: str
    body: str
    sources: list[str]
    legal_basis: str | None
    verified_on: date
    valid_until: date | None
    revision: int
    stale: bool = Field(description="the Polish master changed and this language awaits re-verification")
    expired: bool = Field(description="past valid_until: not to be presented as current information")


class SearchHitOut(BaseModel):
    topic_id: str
    language: str
    title: str
    short_answer: str
    score: float


def article_out(article: kb.PublishedArticle, *, today: date) -> ArticleOut:
    return ArticleOut(
        **asdict(article.document()),
        revision=article.revision_number,
        stale=article.stale,
        expired=article.expired(today),
    )


@api.get(
    "/articles/{topic_id}",
    response_model=ArticleOut,
    dependencies=[Depends(PublicReadLimit("kb_article"))],
    responses={
        404: {"description": "unknown topic or language, or nothing published"},
        429: {"description": "too many requests a minute from this address; see Retry-After"},
    },
)
async def get_article(
    topic_id: str,
    cache: KbCacheDep,
    language: Annotated[str, Query(description="pl, uk, ru or en", max_length=8)],
) -> ArticleOut:
    """The published article for a topic in one language."""
    if catalogue().topic(topic_id) is None:
        raise NotFound(f"unknown topic {topic_id!r}")
    if language not in LANGUAGES:
        raise NotFound(f"unknown language {language!r}; use one of {', '.join(LANGUAGES)}")
    article = await cache.get(topic_id, language)
    if article is None:
        raise NotFound(f"nothing is published for {topic_id} in {language}")
    return article_out(article, today=utcnow().date())


@api.get(
    "/search",
    response_model=list[SearchHitOut],
    responses={
        401: {"description": "not signed in"},
        403: {"description": "not a staff role that may search"},
    },
)
async def search(
    session: SessionDep,
    _staff: CurrentKnowledgeReader,
    q: Annotated[str, Query(min_length=2, max_length=200)],
    language: Annotated[Language | None, Query(description="pl, uk, ru or en; all when omitted")] = None,
) -> list[SearchHitOut]:
    """Full-text search over published answers (staff only)."""
    hits = await kb.search_published(session, q, language=language.value if language else None)
    return [SearchHitOut(**asdict(hit)) for hit in hits]


# --- admin pages -------------------------------------------------------------------------------


def _page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _known(topic_id: str, language: str) -> None:
    if catalogue().topic(topic_id) is None or language not in LANGUAGES:
        raise NotFound(f"unknown article {topic_id}/{language}")


@admin.get("/kb", response_class=HTMLResponse)
async def matrix_page(request: Request, session: SessionDep, staff: CurrentAdmin) -> Response:
    """Every topic in every language: published, stale, missing or expired."""
    cells = await kb.matrix(session, today=utcnow().date())
    counts: dict[str, int] = {}
    for cell in cells.values():
        counts[cell.state] = counts.get(cell.state, 0) + 1
    groups: dict[str, list[str]] = {}
    for topic in catalogue().topics:
        groups.setdefault(topic.group, []).append(topic.id)
    to_review, returned = await kb.review_queue(session, username=staff.username)
    return _page(
        request,
        "kb_matrix.html",
        {
            "staff": staff,
            "cells": cells,
            "groups": groups,
            "languages": LANGUAGES,
            "counts": counts,
            "to_review": to_review,
            "returned": returned,
        },
    )


@admin.get("/kb/{topic_id}/{language}", response_class=HTMLResponse)
async def article_page(
    request: Request,
    topic_id: str,
    language: str,
    session: SessionDep,
    settings: SettingsDep,
    staff: CurrentAdmin,
) -> Response:
    """One article: what is served, its revisions and what can be done with them."""
    _known(topic_id, language)
    return await _article_view(request, session, settings, staff, topic_id, language)


async def _article_view(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    staff: CurrentAdmin,
    topic_id: str,
    language: str,
    *,
    errors: list[str] | None = None,
    status_code: int = 200,
    change_values: dict[str, str] | None = None,
) -> Response:
    published = await kb.get_published(session, topic_id, language)
    served_change = None
    if published is not None:
        served_change = next(
            (c for c in await changes_of(session, topic_id) if c.revision_id == published.revision_id), None
        )
    article = await kb.get_article(session, topic_id, language)
    revisions = await kb.revisions_of(session, topic_id, language)
    audit_entries = await audit_trail(session, object_id=f"{topic_id}/{language}", limit=50)
    followers: dict[str, int] = await get_services(request).followers(session, topic_id)
    return _page(
        request,
        "kb_article.html",
        {
            "staff": staff,
            "topic": catalogue().topic(topic_id),
            "language": language,
            "language_name": LANGUAGE_NAMES[language],
            "languages": LANGUAGES,
            "published": published,
            "published_html": render_markdown(published.body) if published else "",
            "expired": published.expired(utcnow().date()) if published else False,
            "article": article,
            "revisions": revisions,
            "audit": audit_entries,
            "master": kb.MASTER_LANGUAGE,
            "second_reviewer": settings.kb_second_reviewer,
            "errors": errors or [],
            "review": review_log(topic_id),
            "verdicts": list(Verdict),
            "served_change": served_change,
            "change_values": change_values or {},
            "followers": followers,
            "followers_total": sum(followers.values()),
        },
        status_code=status_code,
    )


def _form_values(revision: Any | None, published: kb.PublishedArticle | None) -> dict[str, Any]:
    source = revision or published
    if source is None:
        return {
            "title": "",
            "short_answer": "",
            "body": "",
            "sources": "",
            "legal_basis": "",
            "verified_on": utcnow().date().isoformat(),
            "valid_until": "",
            "note": "",
        }
    return {
        "title": source.title,
        "short_answer": source.short_answer,
        "body": source.body,
        "sources": "\n".join(source.sources),
        "legal_basis": source.legal_basis or "",
        "verified_on": source.verified_on.isoformat(),
        "valid_until": source.valid_until.isoformat() if source.valid_until else "",
        "note": "",
    }


@admin.get("/kb/{topic_id}/{language}/edit", response_class=HTMLResponse)
async def edit_page(
    request: Request,
    topic_id: str,
    language: str,
    session: SessionDep,
    settings: SettingsDep,
    staff: CurrentAdmin,
    revision: Annotated[int | None, Query()] = None,
) -> Response:
    """The editor, filled from a chosen revision, else the newest draft, else what is published."""
    _known(topic_id, language)
    revisions = await kb.revisions_of(session, topic_id, language)
    chosen = None
    if revision is not None:
        chosen = next((r for r in revisions if r.id == revision), None)
        if chosen is None:
            raise NotFound(f"no revision {revision} of {topic_id}/{language}")
    else:
        chosen = next(
            (r for r in revisions if r.status in (RevisionStatus.DRAFT, RevisionStatus.IN_REVIEW)), None
        )
    published = await kb.get_published(session, topic_id, language)
    return await _edit_form(
        request,
        session,
        settings,
        staff,
        topic_id,
        language,
        values=_form_values(chosen, published),
        based_on=chosen,
    )


async def _edit_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    staff: CurrentAdmin,
    topic_id: str,
    language: str,
    *,
    values: dict[str, Any],
    based_on: Any | None = None,
    errors: list[str] | None = None,
) -> Response:
    """The editor page; with errors it comes back as 422 holding everything that was typed."""
    master = None
    if language != kb.MASTER_LANGUAGE:
        master = await kb.get_published(session, topic_id, kb.MASTER_LANGUAGE)
    return _page(
        request,
        "kb_edit.html",
        {
            "staff": staff,
            "topic": catalogue().topic(topic_id),
            "language": language,
            "language_name": LANGUAGE_NAMES[language],
            "values": values,
            "errors": errors or [],
            "based_on": based_on,
            "master": master,
            "limit": SHORT_ANSWER_LIMIT,
            "second_reviewer": settings.kb_second_reviewer,
        },
        status_code=422 if errors else 200,
    )


@admin.post("/kb/{topic_id}/{language}/edit", response_class=HTMLResponse)
async def save_edit(
    request: Request,
    topic_id: str,
    language: str,
    session: SessionDep,
    redis: RedisDep,
    cache: KbCacheDep,
    settings: SettingsDep,
    staff: CurrentAdmin,
    csrf_token: Annotated[str, Form(max_length=64)] = "",
    action: Annotated[str, Form(max_length=16)] = "draft",
    title: Annotated[str, Form(max_length=300)] = "",
    short_answer: Annotated[str, Form(max_length=2000)] = "",
    body: Annotated[str, Form(max_length=50_000)] = "",
    sources: Annotated[str, Form(max_length=5000)] = "",
    legal_basis: Annotated[str, Form(max_length=1000)] = "",
    verified_on: Annotated[str, Form(max_length=20)] = "",
    valid_until: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Save a new draft (or submit it, or publish it). Nothing typed is lost when something is wrong."""
    _known(topic_id, language)
    check_csrf(staff, csrf_token)
    values = {
        "title": title,
        "short_answer": short_answer,
        "body": body,
        "sources": sources,
        "legal_basis": legal_basis,
        "verified_on": verified_on,
        "valid_until": valid_until,
        "note": note,
    }
    document, errors = kb.document_from_form(topic_id, language, values)
    if action not in ("draft", "review", "publish"):
        errors.append("unknown action")
    if document is not None and not errors:
        # A savepoint: a rule that says no undoes the new draft and keeps the signed-in staff loaded.
        try:
            async with session.begin_nested():
                revision = await kb.create_draft(
                    session, document, actor=staff.username, note=note.strip() or None
                )
                assert revision.id is not None
                if action == "review":
                    await kb.submit_for_review(session, revision.id, actor=staff.username, note=note or None)
                elif action == "publish":
                    await kb.publish_revision(
                        session,
                        revision.id,
                        actor=staff.username,
                        reason=note,
                        second_person=settings.kb_second_reviewer,
                    )
        except (DomainError, ArticleFileError) as error:
            errors.append(str(error))
    if errors:
        return await _edit_form(
            request, session, settings, staff, topic_id, language, values=values, errors=errors
        )
    if action == "publish":
        _announce(session, redis, cache, topic_id, language)
    return RedirectResponse(f"/admin/kb/{topic_id}/{language}", status_code=303)


def _announce(session: SessionDep, redis: RedisDep, cache: KbCacheDep, topic_id: str, language: str) -> None:
    """Once the publish has committed: drop this worker's copy and tell the other workers."""
    # A Polish publish changes the other languages' stale flags too.
    scope = None if language == kb.MASTER_LANGUAGE else language

    async def announce() -> None:
        cache.invalidate(topic_id, scope)
        await announce_publish(redis, topic_id, scope)

    after_commit(session, announce)


@admin.post("/kb/preview", response_class=JSONResponse)
async def preview(
    staff: CurrentAdmin,
    csrf_token: Annotated[str, Form(max_length=64)] = "",
    body: Annotated[str, Form(max_length=50_000)] = "",
) -> JSONResponse:
    """The Markdown body as the bot's web pages will show it (sanitised)."""
    check_csrf(staff, csrf_token)
    return JSONResponse({"html": render_markdown(body)})


@admin.post("/kb/revisions/{revision_id}/{operation}")
async def revision_operation(
    request: Request,
    revision_id: int,
    operation: str,
    session: SessionDep,
    redis: RedisDep,
    cache: KbCacheDep,
    settings: SettingsDep,
    staff: CurrentAdmin,
    csrf_token: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Submit for review, approve and publish, send back to the author, withdraw, or roll back.

    A rule that says no shows the article page again with the reason, and nothing changes.
    """
    check_csrf(staff, csrf_token)
    _revision, article = await kb.get_revision(session, revision_id)
    topic_id, language = article.topic_id, article.language
    actor = staff.username
    if operation not in ("submit", "publish", "return", "archive", "rollback"):
        raise NotFound(f"unknown operation {operation!r}")
    try:
        async with session.begin_nested():
            if operation == "submit":
                await kb.submit_for_review(session, revision_id, actor=actor, note=reason or None)
            elif operation == "publish":
                await kb.publish_revision(
                    session,
                    revision_id,
                    actor=actor,
                    reason=reason,
                    second_person=settings.kb_second_reviewer,
                )
            elif operation == "return":
                await kb.return_to_author(session, revision_id, actor=actor, comment=reason)
            elif operation == "archive":
                await kb.archive_revision(session, revision_id, actor=actor, note=reason or None)
            else:
                await kb.rollback_to(session, revision_id, actor=actor, reason=reason)
    except (kb.InvalidRevision, kb.WrongRevisionState, kb.OwnRevision) as error:
        return await _article_view(
            request,
            session,
            settings,
            staff,
            topic_id,
            language,
            errors=[str(error)],
            status_code=error.status_code,
        )
    if operation in ("publish", "rollback"):
        _announce(session, redis, cache, topic_id, language)
    return RedirectResponse(f"/admin/kb/{topic_id}/{language}", status_code=303)


@admin.post("/kb/{topic_id}/{language}/change")
async def mark_change(
    request: Request,
    topic_id: str,
    language: str,
    session: SessionDep,
    redis: RedisDep,
    cache: KbCacheDep,
    settings: SettingsDep,
    staff: CurrentAdmin,
    csrf_token: Annotated[str, Form(max_length=64)] = "",
    summary_pl: Annotated[str, Form(max_length=1000)] = "",
    summary_uk: Annotated[str, Form(max_length=1000)] = "",
    summary_ru: Annotated[str, Form(max_length=1000)] = "",
    summary_en: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Mark the served revision as a change people must hear about; the worker tells the subscribers."""
    _known(topic_id, language)
    check_csrf(staff, csrf_token)
    summaries = {"pl": summary_pl, "uk": summary_uk, "ru": summary_ru, "en": summary_en}
    try:
        async with session.begin_nested():
            await kb_changes.mark_change(session, topic_id, language, summaries, actor=staff.username)
    except kb_changes.InvalidChange as error:
        return await _article_view(
            request,
            session,
            settings,
            staff,
            topic_id,
            language,
            errors=[str(error)],
            status_code=error.status_code,
            change_values=summaries,
        )
    _announce(session, redis, cache, topic_id, kb.MASTER_LANGUAGE)  # every language's answer shows it
    return RedirectResponse(f"/admin/kb/{topic_id}/{language}#change", status_code=303)


@admin.post("/kb/{topic_id}/{language}/verify")
async def verify(
    topic_id: str,
    language: str,
    session: SessionDep,
    redis: RedisDep,
    cache: KbCacheDep,
    staff: CurrentAdmin,
    csrf_token: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Confirm a stale translation still says what the Polish master says."""
    _known(topic_id, language)
    check_csrf(staff, csrf_token)
    await kb.verify_translation(session, topic_id, language, actor=staff.username, note=reason or None)
    _announce(session, redis, cache, topic_id, language)
    return RedirectResponse(f"/admin/kb/{topic_id}/{language}", status_code=303)


@admin.get("/kb/{topic_id}/{language}/diff", response_class=HTMLResponse)
async def diff_page(
    request: Request,
    topic_id: str,
    language: str,
    session: SessionDep,
    staff: CurrentAdmin,
    from_: Annotated[int | None, Query(alias="from")] = None,
    to: Annotated[int | None, Query()] = None,
) -> Response:
    """What changed between two revisions (without both, the newest revision against the one before it)."""
    _known(topic_id, language)
    if from_ is None or to is None:
        revisions = await kb.revisions_of(session, topic_id, language)
        if len(revisions) < 2:
            return _page(
                request,
                "kb_diff.html",
                {"staff": staff, "topic": catalogue().topic(topic_id), "language": language, "lines": None},
                status_code=404,
            )
        to, from_ = (r.id for r in revisions[:2])
        assert from_ is not None
        assert to is not None
    lines = await kb.diff_revisions(session, from_, to)
    return _page(
        request,
        "kb_diff.html",
        {"staff": staff, "topic": catalogue().topic(topic_id), "language": language, "lines": lines},
    )


@admin.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    session: SessionDep,
    staff: CurrentAdmin,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The audit trail, newest first."""
    entries = await audit_trail(session, actor=actor, object_id=object_id)
    return _page(
        request, "audit.html", {"staff": staff, "entries": entries, "actor": actor, "object_id": object_id}
    )


@admin.get("/kb-search", response_class=HTMLResponse)
async def search_page(
    request: Request,
    session: SessionDep,
    staff: CurrentKnowledgeReader,
    q: Annotated[str, Query(max_length=200)] = "",
    language: Annotated[str, Query(max_length=8)] = "",
) -> Response:
    """Search the published answers in every language."""
    hits = await kb.search_published(session, q, language=language or None) if len(q.strip()) >= 2 else []
    return _page(
        request,
        "kb_search.html",
        {"staff": staff, "q": q, "language": language, "languages": LANGUAGES, "hits": hits},
    )


@admin.get("/kb-backlog", response_class=HTMLResponse)
async def backlog_page(request: Request, session: SessionDep, staff: CurrentAdmin) -> Response:
    """What the bot failed at, grouped by similarity, largest groups first."""
    groups = await group_failures(session)
    return _page(request, "kb_backlog.html", {"staff": staff, "groups": groups})


@admin.post("/kb-backlog/resolve")
async def resolve_backlog(
    session: SessionDep,
    staff: CurrentAdmin,
    csrf_token: Annotated[str, Form(max_length=64)] = "",
    ids: Annotated[str, Form(max_length=50_000)] = "",
    action: Annotated[str, Form(max_length=16)] = "dismiss",
    intent: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    """Export a group as Rasa training examples (a YAML download) or dismiss it; either resolves it."""
    check_csrf(staff, csrf_token)
    wanted = [int(part) for part in ids.split(",") if part.strip().isdigit()]
    known_intents = {f"faq/{topic_id}" for topic_id in catalogue().topic_ids} | set(
        catalogue().conversation_intents
    )
    if action == "train" and intent.strip() not in known_intents:
        raise InvalidIntent(f"unknown intent {intent!r}; use faq/<topic id> or a conversation intent")
    failures = await resolve_failures(
        session,
        wanted,
        actor=staff.username,
        resolution=f"training examples for {intent.strip()}" if action == "train" else "dismissed",
    )
    if action == "train":
        payload = as_training_examples(intent.strip(), [failure.text for failure in failures])
        return Response(
            payload,
            media_type="application/x-yaml",
            headers={
                "Content-Disposition": f'attachment; filename="backlog-{intent.strip().replace("/", "-")}.yml"'
            },
        )
    return RedirectResponse("/admin/kb-backlog", status_code=303)


class InvalidIntent(DomainError):
    status_code = 422
    code = "invalid_intent"
