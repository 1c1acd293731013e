"""The sprint review: what a Scrum master would otherwise assemble by hand from the board, the
experiment tracker and the decision log, for one team and one sprint.

Everything is computed from facts the database already records, so a restart never loses a figure:
commits, forced commits and drops are audit rows (`sprint.commit`, `sprint.force_commit`,
`sprint.drop`, whose payload names the sprint and says whether scope was added); carry-over is the
previous sprint's `sprint.close` row; completion is a story's `done_at`; readiness waivers and the
Definition of Done are the stories' criterion values; experiments, governance decisions, drift
incidents and standup answers are their own tables. The result is plain data (`SprintReview`): the
templates and charts in bot/notify/ turn it into Slack, Markdown and HTML.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig, Team
from bot.services import drift, events, experiments, readiness
from bot.services.errors import Forbidden, NotFound
from bot.services.sprints import resolve_sprint
from bot.store.models import (
    AuditEvent,
    CeremonyRun,
    Experiment,
    ExperimentResult,
    Review,
    ReviewDecision,
    Sprint,
    StandupAnswer,
    Story,
)

COMMITS = ("sprint.commit", "sprint.force_commit")
VELOCITY_SPRINTS = 6  # how many sprints the velocity covers, this one included


# ── what the review says ─────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class StoryLine:
    key: str
    title: str
    type: str
    owner: str | None
    points: int | None
    status: str
    done_on: date | None = None


@dataclass(frozen=True)
class ForcedCommit:
    key: str
    title: str
    by: str
    reason: str
    missing: tuple[str, ...]  # the labels of the criteria it lacked
    on: date


@dataclass(frozen=True)
class Waiver:
    key: str
    criterion: str  # its label
    reason: str
    by: str | None


@dataclass(frozen=True)
class Readiness:
    gated: int  # stories committed through the gate for this sprint (carry-over is not gated again)
    ready: int  # of which Ready when committed
    forced: tuple[ForcedCommit, ...]
    waivers: tuple[Waiver, ...]  # n/a answers, with their reasons, of the committed stories

    @property
    def ready_share(self) -> float | None:
        return self.ready / self.gated if self.gated else None


@dataclass(frozen=True)
class DoneCheck:
    done: int  # stories completed
    fully_met: int  # with every Definition-of-Done criterion answered, none waived
    waivers: tuple[Waiver, ...]

    @property
    def share(self) -> float | None:
        return self.fully_met / self.done if self.done else None


@dataclass(frozen=True)
class ExperimentLine:
    key: str
    name: str
    story: str
    status: str
    metric: str | None
    value: float | None
    baseline: float | None
    target: float | None
    delta: float | None
    target_met: bool | None
    higher_is_better: bool
    runs: int  # results recorded in the sprint


@dataclass(frozen=True)
class Decision:
    review: str
    subject: str
    approver: str
    verdict: str  # approve | request_changes | reject
    rationale: str
    at: datetime


@dataclass(frozen=True)
class DriftLine:
    opened: int
    median_time_to_ack: timedelta | None
    stories_created: int
    stories_open: int
    still_open: int
    incidents: tuple[str, ...]


@dataclass(frozen=True)
class Blocker:
    user: str
    text: str
    on: date


@dataclass(frozen=True)
class VelocityPoint:
    sprint: str
    committed: int
    completed: int


@dataclass(frozen=True)
class BurndownPoint:
    day: date
    ideal: float
    remaining: int | None  # None for days still to come


@dataclass(frozen=True)
class SprintReview:
    team: str
    sprint: str
    goal: str | None
    starts_on: date
    ends_on: date
    state: str
    timezone: str
    generated_at: datetime
    committed: tuple[StoryLine, ...]  # at planning: carried in and committed before the sprint started
    carried_in: tuple[StoryLine, ...]
    added: tuple[StoryLine, ...]  # scope added after the start
    removed: tuple[StoryLine, ...]  # dropped back to the backlog
    completed: tuple[StoryLine, ...]
    not_done: tuple[StoryLine, ...]  # carried over to the next sprint, or still open
    carried_to: str | None  # where the unfinished stories went, once closed ("backlog" or a sprint)
    readiness: Readiness
    done_check: DoneCheck
    velocity: tuple[VelocityPoint, ...]  # oldest first, this sprint last
    burndown: tuple[BurndownPoint, ...]
    experiments: tuple[ExperimentLine, ...]
    decisions: tuple[Decision, ...]
    drift: DriftLine
    blockers: tuple[Blocker, ...]
    extra: dict[str, object] = field(default_factory=dict)

    @staticmethod
    def points(lines: Iterable[StoryLine]) -> int:
        return sum(s.points or 0 for s in lines)

    @property
    def committed_points(self) -> int:
        return self.points(self.committed)

    @property
    def completed_points(self) -> int:
        return self.points(self.completed)

    @property
    def added_points(self) -> int:
        return self.points(self.added)

    @property
    def average_velocity(self) -> float | None:
        done = (
            [v.completed for v in self.velocity[:-1]]
            if self.state != "closed"
            else [v.completed for v in self.velocity]
        )
        return statistics.fmean(done) if done else None


# ── the facts ────────────────────────────────────────────────────────────────────────────────


def window(sprint: Sprint, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The sprint in UTC: from its first day's midnight to after its last day (or its closing, if later)."""
    starts = datetime.combine(sprint.starts_on, time(), zone).astimezone(UTC)
    ends = datetime.combine(sprint.ends_on + timedelta(days=1), time(), zone).astimezone(UTC)
    if sprint.closed_at is not None and sprint.closed_at > ends:
        ends = sprint.closed_at
    return starts, ends


