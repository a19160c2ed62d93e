"""One owner of the transaction: services flush, `transaction` commits, after-commit work waits for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import delete, event, inspect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from infoopt.core import db
from infoopt.core.languages import Channel
from tickets.conversations import find_conversation, messages_after, open_conversation, record_turn
from tickets.models import Conversation, MessageAuthor
from tickets.service import conversation_in_play


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


# --- the two statements of every message, past the ORM (`db.DriverStatement`) ----------------------------


@pytest.fixture
async def one_connection(migrated_postgres: str) -> AsyncIterator[AsyncEngine]:
    """An engine as the app has one, with a single pooled connection: every session gets the same one."""
    engine = db.create_engine(migrated_postgres, pool=db.PoolSize(size=1, overflow=0, timeout=5))
    yield engine
    async with db.transaction(db.session_factory(engine)) as session:
        await session.exec(delete(Conversation).where(col(Conversation.external_id).startswith("driver-")))
    await engine.dispose()


def _turn(text: str) -> list[tuple[MessageAuthor, str, str | None]]:
    return [(MessageAuthor.PERSON, text, "text"), (MessageAuthor.BOT, f"the answer to {text}", "answer")]


async def _sent(engine: AsyncEngine) -> tuple[list[str], list[str], Callable[[], None]]:
    """What the app sends PostgreSQL on the engine's one connection from now on: through SQLAlchemy, and
    straight through asyncpg (BEGIN and COMMIT included); and how to stop listening."""
    through_sqlalchemy: list[str] = []
    straight: list[str] = []

    def note(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        through_sqlalchemy.append(" ".join(statement.split()))

    def logged(record: Any) -> None:
        straight.append(" ".join(record.query.split()))

    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    driver.add_query_logger(logged)
    event.listen(engine.sync_engine, "before_cursor_execute", note)

    def stop() -> None:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
        driver.remove_query_logger(logged)

    return through_sqlalchemy, straight, stop


async def test_a_plain_turn_sends_its_two_statements_and_no_begin_or_commit(
    one_connection: AsyncEngine,
) -> None:
    """Reading the conversation (with its ticket in play) and writing the turn: two statements, each atomic
    on its own, so no transaction around them; the conversation is the session's as if it had loaded it."""
    sessions = db.session_factory(one_connection)
    async with db.transaction(sessions) as session:
        await open_conversation(session, Channel.TELEGRAM, "driver-plain", language="pl")
    through_sqlalchemy, straight, stop = await _sent(one_connection)
    try:
        async with db.transaction(sessions) as session:
            conversation, ticket_id = await conversation_in_play(session, Channel.TELEGRAM, "driver-plain")
            assert conversation is not None and ticket_id is None
            assert conversation in session and not session.dirty
            assert conversation.channel is Channel.TELEGRAM and conversation.language == "pl"
            conversation.language = "uk"
            await record_turn(session, conversation, _turn("ile kosztuje karta pobytu"))
    finally:
        stop()
    assert through_sqlalchemy == []
    assert len(straight) == 2, straight
    assert straight[0].startswith("SELECT conversation.id") and "FROM ticket" in straight[0]
    assert straight[1].startswith("WITH touched AS (UPDATE conversation")
    async with sessions() as session:
        conversation, _ = await conversation_in_play(session, Channel.TELEGRAM, "driver-plain")
        assert conversation is not None and conversation.language == "uk"
        lines = await messages_after(session, conversation)
    assert [(line.author, line.text) for line in lines] == [
        (MessageAuthor.PERSON, "ile kosztuje karta pobytu"),
        (MessageAuthor.BOT, "the answer to ile kosztuje karta pobytu"),
    ]


async def test_a_conversation_the_session_holds_expired_is_filled_in_from_the_row(
    one_connection: AsyncEngine,
) -> None:
    """As an ORM query would: the session's own object, its expired columns read from the row (touching
    them later needs no query, which in async code would fail)."""
    sessions = db.session_factory(one_connection)
    async with db.transaction(sessions) as session:
        opened = await open_conversation(session, Channel.TELEGRAM, "driver-expired", language="ru")
        await session.flush()
        session.expire(opened)
        found, _ = await conversation_in_play(session, Channel.TELEGRAM, "driver-expired")
        assert found is opened
        assert not inspect(found).expired_attributes
        assert found.language == "ru" and found.channel is Channel.TELEGRAM


