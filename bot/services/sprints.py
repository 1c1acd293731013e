"""Sprints: start, find, plan behind the readiness gate, commit stories, close with carry-over."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Integer, bindparam, case, true, union_all
from sqlalchemy import select as rows_of
from sqlmodel import Session, col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig, Team
from bot.services import audit, events, planning, stories
from bot.services.errors import Conflict, Invalid, NotFound
from bot.services.planning import CommitResult
from bot.services.readiness import Checklist, Readiness
from bot.services.teams import require_lead
from bot.store.db import in_async
from bot.store.models import SPRINT_ROW, Sprint, SprintRow, Story, StoryRow
from bot.store.queries import constant, lock_team
from bot.store.types import utcnow
from bot.text import shortened

MAX_NAME = 80
MAX_GOAL = 500
MAX_LENGTH_DAYS = 42
WORKING_DAYS = (0, 1, 2, 3, 4)


def parse_date(text: str, *, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(
            f"{option} {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-12-07.", field=option
        ) from None


AnySprint = TypeVar("AnySprint", Sprint, SprintRow)

# built once: building a statement costs more than running this one
_OPEN = (col(Sprint.team) == bindparam("team"), col(Sprint.state) != constant("closed"))
_OPEN_SPRINTS = select(Sprint).where(*_OPEN).order_by(col(Sprint.starts_on))


def open_sprints_of(session: Session, team: Team) -> list[Sprint]:
    """The team's sprints that are not closed: the current one and any planned, in date order."""
    return list(session.exec(_OPEN_SPRINTS, params={"team": team.name}).all())


open_sprints = in_async(open_sprints_of)


async def current_sprint(session: AsyncSession, team: Team) -> Sprint | None:
    return next((s for s in await open_sprints(session, team) if s.state == "active"), None)


async def next_sprint(session: AsyncSession, team: Team) -> Sprint | None:
    return next((s for s in await open_sprints(session, team) if s.state == "planned"), None)


def find_sprint(session: Session, *, team: Team, ref: str) -> Sprint:
    """A sprint by name, or `current` / `next`."""
    ref = " ".join(ref.split())
    if ref.lower() in ("current", "next"):
        current = ref.lower() == "current"
        state = "active" if current else "planned"
        sprint = next((s for s in open_sprints_of(session, team) if s.state == state), None)
        if sprint is None:
            raise NotFound(
                f"Team {team.name} has no current sprint. Start one with `sprint start`."
                if current
                else f"Team {team.name} has no next sprint planned. Create one with `sprint start`."
            )
        return sprint
    found = session.exec(_NAMED_SPRINT, params={"team": team.name, "name": ref}).first()
    if found is None:
        raise NotFound(f"Team {team.name} has no sprint called {shortened(ref)!r}.")
    return found


_NAMED_SPRINT = select(Sprint).where(Sprint.team == bindparam("team"), Sprint.name == bindparam("name"))


resolve_sprint = in_async(find_sprint)


def sprint_to_plan(session: Session, team: Team) -> Sprint:
    """The sprint being planned: the next one if it exists, else the current one."""
    return _to_plan(open_sprints_of(session, team), team)


def _to_plan(open_: Sequence[AnySprint], team: Team) -> AnySprint:
    sprint = next((s for s in open_ if s.state == "planned"), None) or next(
        (s for s in open_ if s.state == "active"), None
    )
    if sprint is None:
        raise NotFound(f"Team {team.name} has no sprint to plan. Start one with `sprint start`.")
    return sprint


planning_target = in_async(sprint_to_plan)


