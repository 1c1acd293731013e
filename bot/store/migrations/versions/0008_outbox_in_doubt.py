"""outbox rows remember that an earlier send may have reached Slack, and when they fell due

A message whose send was cut short (the process died holding it, the call timed out, Slack answered
5xx) is marked in doubt; before sending it again the worker looks in the channel's recent history for
the outbox id the bot put in the message's metadata, and records the message as sent if it is there.
due_at (when queued, or its not_before) is what the delivery-latency histogram counts from.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 09:10:00
"""

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("in_doubt", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("due_at", bot.store.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("due_at")
        batch_op.drop_column("in_doubt")
