"""POST /api/v1/ask on the real PostgreSQL, Redis and the embedded NLU: the contract, the decisions,
the languages, bad input, and the way to a person."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge_base.models import BotFailure, FailureKind

pytestmark = pytest.mark.usefixtures("synced_kb")

CONTRACT = {"language", "intent", "article_id", "confidence", "answer", "handoff", "sources"}


async def ask(client: httpx.AsyncClient, text: str, **extra: object) -> dict[str, object]:
    response = await client.post("/api/v1/ask", json={"text": text, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    assert set(body) >= CONTRACT
    return body


@pytest.mark.parametrize(
    ("text", "language", "topic"),
    [
        ("ile kosztuje karta pobytu i na jakie konto zapłacić", "pl", "fees"),
        ("чи пустять мене назад в Польщу якщо я поїду додому під час процедури", "uk", "travel_abroad"),
        ("могу ли я работать пока жду решение по карте побыту", "ru", "work_while_pending"),
        ("my employer changed, what should i do with my work permit", "en", "change_employer"),
    ],
)
async def test_a_clear_question_is_answered_from_the_article_in_the_persons_language(
    client: httpx.AsyncClient, text: str, language: str, topic: str
) -> None:
    body = await ask(client, text)
    assert body["intent"] == "faq"
    assert body["article_id"] == topic
    assert body["language"] == language
    assert body["kind"] == "answer"
    assert body["handoff"] is False
    article = (await client.get(f"/api/v1/kb/articles/{topic}", params={"language": language})).json()
    assert body["answer"] == article["short_answer"]
    assert body["sources"] == article["sources"]
    assert body["verified_on"] == article["verified_on"]
    day = date.fromisoformat(article["verified_on"])
    assert body["notes"]["verified_on"].endswith(day.strftime("%d.%m.%Y")), "the date in the person's format"


async def test_a_chosen_language_wins_over_detection(client: httpx.AsyncClient) -> None:
    body = await ask(client, "ile kosztuje karta pobytu", language="uk")
    assert body["language"] == "uk"
    assert body["article_id"] == "fees"
    assert "зл" in str(body["answer"])


async def test_the_chosen_language_is_kept_for_the_session(client: httpx.AsyncClient) -> None:
    first = await ask(client, "hello", language="ru")
    body = await ask(client, "karta pobytu oplata konto", session_id=first["session_id"])
    assert body["language"] == "ru"
    assert body["session_id"] == first["session_id"]


async def test_transliterated_russian_is_answered_in_russian(client: httpx.AsyncClient) -> None:
    body = await ask(client, "skolko stoit karta pobytu")
    assert body["language"] == "ru"


async def test_asking_for_a_person_hands_over(client: httpx.AsyncClient) -> None:
    body = await ask(client, "chcę porozmawiać z konsultantem, z człowiekiem")
    assert body["intent"] == "request_human"
    assert body["handoff"] is True
    assert "12 210 20 20" in str(body["contact"])
    assert {action["action"] for action in body["actions"]} >= {"choose_office", "cancel"}  # type: ignore[union-attr]


async def test_the_consultant_button_hands_over_whatever_the_text(client: httpx.AsyncClient) -> None:
    body = await ask(client, "Консультант", action="consultant", language="uk")
    assert body["handoff"] is True
    assert body["intent"] == "request_human"
    assert body["language"] == "uk"


async def test_out_of_scope_is_said_honestly_with_the_way_to_a_person(client: httpx.AsyncClient) -> None:
    body = await ask(client, "jaka będzie jutro pogoda w Krakowie")
    assert body["intent"] == "out_of_scope"
    assert body["article_id"] is None
    assert body["contact"]


async def test_greetings_and_thanks_are_small_talk(client: httpx.AsyncClient) -> None:
    assert (await ask(client, "dzień dobry"))["intent"] == "greet"
    assert (await ask(client, "дякую"))["intent"] == "thanks"


async def test_wanting_ones_own_case_checked_is_recognised(client: httpx.AsyncClient) -> None:
    body = await ask(client, "sprawdź status mojej sprawy WSC-II-P.6151.12345.2025")
    assert body["intent"] == "check_case_status"
    assert body["handoff"] is False


async def test_a_vague_question_gets_two_or_three_topics_to_choose_from(client: httpx.AsyncClient) -> None:
    body = await ask(client, "робота і штамп", language="uk")
    assert body["kind"] == "clarify"
    options = body["options"]
    assert isinstance(options, list) and 2 <= len(options) <= 3
    assert all(option["title"] and option["topic_id"] for option in options)


async def test_repeated_misunderstanding_hands_over_and_is_remembered(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    gibberish = ["qwrtzp vbnmx", "zzkkq plmokn ijbuh"]
    first = await ask(client, gibberish[0], language="en")
    assert first["handoff"] is False
    second = await ask(client, gibberish[1], session_id=first["session_id"], language="en")
    assert second["handoff"] is True
    assert second["kind"] == "handoff"
    async with app_db() as session_db:
        kinds = (
            await session_db.exec(select(BotFailure.kind).where(col(BotFailure.text).in_(gibberish)))
        ).all()
    assert FailureKind.HANDOFF in kinds, "what the bot failed at reaches the admins' backlog"


async def test_an_expired_article_is_not_served_as_current(
    client: httpx.AsyncClient, pg_engine: object
) -> None:
    from dataclasses import replace
    from datetime import date

    from infoopt.core import db
    from knowledge_base import service as kb
    from knowledge_base.files import ARTICLES_DIR, read_articles

    seed = next(d for d in read_articles(ARTICLES_DIR) if (d.topic_id, d.language) == ("pesel_ukr", "ru"))
    async with db.transaction(db.session_factory(pg_engine)) as session:  # type: ignore[arg-type]
        revision = await kb.create_draft(
            session, replace(seed, verified_on=date(2025, 1, 1), valid_until=date(2025, 6, 1)), actor="test"
        )
        assert revision.id is not None
        await kb.publish_revision(
            session, revision.id, actor="test", reason="expired on purpose", second_person=False
        )
    client_app = client._transport.app  # type: ignore[attr-defined]
    client_app.state.services.kb_cache.invalidate("pesel_ukr")
    try:
        body = await ask(client, "как восстановить песель укр статус", language="ru")
        assert body["article_id"] == "pesel_ukr"
        assert body["kind"] == "outdated"
        assert body["handoff"] is True
        assert body["answer"] != seed.short_answer
        assert "01.06.2025" in str(body["answer"])
    finally:
        async with db.transaction(db.session_factory(pg_engine)) as session:  # type: ignore[arg-type]
            restored = await kb.create_draft(session, seed, actor="test")
            assert restored.id is not None
            await kb.publish_revision(
                session, restored.id, actor="test", reason="back to current", second_person=False
            )
        client_app.state.services.kb_cache.invalidate("pesel_ukr")


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"text": ""}, "empty"),
        ({"text": "x" * 2001}, "2000"),
        ({"text": "hello", "language": "de"}, "language"),
        ({"text": "hello", "session_id": "bad id with spaces"}, "session_id"),
        ({"text": "hello", "session_id": "x" * 200}, "session_id"),
        ({"text": 42}, "text"),
        ({"language": "pl"}, "text is empty"),
        ({"action": "press_everything"}, "action"),
        ({"action": "full_answer", "value": "../../etc/passwd"}, "value"),
        ({"text": "a\x00b"}, "NUL"),
    ],
)
async def test_bad_input_is_a_clear_422(
    client: httpx.AsyncClient, payload: dict[str, object], fragment: str
) -> None:
    response = await client.post("/api/v1/ask", json=payload)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"action": "choose_topic", "value": "weather"}, "unknown topic"),
        ({"action": "full_answer", "value": "no_such_topic"}, "unknown topic"),
        ({"action": "language", "value": "de"}, "unknown language"),
    ],
)
async def test_an_action_naming_nothing_we_have_is_a_clear_404(
    client: httpx.AsyncClient, payload: dict[str, object], fragment: str
) -> None:
    response = await client.post("/api/v1/ask", json=payload)
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_value" and fragment in response.json()["detail"]


async def test_malformed_json_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/ask", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_hostile_text_is_answered_not_executed(client: httpx.AsyncClient) -> None:
    for text in [
        "<img src=x onerror=alert(1)> ile kosztuje karta",
        "'; DROP TABLE kb_article; --",
        "{{7*7}} ${jndi:ldap://x}",
    ]:
        body = await ask(client, text)
        assert body["answer"]
        assert "<script>" not in str(body["answer"])
    assert (await client.get("/api/v1/kb/articles/fees", params={"language": "pl"})).status_code == 200


async def test_when_the_nlu_breaks_the_person_still_gets_a_way_to_a_human(client: httpx.AsyncClient) -> None:
    from bot.nlu.engine import NluUnavailable

    services = client._transport.app.state.services  # type: ignore[attr-defined]

    class Broken:
        name = "broken"

        async def parse(self, text: str) -> object:
            raise NluUnavailable("down for the test")

    original = services.conversation.nlu
    services.conversation.nlu = Broken()
    try:
        body = await ask(client, "ile kosztuje karta pobytu")
    finally:
        services.conversation.nlu = original
    assert body["handoff"] is True
    assert "12 210 20 20" in str(body["answer"]) + str(body["contact"])


async def test_not_helpful_votes_reach_the_backlog(
    client: httpx.AsyncClient, app_db: async_sessionmaker[AsyncSession]
) -> None:
    question = f"czy mogę pracować na stemplu {uuid.uuid4().hex[:6]}"
    response = await client.post(
        "/api/v1/feedback",
        json={"question": question, "article_id": "work_while_pending", "language": "pl", "helpful": False},
    )
    assert response.status_code == 200
    assert response.json()["handoff_offered"] is True
    async with app_db() as session:
        stored = (await session.exec(select(BotFailure).where(BotFailure.text == question))).one()
    assert stored.kind is FailureKind.NOT_HELPFUL
    assert stored.topic_id == "work_while_pending"


async def test_feedback_for_an_unknown_topic_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/feedback",
        json={"question": "x", "article_id": "weather", "language": "pl", "helpful": False},
    )
    assert response.status_code == 404 and "unknown topic" in response.json()["detail"]


async def test_a_question_between_two_topics_offers_both(client: httpx.AsyncClient) -> None:
    body = await ask(client, "штамп в паспорті чи можу я поїхати додому і повернутися")
    if body["kind"] == "clarify":
        topics = [option["topic_id"] for option in body["options"]]  # type: ignore[union-attr]
        assert "travel_abroad" in topics
    else:
        assert body["article_id"] == "travel_abroad"


async def test_an_oversized_body_is_refused_before_it_is_read(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/ask",
        content=b'{"text": "' + b"x" * 400_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "KiB" in response.json()["detail"]


async def test_a_flood_of_questions_is_slowed_down_with_the_way_to_a_person(
    client: httpx.AsyncClient,
) -> None:
    settings = client._transport.app.state.settings  # type: ignore[attr-defined]
    session = str((await ask(client, "fees", language="en"))["session_id"])
    other_session = str((await ask(client, "fees", language="en"))["session_id"])
    limit, settings.ask_limit_per_minute = settings.ask_limit_per_minute, 30
    try:
        statuses = []
        for _ in range(32):
            response = await client.post(
                "/api/v1/ask", json={"text": "fees", "session_id": session, "language": "en"}
            )
            statuses.append(response.status_code)
        other = await client.post("/api/v1/ask", json={"text": "fees", "session_id": other_session})
    finally:
        settings.ask_limit_per_minute = limit
    assert statuses[:30] == [200] * 30
    assert statuses[-1] == 429
    assert "12 210 20 20" in response.json()["detail"]
    assert other.status_code == 200, "one person's flood does not block another"
