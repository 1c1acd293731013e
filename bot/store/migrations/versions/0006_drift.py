"""drift readings and incidents; story details

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 17:11:33.535208
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "drift_reading",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("metric", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("feature", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("window_end", bot.store.types.UTCDateTime(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("received_at", bot.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model", "metric", "feature", "source", "window_end", name="uq_drift_reading"),
    )
    with op.batch_alter_table("drift_reading", schema=None) as batch_op:
        batch_op.create_index("ix_drift_reading_window", ["window_end"], unique=False)

    op.create_table(
        "drift_incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("team", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("metric", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("feature", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("live", sa.Integer(), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("severity", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("peak_severity", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("direction", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("breach_streak", sa.Integer(), nullable=False),
        sa.Column("ok_streak", sa.Integer(), nullable=False),
        sa.Column("breaching_windows", sa.Integer(), nullable=False),
        sa.Column("recent", sa.Text(), nullable=False),
        sa.Column("first_seen", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("last_seen", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("last_window", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("opened_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("ack_due_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("acked_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("acked_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("snoozed_until", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("snoozed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("snooze_until_resolved", sa.Boolean(), nullable=False),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("reopened", sa.Integer(), nullable=False),
        sa.Column("resolved_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("resolve_reason", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("story_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.Column("edit_due_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("runbook", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("created_at", bot.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", bot.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbox.id"],
        ),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["story.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("team", "model", "metric", "feature", "live", name="uq_drift_incident_live"),
    )
    with op.batch_alter_table("drift_incident", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drift_incident_fingerprint"), ["fingerprint"], unique=False)
        batch_op.create_index("ix_drift_incident_state", ["state", "ack_due_at"], unique=False)

    with op.batch_alter_table("story", schema=None) as batch_op:
        batch_op.add_column(sa.Column("details", sa.Text(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("story", schema=None) as batch_op:
        batch_op.drop_column("details")

    with op.batch_alter_table("drift_incident", schema=None) as batch_op:
        batch_op.drop_index("ix_drift_incident_state")
        batch_op.drop_index(batch_op.f("ix_drift_incident_fingerprint"))

    op.drop_table("drift_incident")
    with op.batch_alter_table("drift_reading", schema=None) as batch_op:
        batch_op.drop_index("ix_drift_reading_window")

    op.drop_table("drift_reading")
