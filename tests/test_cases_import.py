"""The case-management system pushes case statuses: JSON or CSV, upsert by case number, per-row errors,
idempotent, a bearer token of its own; and `infoopt cases import FILE`."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from cases.models import CaseRecord, CaseStage
from cases.numbers import case_key
from cases.service import birth_date_hash, parse_birth_date

TOKEN = "cases-token-for-the-tests-0123456789"
BATCH = [
    {
        "case_number": "WSC-II-S.6151.1234.2026",
        "date_of_birth": "1990-05-17",
        "stage": "missing_documents",
        "stage_date": "2026-11-20",
    },
    {
        "case_number": "WSC-II-P.6151.88.2025",
        "date_of_birth": "1985-01-02",
        "stage": "card_ready",
        "stage_date": "2026-11-28",
    },
]


@pytest.fixture
def with_token(app: FastAPI) -> object:
    settings = app.state.services.settings
    original, settings.cases_token = settings.cases_token, SecretStr(TOKEN)
    yield settings
    settings.cases_token = original


@pytest.mark.parametrize(
    "typed",
    [
        "WSC-II-S.6151.1234.2026",
        "wsc ii s 6151 1234 2026",
        "WSC–II–S/6151/01234/2026",
        "WЅС-ІІ-Ѕ.6151.1234.2026",  # Cyrillic Ѕ, С and І typed on a Cyrillic keyboard
        "  wsc-II-s.6151.1234.2026. ",
    ],
)
def test_case_numbers_typed_loosely_are_the_same_case(typed: str) -> None:
    assert case_key(typed) == "WSC.II.S.6151.1234.2026"


def test_nothing_like_a_case_number_has_no_key() -> None:
    assert case_key("karta pobytu") is None and case_key("2026") is None


@pytest.mark.parametrize(
    ("typed", "born"),
    [
        ("1990-05-17", date(1990, 5, 17)),
        ("17.05.1990", date(1990, 5, 17)),
        ("17/5/1990", date(1990, 5, 17)),
        ("17051990", date(1990, 5, 17)),
        ("17 05 1990 р.", date(1990, 5, 17)),
        ("31.02.1990", None),
        ("hello", None),
    ],
)
def test_dates_of_birth_as_people_write_them(typed: str, born: date | None) -> None:
    assert parse_birth_date(typed) == born


async def test_a_json_batch_is_upserted_idempotently_with_row_errors(
    client: httpx.AsyncClient, with_token: object, app_db: async_sessionmaker[AsyncSession]
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    bad = {"case_number": "karta", "date_of_birth": "1990-13-40", "stage": "lost", "stage_date": "2026-11-20"}
    first = await client.post("/api/v1/cases/import", json=[*BATCH, bad], headers=headers)
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["created"], report["updated"], report["unchanged"], report["failed"]) == (2, 0, 0, 1)
    assert {error["field"] for error in report["errors"]} == {"case_number", "date_of_birth", "stage"}
    assert all(error["row"] == 3 for error in report["errors"])
    again = (await client.post("/api/v1/cases/import", json=BATCH, headers=headers)).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2), "idempotent"
    moved = [{**BATCH[0], "stage": "under_review", "stage_date": "2026-12-01"}]
    changed = (await client.post("/api/v1/cases/import", json=moved, headers=headers)).json()
    assert changed["updated"] == 1
    async with app_db() as session:
        record = (
            await session.exec(select(CaseRecord).where(CaseRecord.case_key == "WSC.II.S.6151.1234.2026"))
        ).one()
    assert record.stage is CaseStage.UNDER_REVIEW and record.stage_date == date(2026, 12, 1)
    assert "1990" not in record.birth_date_hash and len(record.birth_date_hash) == 64, "only a keyed hash"
    assert record.birth_date_hash == birth_date_hash(
        with_token.secret_key.get_secret_value(), date(1990, 5, 17)
    )  # type: ignore[attr-defined]


async def test_a_csv_batch_is_read_too(client: httpx.AsyncClient, with_token: object) -> None:
    csv_text = "case_number,date_of_birth,stage,stage_date\nWSC-II-S.6151.77.2026,1999-09-09,fingerprints,2026-11-30\n"
    response = await client.post(
        "/api/v1/cases/import",
        content=csv_text.encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"},
    )
    assert response.status_code == 200 and response.json()["created"] == 1
    wrong_header = await client.post(
        "/api/v1/cases/import",
        content=b"number,born\n1,2\n",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"},
    )
    assert wrong_header.status_code == 422 and "case_number" in wrong_header.json()["detail"]


async def test_only_the_case_systems_token_may_import(
    client: httpx.AsyncClient, app: FastAPI, with_token: object
) -> None:
    assert (await client.post("/api/v1/cases/import", json=BATCH)).status_code == 401
    wrong = await client.post("/api/v1/cases/import", json=BATCH, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    app.state.services.settings.cases_token = None
    assert (
        await client.post("/api/v1/cases/import", json=BATCH, headers={"Authorization": f"Bearer {TOKEN}"})
    ).status_code == 404


def test_the_command_line_imports_a_csv_file(tmp_path: object, settings: object) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    file = tmp_path / "cases.csv"
    file.write_text(
        "case_number,date_of_birth,stage,stage_date\n"
        "WSC-II-S.6151.9001.2026,2001-02-03,received,2026-12-01\n"
        "nonsense,2001-02-03,received,2026-12-01\n"
    )
    environment = {
        **os.environ,
        "INFOOPT_DATABASE_URL": f"sqlite:///{tmp_path / 'cases.sqlite3'}",
        "INFOOPT_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "infoopt.cli", "cases", "import", str(file)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "1 created, 0 updated, 0 unchanged, 1 failed" in result.stdout
    assert "row 2, case_number" in result.stderr
