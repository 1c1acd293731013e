"""The schema: every table Cadence keeps. Alembic revisions in migrations/ create it."""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlmodel import Field, SQLModel

from bot.store.types import UTCDateTime, utcnow


def _when(*, nullable: bool = False, index: bool = False) -> Column:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Counter(SQLModel, table=True):
    """Next number for each kind of user-visible key (S, E, R, D): gapless, never reused."""

    name: str = Field(primary_key=True, max_length=16)
    value: int = 0


class TeamRevision(SQLModel, table=True):
    """A number the database raises whenever one of the team's stories or sprints changes (triggers of
    migration 0013, in the same transaction): an answer rendered at one revision is still true while the
    team's row says the same (bot/slack/answers.py). No row yet: nothing of the team was ever written."""

    __tablename__ = "team_revision"

    team: str = Field(primary_key=True, max_length=40)
    revision: int = Field(sa_column=Column(BigInteger, nullable=False))


class Sprint(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("team", "name", name="uq_sprint_team_name"),)

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(index=True, max_length=40)
    name: str = Field(max_length=80)
    starts_on: date
    ends_on: date
    goal: str | None = Field(default=None, max_length=500)
    state: str = Field(default="planned", max_length=16)  # planned | active | closed
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    closed_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class SprintRow(NamedTuple):
    """A sprint as a plan shows it: the columns of its row, read as a plain tuple. The plan reads its
    sprint beside the backlog's counts and only shows it; a Sprint table object cost about 30 µs to
    build from the row (SQLAlchemy's instrumented attributes), a tenth of the plan's own work."""

    id: int
    team: str
    name: str
    starts_on: date
    ends_on: date
    goal: str | None
    state: str
    created_by: str
    created_at: datetime
    closed_at: datetime | None


SPRINT_ROW = tuple(getattr(Sprint, name) for name in SprintRow._fields)  # the columns, in SprintRow's order


class Story(SQLModel, table=True):
    __table_args__ = (
        Index("ix_story_team_status", "team", "status"),
        Index("ix_story_team_number", "team", "number"),  # a team's list, page by page in number order
        # A sprint's or the backlog's stories in number order (migration 0011).
        Index("ix_story_team_sprint_number", "team", "sprint_id", "number"),
        # The backlog's size and how much of it is not Ready, counted from the index alone (migration 0012).
        Index("ix_story_team_sprint_lacking", "team", "sprint_id", "status", "ready_lacking"),
        Index("ix_story_owner", "owner"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)
    team: str = Field(max_length=40)
    type: str = Field(max_length=16)
    title: str = Field(max_length=200)
    owner: str | None = Field(default=None, max_length=32)
    points: int | None = None
    sprint_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("sprint.id"), nullable=True, index=True)
    )
    status: str = Field(default="open", max_length=16)  # open | in_progress | blocked | done | archived
    blocked_reason: str | None = Field(default=None, max_length=300)  # why, while status is blocked
    details: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # e.g. drift evidence
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    done_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    # The criteria satisfied (answered or waived), in key order, each between commas (",a,b,", or "" for
    # none; readiness.stored_keys): a copy of criterion_value
    # kept by readiness.record_answers in the same transaction, so lists filter and show readiness from
    # the story row alone. Which keys a type needs is configuration, read when the question is asked.
    ready_keys: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    done_keys: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # Whether the story lacks a Ready criterion its type asks for, under the configuration the processes
    # run with: set with ready_keys and type (readiness.refresh_lacking), and brought in line with the
    # configuration when a process starts (readiness.reconcile). Lists, plans and counts filter on it
    # instead of weighing every row's keys.
    ready_lacking: bool = Field(
        default=True, sa_column=Column(Boolean, nullable=False, server_default=true())
    )

    @property
    def key(self) -> str:
        return story_key(self.number)

    @property
    def closed(self) -> bool:
        """Done or archived: off the board, its checklists and fields frozen."""
        return closed_status(self.status)


STORY_ACTIVE = ("open", "in_progress", "blocked")  # the statuses of a story still on the board


