"""stories carry the readiness and done criteria they satisfy, and are indexed by team and number

Lists of a long backlog filter by readiness and page in number order from the story rows alone:
story.ready_keys and story.done_keys hold the satisfied criterion keys (comma-joined, sorted), filled
here from criterion_value and kept by the service that writes answers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 04:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("story", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ready_keys", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("done_keys", sa.Text(), nullable=False, server_default=""))
        batch_op.create_index("ix_story_team_number", ["team", "number"], unique=False)
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT story_id, kind, key FROM criterion_value ORDER BY story_id, kind, key")
    ).all()
    keys: dict[tuple[int, str], list[str]] = {}
    for story_id, kind, key in rows:
        keys.setdefault((story_id, kind), []).append(key)
    for (story_id, kind), found in keys.items():
        column = "ready_keys" if kind == "ready" else "done_keys"
        bind.execute(
            sa.text(f"UPDATE story SET {column} = :keys WHERE id = :id"),
            {"keys": ",".join(found), "id": story_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("story", schema=None) as batch_op:
        batch_op.drop_index("ix_story_team_number")
        batch_op.drop_column("done_keys")
        batch_op.drop_column("ready_keys")
