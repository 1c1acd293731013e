"""each team's revision: a number the database raises whenever one of the team's stories or sprints changes

A list or a plan asked again, with nothing of the team changed since, is answered from the answer
Cadence rendered last time (bot/slack/answers.py), after reading this one row instead of the backlog.
The number is raised by triggers, in the same transaction as the change, so no way of writing a story
or a sprint can miss it: the services' ORM writes, their bulk UPDATEs (readiness.reconcile), a person
with psql. Two writers of one team queue on its row until the first commits, so a reader that sees a
revision also sees every change made before it.

- PostgreSQL: statement-level triggers reading the transition tables, so an UPDATE of 100,000 stories
  raises each team's revision once. Teams are taken in name order, so two statements that touch several
  teams lock their rows in the same order.
- SQLite: row-level triggers (SQLite has no others); it has one writer at a time, so nothing queues.

SQLite's batch_alter_table copies a table and drops the old one, which drops its triggers: a later
migration that alters story or sprint that way must create them again (see TRIGGERED and
create_triggers).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TRIGGERED = ("story", "sprint")  # the tables a team's lists and plans are read from

_RAISE_PG = """
CREATE FUNCTION cadence_team_revision_{which}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO team_revision (team, revision)
    SELECT team, 1 FROM ({rows}) AS changed GROUP BY team ORDER BY team
    ON CONFLICT (team) DO UPDATE SET revision = team_revision.revision + 1;
    RETURN NULL;
END $$
"""
# each event: the SQL event, PostgreSQL's transition tables, the teams they hold, and SQLite's row-level
# raises as (team, only when)
_EVENTS = {
    "inserted": ("INSERT", "NEW TABLE AS new_rows", "SELECT team FROM new_rows", [("NEW.team", "true")]),
    "deleted": ("DELETE", "OLD TABLE AS old_rows", "SELECT team FROM old_rows", [("OLD.team", "true")]),
    "updated": (
        "UPDATE",
        "NEW TABLE AS new_rows OLD TABLE AS old_rows",
        "SELECT team FROM new_rows UNION ALL SELECT team FROM old_rows",
        [("NEW.team", "true"), ("OLD.team", "OLD.team <> NEW.team")],
    ),
}
_RAISE_SQLITE = (
    "INSERT INTO team_revision (team, revision) SELECT {team}, 1 WHERE {condition} "
    "ON CONFLICT (team) DO UPDATE SET revision = revision + 1;"
)


def _postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def create_triggers(table: str) -> None:
    """The triggers that raise a team's revision when `table` changes."""
    for which, (event, transition, _, raises) in _EVENTS.items():
        name = f"{table}_team_revision_{which}"
        if _postgres():
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {transition} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION cadence_team_revision_{which}()"
            )
        else:
            body = " ".join(_RAISE_SQLITE.format(team=team, condition=when) for team, when in raises)
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW BEGIN {body} END")


def drop_triggers(table: str) -> None:
    for which in _EVENTS:
        op.execute(
            f"DROP TRIGGER IF EXISTS {table}_team_revision_{which}" + (f" ON {table}" if _postgres() else "")
        )


def upgrade() -> None:
    op.create_table(
        "team_revision",
        sa.Column("team", sa.String(length=40), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("team"),
    )
    if _postgres():
        for which, (_, _, rows, _) in _EVENTS.items():
            op.execute(_RAISE_PG.format(which=which, rows=rows))
    for table in TRIGGERED:
        create_triggers(table)


def downgrade() -> None:
    for table in TRIGGERED:
        drop_triggers(table)
    if _postgres():
        for which in _EVENTS:
            op.execute(f"DROP FUNCTION IF EXISTS cadence_team_revision_{which}()")
    op.drop_table("team_revision")