def story_key(number: int) -> str:
    """How people name a story: S-12 (Story and StoryRow both answer to .key)."""
    return f"S-{number}"


def closed_status(status: str) -> bool:
    """Done or archived: off the board (Story and StoryRow both answer to .closed)."""
    return status not in STORY_ACTIVE


class StoryRow(NamedTuple):
    """A story as lists show it: the columns of its row, read as a plain tuple. A list or a plan shows
    dozens of stories and changes none; building them as ORM objects (identity map, instance state,
    pydantic's private attributes) cost about 16 µs a story, most of a plan's time."""

    id: int
    number: int
    team: str
    type: str
    title: str
    owner: str | None
    points: int | None
    sprint_id: int | None
    status: str
    blocked_reason: str | None
    ready_keys: str
    done_keys: str

    @property
    def key(self) -> str:
        return story_key(self.number)

    @property
    def closed(self) -> bool:
        return closed_status(self.status)


STORY_ROW = tuple(getattr(Story, name) for name in StoryRow._fields)  # the columns, in StoryRow's order


class CriterionValue(SQLModel, table=True):
    """One Definition-of-Ready or -Done answer for a story: a value, or n/a with a reason."""

    __tablename__ = "criterion_value"
    __table_args__ = (UniqueConstraint("story_id", "kind", "key", name="uq_criterion_story_kind_key"),)

    id: int | None = Field(default=None, primary_key=True)
    story_id: int = Field(
        sa_column=Column(Integer, ForeignKey("story.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(max_length=8)  # ready | done
    key: str = Field(max_length=40)
    value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    na_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    set_by: str = Field(max_length=32)
    set_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class AuditEvent(SQLModel, table=True):
    """Append-only, hash-chained record of every decision."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_subject", "subject"),)

    seq: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    at: datetime = Field(sa_column=_when())
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)
    subject: str = Field(max_length=200)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON, exactly as hashed
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class SlackEvent(SQLModel, table=True):
    """Events API deliveries already handled, so a retry is not handled twice."""

    __tablename__ = "slack_event"

    event_id: str = Field(primary_key=True, max_length=64)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_when(index=True))


UPLOAD_METHOD = "files.upload_v2"  # an outbox row of files: slack_sdk's three-step upload, not one method


class OutboxMessage(SQLModel, table=True):
    """A message the bot sends on its own initiative; delivered by the outbox worker."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_channel_claimed", "channel", "claimed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    method: str = Field(default="chat.postMessage", max_length=40)
    channel: str = Field(max_length=32)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON arguments for the Web API method
    state: str = Field(default="pending", max_length=16)  # pending | sending | sent | dead
    attempts: int = 0
    locked_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    claimed_at: datetime | None = Field(
        default=None, sa_column=_when(nullable=True)
    )  # last send attempt began
    # chat.update of an earlier message, or a reply in its thread: its ts is known only once it is sent
    update_of: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("outbox.id", name="fk_outbox_update_of"), nullable=True),
    )
    thread_of: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("outbox.id", name="fk_outbox_thread_of"), nullable=True),
    )
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    due_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))  # queued, or its not_before
    sent_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    slack_ts: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # an earlier send may have reached Slack (cut short by a crash, a timeout or a 5xx): look before resending
    in_doubt: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))


class OccasionSeen(SQLModel, table=True):
    """When the clock first knew of a team's occasion (a ceremony, a nudge round, a summary): a start
    looks back for runs it missed, but never to before the occasion was in the configuration."""

    __tablename__ = "occasion_seen"

    team: str = Field(primary_key=True, max_length=40)
    kind: str = Field(primary_key=True, max_length=40)
    since: datetime = Field(sa_column=_when())


