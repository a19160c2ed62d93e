"""One owner of the transaction: services flush, `transaction` commits, after-commit work waits for it."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from infoopt.core import db


async def test_after_commit_work_runs_once_the_transaction_commits(pg_engine: AsyncEngine) -> None:
    ran: list[str] = []

    async def announce() -> None:
        ran.append("announced")

    async with db.transaction(db.session_factory(pg_engine)) as session:
        db.after_commit(session, announce)
        assert ran == [], "nothing runs before the commit"
    assert ran == ["announced"]


async def test_after_commit_work_is_dropped_when_the_transaction_rolls_back(pg_engine: AsyncEngine) -> None:
    ran: list[str] = []

    async def announce() -> None:
        ran.append("announced")

    async def failing_work() -> None:
        async with db.transaction(db.session_factory(pg_engine)) as session:
            db.after_commit(session, announce)
            raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError):
        await failing_work()
    assert ran == []


async def test_a_failing_after_commit_callback_is_logged_and_the_commit_stands(
    pg_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy import text

    async def broken() -> None:
        raise ConnectionError("redis is down")

    sessions = db.session_factory(pg_engine)
    async with db.transaction(sessions) as session:
        await session.exec(text("CREATE TABLE IF NOT EXISTS t_after_commit_probe (x int)"))
        db.after_commit(session, broken)
    assert "db.after_commit_failed" in caplog.text
    async with db.transaction(sessions) as session:
        assert (await session.exec(text("SELECT count(*) FROM t_after_commit_probe"))).one()[0] == 0
        await session.exec(text("DROP TABLE t_after_commit_probe"))
