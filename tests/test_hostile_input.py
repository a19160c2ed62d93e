"""Hostile and odd input at the door: limits that cannot be rotated away, 429s that say when to come back
in the person's language, security headers, a closed /metrics, and text with nothing to understand."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from infoopt.app import create_app
from infoopt.core.settings import Environment, Settings

pytestmark = pytest.mark.usefixtures("synced_kb")


@pytest.mark.parametrize(
    "text",
    ["\u200b\u200b\u200b", "\ufeff \u2060 \u200d", "🙂" * 50, "?!…", "<b></b><i> </i>"],
)
async def test_text_with_nothing_to_understand_is_not_answered_as_a_question(
    client: httpx.AsyncClient, text: str
) -> None:
    body = (await client.post("/api/v1/ask", json={"text": text, "language": "en"})).json()
    assert body["kind"] == "fallback" and body["article_id"] is None
    assert "no question in your message" in body["answer"]
    assert [a["action"] for a in body["actions"]] == ["consultant"], "the way to a person stays open"


@pytest.mark.parametrize(
    "text", ["<script>alert(1)</script>", "<SCRIPT src=x>document.cookie", "<style>a{}</style>"]
)
async def test_code_is_not_taken_for_a_question(client: httpx.AsyncClient, text: str) -> None:
    body = (await client.post("/api/v1/ask", json={"text": text, "language": "en"})).json()
    assert body["kind"] == "fallback" and body["confidence"] == 0.0, (
        "markup and code alone are not a question"
    )
    assert "no question in your message" in body["answer"]


async def test_a_question_wrapped_in_markup_is_answered_without_it(client: httpx.AsyncClient) -> None:
    body = (await client.post("/api/v1/ask", json={"text": "<b>ile kosztuje karta pobytu</b>"})).json()
    assert body["article_id"] == "fees"
    transcript = (await client.get(f"/api/v1/conversations/{body['session_id']}/messages")).json()
    assert transcript["items"][0]["text"] == "ile kosztuje karta pobytu", (
        "the transcript keeps the cleaned text"
    )


async def test_invisible_characters_do_not_change_the_answer(client: httpx.AsyncClient) -> None:
    plain = (await client.post("/api/v1/ask", json={"text": "ile kosztuje karta pobytu"})).json()
    hidden = (
        await client.post("/api/v1/ask", json={"text": "ile\u200b kosz\u200dtuje karta\ufeff pobytu"})
    ).json()
    assert hidden["article_id"] == plain["article_id"] == "fees"


@pytest.fixture
async def strict_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app with small limits and one trusted proxy, as production behind nginx would be."""
    strict = settings.model_copy(
        update={
            "ask_limit_per_minute": 3,
            "ask_limit_per_address_per_minute": 5,
            "feedback_limit_per_minute": 2,
            "trusted_proxies": ["10.9.8.7"],
        }
    )
    application = create_app(strict)
    async with application.router.lifespan_context(application):
        yield application


def _client(app: FastAPI, address: str | None = None) -> httpx.AsyncClient:
    """A client from its own address: a fresh one unless named (limits are counted in the shared Redis)."""
    address = address or f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://t"
    )


async def test_rotating_session_ids_does_not_escape_the_per_address_limit(strict_app: FastAPI) -> None:
    async with _client(strict_app) as http:
        statuses = [
            (await http.post("/api/v1/ask", json={"text": "fees", "language": "en"})).status_code
            for _ in range(7)
        ]
        refused = await http.post("/api/v1/ask", json={"text": "ile kosztuje karta"})
    assert statuses == [200] * 5 + [429] * 2
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "Too many" not in refused.json()["detail"] and "12 210 20 20" in refused.json()["detail"], (
        "in Polish"
    )
    async with _client(strict_app) as other:
        assert (await other.post("/api/v1/ask", json={"text": "fees"})).status_code == 200


async def test_one_conversation_has_its_own_limit_with_retry_after_in_its_language(
    strict_app: FastAPI,
) -> None:
    async with _client(strict_app) as http:
        first = (
            await http.post("/api/v1/ask", json={"text": "скільки коштує карта", "language": "uk"})
        ).json()
        responses = [
            await http.post(
                "/api/v1/ask", json={"text": "карта", "session_id": first["session_id"], "language": "uk"}
            )
            for _ in range(4)
        ]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[-1].headers["Retry-After"].isdigit()
    assert "Забагато" in responses[-1].json()["detail"] or "хвилин" in responses[-1].json()["detail"]


async def test_feedback_is_limited_per_address(strict_app: FastAPI) -> None:
    vote = {"question": "x y", "article_id": "fees", "language": "en", "helpful": False}
    async with _client(strict_app) as http:
        statuses = [(await http.post("/api/v1/feedback", json=vote)).status_code for _ in range(4)]
        last = await http.post("/api/v1/feedback", json=vote)
    assert statuses == [200, 200, 429, 429]
    assert "Retry-After" in last.headers


