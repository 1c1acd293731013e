"""Engine setup: the URLs people type map to async drivers; SQLite gets WAL, foreign keys and a busy timeout."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.store import db as store_db
from bot.store.db import async_url, create_engine, is_sqlite
from bot.store.models import Story
from tests.conftest import ALICE
from tests.factories import tx


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///./cadence.db", "sqlite+aiosqlite:///./cadence.db"),
        ("sqlite:////var/lib/cadence.db", "sqlite+aiosqlite:////var/lib/cadence.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        (
            "postgres://u:secret@db.example:5432/cadence",
            "postgresql+asyncpg://u:secret@db.example:5432/cadence",
        ),
        ("postgresql://u:secret@db.example/cadence", "postgresql+asyncpg://u:secret@db.example/cadence"),
        ("postgresql+psycopg2://u@h/cadence", "postgresql+asyncpg://u@h/cadence"),
        ("postgresql://u:p%40ss%2Fw@h/cadence", "postgresql+asyncpg://u:p%40ss%2Fw@h/cadence"),
        ("postgresql+asyncpg://u@h/cadence?ssl=require", "postgresql+asyncpg://u@h/cadence?ssl=require"),
    ],
)
def test_urls_map_to_async_drivers(given, expected):
    assert async_url(given) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "oracle://u@h/db", "mssql+pyodbc://u@h/db"])
def test_unsupported_databases_are_refused(url):
    with pytest.raises(ValueError, match="unsupported database") as info:
        async_url(url)
    assert "sqlite:///" in str(info.value) and "postgresql://" in str(info.value)
    with pytest.raises(ValueError, match="unsupported database"):
        create_engine(url)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+aiosqlite:///x.db?mode=memory"])
def test_an_in_memory_database_gets_no_engine(url):
    """Whoever builds the engine (the CLI, a test, a benchmark), not only the environment's check."""
    with pytest.raises(ValueError, match="an in-memory SQLite database lives in a single connection"):
        create_engine(url)


async def test_postgres_urls_get_an_asyncpg_engine_without_connecting():
    engine = create_engine("postgres://u:p@127.0.0.1:1/nowhere")
    try:
        assert engine.url.drivername == "postgresql+asyncpg"
        assert engine.url.password == "p"
        assert not is_sqlite(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def sqlite_engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    yield engine
    await engine.dispose()


async def _pragma(engine, name):
    async with engine.connect() as conn:
        return (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()


async def test_sqlite_engine_is_sqlite(sqlite_engine):
    assert is_sqlite(sqlite_engine)
    assert sqlite_engine.url.drivername == "sqlite+aiosqlite"


async def test_sqlite_uses_write_ahead_logging(sqlite_engine):
    assert (await _pragma(sqlite_engine, "journal_mode")).lower() == "wal"


async def test_sqlite_enforces_foreign_keys(sqlite_engine):
    assert await _pragma(sqlite_engine, "foreign_keys") == 1


async def test_sqlite_waits_instead_of_failing_when_busy(sqlite_engine):
    assert await _pragma(sqlite_engine, "busy_timeout") == store_db.SQLITE_BUSY_TIMEOUT_MS
    assert store_db.SQLITE_BUSY_TIMEOUT_MS >= 1000


async def test_every_new_connection_gets_the_pragmas(sqlite_engine):
    for _ in range(2):
        await sqlite_engine.dispose()  # the next connect opens a fresh DBAPI connection
        assert await _pragma(sqlite_engine, "foreign_keys") == 1
        assert await _pragma(sqlite_engine, "busy_timeout") == store_db.SQLITE_BUSY_TIMEOUT_MS
        assert (await _pragma(sqlite_engine, "journal_mode")).lower() == "wal"


async def test_a_story_in_a_sprint_that_does_not_exist_is_refused_by_the_database(db):
    with pytest.raises(IntegrityError):
        async with tx(db) as s:
            s.add(Story(number=1, team="recsys", type="ml", title="t", sprint_id=999, created_by=ALICE))
            await s.flush()


async def test_unit_of_work_commits_or_rolls_back(db):
    async with tx(db) as s:
        s.add(Story(number=1, team="recsys", type="ml", title="kept", created_by=ALICE))
    with pytest.raises(RuntimeError):
        async with tx(db) as s:
            s.add(Story(number=2, team="recsys", type="ml", title="dropped", created_by=ALICE))
            await s.flush()
            raise RuntimeError("boom")
    async with tx(db) as s:
        titles = (await s.exec(text("SELECT title FROM story ORDER BY number"))).scalars().all()
    assert titles == ["kept"]
