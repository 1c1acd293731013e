"""when the clock first knew of each team occasion, so a ceremony added later is not caught up

A start looks back up to 26 hours for runs it missed. A ceremony just added to the configuration was
never missed before it was there, so the look-back for it begins when the clock first saw it. Existing
occasions are seeded from their first recorded run.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "occasion_seen",
        sa.Column("team", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("since", bot.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team", "kind"),
    )
    op.execute(
        "INSERT INTO occasion_seen (team, kind, since) "
        "SELECT team, ceremony, min(scheduled_for) FROM ceremony_run GROUP BY team, ceremony"
    )


def downgrade() -> None:
    op.drop_table("occasion_seen")
