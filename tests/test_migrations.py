"""The Alembic revisions build exactly the schema the models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from bot.store.migrate import current_revision, head_revision


async def test_database_is_at_head(db):
    assert await current_revision(db) == head_revision()


async def test_models_and_migrations_agree(db):
    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)

    async with db.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_0005_adds_the_blocked_reason_and_keeps_existing_stories(tmp_path):
    """Upgrading a database at 0004 that holds a story: the column is added (empty for it), the
    story keeps its data and works with the new statuses; downgrading drops only the column."""
    from alembic import command
    from sqlalchemy import inspect, text

    from bot.store.db import create_engine
    from bot.store.migrate import alembic_config, upgrade

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")

    async def columns() -> dict[str, bool]:
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda c: inspect(c).get_columns("story"))
        return {c["name"]: c["nullable"] for c in found}

    try:
        await upgrade(engine, "0004")
        assert await current_revision(engine) == "0004"
        assert "blocked_reason" not in await columns()
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO story (number, team, type, title, status, created_by, created_at, updated_at) "
                    "VALUES (1, 'recsys', 'ml', 'Train the ranker', 'open', 'U01ALICE', "
                    "'2026-12-01 09:00:00', '2026-12-01 09:00:00')"
                )
            )

        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        assert (await columns())["blocked_reason"] is True  # nullable: only a blocked story has one
        async with engine.begin() as conn:
            row = (await conn.execute(text("SELECT title, status, blocked_reason FROM story"))).one()
            assert tuple(row) == ("Train the ranker", "open", None)
            await conn.execute(text("UPDATE story SET status = 'blocked', blocked_reason = 'GPU quota'"))

        def downgrade(connection):
            command.downgrade(alembic_config(connection), "0004")

        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        assert await current_revision(engine) == "0004"
        assert "blocked_reason" not in await columns()
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT title, status FROM story"))).one()
        assert tuple(row) == ("Train the ranker", "blocked")
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(request, tmp_path):
    """An empty database of each kind, for migrating from an old revision: a SQLite file, or a PostgreSQL
    database of its own (made and dropped here) when TEST_DATABASE_URL is set."""
    import os

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from bot.store.db import create_engine

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    pg = os.environ.get("TEST_DATABASE_URL")
    if not pg:
        pytest.skip("TEST_DATABASE_URL is not set: no PostgreSQL to test against")
    name = f"cadence_migrate_{os.getpid()}"
    admin = create_engine(make_url(pg).set(database="postgres").render_as_string(hide_password=False))
    async with admin.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _insert_story(conn, number: int, **columns) -> None:
    """A recsys story written as an old revision's table holds it: an open eng story unless `columns`
    say otherwise (only columns that revision has)."""
    from datetime import datetime

    from sqlalchemy import text

    written = datetime(2026, 12, 1, 9, 0)  # bound as a datetime: asyncpg takes no text for a timestamp
    values = {
        "team": "recsys",
        "type": "eng",
        "title": "story",
        "status": "open",
        "created_by": "U01ALICE",
        "created_at": written,
        "updated_at": written,
        **columns,
        "number": number,
    }
    names = ", ".join(values)
    await conn.execute(
        text(f"INSERT INTO story ({names}) VALUES ({', '.join(':' + k for k in values)})"), values
    )


async def _sprint_and_three_stories(engine, *, third_keys: str) -> None:
    """Sprint 1 of recsys with S-1 in it; S-2 (Ready for an eng story) and S-3 (`third_keys`) in the backlog."""
    from sqlalchemy import text

    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO sprint (team, name, starts_on, ends_on, state, created_by, created_at)"
                " VALUES ('recsys', 'Sprint 1', '2026-11-30', '2026-12-11', 'active', 'U01ALICE',"
                " '2026-11-30 09:00:00')"
            )
        )
        for number, sprint, ready in (
            (1, 1, ""),
            (2, None, ",acceptance_criteria,dependencies,"),
            (3, None, third_keys),
        ):
            await _insert_story(conn, number, sprint_id=sprint, ready_keys=ready)


async def _backlog_count_plan(engine, counted: str) -> str:
    """SQLite's EXPLAIN QUERY PLAN of counting recsys's open backlog with `counted` beside the count."""
    from sqlalchemy import text

    async with engine.connect() as conn:
        plan = await conn.execute(
            text(
                f"EXPLAIN QUERY PLAN SELECT count(*), {counted} FROM story"
                " WHERE team = 'recsys' AND sprint_id IS NULL AND status = 'open'"
            )
        )
        return " ".join(r[-1] for r in plan)


async def _keys_of_stories(engine) -> list[tuple[int, str, str]]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        found = await conn.execute(text("SELECT number, ready_keys, done_keys FROM story ORDER BY number"))
        return [tuple(r) for r in found.all()]


async def _readiness_listed(engine) -> tuple[list[str], list[tuple[str, int]]]:
    """The recsys stories a not-Ready list shows, and each story's criteria met as a list shows it."""
    from bot.config import parse_config
    from bot.services import readiness, stories
    from bot.store.db import session_factory, unit_of_work

    config = parse_config("teams: [{name: recsys, channel: C0123RECSYS, members: [U01ALICE]}]\n")
    assert await readiness.reconcile_on_start(session_factory(engine), config)  # as serve and clock start
    async with unit_of_work(session_factory(engine)) as session:
        lacking = await stories.list_stories(session, config=config, team=config.teams[0], not_ready=True)
        shown = await stories.list_stories(session, config=config, team=config.teams[0])
    return [i.story.key for i in lacking], [(i.story.key, i.ready.answered) for i in shown]


