"""Stories: create, find, list, edit, assign and finish them against the Definition of Done."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, bindparam, false, func, or_, true, update
from sqlmodel import Session, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig, Team
from bot.services import audit, events, planning, readiness
from bot.services.errors import CadenceError, Conflict, Forbidden, Invalid, NotFound
from bot.services.planning import check_sprint_team
from bot.services.readiness import Checklist
from bot.services.teams import require_lead, require_member
from bot.store.db import in_async
from bot.store.models import STORY_ACTIVE, STORY_ROW, Sprint, SprintRow, Story, StoryRow
from bot.store.queries import constant, lock_team, next_number
from bot.store.types import utcnow

MAX_TITLE = 200
MAX_POINTS = 100
_KEY = re.compile(r"^[Ss]-?(\d{1,9})$")


def parse_story_key(text: str) -> int:
    match = _KEY.match(text.strip())
    if not match:
        raise Invalid(f"{text!r} is not a story id; story ids look like S-12.")
    return int(match.group(1))


def clean_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise Invalid("A story needs a title.", field="title")
    if len(title) > MAX_TITLE:
        raise Invalid(f"The title is {len(title)} characters long; keep it to {MAX_TITLE}.", field="title")
    return title


def check_type(config: AppConfig, story_type: str) -> str:
    if story_type not in config.story_types:
        raise Invalid(
            f"{story_type!r} is not a story type; use one of: {', '.join(config.story_types)}.", field="type"
        )
    return story_type


def check_points(points: int | None) -> int | None:
    if points is not None and not 0 <= points <= MAX_POINTS:
        raise Invalid(f"Points must be a whole number from 0 to {MAX_POINTS}.", field="points")
    return points


def default_type(config: AppConfig) -> str:
    return "ml" if "ml" in config.story_types else config.story_types[0]


@dataclass(frozen=True)
class Added:
    """A new story and where it ended up: in the sprint asked for, or in the backlog with the reason."""

    story: Story
    sprint: Sprint | None  # the sprint it is in; None: the backlog
    refused: CadenceError | None = None  # why it is not in the sprint that was asked for


async def add_story(
    session: AsyncSession,
    *,
    config: AppConfig,
    team: Team,
    title: str,
    actor: str,
    story_type: str | None = None,
    owner: str | None = None,
    points: int | None = None,
    sprint: Sprint | None = None,
    force_reason: str | None = None,
    today: date | None = None,
) -> Added:
    """Add a story to the backlog and, if a sprint is named, through the readiness gate into it (as
    `sprint commit` would). The story is stored either way: what the gate refuses stays in the backlog."""
    require_member(config, team.name, actor, doing="add stories to its backlog")
    title = clean_title(title)
    story_type = check_type(config, story_type or default_type(config))
    check_points(points)
    if sprint is not None:
        check_sprint_team(sprint, team)
        if sprint.state == "closed":
            raise Conflict(f"Sprint {sprint.name} is closed; add the story to the current or next sprint.")
    planning.check_force_reason(force_reason)
    story = Story(
        number=await next_number(session, "S"),
        team=team.name,
        type=story_type,
        title=title,
        owner=owner,
        points=points,
        created_by=actor,
    )
    story.ready_lacking = not readiness.summary(story, "ready", config).complete
    session.add(story)
    await session.flush()
    if owner and owner != actor:
        await _notify_owner(session, story, actor)
    if sprint is None:
        return Added(story, None)
    try:
        await _enter_sprint(
            session,
            config=config,
            team=team,
            story=story,
            sprint=sprint,
            actor=actor,
            force_reason=force_reason,
            today=today,
        )
    except (Conflict, Forbidden) as refusal:  # the gate wrote nothing: the story waits in the backlog
        return Added(story, None, refusal)
    return Added(story, sprint)


async def _enter_sprint(
    session: AsyncSession,
    *,
    config: AppConfig,
    team: Team,
    story: Story,
    sprint: Sprint,
    actor: str,
    force_reason: str | None,
    today: date | None = None,
) -> None:
    """A story enters a sprint only as `sprint commit` lets it: by a lead, Ready or forced with a reason."""
    await planning.admit(
        session,
        config=config,
        team=team,
        sprint=sprint,
        picked=[story],
        actor=actor,
        force_reason=force_reason,
        today=today,
    )
    await session.refresh(story)


async def get_story(session: AsyncSession, key: str) -> Story:
    number = parse_story_key(key)
    story = (await session.exec(select(Story).where(Story.number == number))).first()
    if story is None:
        raise NotFound(f"There is no story S-{number}.")
    return story


@dataclass(frozen=True)
class StoryListing:
    story: StoryRow
    sprint_name: str | None
    ready: readiness.Readiness | readiness.Checklist


@dataclass(frozen=True)
class StoryFilter:
    owner: str | None = None
    sprint: Sprint | SprintRow | None = None
    backlog_only: bool = False
    include_done: bool = False
    not_ready: bool = False

    def where(self) -> tuple[Any, ...]:
        """The filter as SQL, readiness too (Story.ready_lacking), so a page reads only its own rows. The
        values are named parameters (see params): the clauses are built once per shape of filter, not per
        request, since building SQLAlchemy expressions costs more than running these statements."""
        return _where(
            bool(self.owner),
            self.sprint is not None,
            self.backlog_only,
            self.include_done,
            self.not_ready,
        )

    def params(self, team: Team) -> dict[str, Any]:
        return {
            "team": team.name,
            "owner": self.owner,
            "sprint_id": self.sprint.id if self.sprint is not None else None,
        }

    def queries(self) -> StoryQueries:
        return _queries(self.where())


# Still on the board, as three plain comparisons: `in_` with a list binds an "expanding" parameter, whose
# SQL SQLAlchemy renders again on every execution (about 40 µs a statement here).
_ACTIVE = or_(*(col(Story.status) == constant(status) for status in STORY_ACTIVE))


# Not Ready (Story.ready_lacking), as an equality both databases can look up in an index.
LACKING = col(Story.ready_lacking) == true()
NOT_LACKING = col(Story.ready_lacking) == false()


@lru_cache(maxsize=128)
def _where(
    owner: bool,
    sprint: bool,
    backlog_only: bool,
    include_done: bool,
    not_ready: bool,
) -> tuple[Any, ...]:
    clauses: list[Any] = [Story.team == bindparam("team")]
    if not_ready:
        clauses.append(LACKING)
    if owner:
        clauses.append(Story.owner == bindparam("owner"))
    if sprint:
        clauses.append(Story.sprint_id == bindparam("sprint_id"))
    elif backlog_only:
        clauses.append(col(Story.sprint_id).is_(None))
    if not include_done or not_ready:
        clauses.append(_ACTIVE)
    else:
        clauses.append(col(Story.status) != "archived")
    return tuple(clauses)


@dataclass(frozen=True)
class StoryQueries:
    """A filter's statements: how many match, every match, and one page of them (:offset, :limit), each
    row of the page carrying the count too."""

    count: Any
    rows: Any
    page: Any


@lru_cache(maxsize=128)
def _queries(where: tuple[Any, ...]) -> StoryQueries:
    rows = listing_query(where)
    count = select(func.count()).select_from(Story).where(*where)
    # The count as a column of the page: a scalar subquery that refers to nothing outside it, which both
    # databases compute once per statement (through the index, as the count alone), so a page is one round
    # trip instead of two.
    page = (
        rows.add_columns(count.scalar_subquery().label("total"))
        .offset(bindparam("offset", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
    )
    return StoryQueries(count, rows, page)


def listing_query(where: Iterable[Any]) -> Any:
    """Stories (as StoryRow's columns) with their sprint's name, in number order; their readiness rides
    on the row."""
    return (
        select(*STORY_ROW, Sprint.name)  # type: ignore[call-overload]  # sqlmodel types at most 4 columns
        .outerjoin(Sprint, col(Sprint.id) == col(Story.sprint_id))
        .where(*where)
        .order_by(col(Story.number))
    )


_SPRINT_NAME = len(STORY_ROW)


def weighed(config: AppConfig, rows: Iterable[Any]) -> Iterator[tuple[Any, StoryRow, readiness.Readiness]]:
    """Rows of `listing_query` (with any columns after the sprint's name), each with its story and that
    story's readiness (rows with the same criteria met share one, readiness.Weigher)."""
    weigh = readiness.Weigher(config, "ready")
    for row in rows:
        story = StoryRow._make(row[:_SPRINT_NAME])
        yield row, story, weigh(story)


def listings(config: AppConfig, rows: Iterable[Any]) -> list[StoryListing]:
    """Rows of `listing_query` (any columns after the sprint's name left out) as listings."""
    return [StoryListing(story, row[_SPRINT_NAME], ready) for row, story, ready in weighed(config, rows)]


def stories_in(
    session: Session,
    *,
    config: AppConfig,
    team: Team,
    owner: str | None = None,
    sprint: Sprint | None = None,
    backlog_only: bool = False,
    include_done: bool = False,
    not_ready: bool = False,
) -> list[StoryListing]:
    """Every story that matches, with its readiness (for views that show them all)."""
    filters = StoryFilter(owner, sprint, backlog_only, include_done, not_ready)
    rows = session.connection().execute(filters.queries().rows, filters.params(team))
    return listings(config, rows.all())


list_stories = in_async(stories_in)


_OWNED = listing_query(
    [
        col(Story.team).in_(bindparam("teams", expanding=True)),
        Story.owner == bindparam("owner"),
        _ACTIVE,
    ]
)


def owned_by(session: Session, *, config: AppConfig, owner: str) -> list[StoryListing]:
    """A person's open stories in every team, in one statement (App Home asks this for all teams)."""
    params = {"teams": [t.name for t in config.teams], "owner": owner}
    rows = session.connection().execute(_OWNED, params)
    return listings(config, rows.all())


@dataclass(frozen=True)
class StoryPage:
    items: list[StoryListing]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def story_page(
    session: Session,
    *,
    config: AppConfig,
    team: Team,
    filters: StoryFilter,
    page: int = 1,
    page_size: int = 20,
) -> StoryPage:
    """One page of a story list: counted, filtered and cut in SQL from the story rows (their readiness
    rides on them), with the team-and-number index walking the page in order."""
    queries, params = filters.queries(), filters.params(team)
    # Plain columns, so Core runs them: the ORM's execution layer only costs time here.
    conn = session.connection()

    def rows_of(page: int) -> Sequence[Any]:
        return conn.execute(
            queries.page, {**params, "offset": (page - 1) * page_size, "limit": page_size}
        ).all()

    page = max(page, 1)
    rows = rows_of(page)
    if rows:
        total = int(rows[0][-1])
    else:  # nothing matches, or the page is past the end (the list shrank since it was shown): the last one
        total = int(conn.execute(queries.count, params).scalar_one())
        last = max(1, -(-total // page_size))
        if page > last:
            page = last
            if total:
                rows = rows_of(page)
                total = int(rows[0][-1]) if rows else total
    return StoryPage(listings(config, rows), total, page, page_size)


page_of_stories = in_async(story_page)


async def _sprint_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.exec(select(Sprint.id, Sprint.name).where(col(Sprint.id).in_(ids)))
    return {i: n for i, n in rows.all() if i is not None}


async def sprint_name(session: AsyncSession, story: Story) -> str | None:
    return (await _sprint_names(session, {story.sprint_id} if story.sprint_id else set())).get(
        story.sprint_id or 0
    )


async def edit_story(
    session: AsyncSession,
    *,
    config: AppConfig,
    story: Story,
    actor: str,
    title: str | None = None,
    story_type: str | None = None,
    owner: str | None = None,
    clear_owner: bool = False,
    points: int | None = None,
    clear_points: bool = False,
    sprint: Sprint | None = None,
    to_backlog: bool = False,
    force_reason: str | None = None,
    today: date | None = None,
) -> Story:
    require_member(config, story.team, actor, doing=f"change {story.key}")
    if story.closed:
        raise Conflict(f"{story.key} is {story.status} and can no longer be edited.")
    previous_owner = story.owner
    if title is not None:
        story.title = clean_title(title)
    if story_type is not None:
        story.type = check_type(config, story_type)
    if points is not None or clear_points:
        story.points = check_points(points)
    if owner is not None or clear_owner:
        story.owner = owner
    if sprint is None and to_backlog and story.sprint_id is not None:
        # out of its sprint as `story drop` takes it: by a lead, audited (not silently through the form)
        await drop_story(session, config=config, story=story, actor=actor)
    story.updated_at = utcnow()
    session.add(story)
    await session.flush()
    if story_type is not None:
        await readiness.refresh_lacking(session, story, config)
    if sprint is not None and sprint.id != story.sprint_id:
        team = config.team(story.team)
        if team is None:
            raise Conflict(f"{story.key} belongs to team {story.team}, which is no longer configured.")
        await _enter_sprint(
            session,
            config=config,
            team=team,
            story=story,
            sprint=sprint,
            actor=actor,
            force_reason=force_reason,
            today=today,
        )
    if story.owner and story.owner != previous_owner and story.owner != actor:
        await _notify_owner(session, story, actor)
    return story


async def assign_story(
    session: AsyncSession, *, config: AppConfig, story: Story, owner: str, actor: str
) -> Story:
    if story.owner == owner:
        raise Conflict(f"{story.key} is already assigned to that person.")
    return await edit_story(session, config=config, story=story, actor=actor, owner=owner)


async def _notify_owner(session: AsyncSession, story: Story, actor: str) -> None:
    """A new owner, other than the person who assigned it, is to hear about their story."""
    if story.id is not None and story.owner:
        events.record(session, events.StoryAssigned(story.id, story.owner, actor, story.updated_at))


class NotDone(Conflict):
    def __init__(self, story: Story, checklist: Checklist):
        labels = ", ".join(c.label for c in checklist.missing)
        super().__init__(f"{story.key} does not meet the Definition of Done yet. Missing: {labels}.")
        self.story = story
        self.checklist = checklist


async def complete_story(session: AsyncSession, *, config: AppConfig, story: Story, actor: str) -> Story:
    require_member(config, story.team, actor, doing=f"change {story.key}")
    if story.closed:
        raise Conflict(f"{story.key} is already {story.status}.")
    done = await readiness.checklist(session, story, "done", config)
    if not done.complete:
        raise NotDone(story, done)
    now = utcnow()
    # Compare-and-set: of two concurrent "done" clicks only one moves the story (and is audited).
    moved = await session.exec(
        update(Story)
        .where(col(Story.id) == story.id, col(Story.status).in_(STORY_ACTIVE))
        .values(status="done", done_at=now, updated_at=now, blocked_reason=None)
    )
    if moved.rowcount != 1:
        raise Conflict(f"{story.key} is already done.")
    await session.refresh(story)
    await audit.record(
        session,
        actor=actor,
        action="story.done",
        subject=story.key,
        payload={
            "title": story.title,
            "evidence": {i.criterion.key: i.value or f"n/a: {i.na_reason}" for i in done.items},
        },
        at=now,
    )
    await session.flush()
    events.record(session, events.StoryDone(story.id, actor))  # type: ignore[arg-type]
    return story


STATUS_WORDS = {
    "open": "to do",
    "in_progress": "in progress",
    "blocked": "blocked",
    "done": "done",
    "archived": "archived",
}
MAX_BLOCK_REASON = 300


async def _move(
    session: AsyncSession,
    story: Story,
    *,
    to: str,
    allowed_from: tuple[str, ...],
    actor: str,
    action: str,
    payload: dict[str, Any] | None = None,
    **values: Any,
) -> Story:
    """Move a story's status with a compare-and-set (two clicks at once move it once), audited."""
    if story.status == to:
        raise Conflict(f"{story.key} is already {STATUS_WORDS[to]}.")
    if story.status not in allowed_from:
        raise Conflict(f"{story.key} is {STATUS_WORDS[story.status]}; it cannot become {STATUS_WORDS[to]}.")
    now = utcnow()
    previous = story.status  # before the update: the ORM update also changes the loaded story
    moved = await session.exec(
        update(Story)
        .where(col(Story.id) == story.id, col(Story.status) == previous)
        .values(status=to, updated_at=now, **values)
    )
    if moved.rowcount != 1:
        raise Conflict(f"{story.key} changed a moment ago; look at it again with `story show {story.key}`.")
    await session.refresh(story)
    await audit.record(
        session,
        actor=actor,
        action=action,
        subject=story.key,
        payload={"from": previous, "to": to, **(payload or {})},
        at=now,
    )
    return story


async def start_story(session: AsyncSession, *, config: AppConfig, story: Story, actor: str) -> Story:
    """Work has begun (or resumes after a block)."""
    require_member(config, story.team, actor, doing=f"change {story.key}")
    return await _move(
        session,
        story,
        to="in_progress",
        allowed_from=("open", "blocked"),
        actor=actor,
        action="story.start",
        blocked_reason=None,
    )


async def block_story(
    session: AsyncSession, *, config: AppConfig, story: Story, actor: str, reason: str
) -> Story:
    """Work cannot go on: the reason is shown on the board until the story is unblocked."""
    require_member(config, story.team, actor, doing=f"change {story.key}")
    reason = " ".join(reason.split())
    if not reason:
        raise Invalid(
            'Say what it is waiting for, e.g. `story block S-4 reason="GPU quota"`.', field="reason"
        )
    if len(reason) > MAX_BLOCK_REASON:
        raise Invalid(f"Keep the reason to {MAX_BLOCK_REASON} characters.", field="reason")
    return await _move(
        session,
        story,
        to="blocked",
        allowed_from=("open", "in_progress"),
        actor=actor,
        action="story.block",
        payload={"reason": reason},
        blocked_reason=reason,
    )


async def unblock_story(session: AsyncSession, *, config: AppConfig, story: Story, actor: str) -> Story:
    require_member(config, story.team, actor, doing=f"change {story.key}")
    if story.status != "blocked":
        raise Conflict(f"{story.key} is {STATUS_WORDS.get(story.status, story.status)}, not blocked.")
    return await start_story(session, config=config, story=story, actor=actor)


async def drop_story(session: AsyncSession, *, config: AppConfig, story: Story, actor: str) -> Sprint:
    """Take a story out of its sprint, back to the backlog (a sprint decision: the team's leads).
    Returns the sprint it left. Serialised with the team's other sprint changes: a sprint closing at the
    same moment has either carried the story on (and it leaves the next sprint) or not yet."""
    team = require_member(config, story.team, actor, doing=f"change {story.key}")
    require_lead(team, actor, doing="drop stories from a sprint", field="sprint")
    await lock_team(session, team.name)
    # Where the story is now that no other sprint change of the team is under way (a close may just have
    # carried it on). Only these two columns: edits the caller made to the story in this transaction stay.
    story.sprint_id, story.status = (
        await session.exec(select(Story.sprint_id, Story.status).where(Story.id == story.id))
    ).one()
    if story.closed:
        raise Conflict(f"{story.key} is {story.status}; only open stories leave a sprint.")
    if story.sprint_id is None:
        raise Conflict(f"{story.key} is in the backlog, not in a sprint.")
    sprint = await session.get(Sprint, story.sprint_id)
    assert sprint is not None  # a foreign key
    now = utcnow()
    story.sprint_id, story.updated_at = None, now
    session.add(story)
    await audit.record(
        session,
        actor=actor,
        action="sprint.drop",
        subject=story.key,
        payload={"sprint": sprint.name, "team": team.name, "points": story.points},
        at=now,
    )
    await session.flush()
    return sprint


async def archive_story(session: AsyncSession, *, config: AppConfig, story: Story, actor: str) -> Story:
    """Put away a story nobody will do: out of its sprint and off every list (kept for the audit)."""
    team = require_member(config, story.team, actor, doing=f"change {story.key}")
    if story.status == "done":
        raise Conflict(f"{story.key} is done; done stories stay on the record.")
    if story.sprint_id is not None:
        require_lead(team, actor, doing="archive a story that is in a sprint")
    return await _move(
        session,
        story,
        to="archived",
        allowed_from=STORY_ACTIVE,
        actor=actor,
        action="story.archive",
        sprint_id=None,
        blocked_reason=None,
    )
