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
