"""indexes for a team's backlog: its rows in number order, and its readiness counted from the index alone

A plan and `story list --sprint backlog` read a team's stories outside any sprint. With only (team, number) and
(team, status), SQLite walked every one of the team's stories, in or out of a sprint, and read each row
from the table to count the backlog's readiness. (team, sprint_id, number) walks the backlog alone in
number order, so a page stops at its last row; (team, sprint_id, status, type, ready_keys) holds every
column the count reads, so counting never touches the table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 09:10:00
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_story_team_sprint_number": ["team", "sprint_id", "number"],
    "ix_story_team_sprint_readiness": ["team", "sprint_id", "status", "type", "ready_keys"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "story", columns, unique=False)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="story")