async def start_sprint(
    session: AsyncSession,
    *,
    team: Team,
    name: str,
    starts_on: date,
    ends_on: date,
    actor: str,
    goal: str | None = None,
    today: date | None = None,
) -> Sprint:
    """Create a sprint: it becomes current if the team has none, otherwise it is queued as next.
    `today` is the team's date: a sprint that would already be over is refused (None skips that check)."""
    require_lead(team, actor, doing="start a sprint")
    name = " ".join(name.split())
    if not name:
        raise Invalid("The sprint needs a name.", field="name")
    if name.lower() in ("current", "next") or len(name) > MAX_NAME:
        raise Invalid(
            f"Choose another sprint name (not current/next, at most {MAX_NAME} characters).", field="name"
        )
    if ends_on <= starts_on:
        raise Invalid("--to must be after --from.", field="--to")
    if (ends_on - starts_on).days > MAX_LENGTH_DAYS:
        raise Invalid(f"A sprint can last at most {MAX_LENGTH_DAYS} days.", field="--to")
    if today is not None and ends_on < today:
        ago = (today - ends_on).days
        raise Invalid(
            f"{starts_on}..{ends_on} ended {ago} day{'s' if ago != 1 else ''} ago; check --from and --to "
            f"(today is {today}).",
            field="--to",
        )
    if goal is not None and len(goal) > MAX_GOAL:
        raise Invalid(f"Keep the goal under {MAX_GOAL} characters.", field="--goal")
    await lock_team(session, team.name)  # two concurrent starts must not both become current
    existing = (await session.exec(_NAMED_SPRINT, params={"team": team.name, "name": name})).first()
    if existing is not None:
        raise Conflict(f"Team {team.name} already has a sprint called {name!r}.")
    others = await open_sprints(session, team)
    for other in others:
        if starts_on <= other.ends_on and other.starts_on <= ends_on:
            raise Conflict(
                f"{starts_on}..{ends_on} overlaps sprint {other.name} ({other.starts_on}..{other.ends_on})."
            )
    current = next((s for s in others if s.state == "active"), None)
    if current is not None and starts_on < current.starts_on:
        raise Conflict(
            f"{name} would start before the current sprint {current.name} ({current.starts_on}); "
            "a new sprint follows the current one."
        )
    has_current = current is not None
    sprint = Sprint(
        team=team.name,
        name=name,
        starts_on=starts_on,
        ends_on=ends_on,
        goal=(goal or "").strip() or None,
        state="planned" if has_current else "active",
        created_by=actor,
    )
    session.add(sprint)
    await session.flush()
    events.record(session, events.SprintStarted(sprint.id, actor))  # type: ignore[arg-type]
    return sprint


@dataclass(frozen=True)
class PlannedStory:
    story: StoryRow
    ready: Checklist | Readiness


PLAN_SHOWN = 30  # backlog stories a plan lists in each group (Ready, not Ready); the rest are counted


@dataclass(frozen=True)
class Plan:
    """The readiness gate: every story in the sprint; of the backlog, the first PLAN_SHOWN Ready and not
    Ready stories by number, and how many there are of each."""

    sprint: Sprint | SprintRow  # as the plan read it (SprintRow), or as it was named
    committed: list[PlannedStory]
    ready: list[PlannedStory]
    not_ready: list[PlannedStory]
    ready_total: int
    not_ready_total: int

    @classmethod
    def of(
        cls, sprint: Sprint | SprintRow, committed: list[PlannedStory], candidates: list[PlannedStory]
    ) -> Plan:
        """A plan from a whole backlog already in hand (every candidate shown)."""
        ready = [p for p in candidates if p.ready.complete]
        not_ready = [p for p in candidates if not p.ready.complete]
        return cls(sprint, committed, ready, not_ready, len(ready), len(not_ready))

    @property
    def candidates(self) -> list[PlannedStory]:
        """The backlog stories shown, in number order."""
        return sorted(self.ready + self.not_ready, key=lambda p: p.story.number)

    @property
    def committed_points(self) -> int:
        return sum(p.story.points or 0 for p in self.committed)

    @property
    def total(self) -> int:
        return len(self.committed) + self.ready_total + self.not_ready_total

    @property
    def ready_count(self) -> int:
        return sum(1 for p in self.committed if p.ready.complete) + self.ready_total


@lru_cache(maxsize=64)
def _backlog_counts(backlog: tuple[Any, ...]) -> tuple[Any, Any]:
    """The backlog's size and how many of it lack something for Ready (Story.ready_lacking), in one pass
    over an index: alone, and beside each of the team's open sprints (as open_sprints_of reads them; the
    counts do not depend on the sprint, the backlog being the stories in none). Built once."""
    counted = select(
        func.count().label("everything"),
        func.sum(case((stories.LACKING, constant(1)), else_=constant(0))).label("lacking"),
    ).where(*backlog)
    one_row = counted.subquery()
    beside_sprints = (  # plain rows (the sprint's columns, everything, lacking), which Core runs
        rows_of(*SPRINT_ROW, one_row.c.everything, one_row.c.lacking)
        .join(one_row, true())
        .where(*_OPEN)
        .order_by(col(Sprint.starts_on))
    )
    return counted, beside_sprints


