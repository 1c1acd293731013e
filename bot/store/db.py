"""Engine and session factory: async SQLAlchemy on SQLite (default) or PostgreSQL."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

# How long a SQLite write waits for another process's write lock: under Slack's 3 s, so a person whose
# command meets a long lock hears so (bot.slack.budget) instead of seeing Slack's timeout.
SQLITE_BUSY_TIMEOUT_MS = 2000
PG_CONNECT_TIMEOUT = 10  # seconds; asyncpg's own default is 60
SQLITE_READERS = 2  # connections a process reads through beside its one writer (WAL lets them run at once)
PENDING_EVENTS = "cadence.events"  # session.info key of the domain events a transaction recorded


# What a database that is down, refuses connections, or stays locked past its busy timeout raises (and
# a pool with no connection free in time). Slack's client (aiohttp) raises none of these.
UNREACHABLE = (DBAPIError, PoolTimeout, ConnectionError, socket.gaierror, TimeoutError)


def unreachable(exc: BaseException) -> bool:
    """The database could not be reached or locked: not a statement that was wrong (an IntegrityError is
    a bug, or a race to report as one)."""
    if isinstance(exc, DBAPIError):
        return isinstance(exc, (OperationalError, InterfaceError)) or bool(exc.connection_invalidated)
    return isinstance(exc, UNREACHABLE)


def async_url(url: str) -> str:
    """Map the URLs people type (sqlite:///x.db, postgres://…) to the async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database {backend!r}: use a sqlite:/// or postgresql:// URL")


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    url = async_url(url)
    if make_url(url).get_backend_name() != "sqlite":
        return create_async_engine(
            url, echo=echo, pool_pre_ping=True, connect_args={"timeout": PG_CONNECT_TIMEOUT}
        )

    # SQLite has one writer at a time. One pooled connection per process makes concurrent requests
    # queue in order on the event loop instead of sleeping in SQLite's busy handler (1, 2, 5 … 100 ms
    # naps that turned a 5 ms answer into hundreds under load). Other processes still wait busy_timeout.
    engine = _sqlite_engine(
        url,
        connections=1,
        pragmas=("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"),
        # Take the write lock up front: a read-then-write transaction (counters, the audit chain,
        # compare-and-set on a review) can then never interleave with another process's writer,
        # and SQLite waits busy_timeout instead of failing with "database is locked" mid-way.
        begin="BEGIN IMMEDIATE",
        echo=echo,
    )
    return engine


def _sqlite_engine(
    url: Any, *, connections: int, pragmas: tuple[str, ...], begin: str, echo: bool = False
) -> AsyncEngine:
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=connections,
        max_overflow=0,
        pool_timeout=30,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below), so the driver must not
        cursor = dbapi_connection.cursor()
        for pragma in (f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}", *pragmas):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql(begin)

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def reader_engine(engine: AsyncEngine) -> AsyncEngine:
    """An engine for transactions that only read. Answers that only show something (a list, a plan)
    should neither queue behind the one writer connection nor take SQLite's write lock.

    On SQLite it is a second engine on the same file: SQLITE_READERS connections in WAL mode, each
    transaction a deferred BEGIN, and `query_only` so a write through it fails instead of happening. On
    PostgreSQL it is the same pool, each transaction begun READ ONLY. Dispose it with `dispose_reader`."""
    if not is_sqlite(engine):
        return engine.execution_options(postgresql_readonly=True)
    # A deferred BEGIN: a snapshot for the reads and no write lock.
    readers = _sqlite_engine(
        engine.url, connections=SQLITE_READERS, pragmas=("query_only=ON",), begin="BEGIN"
    )
    return readers


async def dispose_reader(readers: AsyncEngine, engine: AsyncEngine) -> None:
    if readers.sync_engine.pool is not engine.sync_engine.pool:
        await readers.dispose()


@asynccontextmanager
async def reading(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction that only reads (sessions from a `reader_engine`): one consistent snapshot, and
    any write refused by the database."""
    async with sessions() as session, session.begin():
        yield session


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block ends normally, rolled back on any exception.
    A transaction that recorded domain events must be run by the notifier (`Notifier.transaction`),
    which turns them into messages first; here they would be lost, so it refuses to commit."""
    async with sessions() as session, session.begin():
        yield session
        if session.info.get(PENDING_EVENTS):
            names = ", ".join(sorted({type(e).__name__ for e in session.info[PENDING_EVENTS]}))
            session.info.pop(PENDING_EVENTS)
            raise RuntimeError(f"unpublished events ({names}): run this through Notifier.transaction()")
