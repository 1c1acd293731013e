"""Engine and session factory: async SQLAlchemy on SQLite (default) or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SQLITE_BUSY_TIMEOUT_MS = 5000
PENDING_EVENTS = "cadence.events"  # session.info key of the domain events a transaction recorded


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
        return create_async_engine(url, echo=echo, pool_pre_ping=True)

    # SQLite has one writer at a time. One pooled connection per process makes concurrent requests
    # queue in order on the event loop instead of sleeping in SQLite's busy handler (1, 2, 5 … 100 ms
    # naps that turned a 5 ms answer into hundreds under load). Other processes still wait busy_timeout.
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=1,
        max_overflow=0,
        pool_timeout=30,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # We issue BEGIN ourselves (below), so the driver must not.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn):
        # Take the write lock up front: a read-then-write transaction (counters, the audit chain,
        # compare-and-set on a review) can then never interleave with another process's writer,
        # and SQLite waits busy_timeout instead of failing with "database is locked" mid-way.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


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
