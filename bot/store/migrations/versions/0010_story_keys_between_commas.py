"""a story's satisfied criterion keys are stored each between commas

story.ready_keys and story.done_keys held the keys comma-joined ("a,b"); readiness in SQL padded every
row's text with commas before looking for ",key,", once per criterion and row. They now hold ",a,b,"
(and "" for none), so SQL looks for ",key," in the stored text as it is.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 01:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COLUMNS = ("ready_keys", "done_keys")


def upgrade() -> None:
    bind = op.get_bind()
    for column in _COLUMNS:
        bind.execute(sa.text(f"UPDATE story SET {column} = ',' || {column} || ',' WHERE {column} <> ''"))


def downgrade() -> None:
    bind = op.get_bind()
    for column in _COLUMNS:
        bind.execute(
            sa.text(
                f"UPDATE story SET {column} = substr({column}, 2, length({column}) - 2) WHERE {column} <> ''"
            )
        )