class CeremonyRun(SQLModel, table=True):
    """One scheduled occurrence (a reminder, a nudge round, a standup summary), claimed exactly once."""

    __tablename__ = "ceremony_run"
    __table_args__ = (UniqueConstraint("team", "ceremony", "scheduled_for", name="uq_ceremony_run"),)

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=40)
    ceremony: str = Field(max_length=40)  # standup, standup_summary, planning, planning_nudge, review, …
    scheduled_for: datetime = Field(sa_column=_when())
    status: str = Field(max_length=16)  # done | skipped | missed
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sprint_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("sprint.id"), nullable=True)
    )
    message_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("outbox.id"), nullable=True)
    )
    claimed_by: str = Field(max_length=80)
    claimed_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Away(SQLModel, table=True):
    """A person's time away (inclusive dates): no reminders, nudges or standup prompts."""

    __table_args__ = (Index("ix_away_user", "user_id", "ends_on"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=32)
    starts_on: date
    ends_on: date
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Member(SQLModel, table=True):
    """What Cadence knows about a person: standup DM opt-in and their Slack time zone (cached)."""

    user_id: str = Field(primary_key=True, max_length=32)
    standup_dm: bool = False
    tz: str | None = Field(default=None, max_length=64)
    tz_fetched_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class StandupAnswer(SQLModel, table=True):
    __tablename__ = "standup_answer"
    __table_args__ = (UniqueConstraint("run_id", "user_id", name="uq_standup_answer"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(sa_column=Column(Integer, ForeignKey("ceremony_run.id"), nullable=False))
    user_id: str = Field(max_length=32)
    yesterday: str = Field(default="", sa_column=Column(Text, nullable=False))
    today: str = Field(default="", sa_column=Column(Text, nullable=False))
    blockers: str = Field(default="", sa_column=Column(Text, nullable=False))
    links: str = Field(default="", max_length=500)
    submitted_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class ExperimentBase(SQLModel):
    """What an experiment says about itself: the table stores these fields and the API's bodies build
    on them (bot/api/schemas.py). The limits are the columns' and the services' (experiments.py)."""

    name: str = Field(min_length=1, max_length=200)
    hypothesis: str = Field(default="", max_length=2000, sa_type=Text)  # a TEXT column: no length in SQL
    metric: str | None = Field(default=None, max_length=100)
    baseline: float | None = None
    target: float | None = None
    higher_is_better: bool = True
    owner: str | None = Field(default=None, max_length=32)


class Experiment(ExperimentBase, table=True):
    """An ML experiment (E-n) linked to a story: hypothesis, primary metric, baseline and target."""

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)
    story_id: int = Field(sa_column=Column(Integer, ForeignKey("story.id"), nullable=False, index=True))
    team: str = Field(max_length=40)
    status: str = Field(
        default="proposed", max_length=16
    )  # proposed | running | succeeded | failed | abandoned
    stage: str = Field(default="none", max_length=16)  # none | canary | production: what reviews approved
    external_id: str | None = Field(default=None, max_length=200, unique=True)
    mlflow_run_id: str | None = Field(default=None, max_length=64, index=True)
    links: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON: {"mlflow": url, ...}
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_when())

    @property
    def key(self) -> str:
        return f"E-{self.number}"


class ExperimentResult(SQLModel, table=True):
    __tablename__ = "experiment_result"
    __table_args__ = (UniqueConstraint("experiment_id", "metric", "run_id", name="uq_experiment_result"),)

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(
        sa_column=Column(Integer, ForeignKey("experiment.id", ondelete="CASCADE"), nullable=False)
    )
    metric: str = Field(max_length=100)
    value: float
    run_id: str = Field(default="", max_length=64)  # MLflow run or pipeline run that produced it
    source: str = Field(max_length=16)  # slack | api | mlflow
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Review(SQLModel, table=True):
    """A governance review (R-n): a promotion that the team's approvers must decide."""

    __table_args__ = (Index("ix_review_state", "state", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)
    team: str = Field(max_length=40)
    experiment_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("experiment.id"), nullable=True, index=True)
    )
    purpose: str = Field(max_length=16)  # canary | production
    subject: str = Field(max_length=300)  # what is being promoted, in words
    requested_by: str = Field(max_length=64)
    source: str = Field(max_length=16)  # slack | policy | mlflow | api
    source_key: str | None = Field(default=None, max_length=300, unique=True)  # dedupes automatic requests
    state: str = Field(
        default="pending", max_length=20
    )  # pending | approved | changes_requested | rejected | withdrawn
    required_approvals: int = 1
    message_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("outbox.id"), nullable=True)
    )
    reminded_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    decided_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))

    @property
    def key(self) -> str:
        return f"R-{self.number}"


