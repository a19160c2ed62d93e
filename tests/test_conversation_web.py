"""One conversation for every channel, seen through the web channel: server-issued session ids, actions
that round-trip, per-person state under concurrency, the transcript, and the honest way to a person."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge_base.models import BotFailure, FailureKind

pytestmark = pytest.mark.usefixtures("synced_kb")


async def send(client: httpx.AsyncClient, **payload: object) -> dict[str, object]:
    response = await client.post("/api/v1/ask", json=payload)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def actions_of(body: dict[str, object]) -> list[dict[str, str]]:
    actions = body["actions"]
    assert isinstance(actions, list)
    return actions


async def test_the_server_issues_an_unguessable_session_id(client: httpx.AsyncClient) -> None:
    first = await send(client, text="ile kosztuje karta pobytu")
    second = await send(client, text="ile kosztuje karta pobytu")
    ids = {str(first["session_id"]), str(second["session_id"])}
    assert len(ids) == 2
    assert all(re.fullmatch(r"[A-Za-z0-9_\-]{32}", session_id) for session_id in ids), "192 random bits"


async def test_an_id_the_server_never_issued_starts_a_new_conversation(client: httpx.AsyncClient) -> None:
    invented = "a" * 32
    body = await send(client, text="hello", session_id=invented)
    assert body["session_id"] != invented
    assert (await client.get(f"/api/v1/conversations/{invented}/messages")).status_code == 404


async def test_an_answer_offers_full_answer_votes_and_a_consultant(client: httpx.AsyncClient) -> None:
    body = await send(client, text="ile kosztuje karta pobytu i na jakie konto zapłacić")
    assert body["article_id"] == "fees"
    assert [(a["action"], a["value"]) for a in actions_of(body)] == [
        ("full_answer", "fees"),
        ("subscribe", "fees"),
        ("helpful", "fees"),
        ("not_helpful", "fees"),
        ("consultant", None),
    ]
    assert [a["label"] for a in actions_of(body)] == [
        "Pełna odpowiedź",
        "Powiadom mnie o zmianie",
        "Pomocne",
        "Niepomocne",
        "Konsultant",
    ]


async def test_a_topic_chosen_from_a_clarification_comes_back_as_that_article(
    client: httpx.AsyncClient,
) -> None:
    clarify = await send(client, text="робота і штамп", language="uk")
    assert clarify["kind"] == "clarify"
    offered = [a for a in actions_of(clarify) if a["action"] == "choose_topic"]
    assert 2 <= len(offered) <= 3
    chosen = offered[-1]
    body = await send(client, session_id=clarify["session_id"], action="choose_topic", value=chosen["value"])
    assert body["kind"] == "answer"
    assert body["article_id"] == chosen["value"]
    assert body["language"] == "uk"
    article = (await client.get(f"/api/v1/kb/articles/{chosen['value']}", params={"language": "uk"})).json()
    assert body["answer"] == article["short_answer"]
    assert body["notes"]["verified_on"]  # type: ignore[index]  # the captions come with it


async def test_the_full_answer_comes_as_markdown_and_sanitised_html(client: httpx.AsyncClient) -> None:
    answer = await send(client, text="ile kosztuje karta pobytu i na jakie konto zapłacić")
    body = await send(client, session_id=answer["session_id"], action="full_answer", value="fees")
    assert body["kind"] == "full_answer"
    assert body["format"] == "markdown"
    html = str(body["answer_html"])
    assert "<h2>" in html and "<li>" in html and "<script" not in html
    assert "##" in str(body["answer"])


async def test_an_expired_topic_chosen_by_action_is_not_served_as_current(
    client: httpx.AsyncClient, pg_engine: object
) -> None:
    from dataclasses import replace
    from datetime import date

    from infoopt.core import db
    from knowledge_base import service as kb
    from knowledge_base.files import ARTICLES_DIR, read_articles

    seed = next(d for d in read_articles(ARTICLES_DIR) if (d.topic_id, d.language) == ("seasonal_work", "en"))
    app = client._transport.app  # type: ignore[attr-defined]
    async with db.transaction(db.session_factory(pg_engine)) as session:  # type: ignore[arg-type]
        revision = await kb.create_draft(
            session, replace(seed, verified_on=date(2025, 1, 1), valid_until=date(2025, 6, 1)), actor="test"
        )
        assert revision.id is not None
        await kb.publish_revision(session, revision.id, actor="test", reason="expired", second_person=False)
    app.state.services.kb_cache.invalidate("seasonal_work")
    try:
        body = await send(client, action="choose_topic", value="seasonal_work", language="en")
        assert body["kind"] == "outdated"
        assert body["handoff"] is True
        assert body["answer"] != seed.short_answer
    finally:
        async with db.transaction(db.session_factory(pg_engine)) as session:  # type: ignore[arg-type]
            restored = await kb.create_draft(session, seed, actor="test")
            assert restored.id is not None
            await kb.publish_revision(session, restored.id, actor="test", reason="back", second_person=False)
        app.state.services.kb_cache.invalidate("seasonal_work")


async def test_repeated_not_helpful_votes_from_one_conversation_count_once(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    question = "czy mogę pracować na stemplu w paszporcie, czekam na decyzję 7f3a"
    answer = await send(client, text=question, language="pl")
    topic = answer["article_id"] or "work_while_pending"
    for _ in range(5):
        vote = await send(client, session_id=answer["session_id"], action="not_helpful", value=topic)
        assert vote["kind"] == "feedback"
        assert ("consultant", None) in [(a["action"], a["value"]) for a in actions_of(vote)]
    async with app_db() as session:
        stored = (
            await session.exec(
                select(BotFailure).where(
                    BotFailure.text == question, BotFailure.kind == FailureKind.NOT_HELPFUL
                )
            )
        ).all()
    assert len(stored) == 1


async def test_a_question_typed_instead_of_choosing_leaves_the_flow(client: httpx.AsyncClient) -> None:
    start = await send(client, text="", action="consultant", language="pl")
    body = await send(
        client, session_id=start["session_id"], text="ile kosztuje karta pobytu i na jakie konto"
    )
    assert body["article_id"] == "fees"


async def test_cancel_leaves_the_flow(client: httpx.AsyncClient) -> None:
    start = await send(client, text="", action="consultant", language="ru")
    cancelled = await send(client, session_id=start["session_id"], action="cancel")
    assert cancelled["language"] == "ru" and cancelled["actions"] == []
    late = await send(client, session_id=start["session_id"], action="choose_office", value="TARNOW")
    assert "неактивна" in str(late["answer"])


async def test_switching_language_by_action_is_remembered(client: httpx.AsyncClient) -> None:
    first = await send(client, text="hello there", language="en")
    switched = await send(client, session_id=first["session_id"], action="language", value="uk")
    assert switched["language"] == "uk" and "українською" in str(switched["answer"])
    after = await send(client, session_id=first["session_id"], text="karta pobytu oplata")
    assert after["language"] == "uk"


async def test_the_transcript_is_readable_by_session_id_with_a_cursor(client: httpx.AsyncClient) -> None:
    first = await send(client, text="ile kosztuje karta pobytu", language="pl")
    session_id = first["session_id"]
    await send(client, session_id=session_id, action="full_answer", value="fees")
    page = (await client.get(f"/api/v1/conversations/{session_id}/messages")).json()
    assert [item["author"] for item in page["items"]] == ["person", "bot", "person", "bot"]
    assert page["items"][0]["text"] == "ile kosztuje karta pobytu"
    assert page["items"][1]["text"] == first["answer"]
    newer = (
        await client.get(f"/api/v1/conversations/{session_id}/messages", params={"after": page["cursor"]})
    ).json()
    assert newer == {"items": [], "cursor": page["cursor"]}
    await send(client, session_id=session_id, text="dziękuję")
    latest = (
        await client.get(f"/api/v1/conversations/{session_id}/messages", params={"after": page["cursor"]})
    ).json()
    assert [item["author"] for item in latest["items"]] == ["person", "bot"]


@pytest.mark.parametrize("after", ["abc", "-1", "9" * 30])
async def test_a_malformed_cursor_is_a_422(client: httpx.AsyncClient, after: str) -> None:
    body = await send(client, text="hello")
    response = await client.get(
        f"/api/v1/conversations/{body['session_id']}/messages", params={"after": after}
    )
    assert response.status_code == 422


@pytest.mark.commits  # concurrent requests need connections of their own
async def test_two_messages_at_once_from_one_person_lose_no_update(client: httpx.AsyncClient) -> None:
    """Telegram users send two messages in quick succession; the per-person lock keeps both turns."""
    first = await send(client, text="ile kosztuje karta pobytu i na jakie konto zapłacić", language="pl")
    session_id = first["session_id"]
    votes = await asyncio.gather(
        *(
            client.post("/api/v1/ask", json={"session_id": session_id, "action": "helpful", "value": topic})
            for topic in ("fees", "residence_card", "visa_extension", "blue_card")
        )
    )
    assert all(response.status_code == 200 for response in votes)
    services = client._transport.app.state.services  # type: ignore[attr-defined]
    from bot.state import PersonRef
    from infoopt.core.languages import Channel

    async with services.conversation.states.turn(PersonRef(Channel.WEB, str(session_id))) as state:
        assert sorted(state.voted) == ["blue_card", "fees", "residence_card", "visa_extension"]
    page = (await client.get(f"/api/v1/conversations/{session_id}/messages")).json()
    assert len(page["items"]) == 2 + 8


async def test_transcripts_silent_past_the_retention_period_are_purged(session: AsyncSession) -> None:
    from datetime import timedelta

    from infoopt.core.clock import utcnow
    from infoopt.core.languages import Channel
    from tickets.conversations import find_conversation, open_conversation, purge_transcripts, record_message
    from tickets.models import MessageAuthor

    old = await open_conversation(session, Channel.TELEGRAM, "old-chat")
    await record_message(session, old, author=MessageAuthor.PERSON, text="stara wiadomość")
    old.last_message_at = utcnow() - timedelta(days=200)
    recent = await open_conversation(session, Channel.TELEGRAM, "recent-chat")
    await record_message(session, recent, author=MessageAuthor.PERSON, text="nowa")
    purged = await purge_transcripts(session, silent_since=utcnow() - timedelta(days=90))
    assert purged >= 1
    assert await find_conversation(session, Channel.TELEGRAM, "old-chat") is None
    assert await find_conversation(session, Channel.TELEGRAM, "recent-chat") is not None


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("https://infoopt.pl/oplaty/", "INFO.OPT: oplaty"),
        ("https://www.gov.pl/web/udsc/CUKR-procedura", "Urząd do Spraw Cudzoziemców: CUKR procedura"),
        ("https://isap.sejm.gov.pl/isap.nsf/DocDetails.xsp?id=WDU20250001079", "ISAP (Dziennik Ustaw)"),
        (
            "https://www.mazowieckie.pl/pl/kategorie/cudzoziemcy/36630,Tryb-odwolawczy.html",
            "mazowieckie.pl: Tryb odwolawczy",
        ),
        ("https://migrant.poznan.uw.gov.pl/", "migrant.poznan.uw.gov.pl"),
    ],
)
def test_sources_are_shown_as_short_labels(url: str, label: str) -> None:
    from bot.render import source_label

    assert source_label(url) == label


def test_phone_numbers_and_e_mails_become_tappable_without_breaking_links() -> None:
    from bot.render import markdown_html, text_html

    html = text_html("Call 12 210 20 20 or write to info.opt@muw.pl.\n\n<script>alert(1)</script>")
    assert re.search(r'<a href="tel:\+48122102020"[^>]*>12 210 20 20</a>', html)
    assert re.search(r'<a href="mailto:info.opt@muw.pl"[^>]*>info.opt@muw.pl</a>', html)
    assert "<script>" not in html and "&lt;script&gt;" in html
    formatted = markdown_html("See [the fees](https://infoopt.pl/oplaty/) or call 12 210 20 20.")
    assert 'href="https://infoopt.pl/oplaty/"' in formatted and 'href="tel:+48122102020"' in formatted
