"""One place that turns errors into HTTP answers: domain errors carry their status, nothing leaks a trace."""

from __future__ import annotations

import logging
import uuid
from typing import ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A business rule said no. Subclasses set the HTTP status and a stable machine-readable code."""

    status_code: ClassVar[int] = 409
    code: ClassVar[str] = "conflict"
    headers: dict[str, str] | None = None


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


def _field_messages(error: RequestValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body",
            "message": str(item.get("msg", "invalid value")),
        }
        for item in error.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping on the app."""

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, error: DomainError) -> JSONResponse:
        return JSONResponse(
            {"error": error.code, "detail": str(error) or error.code},
            status_code=error.status_code,
            headers=error.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = _field_messages(error)
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse(
            {"error": "invalid_request", "detail": summary, "problems": problems}, status_code=422
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.exception("http.unhandled", extra={"incident": incident, "path": request.url.path})
        return JSONResponse(
            {"error": "internal_error", "detail": f"Something went wrong on our side (incident {incident})."},
            status_code=500,
        )
