"""What happened: small facts a service records on the transaction it ran in. Services never post;
the notifier (bot/notify) turns these into outbox messages before the same transaction commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.db import PENDING_EVENTS


class Event:
    """Base of every domain event: frozen dataclasses of ids and values, nothing from Slack."""


@dataclass(frozen=True)
class AuditAnchored(Event):
    """The audit log's newest row, to be posted where the database cannot reach (docs/audit.md)."""

    seq: int
    digest: str


@dataclass(frozen=True)
class AuditCheckFailed(Event):
    """The scheduled check found the audit log changed: `reason` names the first row that differs."""

    first_bad_seq: int | None
    reason: str


@dataclass(frozen=True)
class StoryAssigned(Event):
    story_id: int
    owner: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class StoryDone(Event):
    story_id: int
    actor: str


@dataclass(frozen=True)
class SprintStarted(Event):
    """A sprint was created: the current one when the team had none, else the next."""

    sprint_id: int
    actor: str


@dataclass(frozen=True)
class StoriesCommitted(Event):
    sprint_id: int
    story_ids: tuple[int, ...]
    forced_ids: tuple[int, ...]  # committed although not Ready (their owners are told)
    actor: str
    scope_added: bool  # the sprint was already under way
    reason: str | None = None  # why the forced ones were let in


@dataclass(frozen=True)
class SprintClosed(Event):
    sprint_id: int
    next_sprint_id: int | None  # where unfinished stories went; None: the backlog
    actor: str
    done_ids: tuple[int, ...]
    carried_ids: tuple[int, ...]


@dataclass(frozen=True)
class ReadinessChanged(Event):
    """Criteria of one checklist (ready or done) of a story were answered, waived or cleared."""

    story_id: int
    kind: str
    actor: str


@dataclass(frozen=True)
class StandupAnswered(Event):
    run_id: int
    user_id: str
    first: bool  # the person's first answer to this standup (a later one replaces it)
    at: datetime


@dataclass(frozen=True)
class ReviewSummaryRequested(Event):
    """Someone asked for a sprint's review summary to be posted in the team channel now."""

    sprint_id: int
    actor: str
    at: datetime


@dataclass(frozen=True)
class CeremonyDue(Event):
    """A ceremony occurrence was claimed and is to be held now: a reminder, a nudge round, a summary."""

    run_id: int
    now: datetime
    zones: tuple[tuple[str, str], ...] = ()  # standup DM recipients' own time zones (user, zone name)


@dataclass(frozen=True)
class ReviewRequested(Event):
    review_id: int


@dataclass(frozen=True)
class ReviewDecided(Event):
    review_id: int
    approver: str
    closed_now: bool


@dataclass(frozen=True)
class ReviewWithdrawn(Event):
    """A pending review closed because its experiment failed or was abandoned: nothing to promote."""

    review_id: int
    actor: str  # who ended the experiment


@dataclass(frozen=True)
class ReviewOverdue(Event):
    """A pending review passed its team's SLA; its one reminder was claimed."""

    review_id: int


@dataclass(frozen=True)
class DriftOpened(Event):
    """A drift incident opened (its first message), or a resolved one reopened under the same D-n."""

    incident_id: int
    reopened: bool
    at: datetime


@dataclass(frozen=True)
class DriftChanged(Event):
    """Something shown on the incident's message changed. `urgent`: a person did it (edit at once);
    otherwise new readings (edits are paced, so a storm of readings makes few Slack calls)."""

    incident_id: int
    urgent: bool


@dataclass(frozen=True)
class DriftEscalated(Event):
    """The incident reached a worse severity than before (warn to critical)."""

    incident_id: int


@dataclass(frozen=True)
class DriftResolved(Event):
    incident_id: int
    actor: str


@dataclass(frozen=True)
class DriftAckOverdue(Event):
    """Nobody acknowledged an open incident in time; its reminder was claimed."""

    incident_id: int


def record(session: AsyncSession, event: Event) -> None:
    """Note `event` on the transaction; it is published when the unit of work ends normally."""
    session.info.setdefault(PENDING_EVENTS, []).append(event)


def take(session: AsyncSession) -> list[Event]:
    """The events recorded so far, in order, forgetting them."""
    return list(session.info.pop(PENDING_EVENTS, []))