class ReviewDecision(SQLModel, table=True):
    __tablename__ = "review_decision"
    __table_args__ = (UniqueConstraint("review_id", "approver", name="uq_review_decision"),)

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(sa_column=Column(Integer, ForeignKey("review.id"), nullable=False))
    approver: str = Field(max_length=32)
    verdict: str = Field(max_length=20)  # approve | request_changes | reject
    rationale: str = Field(default="", sa_column=Column(Text, nullable=False))
    decided_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class DriftReading(SQLModel, table=True):
    """One value of a monitored metric for one window: stored once, kept `drift.retention_days`."""

    __tablename__ = "drift_reading"
    __table_args__ = (
        UniqueConstraint("model", "metric", "feature", "source", "window_end", name="uq_drift_reading"),
        Index("ix_drift_reading_window", "window_end"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(max_length=200)
    metric: str = Field(max_length=100)
    feature: str = Field(default="", max_length=200)  # "" when the metric is not about one feature
    source: str = Field(default="", max_length=100)
    window_end: datetime = Field(sa_column=_when())
    value: float
    labels: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    received_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class DriftIncident(SQLModel, table=True):
    """A drift problem a team owns (D-n): one per (team, model, metric, feature) while it is live.

    `live` is 1 while the incident is pending, open or acknowledged and NULL once resolved, so the
    unique index allows one live incident per key and any number of resolved ones."""

    __tablename__ = "drift_incident"
    __table_args__ = (
        UniqueConstraint("team", "model", "metric", "feature", "live", name="uq_drift_incident_live"),
        Index("ix_drift_incident_state", "state", "ack_due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: int | None = Field(default=None, unique=True)  # given when it opens; a pending one has none
    team: str = Field(max_length=40)
    model: str = Field(max_length=200)
    metric: str = Field(max_length=100)
    feature: str = Field(default="", max_length=200)
    live: int | None = 1
    state: str = Field(default="pending", max_length=16)  # pending | open | acknowledged | resolved
    severity: str = Field(default="warn", max_length=8)  # warn | critical: the latest breaching window's
    peak_severity: str = Field(default="warn", max_length=8)
    direction: str = Field(max_length=8)  # above | below, from the rule that matched
    threshold: float | None = None  # the threshold the latest value is compared with
    value: float | None = None  # the latest value
    source: str = Field(default="", max_length=100)
    fingerprint: str | None = Field(default=None, max_length=100, index=True)  # Alertmanager's
    breach_streak: int = 0  # consecutive breaching windows (before it opens: towards `for`)
    ok_streak: int = 0  # consecutive windows back in range (towards `resolve_after`)
    breaching_windows: int = 0
    recent: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON [[iso, value], …]
    first_seen: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    last_seen: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    last_window: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    opened_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    ack_due_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    acked_by: str | None = Field(default=None, max_length=64)
    acked_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    snoozed_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    snoozed_by: str | None = Field(default=None, max_length=64)
    snooze_until_resolved: bool = False
    reminders: int = 0
    reopened: int = 0
    resolved_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    resolved_by: str | None = Field(default=None, max_length=64)
    resolve_reason: str | None = Field(default=None, max_length=300)
    story_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("story.id"), nullable=True)
    )
    message_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("outbox.id"), nullable=True)
    )
    replies: int = 0  # thread replies queued so far (their dedupe keys count up)
    edit_due_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))  # last paced edit
    channel: str = Field(max_length=32)
    runbook: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_when())

    @property
    def key(self) -> str:
        return f"D-{self.number}"
