"""Knowledge-base rules on the real PostgreSQL: workflow, Polish master and stale translations,
expiry, rollback, diff, audit trail, search, and the file sync."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.staff.audit import AuditEntry
from knowledge_base import service as kb
from knowledge_base.files import ARTICLES_DIR, ArticleDocument, read_articles
from knowledge_base.models import PublishReview, RevisionStatus

SEED = {(d.topic_id, d.language): d for d in read_articles(ARTICLES_DIR)}
TODAY = date(2026, 11, 22)


async def _publish(
    session: AsyncSession, document: ArticleDocument, actor: str = "anna", reviewer: str = "boss"
) -> int:
    """Written and sent to review by `actor`, approved and published by `reviewer`."""
    revision = await kb.create_draft(session, document, actor=actor, note="test")
    assert revision.id is not None
    await kb.submit_for_review(session, revision.id, actor=actor)
    await kb.publish_revision(session, revision.id, actor=reviewer, reason="test publish", second_person=True)
    return revision.id


async def _seed_topic(session: AsyncSession, topic_id: str) -> None:
    for language in ("pl", "uk", "ru", "en"):
        await _publish(session, SEED[(topic_id, language)])


async def test_sync_publishes_every_file_once_and_then_nothing(session: AsyncSession, tmp_path: Path) -> None:
    first = await kb.sync_from_files(session, ARTICLES_DIR)
    again = await kb.sync_from_files(session, ARTICLES_DIR)
    if first.created == 0:  # the session-wide fixture may have synced already
        assert first.unchanged == 144
    else:
        assert first.created == 144
    assert (again.created, again.unchanged, again.problems) == (0, 144, [])
    assert len(await kb.all_published(session)) == 144


async def test_sync_picks_up_an_edited_file(session: AsyncSession, tmp_path: Path) -> None:
    await kb.sync_from_files(session, ARTICLES_DIR)
    document = replace(SEED[("fees", "en")], short_answer="A corrected short answer about fees.")
    from knowledge_base.files import write_article

    write_article(tmp_path, document)
    report = await kb.sync_from_files(session, tmp_path)
    assert report.created == 1
    served = await kb.get_published(session, "fees", "en")
    assert served is not None and served.short_answer == "A corrected short answer about fees."


async def test_sync_reports_a_bad_file_and_loads_the_rest(session: AsyncSession, tmp_path: Path) -> None:
    from knowledge_base.files import write_article

    write_article(tmp_path, replace(SEED[("fees", "en")], short_answer="x" * 401))
    write_article(tmp_path, replace(SEED[("fees", "ru")], sources=("https://blog.example.com/fees",)))
    write_article(tmp_path, SEED[("visa_extension", "en")])
    report = await kb.sync_from_files(session, tmp_path)
    assert len(report.problems) == 2
    assert any("401 characters" in problem for problem in report.problems)
    assert any("not an official source" in problem for problem in report.problems)
    assert await kb.get_published(session, "visa_extension", "en") is not None


async def test_a_draft_is_not_served_until_published(session: AsyncSession) -> None:
    await _seed_topic(session, "visa_extension")
    served_before = await kb.get_published(session, "visa_extension", "uk")
    draft = await kb.create_draft(
        session,
        replace(SEED[("visa_extension", "uk")], title="Чернетка"),
        actor="anna",
        note="work in progress",
    )
    assert draft.status is RevisionStatus.DRAFT
    served = await kb.get_published(session, "visa_extension", "uk")
    assert served == served_before
    assert draft.id is not None
    await kb.submit_for_review(session, draft.id, actor="anna")
    await kb.publish_revision(session, draft.id, actor="boss", reason="reviewed", second_person=True)
    served = await kb.get_published(session, "visa_extension", "uk")
    assert served is not None and served.title == "Чернетка"


async def test_publishing_archives_the_previous_revision(session: AsyncSession) -> None:
    first = await _publish(session, SEED[("citizenship", "en")])
    second = await _publish(session, replace(SEED[("citizenship", "en")], title="Citizenship v2"))
    revisions = {r.id: r.status for r in await kb.revisions_of(session, "citizenship", "en")}
    assert revisions[first] is RevisionStatus.ARCHIVED
    assert revisions[second] is RevisionStatus.PUBLISHED


async def test_an_archived_revision_cannot_be_published_again(session: AsyncSession) -> None:
    first = await _publish(session, SEED[("citizenship", "ru")])
    await _publish(session, replace(SEED[("citizenship", "ru")], title="v2"))
    with pytest.raises(kb.WrongRevisionState):
        await kb.publish_revision(session, first, actor="boss", reason="again", second_person=False)


async def test_publishing_polish_marks_the_other_languages_stale(session: AsyncSession) -> None:
    await _seed_topic(session, "job_loss")
    for language in ("uk", "ru", "en"):
        served = await kb.get_published(session, "job_loss", language)
        assert served is not None and not served.stale
    await _publish(session, replace(SEED[("job_loss", "pl")], title="Utrata pracy – poprawka"))
    for language in ("uk", "ru", "en"):
        served = await kb.get_published(session, "job_loss", language)
        assert served is not None, language
        assert served.stale, f"{language} must await re-verification"
    polish = await kb.get_published(session, "job_loss", "pl")
    assert polish is not None and not polish.stale
    cells = await kb.matrix(session, today=TODAY)
    assert cells[("job_loss", "uk")].state is kb.ArticleState.STALE
    assert cells[("job_loss", "pl")].state is kb.ArticleState.PUBLISHED


async def test_a_stale_translation_is_cleared_by_publishing_or_verifying_it(session: AsyncSession) -> None:
    await _seed_topic(session, "seasonal_work")
    await _publish(session, replace(SEED[("seasonal_work", "pl")], title="Praca sezonowa – zmiana"))
    await _publish(session, replace(SEED[("seasonal_work", "uk")], title="Сезонна робота – оновлено"))
    await kb.verify_translation(session, "seasonal_work", "ru", actor="anna", note="checked against pl")
    states = {
        language: (await kb.get_published(session, "seasonal_work", language)).stale  # type: ignore[union-attr]
        for language in ("uk", "ru", "en")
    }
    assert states == {"uk": False, "ru": False, "en": True}


async def test_a_new_translation_is_not_stale_but_the_master_never_is(session: AsyncSession) -> None:
    await _publish(session, SEED[("business_activity", "pl")])
    await _publish(session, SEED[("business_activity", "en")])
    served = await kb.get_published(session, "business_activity", "en")
    assert served is not None and not served.stale
    with pytest.raises(kb.WrongRevisionState):
        await kb.verify_translation(session, "business_activity", "pl", actor="anna")


async def test_an_answer_past_valid_until_is_flagged_expired(session: AsyncSession) -> None:
    expired = replace(SEED[("pesel_ukr", "en")], verified_on=date(2026, 1, 10), valid_until=date(2026, 3, 4))
    await _publish(session, expired)
    served = await kb.get_published(session, "pesel_ukr", "en")
    assert served is not None
    assert served.expired(TODAY)
    assert not served.expired(date(2026, 3, 4)), "valid through the last day"
    cells = await kb.matrix(session, today=TODAY)
    assert cells[("pesel_ukr", "en")].state is kb.ArticleState.EXPIRED


async def test_rollback_serves_the_old_text_as_a_new_revision(session: AsyncSession) -> None:
    existing = len(await kb.revisions_of(session, "change_of_address", "uk"))
    original = await _publish(session, SEED[("change_of_address", "uk")])
    await _publish(session, replace(SEED[("change_of_address", "uk")], short_answer="Помилкова відповідь."))
    restored = await kb.rollback_to(session, original, actor="anna", reason="the new text was wrong")
    served = await kb.get_published(session, "change_of_address", "uk")
    assert served is not None
    assert served.short_answer == SEED[("change_of_address", "uk")].short_answer
    assert served.revision_id == restored.id
    numbers = [r.number for r in await kb.revisions_of(session, "change_of_address", "uk")]
    assert numbers == sorted(numbers, reverse=True)
    assert len(numbers) == existing + 3, "history is kept, nothing rewritten"


async def test_rollback_needs_a_reason(session: AsyncSession) -> None:
    original = await _publish(session, SEED[("change_of_address", "en")])
    with pytest.raises(kb.InvalidRevision):
        await kb.rollback_to(session, original, actor="anna", reason="  ")


async def test_audit_trail_says_who_did_what_when_and_why(session: AsyncSession) -> None:
    first = await _publish(
        session, SEED[("document_translation_recognition", "en")], actor="anna", reviewer="piotr"
    )
    await _publish(
        session,
        replace(SEED[("document_translation_recognition", "en")], title="v2"),
        actor="piotr",
        reviewer="anna",
    )
    await kb.rollback_to(session, first, actor="anna", reason="v2 lost the sources paragraph")
    entries = (
        await session.exec(
            select(AuditEntry)
            .where(
                AuditEntry.object_id == "document_translation_recognition/en",
                col(AuditEntry.actor).in_(["anna", "piotr"]),
            )
            .order_by(col(AuditEntry.id))
        )
    ).all()
    actions = [(entry.actor, entry.action) for entry in entries]
    assert actions[:6] == [
        ("anna", "revision.draft"),
        ("anna", "revision.submit"),
        ("piotr", "revision.publish"),
        ("piotr", "revision.draft"),
        ("piotr", "revision.submit"),
        ("anna", "revision.publish"),
    ]
    assert ("anna", "revision.rollback") in actions
    rollback = next(entry for entry in entries if entry.action == "revision.rollback")
    assert rollback.reason == "v2 lost the sources paragraph"
    assert rollback.at is not None and rollback.at.tzinfo is not None


async def test_diff_shows_what_changed_between_two_revisions(session: AsyncSession) -> None:
    first = await _publish(session, SEED[("decision_appeal", "en")])
    body = SEED[("decision_appeal", "en")].body.replace("14 days", "fourteen days", 1)
    second = await _publish(session, replace(SEED[("decision_appeal", "en")], body=body))
    lines = await kb.diff_revisions(session, first, second)
    removed = [line for line in lines if line.startswith("-") and not line.startswith("---")]
    added = [line for line in lines if line.startswith("+") and not line.startswith("+++")]
    assert any("14 days" in line for line in removed)
    assert any("fourteen days" in line for line in added)


async def test_diff_refuses_revisions_of_different_articles(session: AsyncSession) -> None:
    one = await _publish(session, SEED[("decision_appeal", "ru")])
    other = await _publish(session, SEED[("fees", "ru")])
    with pytest.raises(kb.InvalidRevision):
        await kb.diff_revisions(session, one, other)


async def test_an_invalid_document_is_refused_with_the_reasons(session: AsyncSession) -> None:
    bad = replace(SEED[("fees", "pl")], short_answer="x" * 450, sources=("https://example.com/",))
    with pytest.raises(kb.InvalidRevision) as error:
        await kb.create_draft(session, bad, actor="anna")
    assert "450 characters" in str(error.value)
    assert "not an official source" in str(error.value)


async def test_unknown_topic_is_refused(session: AsyncSession) -> None:
    with pytest.raises(kb.UnknownArticle):
        await kb.create_draft(session, replace(SEED[("fees", "pl")], topic_id="weather"), actor="anna")


@pytest.mark.parametrize(
    ("query", "language", "topic"),
    [
        ("oplata skarbowa konto", "pl", "fees"),  # no diacritics finds "opłata"
        ("карта побиту", "uk", "residence_card"),
        ("blue card salary", "en", "blue_card"),
        ("CUKR", None, "cukr_card"),
    ],
)
async def test_search_finds_published_answers(
    session: AsyncSession, query: str, language: str | None, topic: str
) -> None:
    await kb.sync_from_files(session, ARTICLES_DIR)
    hits = await kb.search_published(session, query, language=language)
    assert hits, query
    assert topic in [hit.topic_id for hit in hits[:5]], [hit.topic_id for hit in hits[:5]]
    if language:
        assert {hit.language for hit in hits} == {language}


async def test_search_ignores_drafts_and_empty_queries(session: AsyncSession) -> None:
    await _publish(session, SEED[("work_without_permit", "en")])
    await kb.create_draft(
        session, replace(SEED[("work_without_permit", "en")], title="Zyxwvut unpublished"), actor="anna"
    )
    assert await kb.search_published(session, "zyxwvut") == []
    assert await kb.search_published(session, "   ") == []


async def test_export_writes_files_that_sync_back_unchanged(session: AsyncSession, tmp_path: Path) -> None:
    await kb.sync_from_files(session, ARTICLES_DIR)
    count = await kb.export_to_files(session, tmp_path)
    assert count == 144
    exported = {(d.topic_id, d.language): d for d in read_articles(tmp_path)}
    served = {(a.topic_id, a.language): a for a in await kb.all_published(session)}
    assert set(exported) == set(served)
    for key, document in exported.items():
        assert (document.title, document.short_answer, document.sources) == (
            served[key].title,
            served[key].short_answer,
            served[key].sources,
        ), key
    report = await kb.sync_from_files(session, tmp_path)
    assert report.created == 0


def test_search_text_drops_latin_diacritics_but_keeps_cyrillic() -> None:
    assert kb.search_text("Opłata SKARBOWA — Źródło") == "oplata skarbowa — zrodlo"
    assert kb.search_text("Їжак й ёлка") == "їжак й ёлка"


def test_expiry_is_inclusive_of_the_last_day() -> None:
    article = kb.PublishedArticle(
        "x", "pl", 1, 1, "t", "s", "b", (), None, TODAY, TODAY + timedelta(days=1), False
    )
    assert not article.expired(TODAY + timedelta(days=1))
    assert article.expired(TODAY + timedelta(days=2))


async def test_sync_never_overwrites_an_admins_edit_unless_forced(
    session: AsyncSession, tmp_path: Path
) -> None:
    from knowledge_base.files import write_article

    write_article(tmp_path, SEED[("residence_card", "en")])
    assert (await kb.sync_from_files(session, tmp_path)).created in (0, 1)
    await _publish(session, replace(SEED[("residence_card", "en")], title="Corrected by an admin on Friday"))
    unchanged_file = await kb.sync_from_files(session, tmp_path)
    assert unchanged_file.created == 0 and unchanged_file.conflicts == []
    served = await kb.get_published(session, "residence_card", "en")
    assert served is not None and served.title == "Corrected by an admin on Friday"

    write_article(tmp_path, replace(SEED[("residence_card", "en")], title="Changed in git meanwhile"))
    conflicting = await kb.sync_from_files(session, tmp_path)
    assert conflicting.created == 0
    assert conflicting.conflicts == ["residence_card/en: edited in the editor since the file was last loaded"]
    served = await kb.get_published(session, "residence_card", "en")
    assert served is not None and served.title == "Corrected by an admin on Friday"

    forced = await kb.sync_from_files(session, tmp_path, force=True)
    assert forced.created == 1
    served = await kb.get_published(session, "residence_card", "en")
    assert served is not None and served.title == "Changed in git meanwhile"


async def test_search_works_on_the_sqlite_default(sqlite_engine: AsyncEngine) -> None:
    from infoopt.core import db

    async with db.transaction(db.session_factory(sqlite_engine)) as sqlite_session:
        await kb.sync_from_files(sqlite_session, ARTICLES_DIR)
        hits = await kb.search_published(sqlite_session, "oplata skarbowa", language="pl")
        none = await kb.search_published(sqlite_session, "zyxwvut")
    assert "fees" in [hit.topic_id for hit in hits[:5]]
    assert none == []


# --- two people publish ---------------------------------------------------------------------------


async def _in_review(session: AsyncSession, document: ArticleDocument, *, author: str = "anna") -> int:
    revision = await kb.create_draft(session, document, actor=author, note="proposed")
    assert revision.id is not None
    await kb.submit_for_review(session, revision.id, actor=author)
    return revision.id


async def test_the_author_cannot_approve_their_own_revision(session: AsyncSession) -> None:
    await _seed_topic(session, "seasonal_work")
    served_before = await kb.get_published(session, "seasonal_work", "en")
    revision_id = await _in_review(session, replace(SEED[("seasonal_work", "en")], title="Self-approved?"))
    with pytest.raises(kb.OwnRevision):
        await kb.publish_revision(session, revision_id, actor="anna", reason="looks fine", second_person=True)
    assert await kb.get_published(session, "seasonal_work", "en") == served_before


async def test_whoever_sent_a_revision_to_review_cannot_approve_it_either(session: AsyncSession) -> None:
    draft = await kb.create_draft(session, SEED[("seasonal_work", "ru")], actor="anna", note="proposed")
    assert draft.id is not None
    await kb.submit_for_review(session, draft.id, actor="piotr")
    with pytest.raises(kb.OwnRevision):
        await kb.publish_revision(session, draft.id, actor="piotr", reason="ok", second_person=True)
    published = await kb.publish_revision(
        session, draft.id, actor="boss", reason="checked", second_person=True
    )
    assert published.publish_review is PublishReview.SECOND_PERSON


async def test_a_draft_goes_through_review_before_it_is_published(session: AsyncSession) -> None:
    draft = await kb.create_draft(session, SEED[("seasonal_work", "uk")], actor="anna")
    assert draft.id is not None
    with pytest.raises(kb.WrongRevisionState, match="send it to review"):
        await kb.publish_revision(session, draft.id, actor="boss", reason="skip review", second_person=True)
    assert draft.status is RevisionStatus.DRAFT


@pytest.mark.parametrize("second_person", [True, False])
@pytest.mark.parametrize("reason", ["", "   "])
async def test_every_publish_states_its_reason(
    session: AsyncSession, second_person: bool, reason: str
) -> None:
    revision_id = await _in_review(session, SEED[("seasonal_work", "pl")])
    with pytest.raises(kb.InvalidRevision, match="why you publish"):
        await kb.publish_revision(
            session, revision_id, actor="boss", reason=reason, second_person=second_person
        )
    revision, _article = await kb.get_revision(session, revision_id)
    assert revision.status is RevisionStatus.IN_REVIEW


async def test_a_reviewer_sends_a_revision_back_and_the_author_sees_why(session: AsyncSession) -> None:
    revision_id = await _in_review(
        session, replace(SEED[("fees", "en")], title="Fees (draft)"), author="anna"
    )
    waiting, _ = await kb.review_queue(session, username="boss")
    assert revision_id in [item.revision_id for item in waiting]
    own_waiting, _ = await kb.review_queue(session, username="anna")
    assert revision_id not in [item.revision_id for item in own_waiting], "nobody reviews their own"

    with pytest.raises(kb.InvalidRevision):
        await kb.return_to_author(session, revision_id, actor="boss", comment=" ")
    returned = await kb.return_to_author(
        session, revision_id, actor="boss", comment="The card fee is 100 zł, not 50 zł."
    )
    assert returned.status is RevisionStatus.DRAFT
    _, back_to_anna = await kb.review_queue(session, username="anna")
    item = next(item for item in back_to_anna if item.revision_id == revision_id)
    assert (item.returned_by, item.return_comment) == ("boss", "The card fee is 100 zł, not 50 zł.")
    _, back_to_boss = await kb.review_queue(session, username="boss")
    assert revision_id not in [item.revision_id for item in back_to_boss]
    with pytest.raises(kb.WrongRevisionState):
        await kb.publish_revision(
            session, revision_id, actor="boss", reason="changed mind", second_person=True
        )
    entry = (
        await session.exec(
            select(AuditEntry).where(AuditEntry.action == "revision.return", AuditEntry.actor == "boss")
        )
    ).first()
    assert entry is not None and entry.reason == "The card fee is 100 zł, not 50 zł."


async def test_a_single_admin_installation_publishes_alone_and_says_so(session: AsyncSession) -> None:
    draft = await kb.create_draft(session, SEED[("fees", "ru")], actor="solo")
    assert draft.id is not None
    published = await kb.publish_revision(
        session, draft.id, actor="solo", reason="only admin here", second_person=False
    )
    assert published.publish_review is PublishReview.SINGLE_ADMIN
    entry = (
        await session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "revision.publish", AuditEntry.actor == "solo")
            .order_by(col(AuditEntry.id).desc())
        )
    ).first()
    assert entry is not None and entry.details["review"] == "single_admin"


async def test_rollback_only_brings_back_content_that_was_published(session: AsyncSession) -> None:
    await _seed_topic(session, "citizenship")
    unreviewed = await kb.create_draft(
        session, replace(SEED[("citizenship", "pl")], title="Never reviewed"), actor="mallory"
    )
    assert unreviewed.id is not None
    with pytest.raises(kb.WrongRevisionState, match="never published"):
        await kb.rollback_to(session, unreviewed.id, actor="mallory", reason="sneak it in")
    served = await kb.get_published(session, "citizenship", "pl")
    assert served is not None and served.title != "Never reviewed"


async def test_sync_records_that_the_files_were_reviewed_in_the_repository(
    session: AsyncSession, tmp_path: Path
) -> None:
    from knowledge_base.files import write_article

    write_article(tmp_path, replace(SEED[("visa_extension", "en")], title="Visa extension (from a file)"))
    report = await kb.sync_from_files(session, tmp_path)
    assert report.created == 1
    revision = (await kb.revisions_of(session, "visa_extension", "en"))[0]
    assert revision.publish_review is PublishReview.ARTICLE_FILES


def _published_article(topic_id: str, title: str) -> kb.PublishedArticle:
    return kb.PublishedArticle(
        topic_id=topic_id,
        language="pl",
        revision_id=1,
        revision_number=1,
        title=title,
        short_answer="…",
        body="…",
        sources=(),
        legal_basis=None,
        verified_on=date(2026, 12, 1),
        valid_until=None,
        stale=False,
    )


async def test_the_cache_never_makes_a_turn_wait_for_the_database_once_filled() -> None:
    """Filled at start-up; a stale entry is served while it reloads in the background (a turn holding
    a connection must not wait for a second one: under load that exhausts the pool)."""
    from knowledge_base.cache import PublishedCache

    loads: list[tuple[str, str]] = []
    release = asyncio.Event()

    async def loader(topic_id: str, language: str) -> kb.PublishedArticle | None:
        loads.append((topic_id, language))
        await release.wait()
        return _published_article(topic_id, "new")

    cache = PublishedCache(loader, ttl=0.05)
    cache.fill([_published_article("fees", "old")])
    first = await cache.get("fees", "pl")
    assert first is not None and first.title == "old" and loads == []
    await asyncio.sleep(0.06)
    stale = await asyncio.wait_for(cache.get("fees", "pl"), timeout=0.5)  # not waiting for the loader
    assert stale is not None and stale.title == "old" and loads == [("fees", "pl")]
    await cache.get("fees", "pl")
    assert loads == [("fees", "pl")], "one reload at a time"
    release.set()
    await asyncio.sleep(0.01)
    fresh = await cache.get("fees", "pl")
    assert fresh is not None and fresh.title == "new"


async def test_expired_entries_reload_together_in_one_query() -> None:
    """Past the safety TTL the whole cache is read again at once, in the background: not one query (and
    connection) per entry. An article no longer published is remembered as such; one a publish dropped
    while the reload was reading is left to be read afresh."""
    from knowledge_base.cache import PublishedCache

    loads: list[str] = []
    single: list[tuple[str, str]] = []
    release = asyncio.Event()

    async def loader(topic_id: str, language: str) -> kb.PublishedArticle | None:
        single.append((topic_id, language))
        return _published_article(topic_id, "single")

    async def load_all() -> list[kb.PublishedArticle]:
        loads.append("all")
        await release.wait()
        return [_published_article("fees", "new"), _published_article("pesel_ukr", "new")]

    cache = PublishedCache(loader, ttl=0.05, load_all=load_all)
    cache.fill([_published_article(topic, "old") for topic in ("fees", "residence_card", "seasonal_work")])
    await asyncio.sleep(0.06)
    for topic in ("fees", "residence_card", "seasonal_work"):
        stale = await asyncio.wait_for(cache.get(topic, "pl"), timeout=0.5)  # not waiting for the reload
        assert stale is not None and stale.title == "old"
    assert loads == ["all"] and single == [], "one reload for every expired entry"
    cache.invalidate("seasonal_work")  # a publish announced while the reload reads
    release.set()
    await asyncio.sleep(0.01)
    fees = await cache.get("fees", "pl")
    assert fees is not None and fees.title == "new"
    assert await cache.get("residence_card", "pl") is None, "unpublished meanwhile: nothing to serve"
    assert single == []
    fresh = await cache.get("seasonal_work", "pl")
    assert fresh is not None and fresh.title == "single", "dropped by the publish: read afresh"
    assert loads == ["all"]


async def test_a_failed_refresh_waits_before_the_next_try(monkeypatch: pytest.MonkeyPatch) -> None:
    """The database away: the stale entries serve, and the next read does not start another query at
    once (every read would, while it is down)."""
    from knowledge_base import cache as cache_module
    from knowledge_base.cache import PublishedCache

    monkeypatch.setattr(cache_module, "RETRY_SECONDS", 0.2)
    tries: list[str] = []

    async def load_all() -> list[kb.PublishedArticle]:
        tries.append("all")
        if len(tries) == 1:
            raise ConnectionRefusedError("the database is away")
        return [_published_article("fees", "new")]

    async def loader(topic_id: str, language: str) -> kb.PublishedArticle | None:
        raise AssertionError("filled entries are never read one by one")

    cache = PublishedCache(loader, ttl=0.05, load_all=load_all)
    cache.fill([_published_article("fees", "old")])
    await asyncio.sleep(0.06)
    for _ in range(20):
        stale = await cache.get("fees", "pl")
        assert stale is not None and stale.title == "old"
        await asyncio.sleep(0.005)
    assert tries == ["all"], "one failed try, then quiet"
    await asyncio.sleep(0.2)
    await cache.get("fees", "pl")
    await asyncio.sleep(0.01)
    fresh = await cache.get("fees", "pl")
    assert fresh is not None and fresh.title == "new" and tries == ["all", "all"]


async def test_a_miss_during_a_turn_is_read_on_the_turns_own_session() -> None:
    """Right after a publish, turns on that topic miss at once: each reads it on the connection it already
    holds, never on a second one it would have to wait for."""
    from knowledge_base.cache import PublishedCache

    plain: list[tuple[str, str]] = []
    on_session: list[tuple[object, str, str]] = []

    async def loader(topic_id: str, language: str) -> kb.PublishedArticle | None:
        plain.append((topic_id, language))
        return _published_article(topic_id, "plain")

    async def load_in(session: object, topic_id: str, language: str) -> kb.PublishedArticle | None:
        on_session.append((session, topic_id, language))
        return _published_article(topic_id, "on the turn's session")

    cache = PublishedCache(loader, load_in=load_in)
    turn = object()
    article = await cache.get("fees", "pl", turn)  # type: ignore[arg-type]
    assert article is not None and article.title == "on the turn's session"
    assert on_session == [(turn, "fees", "pl")] and plain == []
    assert await cache.get("fees", "pl") is article, "then served from memory"
    await cache.get("residence_card", "pl")
    assert plain == [("residence_card", "pl")], "without a session: the loader's own"
