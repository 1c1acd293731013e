"""ceremonies, away, members, standups, outbox links

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 04:48:07.658033
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "away",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("created_at", bot.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("away", schema=None) as batch_op:
        batch_op.create_index("ix_away_user", ["user_id", "ends_on"], unique=False)

    op.create_table(
        "member",
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("standup_dm", sa.Boolean(), nullable=False),
        sa.Column("tz", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("tz_fetched_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "ceremony_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("ceremony", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("scheduled_for", bot.store.types.UTCDateTime(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("sprint_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("claimed_at", bot.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbox.id"],
        ),
        sa.ForeignKeyConstraint(
            ["sprint_id"],
            ["sprint.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team", "ceremony", "scheduled_for", name="uq_ceremony_run"),
    )
    op.create_table(
        "standup_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("yesterday", sa.Text(), nullable=False),
        sa.Column("today", sa.Text(), nullable=False),
        sa.Column("blockers", sa.Text(), nullable=False),
        sa.Column("links", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("submitted_at", bot.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", bot.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["ceremony_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "user_id", name="uq_standup_answer"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locked_until", bot.store.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", bot.store.types.UTCDateTime(), nullable=True))
        batch_op.create_index("ix_outbox_channel_claimed", ["channel", "claimed_at"], unique=False)
        batch_op.add_column(sa.Column("update_of", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("thread_of", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_outbox_thread_of", "outbox", ["thread_of"], ["id"])
        batch_op.create_foreign_key("fk_outbox_update_of", "outbox", ["update_of"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint("fk_outbox_update_of", type_="foreignkey")
        batch_op.drop_constraint("fk_outbox_thread_of", type_="foreignkey")
        batch_op.drop_column("thread_of")
        batch_op.drop_column("update_of")
        batch_op.drop_index("ix_outbox_channel_claimed")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("locked_until")

    op.drop_table("standup_answer")
    op.drop_table("ceremony_run")
    op.drop_table("member")
    with op.batch_alter_table("away", schema=None) as batch_op:
        batch_op.drop_index("ix_away_user")

    op.drop_table("away")
