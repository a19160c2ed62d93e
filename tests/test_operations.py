"""Health, readiness, OpenAPI and metrics on the real PostgreSQL and Redis."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import TimeoutError as PoolTimeout

from infoopt.app import create_app
from infoopt.core.settings import Settings


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_postgres_redis_and_nlu(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["failing"] == []
    assert body["checks"]["database"]["detail"] == "postgresql"
    assert body["checks"]["redis"]["detail"] == "redis"
    assert body["checks"]["nlu"]["detail"].startswith("embedded")


async def test_openapi_documents_the_operations_routes(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert {"/healthz", "/readyz", "/metrics"} <= set(schema["paths"])
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower(), "the API docs load no assets from a CDN"
    assert (await client.get("/docs-assets/swagger-ui-bundle.js")).status_code == 200


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    text = (await client.get("/metrics")).text
    assert 'infoopt_http_requests_total{method="GET",route="/healthz",status="200"}' in text


async def _readyz_with(settings: Settings) -> httpx.Response:
    application: FastAPI = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get("/readyz")


def _unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_readyz_says_degraded_and_names_redis_when_redis_is_down(settings: Settings) -> None:
    broken = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{_unused_port()}/0"})
    response = await _readyz_with(broken)
    assert response.status_code == 200, "the bot still answers without Redis"
    body = response.json()
    assert body["status"] == "degraded" and body["degraded"] == ["redis"] and body["failing"] == []


async def test_readyz_is_503_and_names_the_database_when_it_is_down(settings: Settings) -> None:
    broken = settings.model_copy(
        update={"database_url": f"postgresql://infoopt@127.0.0.1:{_unused_port()}/nowhere"}
    )
    response = await _readyz_with(broken)
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]


async def test_readyz_says_nlu_is_degraded_when_rasa_is_down(settings: Settings) -> None:
    with_dead_rasa = settings.model_copy(update={"rasa_url": f"http://127.0.0.1:{_unused_port()}"})
    response = await _readyz_with(with_dead_rasa)
    assert response.status_code == 200, "the embedded engine still answers"
    assert response.json()["checks"]["nlu"]["detail"].startswith("degraded: rasa unavailable")


async def test_readyz_is_503_and_names_nlu_without_training_data(settings: Settings, tmp_path: Path) -> None:
    no_data = settings.model_copy(update={"data_dir": tmp_path, "nlu_data_dir": tmp_path / "missing"})
    response = await _readyz_with(no_data)
    assert response.status_code == 503
    assert response.json()["failing"] == ["nlu"]


async def test_unexpected_errors_become_a_json_500_without_a_traceback(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/_test/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/_test/boom")
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert "secret internals" not in response.text


async def test_a_connection_pool_with_none_free_is_a_503_to_retry_not_a_500(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/_test/busy")
    async def busy() -> None:
        raise PoolTimeout("QueuePool limit of size 10 overflow 10 reached, connection timed out")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/_test/busy")
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable" and int(response.headers["Retry-After"]) >= 1


@pytest.mark.usefixtures("synced_kb")
async def test_the_pool_settings_hold_and_a_full_pool_answers_503_after_its_timeout(
    settings: Settings,
) -> None:
    """Two connections, no overflow, half a second's wait: with both taken, a request waits half a second
    and gets a 503 to retry (a person's question gets the infoline's contacts instead); once they are free
    again, the route answers again."""
    import time

    configured = settings.model_copy(
        update={"db_pool_size": 2, "db_max_overflow": 0, "db_pool_timeout_seconds": 0.5}
    )
    app = create_app(configured)
    async with app.router.lifespan_context(app):
        engine = app.state.services.engine
        assert (engine.pool.size(), engine.pool._max_overflow) == (2, 0)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            ask = {"text": "ile kosztuje karta pobytu", "language": "pl"}
            messages = "/api/v1/conversations/" + "x" * 32 + "/messages"
            async with engine.connect(), engine.connect():  # every connection taken
                started = time.monotonic()
                response = await http.get(messages)
                waited = time.monotonic() - started
                answer = (await http.post("/api/v1/ask", json=ask)).json()
            assert response.status_code == 503, response.text
            assert waited >= 0.5 and int(response.headers["Retry-After"]) >= 1
            assert answer["kind"] == "handoff" and "12 210 20 20" in answer["answer"], "a way to a person"
            assert (await http.get(messages)).status_code == 404
            app.state.services.kb_cache.invalidate()  # as after a publish: the turn reads on its own session
            assert (await http.post("/api/v1/ask", json=ask)).json()["kind"] == "answer"