@dataclass
class _Commit:
    key: str
    at: datetime
    actor: str
    forced: bool
    scope_added: bool
    payload: dict[str, object]


async def _sprint_audit(
    session: AsyncSession, team: str, sprint: Sprint
) -> tuple[dict[str, _Commit], set[str], dict[str, object] | None]:
    """This sprint's commits (the first per story), the stories dropped from it and not committed again,
    and its `sprint.close` payload."""
    rows = (
        await session.exec(
            select(AuditEvent)
            .where(
                col(AuditEvent.action).in_((*COMMITS, "sprint.drop")),
                col(AuditEvent.at) >= sprint.created_at - timedelta(seconds=1),
            )
            .order_by(col(AuditEvent.seq))
        )
    ).all()
    commits: dict[str, _Commit] = {}
    dropped: set[str] = set()
    for row in rows:
        payload = json.loads(row.payload)
        if payload.get("team") != team or payload.get("sprint") != sprint.name:
            continue
        if row.action == "sprint.drop":
            dropped.add(row.subject)
            continue
        dropped.discard(row.subject)
        if row.subject not in commits:
            commits[row.subject] = _Commit(
                row.subject,
                row.at,
                row.actor,
                row.action == "sprint.force_commit",
                bool(payload.get("scope_added")),
                payload,
            )
    close = await _close_payload(session, team, sprint)
    return commits, dropped, close


async def _close_payload(session: AsyncSession, team: str, sprint: Sprint) -> dict[str, object] | None:
    row = (
        await session.exec(
            select(AuditEvent)
            .where(AuditEvent.action == "sprint.close", AuditEvent.subject == f"sprint:{team}:{sprint.name}")
            .order_by(col(AuditEvent.seq).desc())
            .limit(1)
        )
    ).first()
    return dict(json.loads(row.payload)) if row else None


async def _previous(session: AsyncSession, sprint: Sprint) -> Sprint | None:
    return (
        await session.exec(
            select(Sprint)
            .where(Sprint.team == sprint.team, col(Sprint.starts_on) < sprint.starts_on)
            .order_by(col(Sprint.starts_on).desc())
            .limit(1)
        )
    ).first()


async def _carried_into(session: AsyncSession, team: str, sprint: Sprint) -> list[str]:
    """The stories the previous sprint's closing moved into this one."""
    previous = await _previous(session, sprint)
    if previous is None:
        return []
    before = await _close_payload(session, team, previous)
    return _strs(before.get("carried_over")) if before and before.get("to") == sprint.name else []


async def _stories(session: AsyncSession, keys: Iterable[str], sprint_id: int | None) -> dict[str, Story]:
    numbers = sorted({int(k[2:]) for k in keys if k.startswith("S-") and k[2:].isdigit()})
    query = select(Story)
    if sprint_id is None:
        query = query.where(col(Story.number).in_(numbers))
    else:
        query = query.where((col(Story.number).in_(numbers)) | (Story.sprint_id == sprint_id))
    found = (await session.exec(query.order_by(col(Story.number)))).all()
    return {s.key: s for s in found}


