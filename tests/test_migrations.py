"""The Alembic revisions build exactly the schema the models describe."""

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