async def test_the_turns_statement_commits_or_rolls_back_with_what_the_session_wrote(
    one_connection: AsyncEngine,
) -> None:
    """When the turn writes more (a ticket; an outbox job, even one queued after the transcript), the
    transcript goes with it: the write waits for the commit, the session's pending changes are flushed
    first, and the statement joins that transaction."""
    sessions = db.session_factory(one_connection)
    async with db.transaction(sessions) as session:
        conversation = await open_conversation(session, Channel.TELEGRAM, "driver-together")

    async def turn_that_fails_after_writing() -> None:
        async with db.transaction(sessions) as session:
            found, _ = await conversation_in_play(session, Channel.TELEGRAM, "driver-together")
            assert found is not None
            await record_turn(session, found, _turn("first"))
            session.add(Conversation(channel=Channel.TELEGRAM, external_id="driver-written-with-it"))
            raise RuntimeError("the channel failed after the turn")

    async def turn_whose_last_write_fails() -> None:
        async with db.transaction(sessions) as session:
            found, _ = await conversation_in_play(session, Channel.TELEGRAM, "driver-together")
            assert found is not None
            session.add(Conversation(channel=Channel.TELEGRAM, external_id="driver-written-with-it"))
            await record_turn(session, found, _turn("first"))  # runs, in the transaction of the add
            gone = Conversation(id=2**31 - 1, channel=Channel.TELEGRAM, external_id="driver-gone")
            await record_turn(session, gone, _turn("to nobody"))  # its messages break the foreign key

    with pytest.raises(RuntimeError):
        await turn_that_fails_after_writing()
    with pytest.raises(IntegrityError):
        await turn_whose_last_write_fails()
    async with db.transaction(sessions) as session:
        assert await messages_after(session, conversation) == []
        assert await find_conversation(session, Channel.TELEGRAM, "driver-written-with-it") is None
        found, _ = await conversation_in_play(session, Channel.TELEGRAM, "driver-together")
        assert found is not None
        await record_turn(session, found, _turn("second"))
        session.add(Conversation(channel=Channel.TELEGRAM, external_id="driver-written-with-it"))
    async with sessions() as session:
        assert [line.text for line in await messages_after(session, conversation)] == [
            "second",
            "the answer to second",
        ]
        assert await find_conversation(session, Channel.TELEGRAM, "driver-written-with-it") is not None


async def test_a_connection_the_database_dropped_fails_as_unreachable_and_the_next_turn_works(
    one_connection: AsyncEngine, migrated_postgres: str
) -> None:
    """PostgreSQL restarted, or the connection cut: SQLAlchemy's error (a 503 for the client, Telegram sends
    the update again), the connection discarded, and the next turn gets a fresh one."""
    import asyncpg

    from infoopt.core.errors import database_unreachable

    sessions = db.session_factory(one_connection)
    async with db.transaction(sessions) as session:
        await open_conversation(session, Channel.TELEGRAM, "driver-dropped")
    async with one_connection.connect() as connection:
        pid = (await connection.get_raw_connection()).driver_connection.get_server_pid()  # type: ignore[union-attr]
    admin = await asyncpg.connect(migrated_postgres)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    with pytest.raises(DBAPIError) as raised:
        async with db.transaction(sessions) as session:
            await conversation_in_play(session, Channel.TELEGRAM, "driver-dropped")
    assert raised.value.connection_invalidated and database_unreachable(raised.value)
    async with db.transaction(sessions) as session:
        conversation, _ = await conversation_in_play(session, Channel.TELEGRAM, "driver-dropped")
        assert conversation is not None
        await record_turn(session, conversation, _turn("again"))


async def test_a_value_the_database_refuses_is_sqlalchemys_error_about_the_value(
    one_connection: AsyncEngine,
) -> None:
    """A NUL in a person's id (PostgreSQL text holds none): the request's fault (422), not the database away."""
    from infoopt.core.errors import database_unreachable, unstorable_value

    with pytest.raises(DBAPIError) as raised:
        async with db.transaction(db.session_factory(one_connection)) as session:
            await conversation_in_play(session, Channel.WEB, "driver-\x00")
    assert unstorable_value(raised.value) and not database_unreachable(raised.value)


async def test_on_sqlite_the_same_functions_run_through_the_session(sqlite_engine: AsyncEngine) -> None:
    sessions = db.session_factory(sqlite_engine)
    async with db.transaction(sessions) as session:
        await open_conversation(session, Channel.WEB, "driver-sqlite", language="en")
    async with db.transaction(sessions) as session:
        conversation, ticket_id = await conversation_in_play(session, Channel.WEB, "driver-sqlite")
        assert conversation is not None and ticket_id is None and conversation in session
        await record_turn(session, conversation, _turn("how much is a card"))
    async with sessions() as session:
        assert len(await messages_after(session, conversation)) == 2
