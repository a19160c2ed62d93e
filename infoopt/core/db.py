"""The database: plain URLs in, the right async driver out; engine, sessions and migrations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc, text
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement
from sqlmodel.ext.asyncio.session import AsyncSession

# The migrations belong to the wiring (they know every package's tables); the kernel only runs them.
log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
POOL_RECYCLE_SECONDS = 1800

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
}


class UnsupportedDatabase(ValueError):
    """The URL names a database this service does not run on."""


def async_database_url(url: str) -> URL:
    """Turn `sqlite:///path` or `postgresql://user@host/db` into the async-driver URL the app uses."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        pass
    elif driver in _ASYNC_DRIVERS:
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[driver])
    else:
        raise UnsupportedDatabase(
            f"INFOOPT_DATABASE_URL uses {driver!r}; use sqlite:///path or postgresql://user@host/db"
        )
    if parsed.drivername == "postgresql+asyncpg" and "sslmode" in parsed.query:
        # libpq spells it sslmode, asyncpg spells it ssl.
        query = dict(parsed.query)
        query["ssl"] = query.pop("sslmode")
        parsed = parsed.set(query=query)
    return parsed


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


@dataclass(frozen=True, slots=True)
class PoolSize:
    """PostgreSQL connections a process keeps (`size`), may open beyond them under load (`overflow`), and
    how long a request waits for one when all are busy before it answers 503 (`timeout`, seconds)."""

    size: int = 10
    overflow: int = 10
    timeout: float = 30.0