async def test_0007_copies_each_storys_satisfied_criteria_onto_it(empty_database):
    """A database at 0006 with answers and a waiver: after the upgrade each story carries its satisfied
    keys, sorted, per kind; a story without answers carries none; lists filter by them at once."""
    from sqlalchemy import text

    from bot.store.db import create_engine
    from bot.store.migrate import upgrade

    engine = create_engine(empty_database)
    try:
        await upgrade(engine, "0006")
        async with engine.begin() as conn:
            for number, story_type in ((1, "eng"), (2, "eng"), (3, "ml")):
                await conn.execute(
                    text(
                        "INSERT INTO story (number, team, type, title, status, created_by, created_at, updated_at)"
                        " VALUES (:n, 'recsys', :t, 'story', 'open', 'U01ALICE', '2026-12-01 09:00:00',"
                        " '2026-12-01 09:00:00')"
                    ),
                    {"n": number, "t": story_type},
                )
            for story_id, kind, key, value, reason in (
                (1, "ready", "dependencies", "none", None),
                (1, "ready", "acceptance_criteria", None, "covered by the parent story"),
                (1, "done", "tests", "ci green", None),
                (2, "ready", "dependencies", "the feature store", None),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO criterion_value (story_id, kind, key, value, na_reason, set_by, set_at)"
                        " VALUES (:s, :k, :key, :v, :r, 'U01ALICE', '2026-12-01 09:00:00')"
                    ),
                    {"s": story_id, "k": kind, "key": key, "v": value, "r": reason},
                )
        await upgrade(engine)
        assert await _keys_of_stories(engine) == [  # as 0010 leaves them: each key between commas
            (1, ",acceptance_criteria,dependencies,", ",tests,"),
            (2, ",dependencies,", ""),
            (3, "", ""),
        ]
        assert (await _readiness_listed(engine))[0] == ["S-2", "S-3"]
    finally:
        await engine.dispose()


