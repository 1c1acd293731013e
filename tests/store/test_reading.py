"""Read-only transactions (`reading`, `reader_engine`, `Reads.run`): the answers that only show something run there.
They see what is committed, the database refuses any write made through them, and on SQLite they do not
wait for the one writer connection."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from bot.services import stories
from bot.store.db import (
    PG_POOL_SIZE,
    SQLITE_READER_BUSY_TIMEOUT_MS,
    Reads,
    create_engine,
    session_factory,
    synchronously,
    unit_of_work,
)
from bot.store.models import Story
from tests.conftest import ALICE, BOB, FRANK, make_config
from tests.factories import make_story, snapshot, tx


async def test_a_persons_stories_across_teams_are_read_in_one_statement(db):
    config = make_config(platform={"members": [FRANK, ALICE]})
    async with tx(db, config) as s:
        mine = await make_story(s, config, title="Ranker", owner=ALICE)
        other_team = await make_story(
            s, config, team_name="platform", title="Feature store", owner=ALICE, actor=FRANK
        )
        await make_story(s, config, title="Not mine", owner=BOB)
        finished = await make_story(s, config, title="Archived", owner=ALICE)
        await stories.archive_story(s, config=config, story=finished, actor=ALICE)
    statements: list[str] = []
    from sqlalchemy import event

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.sync_engine, "before_cursor_execute", count)
    try:
        async with unit_of_work(session_factory(db)) as s:
            found = await synchronously(s, stories.owned_by, config=config, owner=ALICE)
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", count)
    assert [i.story.key for i in found] == [mine.key, other_team.key]
    assert [i.sprint_name for i in found] == [None, None]
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


def _titles(session) -> list[str]:
    return [x.title for x in session.exec(select(Story).order_by(Story.number)).all()]


def _stories(session) -> list[Story]:
    return list(session.exec(select(Story).order_by(Story.number)).all())


def _rename_all(session) -> None:
    session.exec(text("UPDATE story SET title = 'changed'"))  # type: ignore[call-overload]


# The two ways in: `reading()`, an AsyncSession (aiosqlite's thread on SQLite), and `run(fn)`, a
# synchronous function of the services (SQLite on the event loop's thread, PostgreSQL on its own pool).
WAYS = ("reading", "run")


async def _through(reads: Reads, way: str, fn):
    if way == "run":
        return await reads.run(fn)
    async with reads.reading() as s:
        return await synchronously(s, fn)


@pytest.mark.parametrize("way", WAYS)
async def test_a_read_sees_what_is_committed_refuses_writes_and_leaves_its_objects_usable(db, way):
    config = make_config()
    async with tx(db) as s:
        await make_story(s, config, title="Retrain the ranker")
        await make_story(s, config, title="Backfill labels")
    before = await snapshot(db)
    reads = Reads(db)
    try:
        assert await _through(reads, way, _titles) == ["Retrain the ranker", "Backfill labels"]
        found = await _through(reads, way, _stories)
        assert [(x.key, x.title, x.status) for x in found] == [
            ("S-1", "Retrain the ranker", "open"),
            ("S-2", "Backfill labels", "open"),
        ]  # read after the transaction ended: nothing was expired or left to load lazily
        with pytest.raises(DBAPIError, match=r"readonly|read-only|read only"):
            await _through(reads, way, _rename_all)
    finally:
        await reads.dispose()
    assert await snapshot(db) == before


@pytest.mark.parametrize("way", WAYS)
async def test_sqlite_reads_do_not_wait_for_a_transaction_that_holds_the_write_lock(db, way):
    if db.dialect.name != "sqlite":
        pytest.skip("PostgreSQL readers never wait for writers; SQLite's one writer connection is the case")
    config = make_config()
    async with tx(db) as s:
        await make_story(s, config, title="Retrain the ranker")
    reads = Reads(db)
    try:
        async with unit_of_work(session_factory(db)) as writer:
            await writer.exec(text("UPDATE story SET title = 'not yet committed'"))  # type: ignore[call-overload]
            # The writer holds BEGIN IMMEDIATE and the only writer connection: the read answers at once
            # from the last committed state instead of sleeping in SQLite's busy handler.
            began = time.perf_counter()
            assert await _through(reads, way, _titles) == ["Retrain the ranker"]
            assert time.perf_counter() - began < SQLITE_READER_BUSY_TIMEOUT_MS / 1000
        assert await _through(reads, way, _titles) == ["not yet committed"]
    finally:
        await reads.dispose()


@pytest.mark.parametrize("way", WAYS)
async def test_a_read_that_failed_leaves_the_next_one_answering_from_what_is_committed_since(db, way):
    """`run` keeps one connection on SQLite across reads: a read that raised (a refused write, a bug) must
    end its transaction, or the next read would find one still open, or answer from the old snapshot."""
    config = make_config()
    async with tx(db) as s:
        await make_story(s, config, title="Retrain the ranker")
    reads = Reads(db)

    def broken(session) -> None:
        _titles(session)  # the transaction has begun and read
        raise ValueError("a bug in a read")

    try:
        assert await _through(reads, way, _titles) == ["Retrain the ranker"]
        with pytest.raises(ValueError, match="a bug in a read"):
            await _through(reads, way, broken)
        with pytest.raises(DBAPIError, match=r"readonly|read-only|read only"):
            await _through(reads, way, _rename_all)
        async with tx(db) as s:
            await make_story(s, config, title="Backfill labels")
        assert await _through(reads, way, _titles) == ["Retrain the ranker", "Backfill labels"]
    finally:
        await reads.dispose()


async def test_a_read_whose_postgresql_connection_was_dropped_is_tried_again_and_answers(db):
    if db.dialect.name == "sqlite":
        pytest.skip("a PostgreSQL server that drops connections (a restart, a failover) is the case")
    config = make_config()
    async with tx(db) as s:
        await make_story(s, config, title="Retrain the ranker")
    reads = Reads(db)
    try:
        pid = await reads.run(lambda s: s.exec(text("SELECT pg_backend_pid()")).one()[0])  # type: ignore[call-overload]
        async with unit_of_work(session_factory(db)) as s:
            await s.exec(text("SELECT pg_terminate_backend(:pid)"), params={"pid": pid})  # type: ignore[call-overload]
        # The pooled connection is dead; the read finds out, and the retry answers on a new one.
        assert await reads.run(_titles) == ["Retrain the ranker"]
        assert await reads.run(lambda s: s.exec(text("SELECT pg_backend_pid()")).one()[0]) != pid  # type: ignore[call-overload]
    finally:
        await reads.dispose()


async def test_bursts_of_postgresql_reads_and_writes_reuse_a_fixed_set_of_connections(db):
    """A burst wider than the pool waits for its connections instead of opening (and then closing) more:
    each new PostgreSQL connection is a server process and asyncpg's type setup, several ms of CPU, and the
    churn kept a replica near half the answers per second of a bare Bolt app under 32 requests at once."""
    if db.dialect.name == "sqlite":
        pytest.skip("a PostgreSQL pool is the case; SQLite's connections are files opened once")
    backend = text("SELECT pg_backend_pid() FROM pg_sleep(0.02)")
    writer = create_engine(db.url.render_as_string(hide_password=False))
    reads = Reads(db)

    async def read() -> int:
        return await reads.run(lambda s: s.exec(backend).one()[0])  # type: ignore[call-overload]

    async def write() -> int:
        async with unit_of_work(session_factory(writer)) as s:
            return (await s.exec(backend)).one()[0]  # type: ignore[call-overload]

    try:
        for way in (read, write):
            seen: set[int] = set()
            for _ in range(2):  # the second burst finds the first one's connections still open
                seen |= set(await asyncio.gather(*(way() for _ in range(4 * PG_POOL_SIZE))))
            assert len(seen) <= PG_POOL_SIZE, way.__name__
    finally:
        await reads.dispose()
        await writer.dispose()


async def test_postgresql_reads_cut_off_by_a_timeout_give_their_connections_back(db):
    """The ack budget cancels a read that runs too long (bot/slack/budget.py). Each cancelled read must give
    its connection back to the pool (or drop it), whatever state the cancellation left it in: more cut-off
    reads than the pool holds, then a burst of reads, all answer."""
    if db.dialect.name == "sqlite":
        pytest.skip("SQLite's reads run on the event loop's thread and are not cancelled halfway")
    config = make_config()
    async with tx(db) as s:
        await make_story(s, config, title="Retrain the ranker")
    slow = text("SELECT pg_sleep(5)")
    reads = Reads(db)
    try:
        for _ in range(PG_POOL_SIZE + 1):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await reads.run(lambda s: s.exec(slow).all())  # type: ignore[call-overload]
        async with asyncio.timeout(10):  # a leaked connection would leave the burst waiting for the pool
            answers = await asyncio.gather(*(reads.run(_titles) for _ in range(2 * PG_POOL_SIZE)))
        assert answers == [["Retrain the ranker"]] * (2 * PG_POOL_SIZE)
    finally:
        await reads.dispose()