@lru_cache(maxsize=64)
def _plan_rows(in_sprint: tuple[Any, ...], backlog: tuple[Any, ...], listed: tuple[bool, bool]) -> Any:
    """In one statement, the sprint's stories and the first PLAN_SHOWN of each backlog group that `listed`
    asks for (Ready, not Ready), each row marked with its group. Built once per shape."""
    parts = [stories.listing_query(in_sprint).add_columns(constant(_COMMITTED).label("plan_group"))]
    for group, gate, wanted in (
        (_READY, stories.NOT_LACKING, listed[0]),
        (_NOT_READY, stories.LACKING, listed[1]),
    ):
        if wanted:
            shown = stories.listing_query([*backlog, gate]).limit(bindparam("shown", type_=Integer))
            parts.append(shown.add_columns(constant(group).label("plan_group")))
    # A compound SELECT takes no ORDER BY or LIMIT in its parts on SQLite: each part is a subquery.
    return union_all(*(select(part.subquery()) for part in parts))


_COMMITTED, _READY, _NOT_READY = 0, 1, 2


def plan_of(session: Session, *, config: AppConfig, team: Team, sprint: Sprint | str | None = None) -> Plan:
    """The readiness gate: stories in the sprint (the one being planned, or one named by `find_sprint`'s
    references) and backlog candidates, each with what it lacks. The backlog is filtered, counted and cut
    in SQL: a plan reads the same few rows however long it grows."""
    # The plan of the sprint being planned is two statements (two round trips on PostgreSQL): the open
    # sprints with the backlog's counts beside them, then the rows shown.
    backlog = stories.StoryFilter(backlog_only=True)
    counted, beside_sprints = _backlog_counts(backlog.where())
    params = {**backlog.params(team), "shown": PLAN_SHOWN}
    target: Sprint | SprintRow
    if sprint is None:
        found = session.connection().execute(beside_sprints, params).all()
        # Plain rows, which Core runs; the plan only shows its sprint (SprintRow).
        target = _to_plan([SprintRow._make(row[: len(SPRINT_ROW)]) for row in found], team)
        everything, lacking_count = found[0][-2:]
    else:
        target = find_sprint(session, team=team, ref=sprint) if isinstance(sprint, str) else sprint
        everything, lacking_count = session.connection().execute(counted, params).one()
    params["sprint_id"] = target.id
    not_ready_total = int(lacking_count or 0)
    ready_total = int(everything) - not_ready_total
    # A group with nothing in it is not listed: its listing would walk the whole backlog looking for the
    # first rows that are not there.
    listed = (ready_total > 0, not_ready_total > 0)
    committed = stories.StoryFilter(sprint=target)
    rows = _plan_rows(committed.where(), backlog.where(), listed)
    conn = session.connection()  # plain columns, so Core runs them: the ORM's execution layer only costs time
    groups: dict[int, list[PlannedStory]] = {_COMMITTED: [], _READY: [], _NOT_READY: []}
    found = sorted(conn.execute(rows, params).all(), key=lambda r: (r[-1], r[1]))  # group, then number
    for row, story, ready in stories.weighed(config, found):
        groups[row[-1]].append(PlannedStory(story, ready))
    return Plan(target, groups[_COMMITTED], groups[_READY], groups[_NOT_READY], ready_total, not_ready_total)


plan = in_async(plan_of)


async def commit(
    session: AsyncSession,
    *,
    config: AppConfig,
    team: Team,
    keys: list[str],
    actor: str,
    sprint: Sprint | None = None,
    force_reason: str | None = None,
    today: date | None = None,
) -> CommitResult:
    """Add stories to the sprint being planned (or a named one), through the readiness gate
    (`planning.admit`): only the team's leads may, and a not-Ready story needs force with a reason."""
    if not keys:
        raise Invalid("Name at least one story to commit, e.g. `sprint commit S-4 S-7`.")
    planning.require_planner(team, actor)
    await lock_team(session, team.name)
    sprint = sprint or await planning_target(session, team)
    planning.check_open_sprint(sprint, team)
    picked = []
    for key in keys:
        story = await stories.get_story(session, key)
        planning.check_candidate(story, team, sprint)
        picked.append(story)
    return await planning.admit(
        session,
        config=config,
        team=team,
        sprint=sprint,
        picked=picked,
        actor=actor,
        force_reason=force_reason,
        today=today,
    )


