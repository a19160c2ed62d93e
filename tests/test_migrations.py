"""Alembic migrations on the real PostgreSQL: they apply, seed the PID points and roll back cleanly."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core import db
from tickets.models import PidOffice


async def test_migrations_seed_the_five_pid_points(session: AsyncSession) -> None:
    offices = (await session.exec(select(PidOffice).order_by(PidOffice.code))).all()
    assert [office.code for office in offices] == [
        "KRK-BASZTOWA",
        "KRK-CHLOPICKIEGO",
        "KRK-RONDO",
        "NOWY-SACZ",
        "TARNOW",
    ]
    rondo = next(office for office in offices if office.code == "KRK-RONDO")
    assert rondo.hours is not None
    assert rondo.hours["mon"] == ["07:00", "18:00"]
    unconfirmed = next(office for office in offices if office.code == "NOWY-SACZ")
    assert unconfirmed.hours is None, "hours not published yet must stay unknown, not empty"


async def test_points_of_the_ended_project_say_they_are_to_be_confirmed(session: AsyncSession) -> None:
    """Basztowa 22, Chłopickiego 4 and Nowy Sącz came from "Małopolska otwarta", which ended in 2023."""
    notes = {office.code: office.note for office in (await session.exec(select(PidOffice))).all()}
    for code in ("KRK-BASZTOWA", "KRK-CHLOPICKIEGO", "NOWY-SACZ"):
        assert notes[code] is not None and "Do potwierdzenia w INFO.OPT" in notes[code], code
    assert notes["KRK-RONDO"] is None and notes["TARNOW"] is None


async def test_a_test_transaction_is_rolled_back(session: AsyncSession) -> None:
    session.add(PidOffice(code="TMP-ROLLBACK", name="x", town="x", address="x"))
    await session.commit()
    assert (await session.exec(select(PidOffice).where(PidOffice.code == "TMP-ROLLBACK"))).one()


async def test_the_previous_test_left_nothing_behind(session: AsyncSession) -> None:
    found = (await session.exec(select(PidOffice).where(PidOffice.code == "TMP-ROLLBACK"))).all()
    assert found == []


@pytest.fixture
async def scratch_database(postgres_url: str) -> str:
    """A second, empty PostgreSQL database for migrating up and down."""
    from sqlalchemy.engine import make_url

    admin = db.create_engine(postgres_url)
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("DROP DATABASE IF EXISTS infoopt_scratch"))
        await connection.execute(text("CREATE DATABASE infoopt_scratch"))
    await admin.dispose()
    return make_url(postgres_url).set(database="infoopt_scratch").render_as_string(hide_password=False)


async def test_migrations_go_down_to_nothing_and_up_again(scratch_database: str) -> None:
    await db.upgrade_async(scratch_database)

    async def tables() -> set[str]:
        engine = db.create_engine(scratch_database)
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            names = {row[0] for row in rows}
        await engine.dispose()
        return names

    assert "pid_office" in await tables()
    import asyncio

    from alembic import command

    await asyncio.to_thread(command.downgrade, db.alembic_config(scratch_database), "base")
    assert await tables() == {"alembic_version"}
    await db.upgrade_async(scratch_database)
    assert "pid_office" in await tables()


def test_models_and_migrations_agree(migrated_postgres: str) -> None:
    """Autogenerate finds nothing to do: every model change came with its migration."""
    import asyncio

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from infoopt import models  # noqa: F401

    async def diff() -> list[object]:
        engine = db.create_engine(migrated_postgres)
        async with engine.connect() as connection:
            changes = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
            )
        await engine.dispose()
        return list(changes)

    assert asyncio.run(diff()) == []
