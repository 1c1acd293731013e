"""The readiness gate: the one way a story enters a sprint, whether committed at planning, added with
`--sprint` or moved by the story form. Stories and sprints both build on it; it builds on neither."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig, Team
from bot.services import audit, events, readiness
from bot.services.errors import Conflict, Invalid
from bot.services.teams import require_lead
from bot.store.models import Sprint, Story
from bot.store.queries import lock_team
from bot.store.types import utcnow


@dataclass(frozen=True)
class CommitResult:
    sprint: Sprint
    added: list[Story]
    forced: list[Story] = field(default_factory=list)
    moved_from: dict[str, str] = field(default_factory=dict)  # story key -> the sprint it left
    scope_added: bool = False  # committed to a sprint already under way


def check_force_reason(force_reason: str | None) -> None:
    if force_reason is not None and not force_reason.strip():
        raise Invalid(
            '--force needs a reason, e.g. --force reason="hotfix agreed with the PO".', field="reason"
        )


def require_planner(team: Team, actor: str) -> None:
    require_lead(team, actor, doing="commit stories to a sprint", field="sprint")


def check_sprint_team(sprint: Sprint, team: Team) -> None:
    if sprint.team != team.name:
        raise Conflict(f"Sprint {sprint.name} belongs to team {sprint.team}, not {team.name}.")


def check_open_sprint(sprint: Sprint, team: Team) -> None:
    check_sprint_team(sprint, team)
    if sprint.state == "closed":
        raise Conflict(f"Sprint {sprint.name} is closed.")


def check_candidate(story: Story, team: Team, sprint: Sprint) -> None:
    """A story may be committed if it is the team's, still open, and not in that sprint already."""
    if story.team != team.name:
        raise Conflict(f"{story.key} belongs to team {story.team}, not {team.name}.")
    if story.closed:
        raise Conflict(f"{story.key} is already {story.status}.")
    if story.sprint_id == sprint.id:
        raise Conflict(f"{story.key} is already in sprint {sprint.name}.")


async def admit(
    session: AsyncSession,
    *,
    config: AppConfig,
    team: Team,
    sprint: Sprint,
    picked: list[Story],
    actor: str,
    force_reason: str | None = None,
    today: date | None = None,
) -> CommitResult:
    """Move `picked` into `sprint`. Only the team's leads may, and a not-Ready story needs force with
    a reason, which is audited. Every way into a sprint comes here."""
    require_planner(team, actor)
    await lock_team(session, team.name)
    check_open_sprint(sprint, team)
    unique: list[Story] = []
    for story in picked:
        check_candidate(story, team, sprint)
        if story not in unique:
            unique.append(story)
    checks = await readiness.checklists(session, unique, "ready", config)
    not_ready = [s for s in unique if not checks[s.id].complete]  # type: ignore[index]
    if not_ready and force_reason is None:
        detail = "; ".join(
            f"{s.key} lacks {', '.join(c.label for c in checks[s.id].missing)}"  # type: ignore[index]
            for s in not_ready
        )
        raise Conflict(
            f"Not Ready: {detail}. Fill the criteria with `ready S-n`, or let a lead commit anyway with "
            f'a reason (--force reason="why").',
            field="sprint",
        )
    check_force_reason(force_reason)
    # Every check is above this line: a refusal has written nothing, so a caller may catch it and go on.
    now = utcnow()
    today = today or now.astimezone(config.team_timezone(team)).date()  # the team's date
    # Scope added: into a sprint already under way. Its first day is planning day, not added scope.
    scope_added = sprint.state == "active" and today > sprint.starts_on
    left = {s.sprint_id for s in unique if s.sprint_id is not None}
    names = {
        row.id: row.name for row in (await session.exec(select(Sprint).where(col(Sprint.id).in_(left)))).all()
    }
    moved_from = {s.key: names[s.sprint_id] for s in unique if s.sprint_id in names}
    for story in unique:
        story.sprint_id, story.updated_at = sprint.id, now
        session.add(story)
    for story in unique:
        forced = story in not_ready
        payload: dict[str, object] = {"sprint": sprint.name, "team": team.name, "points": story.points}
        if story.key in moved_from:
            payload["from"] = moved_from[story.key]
        if scope_added:
            payload["scope_added"] = True  # the sprint had started: the review shows it as added scope
        if forced:
            payload["reason"] = (force_reason or "").strip()
            payload["missing"] = [c.key for c in checks[story.id].missing]  # type: ignore[index]
        await audit.record(
            session,
            actor=actor,
            action="sprint.force_commit" if forced else "sprint.commit",
            subject=story.key,
            payload=payload,
            at=now,
        )
    await session.flush()
    events.record(
        session,
        events.StoriesCommitted(
            sprint_id=sprint.id,  # type: ignore[arg-type]
            story_ids=tuple(s.id for s in unique),  # type: ignore[misc]
            forced_ids=tuple(s.id for s in not_ready),  # type: ignore[misc]
            actor=actor,
            scope_added=scope_added,
            reason=(force_reason or "").strip() or None,
        ),
    )
    return CommitResult(sprint, unique, not_ready, moved_from, scope_added)