@dataclass(frozen=True)
class CloseReport:
    closed: Sprint
    done: list[Story]
    carried_over: list[Story]
    next_sprint: Sprint | None

    @property
    def velocity(self) -> int:
        return sum(s.points or 0 for s in self.done)


async def close_sprint(session: AsyncSession, *, team: Team, actor: str) -> CloseReport:
    """Close the current sprint; unfinished stories move to the next sprint (or the backlog)."""
    require_lead(team, actor, doing="close a sprint")
    await lock_team(session, team.name)
    sprint = await current_sprint(session, team)
    if sprint is None:
        raise NotFound(f"Team {team.name} has no current sprint to close.")
    following = await next_sprint(session, team)
    in_sprint = list(
        (
            await session.exec(select(Story).where(Story.sprint_id == sprint.id).order_by(col(Story.number)))
        ).all()
    )
    done = [s for s in in_sprint if s.status == "done"]
    unfinished = [s for s in in_sprint if s.status != "done"]
    now = utcnow()
    for story in unfinished:
        story.sprint_id, story.updated_at = (following.id if following else None), now
        session.add(story)
    sprint.state, sprint.closed_at = "closed", now
    session.add(sprint)
    if following is not None:
        following.state = "active"
        session.add(following)
    await audit.record(
        session,
        actor=actor,
        action="sprint.close",
        subject=f"sprint:{team.name}:{sprint.name}",
        payload={
            "done": [s.key for s in done],
            "carried_over": [s.key for s in unfinished],
            "to": following.name if following else "backlog",
        },
        at=now,
    )
    await session.flush()
    events.record(
        session,
        events.SprintClosed(
            sprint.id,  # type: ignore[arg-type]
            following.id if following else None,
            actor,
            tuple(s.id for s in done if s.id is not None),
            tuple(s.id for s in unfinished if s.id is not None),
        ),
    )
    return CloseReport(sprint, done, unfinished, following)


@dataclass(frozen=True)
class SprintOverview:
    sprint: Sprint
    stories: list[stories.StoryListing]

    @property
    def points_total(self) -> int:
        return sum(i.story.points or 0 for i in self.stories)

    @property
    def points_done(self) -> int:
        return sum(i.story.points or 0 for i in self.stories if i.story.status == "done")

    @property
    def done_count(self) -> int:
        return sum(1 for i in self.stories if i.story.status == "done")

    @property
    def ready_count(self) -> int:
        return sum(1 for i in self.stories if i.story.status == "done" or i.ready.complete)


async def overview(session: AsyncSession, *, config: AppConfig, team: Team, sprint: Sprint) -> SprintOverview:
    listed = await stories.list_stories(session, config=config, team=team, sprint=sprint, include_done=True)
    return SprintOverview(sprint, listed)


def working_days(sprint: Sprint) -> int:
    """Monday-to-Friday days of the sprint, first and last day counted."""
    days = (sprint.ends_on - sprint.starts_on).days + 1
    return sum(1 for n in range(days) if (sprint.starts_on + timedelta(days=n)).weekday() in WORKING_DAYS)


@dataclass(frozen=True)
class SprintDay:
    """Where a sprint is on `today`: the working day it is (1-based), of how many, and if it is over."""

    day: int
    of: int
    not_started: bool
    over: bool
    days_over: int  # calendar days since it ended, when over


def sprint_day(sprint: Sprint, today: date) -> SprintDay:
    total = working_days(sprint)
    if today < sprint.starts_on:
        return SprintDay(0, total, True, False, 0)
    if today > sprint.ends_on:
        return SprintDay(total, total, False, True, (today - sprint.ends_on).days)
    return SprintDay(max(total - working_days_left(sprint, today) + 1, 1), total, False, False, 0)


def working_days_left(sprint: Sprint, today: date) -> int:
    """Monday-to-Friday days from `today` to the sprint's last day, both counted."""
    days = (sprint.ends_on - today).days + 1
    return sum(1 for n in range(max(days, 0)) if (today + timedelta(days=n)).weekday() in WORKING_DAYS)


async def anchor(session: AsyncSession, team: Team) -> date | None:
    """The start of the current sprint, else of the latest one: every-N-weeks ceremonies follow it."""
    current = await current_sprint(session, team)
    if current is not None:
        return current.starts_on
    latest = (
        await session.exec(
            select(Sprint).where(Sprint.team == team.name).order_by(col(Sprint.starts_on).desc())
        )
    ).first()
    return latest.starts_on if latest else None