def _line(story: Story, zone: ZoneInfo) -> StoryLine:
    done_on = story.done_at.astimezone(zone).date() if story.done_at else None
    return StoryLine(story.key, story.title, story.type, story.owner, story.points, story.status, done_on)


def _strs(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


async def _committed_and_completed(session: AsyncSession, team: str, sprint: Sprint) -> VelocityPoint:
    """One past sprint's committed points (at planning, by its audit) and completed points."""
    commits, dropped, _ = await _sprint_audit(session, team, sprint)
    planned = [k for k, c in commits.items() if not c.scope_added] + await _carried_into(
        session, team, sprint
    )
    stories = await _stories(session, planned, None)
    completed = (
        await session.exec(
            select(func.coalesce(func.sum(Story.points), 0)).where(
                Story.sprint_id == sprint.id, Story.status == "done"
            )
        )
    ).one()
    return VelocityPoint(
        sprint.name, sum(s.points or 0 for k, s in stories.items() if k not in dropped), int(completed or 0)
    )


def _waivers(checks: dict[int, readiness.Checklist], stories: Sequence[Story]) -> tuple[Waiver, ...]:
    out = []
    for story in stories:
        check = checks.get(story.id or -1)
        if check is None:
            continue
        for item in check.items:
            if item.waived:
                out.append(Waiver(story.key, item.criterion.label, item.na_reason or "", item.set_by))
    return tuple(out)


def _burndown(
    *,
    sprint: Sprint,
    zone: ZoneInfo,
    today: date,
    planned: Sequence[Story],
    added: Sequence[tuple[Story, date]],
    dropped: Sequence[tuple[Story, date]],
    everything: Sequence[Story],
) -> tuple[BurndownPoint, ...]:
    days = [sprint.starts_on + timedelta(days=n) for n in range((sprint.ends_on - sprint.starts_on).days + 1)]
    start = sum(s.points or 0 for s in planned)
    span = max(len(days) - 1, 1)
    points = []
    for n, day in enumerate(days):
        ideal = round(start * (1 - n / span), 2)
        if day > today:
            points.append(BurndownPoint(day, ideal, None))
            continue
        scope = start + sum(s.points or 0 for s, on in added if on <= day)
        scope -= sum(s.points or 0 for s, on in dropped if on <= day)
        done = sum(
            s.points or 0
            for s in everything
            if s.status == "done" and s.done_at is not None and s.done_at.astimezone(zone).date() <= day
        )
        points.append(BurndownPoint(day, ideal, max(scope - done, 0)))
    return tuple(points)


async def _experiments(
    session: AsyncSession,
    team: str,
    story_ids: Sequence[int],
    keys: dict[int, str],
    start: datetime,
    end: datetime,
) -> tuple[ExperimentLine, ...]:
    in_window = select(ExperimentResult.experiment_id).where(
        col(ExperimentResult.recorded_at) >= start, col(ExperimentResult.recorded_at) < end
    )
    found = (
        await session.exec(
            select(Experiment)
            .where(
                Experiment.team == team,
                col(Experiment.story_id).in_(story_ids) | col(Experiment.id).in_(in_window),
            )
            .order_by(col(Experiment.number))
        )
    ).all()
    out = []
    for experiment in found:
        rows = await experiments.results(session, experiment)
        evaluation = experiments.evaluate(experiment, rows)
        story_key = keys.get(experiment.story_id)
        if story_key is None:
            story = await session.get(Story, experiment.story_id)
            story_key = story.key if story else "?"
        out.append(
            ExperimentLine(
                experiment.key,
                experiment.name,
                story_key,
                experiment.status,
                evaluation.metric,
                evaluation.value,
                evaluation.baseline,
                evaluation.target,
                evaluation.delta,
                evaluation.meets_target,
                evaluation.higher_is_better,
                sum(1 for r in rows if start <= r.recorded_at < end),
            )
        )
    return tuple(out)


async def _decisions(
    session: AsyncSession, team: str, start: datetime, end: datetime
) -> tuple[Decision, ...]:
    rows = (
        await session.exec(
            select(ReviewDecision, Review)
            .join(Review, col(Review.id) == ReviewDecision.review_id)
            .where(
                Review.team == team,
                col(ReviewDecision.decided_at) >= start,
                col(ReviewDecision.decided_at) < end,
            )
            .order_by(col(ReviewDecision.decided_at), col(ReviewDecision.id))
        )
    ).all()
    return tuple(
        Decision(review.key, review.subject, d.approver, d.verdict, d.rationale, d.decided_at)
        for d, review in rows
    )


async def _blockers(
    session: AsyncSession, team: str, start: datetime, end: datetime, zone: ZoneInfo
) -> tuple[Blocker, ...]:
    rows = (
        await session.exec(
            select(StandupAnswer, CeremonyRun)
            .join(CeremonyRun, col(CeremonyRun.id) == StandupAnswer.run_id)
            .where(
                CeremonyRun.team == team,
                CeremonyRun.ceremony == "standup",
                col(CeremonyRun.scheduled_for) >= start,
                col(CeremonyRun.scheduled_for) < end,
                StandupAnswer.blockers != "",
            )
            .order_by(col(CeremonyRun.scheduled_for), col(StandupAnswer.submitted_at))
        )
    ).all()
    return tuple(
        Blocker(a.user_id, a.blockers.strip(), run.scheduled_for.astimezone(zone).date())
        for a, run in rows
        if a.blockers.strip()
    )


async def _drift(session: AsyncSession, team: str, start: datetime, end: datetime) -> DriftLine:
    stats = await drift.sprint_stats(session, team=team, starts=start, ends=end)
    return DriftLine(
        stats.opened,
        stats.median_time_to_ack,
        stats.stories_created,
        stats.stories_open,
        stats.still_open,
        stats.incidents,
    )


async def velocity(
    session: AsyncSession, team: str, sprint: Sprint, *, count: int
) -> tuple[VelocityPoint, ...]:
    """Committed and completed points of the last `count` sprints up to `sprint`, oldest first."""
    earlier = (
        await session.exec(
            select(Sprint)
            .where(Sprint.team == team, col(Sprint.starts_on) <= sprint.starts_on)
            .order_by(col(Sprint.starts_on).desc())
            .limit(count)
        )
    ).all()
    return tuple([await _committed_and_completed(session, team, s) for s in reversed(earlier)])


async def build(
    session: AsyncSession,
    *,
    config: AppConfig,
    team: Team,
    sprint: Sprint,
    now: datetime,
    velocity_sprints: int = VELOCITY_SPRINTS,
) -> SprintReview:
    """The review of `sprint` as the database knows it at `now`."""
    if sprint.team != team.name:
        raise NotFound(f"Sprint {sprint.name} belongs to team {sprint.team}, not {team.name}.")
    zone = config.team_timezone(team)
    start, end = window(sprint, zone)
    today = now.astimezone(zone).date()
    commits, dropped_keys, close = await _sprint_audit(session, team.name, sprint)
    carried_keys = await _carried_into(session, team.name, sprint)
    carried_out = _strs(close.get("carried_over")) if close else []
    stories = await _stories(session, [*commits, *carried_keys, *carried_out, *dropped_keys], sprint.id)

    def pick(keys: Iterable[str]) -> list[Story]:
        return [stories[k] for k in keys if k in stories]

    carried_in = pick(k for k in carried_keys if k not in commits)
    at_planning = carried_in + pick(k for k, c in commits.items() if not c.scope_added)
    added = pick(k for k, c in commits.items() if c.scope_added)
    removed = pick(sorted(dropped_keys, key=lambda k: int(k[2:])))
    ever = {s.key: s for s in [*at_planning, *added, *removed]}
    ever |= {k: s for k, s in stories.items() if s.sprint_id == sprint.id}  # e.g. committed before audit
    completed = [s for s in ever.values() if s.sprint_id == sprint.id and s.status == "done"]
    if close is not None:
        not_done = pick(carried_out)
    else:
        not_done = [s for s in ever.values() if s.sprint_id == sprint.id and not s.closed]
    completed.sort(key=lambda s: s.number)
    not_done.sort(key=lambda s: s.number)

    gated = [commits[k] for k in commits if not commits[k].scope_added]
    ready_checks = await readiness.checklists(session, at_planning + added, "ready", config)
    forced = []
    for commit in commits.values():
        if commit.forced and commit.key in stories:
            story = stories[commit.key]
            missing_keys = set(_strs(commit.payload.get("missing")))
            labels = tuple(c.label for c in config.criteria("ready", story.type) if c.key in missing_keys)
            forced.append(
                ForcedCommit(
                    story.key,
                    story.title,
                    commit.actor,
                    str(commit.payload.get("reason") or ""),
                    labels or tuple(sorted(missing_keys)),
                    commit.at.astimezone(zone).date(),
                )
            )
    done_checks = await readiness.checklists(session, completed, "done", config)
    fully_met = sum(
        1
        for s in completed
        if s.id in done_checks
        and done_checks[s.id].complete
        and not any(i.waived for i in done_checks[s.id].items)
    )
    story_ids = [s.id for s in ever.values() if s.id is not None]
    keys_by_id = {s.id: s.key for s in ever.values() if s.id is not None}
    drop_days = await _drop_days(session, team.name, sprint, [s.key for s in removed], zone)
    return SprintReview(
        team=team.name,
        sprint=sprint.name,
        goal=sprint.goal,
        starts_on=sprint.starts_on,
        ends_on=sprint.ends_on,
        state=sprint.state,
        timezone=str(zone),
        generated_at=now,
        committed=tuple(_line(s, zone) for s in at_planning),
        carried_in=tuple(_line(s, zone) for s in carried_in),
        added=tuple(_line(s, zone) for s in added),
        removed=tuple(_line(s, zone) for s in removed),
        completed=tuple(_line(s, zone) for s in completed),
        not_done=tuple(_line(s, zone) for s in not_done),
        carried_to=str(close.get("to")) if close else None,
        readiness=Readiness(
            gated=len(gated),
            ready=sum(1 for c in gated if not c.forced),
            forced=tuple(forced),
            waivers=_waivers(ready_checks, at_planning + added),
        ),
        done_check=DoneCheck(len(completed), fully_met, _waivers(done_checks, completed)),
        velocity=await velocity(session, team.name, sprint, count=velocity_sprints),
        burndown=_burndown(
            sprint=sprint,
            zone=zone,
            today=today if sprint.state != "closed" else max(today, sprint.ends_on),
            planned=at_planning,
            added=[(s, commits[s.key].at.astimezone(zone).date()) for s in added],
            dropped=[(s, drop_days.get(s.key, sprint.starts_on)) for s in removed],
            everything=list(ever.values()),
        ),
        experiments=await _experiments(session, team.name, story_ids, keys_by_id, start, end),
        decisions=await _decisions(session, team.name, start, end),
        drift=await _drift(session, team.name, start, end),
        blockers=await _blockers(session, team.name, start, end, zone),
    )


async def _drop_days(
    session: AsyncSession, team: str, sprint: Sprint, keys: list[str], zone: ZoneInfo
) -> dict[str, date]:
    """The team's date on which each of `keys` was dropped from the sprint."""
    if not keys:
        return {}
    rows = (
        await session.exec(
            select(AuditEvent)
            .where(AuditEvent.action == "sprint.drop", col(AuditEvent.subject).in_(keys))
            .order_by(col(AuditEvent.seq))
        )
    ).all()
    out = {}
    for row in rows:
        payload = json.loads(row.payload)
        if payload.get("team") == team and payload.get("sprint") == sprint.name:
            out[row.subject] = row.at.astimezone(zone).date()
    return out


async def for_team(
    session: AsyncSession, *, config: AppConfig, team: Team, ref: str, now: datetime
) -> SprintReview:
    """The review of the team's sprint named `ref` (a name, `current` or `next`)."""
    sprint = await resolve_sprint(session, team=team, ref=ref)
    return await build(session, config=config, team=team, sprint=sprint, now=now)


async def request_post(
    session: AsyncSession, *, config: AppConfig, team: Team, sprint_id: int, actor: str, now: datetime
) -> Sprint:
    """Ask for the review of the team's sprint to be posted in its channel (members and leads only)."""
    if not team.includes(actor):
        raise Forbidden(f"Only members of team {team.name} can post its sprint review.")
    sprint = await session.get(Sprint, sprint_id)
    if sprint is None or sprint.team != team.name:
        raise NotFound(f"Team {team.name} has no such sprint (it may have been deleted).")
    events.record(session, events.ReviewSummaryRequested(sprint_id, actor, now))
    return sprint
