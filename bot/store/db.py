"""Engine and session factory: async SQLAlchemy on SQLite (default) or PostgreSQL."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import greenlet_spawn
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

# How long a SQLite write waits for another process's write lock: under Slack's 3 s, so a person whose
# command meets a long lock hears so (bot.slack.budget) instead of seeing Slack's timeout.
SQLITE_BUSY_TIMEOUT_MS = 2000
PG_CONNECT_TIMEOUT = 10  # seconds; asyncpg's own default is 60
# Connections a process keeps open to PostgreSQL, per pool (the writer's, and Reads' own), and never more:
# a pool that may overflow closes each extra connection as it is returned, so a burst of 32 requests
# opened and closed a backend for most of them (a new server process, and asyncpg's type setup on
# connect: several ms each), which capped a PostgreSQL replica near half the floor's answers per second.
# Past PG_POOL_SIZE, requests wait their turn for a connection, which a read returns within a ms or two.
PG_POOL_SIZE = 10
SQLITE_READERS = 2  # connections a process reads through beside its one writer (WAL lets them run at once)
# A SQLite reader in WAL mode never waits for a writer; this only bounds the rare wait while another
# connection recovers the WAL index after a crash (Reads.run reads on the event loop's thread).
SQLITE_READER_BUSY_TIMEOUT_MS = 100
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
    raise ValueError(
        f"unsupported database: Cadence runs on SQLite or PostgreSQL, not {backend!r}; "
        "use a sqlite:/// or postgresql:// URL"
    )


def database_url_problem(url: str) -> str | None:
    """Why Cadence cannot run on the database `url` names, or None. An in-memory SQLite database
    belongs to the one connection that opened it, and Cadence reads through connections of their own
    (Reads): each would see another, empty database."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # Not repeated back: the text may hold a password.
        return "it is not a database URL; use e.g. sqlite:///cadence.db or postgresql://user@host/db"
    try:
        async_url(url)
    except ValueError as exc:
        return str(exc)
    name = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and (
        name in ("", ":memory:") or name.startswith("file::memory:") or parsed.query.get("mode") == "memory"
    ):
        return (
            "an in-memory SQLite database lives in a single connection, and Cadence reads through "
            "others; name a file instead, e.g. sqlite:///cadence.db"
        )
    return None


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    problem = database_url_problem(url)
    if problem:
        raise ValueError(problem)
    url = async_url(url)
    if make_url(url).get_backend_name() != "sqlite":
        return create_async_engine(
            url,
            echo=echo,
            pool_pre_ping=True,
            pool_size=PG_POOL_SIZE,
            max_overflow=0,
            connect_args={"timeout": PG_CONNECT_TIMEOUT},
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


def _sqlite_pragmas(dbapi_connection: Any, pragmas: tuple[str, ...]) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below), so the driver must not
    cursor = dbapi_connection.cursor()
    for pragma in pragmas:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


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
        _sqlite_pragmas(dbapi_connection, (f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}", *pragmas))

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


P = ParamSpec("P")
T = TypeVar("T")


async def synchronously(
    session: AsyncSession, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """fn(session, …) with the synchronous face of an async session, in its transaction: how a service
    written once against a Session (for `Reads.run`) is called from async code."""
    # At run time that face is sqlmodel's Session (AsyncSession.sync_session_class); SQLAlchemy's stubs
    # type it as its own.
    return await session.run_sync(cast(Callable[..., T], fn), *args, **kwargs)


def in_async(
    fn: Callable[Concatenate[Session, P], T],
) -> Callable[Concatenate[AsyncSession, P], Awaitable[T]]:
    """The same read for async callers: `in_async(stories_in)(session, …)` runs stories_in in the async
    session's transaction (see `synchronously`), with stories_in's own parameters and types."""

    async def call(session: AsyncSession, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await synchronously(session, fn, *args, **kwargs)

    call.__name__ = call.__qualname__ = f"in_async({fn.__name__})"
    call.__doc__ = fn.__doc__
    return call


class Reads:
    """Transactions that only read, for answers that only show something (a list, a plan): they neither
    queue behind the one writer connection nor take SQLite's write lock, and the database refuses any
    write made through them.

    `reading()` is such a transaction as an AsyncSession. `run(fn, …)` runs a synchronous function with a
    Session in one; the commands people use most read that way.

    On SQLite `run` reads on the event loop's own thread, through a plain sqlite3 connection. That is a
    deliberate exception to "nothing blocks the event loop", measured (docs/benchmarks.md): through
    aiosqlite every statement costs four or five round trips to its thread (cursor, execute, fetch,
    close), and handing the whole read to a thread once still cost about 0.8 ms a request on a two-core
    machine (the hop, and the read running on another core with cold caches), against 20 to 300 µs for
    SQLite to answer these reads. What keeps such a read short: WAL mode, in which a reader never waits
    for a writer (SQLITE_READER_BUSY_TIMEOUT_MS bounds the one exception, another connection recovering
    the WAL index after a crash); the statements, each an indexed read of one team's rows, with pages and
    groups cut in SQL; and `query_only`, so nothing written can make it wait. Answers that read more
    (an audit, a drift history, App Home) use `reading()`, which keeps to aiosqlite's thread.

    On PostgreSQL `run` uses the async driver (from one greenlet, see _on_direct) on a pool of its
    own, set up for the fewest round trips (see __init__)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.engine = reader_engine(engine)
        self.sessions = session_factory(self.engine)
        self._inline: Engine | None = None
        self._held: Connection | None = None  # the inline reader's one connection, once opened (see run)
        self._direct: AsyncEngine | None = None
        if is_sqlite(engine):
            self._inline = _sqlite_inline_reader(engine.url.set(drivername="sqlite"))
        else:
            # Its own pool, each statement a round trip of its own:
            # - no pre-ping (the writer's SELECT before every checkout cost about a third of a list's
            #   time): a connection the server dropped is found by the read itself, and the read is tried
            #   once more (see run), since reading twice changes nothing;
            # - no BEGIN and COMMIT around the two or three statements of a read, two round trips more:
            #   each statement sees the database as it was when it began, so a page's count and its rows
            #   can disagree by a story written between them, which the next page or look shows;
            # - every session read-only on the server, so a write through it fails.
            self._direct = create_async_engine(
                engine.url,
                pool_pre_ping=False,
                pool_size=PG_POOL_SIZE,
                max_overflow=0,
                isolation_level="AUTOCOMMIT",
                connect_args={
                    "timeout": PG_CONNECT_TIMEOUT,
                    "server_settings": {"default_transaction_read_only": "on"},
                },
            )

    def reading(self) -> AbstractAsyncContextManager[AsyncSession]:
        return reading(self.sessions)

    async def run(self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """fn(session, *args, **kwargs), reading only, each statement on its own (see __init__): a page's
        count and its rows can disagree by a story written between them. Its ORM objects stay usable
        after."""
        if self._inline is not None:
            # One connection, kept: the reads run one at a time on the event loop's thread, and taking it
            # from the pool and giving it back (with the pool's reset) for each read cost more than the
            # Session around it (about 0.3M instructions of a 2.1M page of `story list`; docs/benchmarks.md,
            # seventh round). It is in autocommit: each statement reads the database as committed when it
            # began, as on PostgreSQL (see __init__), with no BEGIN and COMMIT around the read (0.24M
            # instructions of a 9.6M plan, ninth round), and between statements it holds no snapshot that
            # would keep SQLite from checkpointing the WAL.
            if self._held is None:
                self._held = self._inline.connect()
            with self._held.begin():  # the read's extent for SQLAlchemy; in autocommit it sends nothing
                return _read_on(self._held, fn, *args, **kwargs)
        try:
            return await self._on_direct(fn, *args, **kwargs)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        return await self._on_direct(fn, *args, **kwargs)  # the pool has dropped its stale connections

    async def _on_direct(
        self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """fn in a Session bound to one connection of the PostgreSQL reader's pool, the whole read (taking
        the connection, fn, giving it back) in one greenlet: the async driver's calls are awaited from
        there as AsyncConnection.run_sync awaits them. An AsyncSession around the read (begin, run_sync,
        commit, close, each a greenlet of its own) cost 0.13 to 0.16M instructions more per read
        (docs/benchmarks.md, seventh round); AsyncEngine.connect and run_sync, a greenlet each for taking
        the connection, the read and giving it back, 35 to 40 µs more (tenth round). The statements and
        what they return are the same, and with the pool in autocommit a Session's transaction sends
        nothing."""
        assert self._direct is not None
        return await greenlet_spawn(partial(_read_pooled, self._direct.sync_engine, fn, *args, **kwargs))

    async def dispose(self) -> None:
        await dispose_reader(self.engine, self._engine)
        if self._direct is not None:
            await self._direct.dispose()
        if self._held is not None:
            self._held.close()
            self._held = None
        if self._inline is not None:
            self._inline.dispose()


def _read_on(
    connection: Connection, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """fn(session, …) in a Session bound to `connection` (both readers of `Reads.run`), in whatever
    transaction the connection is in; its ORM objects stay loaded after the Session closes."""
    with Session(bind=connection, expire_on_commit=False) as session:
        return fn(session, *args, **kwargs)


def _read_pooled(
    engine: Engine, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """`_read_on` on a connection taken from `engine`'s pool and given back after (in a greenlet, see
    Reads._on_direct)."""
    with engine.connect() as connection:
        return _read_on(connection, fn, *args, **kwargs)


def _sqlite_inline_reader(url: Any) -> Engine:
    """One plain sqlite3 connection for `Reads.run`: reads on the event loop's thread run one at a time."""
    engine = create_sync_engine(
        url,
        pool_size=1,
        max_overflow=0,
        pool_timeout=1,
        # Used by one thread at a time (whichever runs the event loop), not always the one that opened it.
        connect_args={"timeout": SQLITE_READER_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        isolation_level="AUTOCOMMIT",
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        _sqlite_pragmas(dbapi_connection, (f"busy_timeout={SQLITE_READER_BUSY_TIMEOUT_MS}", "query_only=ON"))

    return engine


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
