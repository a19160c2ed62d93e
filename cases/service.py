"""Case records: import from the case-management system (upsert by case number, per-row errors), and
dates of birth read the way people write them.

Plain async functions, session first; they flush and never commit.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cases.models import CaseRecord, CaseStage
from cases.numbers import case_digits, case_key
from infoopt.core.clock import utcnow

MAX_ROWS = 20_000
CSV_COLUMNS = ("case_number", "date_of_birth", "stage", "stage_date")
_DIGITS_ONLY = re.compile(r"\d{8}")
_PARTS = re.compile(r"(\d{1,4})\D+(\d{1,2})\D+(\d{1,4})")


def parse_birth_date(text: str) -> date | None:
    """A date of birth as people write or key it: 1990-05-17, 17.05.1990, 17/05/1990, 17 5 1990, 17051990."""
    text = text.strip()
    if _DIGITS_ONLY.fullmatch(text):
        day, month, year = int(text[:2]), int(text[2:4]), int(text[4:])
    else:
        match = _PARTS.search(text)
        if match is None:
            return None
        first, second, third = match.groups()
        if len(first) == 4:  # year first: ISO
            year, month, day = int(first), int(second), int(third)
        elif len(third) == 4:
            day, month, year = int(first), int(second), int(third)
        else:
            return None
    try:
        born = date(year, month, day)
    except ValueError:
        return None
    return born if date(1900, 1, 1) <= born <= utcnow().date() else None


def keyed_hash(secret: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 of a value under a key derived from the service's secret, one key per purpose."""
    key = hmac.new(secret.encode(), f"infoopt:cases:{purpose}".encode(), hashlib.sha256).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def birth_date_hash(secret: str, born: date) -> str:
    """A keyed hash of a date of birth."""
    return keyed_hash(secret, "date-of-birth", born.isoformat())


class CaseRow(BaseModel):
    """One row of an import batch, as the case-management system sends it."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    case_number: str = Field(min_length=3, max_length=64)
    date_of_birth: date
    stage: CaseStage
    stage_date: date

    @field_validator("date_of_birth", "stage_date", mode="before")
    @classmethod
    def _a_date(cls, value: object) -> object:
        if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            parsed = parse_birth_date(value)
            if parsed is None:
                raise ValueError("write the date as YYYY-MM-DD")
            return parsed
        return value

    @field_validator("case_number")
    @classmethod
    def _a_case_number(cls, value: str) -> str:
        if case_key(value) is None:
            raise ValueError("not a case number (e.g. WSC-II-S.6151.1234.2026)")
        return value


@dataclass
class RowError:
    row: int  # 1-based, as a spreadsheet counts (the CSV header is not a row)
    field: str
    message: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len({error.row for error in self.errors})


class BatchUnreadable(ValueError):
    """The batch as a whole is not JSON rows or a CSV with the expected columns."""


def rows_from_csv(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [column for column in CSV_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise BatchUnreadable(
            f"the CSV header lacks {', '.join(missing)} (expected {', '.join(CSV_COLUMNS)})"
        )
    return [dict(row) for row in reader]


def rows_from_json(payload: Any) -> list[dict[str, Any]]:
    rows = payload.get("cases") if isinstance(payload, dict) else payload
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise BatchUnreadable('send a JSON list of {"case_number", "date_of_birth", "stage", "stage_date"}')
    return rows


async def import_cases(session: AsyncSession, rows: list[dict[str, Any]], *, secret: str) -> ImportReport:
    """Upsert the rows by case number; a bad row is reported and skipped, the others go in. Sending the
    same batch twice changes nothing the second time."""
    if len(rows) > MAX_ROWS:
        raise BatchUnreadable(f"{len(rows)} rows; send at most {MAX_ROWS} per batch")
    report = ImportReport()
    valid: dict[str, tuple[int, CaseRow]] = {}
    for number, raw in enumerate(rows, start=1):
        try:
            row = CaseRow.model_validate(raw)
        except ValidationError as error:
            for problem in error.errors():
                where = ".".join(str(part) for part in problem["loc"]) or "row"
                report.errors.append(
                    RowError(number, where, str(problem["msg"]).removeprefix("Value error, "))
                )
            continue
        key = case_key(row.case_number)
        assert key is not None
        valid[key] = (number, row)  # the last row for a case number wins, as in the source system
    existing = {
        record.case_key: record
        for record in (
            await session.exec(select(CaseRecord).where(col(CaseRecord.case_key).in_(list(valid))))
        ).all()
    }
    now = utcnow()
    for key, (_number, row) in valid.items():
        fingerprint = birth_date_hash(secret, row.date_of_birth)
        closed_on = row.stage_date if row.stage is CaseStage.CLOSED else None
        record = existing.get(key)
        if record is None:
            session.add(
                CaseRecord(
                    case_key=key,
                    case_number=row.case_number,
                    case_digits=case_digits(row.case_number),
                    birth_date_hash=fingerprint,
                    stage=row.stage,
                    stage_date=row.stage_date,
                    closed_on=closed_on,
                    updated_at=now,
                )
            )
            report.created += 1
            continue
        new = (row.case_number, fingerprint, row.stage, row.stage_date, closed_on)
        old = (record.case_number, record.birth_date_hash, record.stage, record.stage_date, record.closed_on)
        if new == old and record.case_digits:
            report.unchanged += 1
            continue
        record.case_number, record.birth_date_hash, record.stage, record.stage_date, record.closed_on = new
        record.case_digits = case_digits(row.case_number)
        record.updated_at = now
        session.add(record)
        report.updated += 1
    await session.flush()
    return report
