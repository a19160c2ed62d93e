"""The FastAPI application factory: health, readiness, metrics, and every part's routes."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from bot import accessibility
from bot import api as bot_api
from bot.telegram import webhook as telegram_webhook
from bot.voice import routes as voice_routes
from cases import routes as case_routes
from infoopt.core import db
from infoopt.core.errors import NotFound, document_errors, install_error_handlers
from infoopt.core.headers import SecurityHeaders
from infoopt.core.limits import BodySizeLimit, PublicReadLimit
from infoopt.core.metrics import (
    RequestMetrics,
    metrics_response,
    scrape_allowed,
    worker_started,
    worker_stopped,
)
from infoopt.core.redis_store import is_in_process
from infoopt.core.settings import Settings, check_production, get_settings
from infoopt.core.web import STATIC_DIR
from infoopt.services import Services
from infoopt.staff import auth
from knowledge_base import routes as kb_routes
from tickets import dashboard as ticket_dashboard
from tickets import pages as ticket_pages
from tickets import routes as ticket_routes
from tickets.metrics import desk_registry

READINESS_TIMEOUT_SECONDS = 3.0


async def _probe(name: str, check: Any) -> tuple[str, dict[str, Any]]:
    """Run one readiness check with a time limit; never raise."""
    try:
        detail = await asyncio.wait_for(check(), timeout=READINESS_TIMEOUT_SECONDS)
        return name, {"ok": True, "detail": detail}
    except TimeoutError:
        return name, {"ok": False, "detail": f"no answer within {READINESS_TIMEOUT_SECONDS:g} s"}
    except Exception as error:
        return name, {"ok": False, "detail": f"{type(error).__name__}: {error}"}


# Parts the service answers without: Redis (state is forgotten, limits fail open, the outbox is polled
# instead of woken, Telegram's webhook asks for redelivery). Taking every app out of rotation for it
# would silence the bot entirely.
DEGRADES_ONLY = frozenset({"redis"})


async def readiness(services: Services) -> dict[str, dict[str, Any]]:
    """Check the database, Redis and the NLU engine side by side."""

    async def database() -> str:
        await db.ping(services.engine)
        return services.engine.dialect.name

    async def redis() -> str:
        await services.redis.ping()
        return "in-process (single process only)" if is_in_process(services.redis) else "redis"

    results = await asyncio.gather(
        _probe("database", database), _probe("redis", redis), _probe("nlu", services.nlu.check)
    )
    return dict(results)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; long-lived services start in its lifespan."""
    settings = settings or get_settings()
    check_production(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.start(settings)
        app.state.services = services
        # What start-up built (models, SQLAlchemy, the NLU) lives as long as the process: keep it out of
        # the garbage collector's full passes, which otherwise stall a request for ~100 ms every few seconds.
        gc.collect()
        gc.freeze()
        worker_started()
        try:
            yield
        finally:
            worker_stopped()
            await services.close()

    app = FastAPI(
        docs_url=None,  # served below from local files: no CDN
        redoc_url=None,
        title="INFO.OPT infoline",
        version="0.1.0",
        summary="Answers foreigners' questions on stay and work in Małopolska; hands the rest to people.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(RequestMetrics)  # innermost: it sees the route the router matched
    app.add_middleware(BodySizeLimit, larger={"/api/v1/cases/import": case_routes.MAX_IMPORT_BYTES})
    app.add_middleware(SecurityHeaders)
    if settings.trusted_proxies:
        # Behind a reverse proxy the client is the address it forwards; only trusted proxies are believed.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    install_error_handlers(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(
                get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(auth.NotSignedIn, auth.not_signed_in)  # type: ignore[arg-type]
    app.add_exception_handler(auth.NotAllowed, auth.not_allowed)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    app.include_router(auth.router)
    app.include_router(auth.api)
    app.include_router(bot_api.api)
    app.include_router(bot_api.pages)
    app.include_router(accessibility.pages)
    app.include_router(telegram_webhook.router)
    app.include_router(voice_routes.router)
    app.include_router(kb_routes.api)
    app.include_router(kb_routes.admin)
    app.include_router(ticket_routes.api)
    app.include_router(case_routes.api)
    app.include_router(ticket_pages.router)
    app.include_router(ticket_pages.admin)
    app.include_router(ticket_dashboard.router)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up and serving requests."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        dependencies=[Depends(PublicReadLimit("readyz"))],  # each call reaches the database, Redis and NLU
        responses={
            503: {"description": "a part is not ready"},
            429: {"description": "too many requests a minute from this address; see Retry-After"},
        },
    )
    async def readyz() -> JSONResponse:
        """Database and NLU are reachable: ready (200); without Redis the bot still answers, so the
        service is "degraded" (200, Redis named); 503 naming the part without which nothing works."""
        checks = await readiness(app.state.services)
        down = [name for name, check in checks.items() if not check["ok"]]
        failing = [name for name in down if name not in DEGRADES_ONLY]
        degraded = [name for name in down if name in DEGRADES_ONLY]
        status = "not ready" if failing else "degraded" if degraded else "ready"
        body = {"status": status, "failing": failing, "degraded": degraded, "checks": checks}
        return JSONResponse(body, status_code=503 if failing else 200)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI for the OpenAPI schema, with its assets served by this app."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="INFO.OPT infoline API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={404: {"description": "in production without the metrics token"}},
    )
    async def metrics(request: Request) -> Response:
        """Prometheus metrics of every worker, and the desk's state read from the database for this scrape
        (in production only with `Authorization: Bearer <token>`)."""
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        if not scrape_allowed(request.headers.get("authorization"), token, production=settings.is_production):
            raise NotFound("not found")
        return metrics_response(await desk_registry(app.state.services.sessions))

    return app
