"""`POST /api/v1/cases/import`: the case-management system pushes case statuses, as JSON or CSV."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from cases.service import BatchUnreadable, import_cases, rows_from_csv, rows_from_json
from infoopt.core.deps import SessionDep, SettingsDep
from infoopt.core.errors import DomainError, NotFound

api = APIRouter(prefix="/api/v1/cases", tags=["cases"])
MAX_IMPORT_BYTES = 4 * 1024 * 1024  # about 40,000 rows of CSV; the app allows this path that much


class ImportNotConfigured(NotFound):
    code = "not_found"


class ImportRefused(DomainError):
    status_code = 401
    code = "not_signed_in"


class BatchRejected(DomainError):
    status_code = 422
    code = "invalid_batch"


class RowErrorOut(BaseModel):
    row: int
    field: str
    message: str


class ImportOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    failed: int
    errors: list[RowErrorOut]


ROW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["case_number", "date_of_birth", "stage", "stage_date"],
    "properties": {
        "case_number": {"type": "string", "example": "WSC-II-S.6151.1234.2026"},
        "date_of_birth": {"type": "string", "format": "date"},
        "stage": {
            "type": "string",
            "enum": [
                "received",
                "formal_check",
                "missing_documents",
                "fingerprints",
                "under_review",
                "decision_issued",
                "card_ready",
                "closed",
            ],
        },
        "stage_date": {"type": "string", "format": "date"},
    },
}


@api.post(
    "/import",
    response_model=ImportOut,
    responses={
        401: {"description": "the bearer token is not INFOOPT_CASES_TOKEN"},
        404: {"description": "case import is not configured (no INFOOPT_CASES_TOKEN)"},
        413: {"description": "the batch is over 4 MiB"},
        422: {"description": "the batch is not JSON rows or a CSV with the four columns"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": ROW_SCHEMA, "maxItems": 20000}},
                "text/csv": {
                    "schema": {"type": "string", "example": "case_number,date_of_birth,stage,stage_date\n"}
                },
            },
        }
    },
)
async def import_batch(request: Request, session: SessionDep, settings: SettingsDep) -> ImportOut:
    """Upsert case statuses by case number; rows with errors are reported and skipped, the rest go in.
    Idempotent: the same batch again changes nothing."""
    token = settings.cases_token
    if token is None:
        raise ImportNotConfigured("case import is not configured")
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise ImportRefused("send Authorization: Bearer <INFOOPT_CASES_TOKEN>")
    body = await request.body()
    try:
        text = body.decode("utf-8")
        if request.headers.get("content-type", "").split(";")[0].strip() == "text/csv":
            rows = rows_from_csv(text)
        else:
            rows = rows_from_json(json.loads(text))
        report = await import_cases(session, rows, secret=settings.secret_key.get_secret_value())
    except (UnicodeDecodeError, ValueError) as error:
        raise BatchRejected(
            str(error) if isinstance(error, BatchUnreadable) else f"unreadable batch: {error}"
        ) from error
    return ImportOut(
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        failed=report.failed,
        errors=[RowErrorOut(row=e.row, field=e.field, message=e.message) for e in report.errors],
    )