async def test_0010_puts_each_storys_keys_between_commas_and_back(empty_database):
    """A database at 0009 whose stories carry keys as 0007 wrote them: after the upgrade each key stands
    between commas, a story without keys keeps "", and readiness in SQL reads them; a downgrade gives
    back exactly what was there."""
    from alembic import command

    from bot.store.db import create_engine
    from bot.store.migrate import alembic_config, upgrade

    engine = create_engine(empty_database)
    before = [
        (1, "acceptance_criteria,dependencies", "tests"),
        (2, "dependencies", ""),
        (3, "", ""),
    ]
    try:
        await upgrade(engine, "0009")
        async with engine.begin() as conn:
            for number, ready, done in before:
                await _insert_story(conn, number, ready_keys=ready, done_keys=done)
        await upgrade(engine)
        assert await _keys_of_stories(engine) == [
            (1, ",acceptance_criteria,dependencies,", ",tests,"),
            (2, ",dependencies,", ""),
            (3, "", ""),
        ]
        assert await _readiness_listed(engine) == (["S-2", "S-3"], [("S-1", 2), ("S-2", 1), ("S-3", 0)])

        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0009"))
        assert await _keys_of_stories(engine) == before
    finally:
        await engine.dispose()


async def test_0011_indexes_the_backlog_and_drops_only_its_indexes(empty_database):
    """A database at 0010 with stories in and out of a sprint: the upgrade to 0011 adds the backlog's two
    indexes, and SQLite counts the backlog's readiness from the index alone; a downgrade drops the two
    indexes and nothing else."""
    from alembic import command
    from sqlalchemy import inspect

    from bot.store.db import create_engine
    from bot.store.migrate import alembic_config, upgrade

    engine = create_engine(empty_database)

    async def story_indexes() -> dict[str, list[str]]:
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda c: inspect(c).get_indexes("story"))
        return {i["name"]: i["column_names"] for i in found}

    try:
        await upgrade(engine, "0010")
        before = await story_indexes()
        assert "ix_story_team_sprint_number" not in before
        await _sprint_and_three_stories(engine, third_keys="")
        await upgrade(engine, "0011")
        after = await story_indexes()
        assert after["ix_story_team_sprint_number"] == ["team", "sprint_id", "number"]
        assert after["ix_story_team_sprint_readiness"] == [
            "team",
            "sprint_id",
            "status",
            "type",
            "ready_keys",
        ]
        if engine.dialect.name == "sqlite":
            counted = "sum(instr(ready_keys, ',dependencies,') = 0)"
            assert "COVERING INDEX ix_story_team_sprint_readiness" in await _backlog_count_plan(
                engine, counted
            )

        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0010"))
        assert await story_indexes() == before
        assert [n for n, _, _ in await _keys_of_stories(engine)] == [1, 2, 3]
    finally:
        await engine.dispose()


async def test_0012_stores_whether_each_story_lacks_a_ready_criterion_and_back(empty_database):
    """A database at 0011 with stories in and out of a sprint, one of them Ready: after the upgrade every
    story starts out lacking (a migration does not know the configuration); the first start brings the
    column in line, lists and the plan read it, and SQLite counts the backlog from the new index alone.
    A downgrade gives back 0011's index and drops only the column."""
    from alembic import command
    from sqlalchemy import inspect, text

    from bot.store.db import create_engine
    from bot.store.migrate import alembic_config, upgrade

    engine = create_engine(empty_database)

    async def story_schema() -> tuple[dict[str, list[str]], list[str]]:
        async with engine.connect() as conn:
            found = await conn.run_sync(
                lambda c: (
                    inspect(c).get_indexes("story"),
                    [col["name"] for col in inspect(c).get_columns("story")],
                )
            )
        return {i["name"]: i["column_names"] for i in found[0]}, found[1]

    async def lacking_column() -> list[tuple[int, bool]]:
        async with engine.connect() as conn:
            found = await conn.execute(text("SELECT number, ready_lacking FROM story ORDER BY number"))
            return [(n, bool(v)) for n, v in found.all()]

    try:
        await upgrade(engine, "0011")
        before = await story_schema()
        await _sprint_and_three_stories(engine, third_keys=",dependencies,")
        await upgrade(engine)
        indexes, columns = await story_schema()
        assert "ready_lacking" in columns
        assert "ix_story_team_sprint_readiness" not in indexes
        assert indexes["ix_story_team_sprint_lacking"] == ["team", "sprint_id", "status", "ready_lacking"]
        assert await lacking_column() == [(1, True), (2, True), (3, True)]
        assert await _readiness_listed(engine) == (["S-1", "S-3"], [("S-1", 0), ("S-2", 2), ("S-3", 1)])
        assert await lacking_column() == [(1, True), (2, False), (3, True)]
        if engine.dialect.name == "sqlite":
            counted = "sum(ready_lacking)"
            assert "COVERING INDEX ix_story_team_sprint_lacking" in await _backlog_count_plan(engine, counted)

        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0011"))
        assert await story_schema() == before
        assert [n for n, _, _ in await _keys_of_stories(engine)] == [1, 2, 3]
    finally:
        await engine.dispose()