def create_engine(url: str, *, echo: bool = False, pool: PoolSize | None = None) -> AsyncEngine:
    """An async engine for the given plain or async URL; SQLite gets its directory and pragmas."""
    async_url = async_database_url(url)
    if async_url.drivername.startswith("sqlite"):
        database = async_url.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(async_url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # No pre-ping: it would cost a round trip on every checkout. A connection PostgreSQL dropped fails its
    # first statement instead; SQLAlchemy then discards the whole pool's stale connections, and the
    # request answers 503 (Telegram and the workspace send it again). Connections are renewed every
    # half hour, before any server or proxy idle timeout closes them.
    pool = pool or PoolSize()
    return create_async_engine(
        async_url,
        echo=echo,
        pool_size=pool.size,
        max_overflow=pool.overflow,
        pool_timeout=pool.timeout,
        pool_recycle=POOL_RECYCLE_SECONDS,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


AfterCommit = Callable[[], Awaitable[None]]
_AFTER_COMMIT = "infoopt.after_commit"
_AT_COMMIT = "infoopt.at_commit"


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once the session's transaction has committed; never when it rolls back.

    For work that must only follow durable changes: announcing a publish to other workers, waking the
    outbox worker. The owner of the transaction (`transaction`) runs the callbacks.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


async def _run_after_commit(session: AsyncSession) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            await callback()
        except Exception:  # the data is committed; a missed announcement must not turn into an error
            log.exception("db.after_commit_failed")


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block ends cleanly, roll back when it raises.

    The only place that commits: services flush, request dependencies and bot middlewares open this.
    Writes left for the commit (`DriverStatement.write_at_commit`) go last, with everything else.
    """
    async with sessions() as session:
        try:
            yield session
            for statement, values in session.info.pop(_AT_COMMIT, []):
                await statement.write_now(session, values)
            await session.commit()
        except BaseException:
            session.info.pop(_AFTER_COMMIT, None)
            session.info.pop(_AT_COMMIT, None)
            await session.rollback()
            raise
        await _run_after_commit(session)


class DriverStatement:
    """A statement built with SQLAlchemy, compiled once, and run on PostgreSQL straight through asyncpg on
    the connection under a session: for the two statements every message runs, where SQLAlchemy's
    execution and ORM layers and a BEGIN/COMMIT pair cost the app more than the statements cost PostgreSQL
    (benchmarks/results/telegram_e2e.md).

    A read runs at once: in the session's transaction if it has begun one on the database, else on its
    own. A write waits for `transaction` to commit and goes last: if anything else in the unit of work
    wrote, or is pending (flushed first), the write joins that transaction and they commit or roll back
    together; if nothing did, it runs on its own, one statement being atomic, with no BEGIN or COMMIT.
    Errors come as SQLAlchemy's; a connection the database dropped is invalidated the way SQLAlchemy
    does it. On SQLite (`applies` is false) run the statement on the session instead.
    """

    _dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]

    def __init__(self, statement: ClauseElement) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=self._dialect))
        if compiled.positiontup is None or compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("a driver statement takes plain bound parameters (no IN lists, no literals)")
        self._compiled = compiled
        self._names = tuple(compiled.positiontup)
        self.sql = str(compiled)

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        """The positional arguments, in the compiled order, for these named values (and the statement's
        own constants)."""
        given = self._compiled.construct_params(dict(values))
        return [given[name] for name in self._names]

    @staticmethod
    def applies(session: AsyncSession) -> bool:
        """Whether the session's database is PostgreSQL (elsewhere, run the statement on the session)."""
        return session.get_bind().dialect.name == "postgresql"

    async def fetchrow(self, session: AsyncSession, values: Mapping[str, Any]) -> asyncpg.Record | None:
        """The first row, read in the session's transaction if it has begun one, else on its own."""
        return await self._run(session, "fetchrow", values)

    def write_at_commit(self, session: AsyncSession, values: Mapping[str, Any]) -> None:
        """Write when the session's `transaction` commits, after everything else it wrote."""
        session.info.setdefault(_AT_COMMIT, []).append((self, dict(values)))

    async def write_now(self, session: AsyncSession, values: Mapping[str, Any]) -> None:
        """Write together with what the session has written or holds pending (`transaction` calls this)."""
        if session.new or session.dirty or session.deleted:
            await session.flush()  # begins the transaction this statement then joins
        await self._run(session, "execute", values)

    async def _run(self, session: AsyncSession, method: str, values: Mapping[str, Any]) -> object:
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        arguments = self.arguments(values)
        try:
            return await getattr(driver, method)(self.sql, *arguments)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError) as error:
            raise await self._as_sqlalchemy_error(connection, error, arguments) from error

    async def _as_sqlalchemy_error(
        self, connection: AsyncConnection, error: Exception, arguments: list[Any]
    ) -> exc.DBAPIError:
        if not _connection_lost(error):
            kind = (
                exc.IntegrityError
                if isinstance(error, asyncpg.IntegrityConstraintViolationError)
                else (exc.DataError if isinstance(error, asyncpg.DataError) else exc.DBAPIError)
            )
            return kind(self.sql, arguments, error)
        # Let SQLAlchemy meet the lost connection itself: it invalidates it, and the pool's others
        # opened before it, and says so in the error it raises.
        try:
            await connection.exec_driver_sql("SELECT 1")
        except exc.DBAPIError as seen:
            return seen
        await connection.invalidate(error)  # answered after all: still, this connection failed
        return exc.OperationalError(self.sql, arguments, error, connection_invalidated=True)


# SQLSTATE classes of a connection gone: 08 (connection exception), 57P (the server shutting down).
_LOST_SQLSTATES = ("08", "57P")


def _connection_lost(error: Exception) -> bool:
    if isinstance(error, asyncpg.PostgresError):
        return (getattr(error, "sqlstate", None) or "").startswith(_LOST_SQLSTATES)
    return True  # the driver's own errors (a closed connection) and the network's


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def alembic_config(url: str) -> Config:
    """An Alembic configuration pointing at the packaged migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's ini interpolation would read "%" in passwords as a format directive.
    config.set_main_option(
        "sqlalchemy.url",
        async_database_url(url).render_as_string(hide_password=False).replace("%", "%%"),
    )
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply pending migrations (synchronous; call it before the event loop or in a thread)."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Apply pending migrations from inside a running event loop."""
    await asyncio.to_thread(upgrade, url, revision)
