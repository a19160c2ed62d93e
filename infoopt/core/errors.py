"""One place that turns errors into HTTP answers: domain errors carry their status, nothing leaks a trace."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

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
    problems = []
    for item in error.errors():
        if item.get("type") == "json_invalid":  # the location is a character offset, not a field
            problems.append(
                {
                    "field": "body",
                    "message": f"the body is not valid JSON ({item.get('ctx', {}).get('error', 'cannot be parsed')})",
                }
            )
            continue
        problems.append(
            {
                "field": ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body",
                "message": str(item.get("msg", "invalid value")).removeprefix("Value error, "),
            }
        )
    return problems


class Problem(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    """Every error the API answers: a stable code, a sentence for people, and per-field problems on 422."""

    error: str = Field(description="a stable machine-readable code, e.g. invalid_request, not_found")
    detail: str = Field(description="what went wrong, in words")
    problems: list[Problem] | None = Field(default=None, description="for 422: each field and what is wrong")


ERROR_DESCRIPTIONS = {
    "401": "not signed in (staff routes)",
    "403": "signed in, but not allowed",
    "404": "not found",
    "413": "the request body is over the size limit",
    "422": "malformed request: see `problems`",
    "429": "too many requests: see Retry-After",
    "500": "our fault; the detail names an incident id",
}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with one error format: ErrorOut for every 4xx/5xx, 413/422/500 on every route.

    FastAPI documents its own 422 shape (`detail` as a list); this service answers ErrorOut, so the
    document says so.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components["Problem"] = Problem.model_json_schema()
    error_schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    error_schema.pop("$defs", None)
    components["ErrorOut"] = error_schema
    reference = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            wanted = ["422", "500"] + (["413"] if method != "get" else [])
            for status in set(wanted) | {code for code in responses if code[0] in "45"}:
                described = responses.get(status, {}).get("description") or ERROR_DESCRIPTIONS.get(
                    status, "error"
                )
                responses[status] = {"description": described, **reference}
    return schema


# SQLSTATEs a request's own values cause: a character the database cannot store (PostgreSQL text holds
# no NUL), a number past its column (an id of 2**40 in an address), a value the driver cannot send.
UNSTORABLE_SQLSTATES = frozenset({"22000", "22003", "22021", "22P05"})


def _driver_causes(error: DBAPIError) -> Iterator[BaseException]:
    """The driver's error under SQLAlchemy's wrapper, and what caused it, innermost last."""
    cause: BaseException | None = error.orig
    while cause is not None:
        yield cause
        cause = cause.__cause__


def unstorable_value(error: DBAPIError) -> bool:
    """Whether the database refused a value the request carried (not a fault of the service)."""
    return any(getattr(cause, "sqlstate", None) in UNSTORABLE_SQLSTATES for cause in _driver_causes(error))


# A restarted or failed-over database is back within seconds; clients wait this long before retrying.
RETRY_AFTER_DATABASE_SECONDS = 2
# asyncpg's names for a connection that went away (wrapped by SQLAlchemy in a generic DBAPIError).
_LOST_CONNECTION = ("ConnectionDoesNotExist", "CannotConnectNow", "AdminShutdown", "InternalClientError")


def database_unreachable(error: BaseException) -> bool:
    """Whether an error means the database is (briefly) out of reach, not that the request is wrong:
    the client gets a 503 with Retry-After instead of a 500. A connection pool with none free within its
    timeout (a burst of traffic) is the same for the client: try again in a moment."""
    if isinstance(error, ConnectionError | TimeoutError | PoolTimeout):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated or isinstance(error, OperationalError | InterfaceError):
            return True
        return any(
            isinstance(cause, ConnectionError | TimeoutError)
            or any(name in type(cause).__name__ for name in _LOST_CONNECTION)
            for cause in _driver_causes(error)
        )
    return False


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

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        # Starlette's own refusals in the one format: an unparseable body (bad UTF-8, say) is a 422
        # like any other malformed request; unknown routes and methods keep their status.
        if error.status_code == 400:
            detail = "the body cannot be read: send JSON in UTF-8"
            problems = [{"field": "body", "message": detail}]
            return JSONResponse(
                {"error": "invalid_request", "detail": detail, "problems": problems}, status_code=422
            )
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(
            {"error": code, "detail": str(error.detail)}, status_code=error.status_code, headers=error.headers
        )

    async def database_or_unexpected(request: Request, error: Exception) -> JSONResponse:
        if not database_unreachable(error):
            return await unexpected(request, error)
        log.warning(
            "http.database_unavailable", extra={"path": request.url.path, "error": type(error).__name__}
        )
        return JSONResponse(
            {
                "error": "unavailable",
                "detail": "The service is briefly unavailable. Please try again in a moment.",
            },
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_DATABASE_SECONDS)},
        )

    for kind in (ConnectionError, TimeoutError, PoolTimeout):  # DBAPIError: database_refused below
        app.add_exception_handler(kind, database_or_unexpected)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.exception("http.unhandled", extra={"incident": incident, "path": request.url.path})
        return JSONResponse(
            {"error": "internal_error", "detail": f"Something went wrong on our side (incident {incident})."},
            status_code=500,
        )

    @app.exception_handler(DBAPIError)
    async def database_refused(request: Request, error: DBAPIError) -> JSONResponse:
        # Every query, form field and path segment can carry a NUL or a huge number; whichever route
        # forgot to refuse it at the door, it is malformed input (422), not a failure of ours (500).
        if not unstorable_value(error):
            return await database_or_unexpected(request, error)
        log.info("http.unstorable_value", extra={"path": request.url.path})
        detail = "a value in the request cannot be stored: a NUL character, or a number out of range"
        return JSONResponse({"error": "invalid_request", "detail": detail}, status_code=422)