async def test_0013_raises_a_teams_revision_with_every_change_to_its_stories_and_sprints(empty_database):
    """A database at 0012 with stories of two teams: after the upgrade, every way of writing a story or a
    sprint (insert, update, a move between teams, delete, one UPDATE of many rows) raises the revision of
    each team it touched, in the same transaction, and a statement that changes nothing raises none. On
    PostgreSQL one statement raises a team's revision once, however many of its rows it wrote. A
    downgrade drops the table, the triggers and PostgreSQL's functions, and stories are written as before."""
    from alembic import command
    from sqlalchemy import inspect, text

    from bot.store.db import create_engine
    from bot.store.migrate import alembic_config, upgrade

    engine = create_engine(empty_database)
    postgres = engine.dialect.name == "postgresql"

    async def revisions() -> dict[str, int]:
        async with engine.connect() as conn:
            return dict((await conn.execute(text("SELECT team, revision FROM team_revision"))).all())

    async def write(sql: str) -> None:
        async with engine.begin() as conn:
            await conn.execute(text(sql))

    try:
        await upgrade(engine, "0012")
        await _sprint_and_three_stories(engine, third_keys="")
        async with engine.begin() as conn:
            await _insert_story(conn, 4, team="platform")
        await upgrade(engine)
        assert await revisions() == {}  # nothing written since: no answer was kept under an older one

        async with engine.begin() as conn:
            await _insert_story(conn, 5)
        assert await revisions() == {"recsys": 1}
        await write("UPDATE story SET title = 'renamed' WHERE number = 5")
        assert await revisions() == {"recsys": 2}
        await write("UPDATE story SET title = 'nothing' WHERE number = 999")
        assert await revisions() == {"recsys": 2}

        await write("UPDATE story SET points = 3")  # four recsys stories and one of platform's
        after_bulk = await revisions()
        assert after_bulk == ({"recsys": 3, "platform": 1} if postgres else {"recsys": 6, "platform": 1})

        await write("UPDATE story SET team = 'platform' WHERE number = 5")
        moved = await revisions()
        assert moved == {"recsys": after_bulk["recsys"] + 1, "platform": 2}
        await write("DELETE FROM story WHERE number = 5")
        assert await revisions() == {**moved, "platform": 3}
        await write("UPDATE sprint SET goal = 'ship it'")
        assert await revisions() == {**moved, "platform": 3, "recsys": moved["recsys"] + 1}

        async with engine.begin() as conn:  # rolled back: the revision goes back with the change
            await conn.execute(text("UPDATE story SET title = 'undone'"))
            await conn.rollback()
        assert (await revisions())["recsys"] == moved["recsys"] + 1

        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0012"))
        async with engine.connect() as conn:
            assert "team_revision" not in await conn.run_sync(lambda c: inspect(c).get_table_names())
            if postgres:
                functions = await conn.execute(
                    text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'cadence_team_revision%'")
                )
                assert functions.scalar() == 0
        await write("UPDATE story SET title = 'after the downgrade'")  # no trigger left to fail
        assert len(await _keys_of_stories(engine)) == 4
    finally:
        await engine.dispose()