async def test_the_forwarded_address_counts_only_from_a_trusted_proxy(strict_app: FastAPI) -> None:
    async with _client(strict_app, "10.9.8.7") as proxy:
        for _ in range(5):
            forwarded = {"X-Forwarded-For": f"2001:db8:1::{uuid.uuid4().hex[:4]}"}
            response = await proxy.post("/api/v1/ask", json={"text": "fees"}, headers=forwarded)
            assert response.status_code == 200, "each person behind the proxy has their own limit"
    async with _client(strict_app) as stranger:
        statuses = [
            (
                await stranger.post(
                    "/api/v1/ask", json={"text": "fees"}, headers={"X-Forwarded-For": f"203.0.113.{index}"}
                )
            ).status_code
            for index in range(6)
        ]
    assert statuses[-1] == 429, "a client that is not a trusted proxy cannot forge its address"


@pytest.mark.parametrize("path", ["/chat", "/api/v1/kb/articles/fees?language=pl", "/login", "/healthz"])
async def test_every_response_carries_the_security_headers(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    policy = response.headers["content-security-policy"]
    assert (
        "frame-ancestors 'none'" in policy and "script-src 'self'" in policy and "unsafe-eval" not in policy
    )


async def test_metrics_in_production_need_the_token(settings: Settings) -> None:
    production = settings.model_copy(
        update={
            "env": Environment.PRODUCTION,
            "secret_key": settings.secret_key.__class__("x" * 40),
            "metrics_token": settings.secret_key.__class__("metrics-token-of-the-prometheus-job"),
        }
    )
    application = create_app(production)
    async with application.router.lifespan_context(application), _client(application) as http:
        assert (await http.get("/metrics")).status_code == 404
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 404
        right = await http.get(
            "/metrics", headers={"Authorization": "Bearer metrics-token-of-the-prometheus-job"}
        )
        assert right.status_code == 200 and "http_requests" in right.text


async def test_a_chunked_body_over_the_limit_is_a_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}'

    response = await client.post(
        "/api/v1/ask", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"\xff\xfe\xfa not utf-8", "body"),
        (b'{"text": "ok",', "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "body"),
        (b'{"text": "hello", "language": 1e999999}', "language"),
    ],
)
async def test_unreadable_bodies_get_the_one_error_format(
    client: httpx.AsyncClient, body: bytes, fragment: str
) -> None:
    response = await client.post("/api/v1/ask", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    error = response.json()
    assert error["error"] == "invalid_request" and isinstance(error["detail"], str)
    assert fragment in error["detail"]
    assert "JSON decode error" not in error["detail"] and not error["detail"][0].isdigit()


async def test_the_openapi_documents_the_error_format_the_api_answers(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert schema["components"]["schemas"]["ErrorOut"]["required"] == ["error", "detail"]
    ask = schema["paths"]["/api/v1/ask"]["post"]["responses"]
    for status in ("404", "413", "422", "429", "500"):
        assert ask[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorOut"
        }
    search = schema["paths"]["/api/v1/kb/search"]["get"]["responses"]
    assert {"401", "403", "422"} <= set(search)
    request_schema = schema["components"]["schemas"]["AskRequest"]
    assert request_schema["anyOf"], (
        "the schema says a text needs something to understand unless an action is sent"
    )


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/api/v1/auth/login", {"username": "ad\u0000min", "password": "x"}),
        (
            "/api/v1/feedback",
            {"question": "a\u0000b", "article_id": "fees", "language": "pl", "helpful": True},
        ),
        (
            "/api/v1/feedback",
            {"question": "ab", "article_id": "fe\u0000es", "language": "pl", "helpful": True},
        ),
        ("/api/v1/ask", {"action": "choose_topic", "value": "fe\u0000es"}),
    ],
)
async def test_nul_characters_are_refused_not_a_500(
    client: httpx.AsyncClient, path: str, payload: dict[str, object]
) -> None:
    response = await client.post(path, json=payload)
    assert response.status_code == 422, response.text


async def test_a_cursor_past_any_message_is_simply_nothing_newer(client: httpx.AsyncClient) -> None:
    body = (await client.post("/api/v1/ask", json={"text": "hello"})).json()
    page = await client.get(
        f"/api/v1/conversations/{body['session_id']}/messages", params={"after": "0" * 5 + "9" * 15}
    )
    assert page.status_code == 200 and page.json()["items"] == []


async def test_the_sign_in_form_with_a_nul_username_is_a_plain_failure(client: httpx.AsyncClient) -> None:
    from tests.conftest import sign_in

    response = await sign_in(client, "ad\u0000min", "whatever-password")
    assert response.status_code == 401
