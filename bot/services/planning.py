"""The readiness gate: the one way a story enters a sprint, whether committed at planning, added with
`--sprint` or moved by the story form. Stories and sprints both build on it; it builds on neither."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig, Team
from bot.services import audit, readiness
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
    if story.status == "done":
        raise Conflict(f"{story.key} is already done.")
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
            f"Not Ready: {detail}. Fill the criteria with `ready S-n`, or commit anyway with "
            f'--force reason="why".',
            field="sprint",
        )
    if force_reason is not None and not force_reason.strip():
        raise Invalid(
            '--force needs a reason, e.g. --force reason="hotfix agreed with the PO".', field="reason"
        )
    now = utcnow()
    left = {s.sprint_id for s in unique if s.sprint_id is not None}
    names = {
        row.id: row.name for row in (await session.exec(select(Sprint).where(col(Sprint.id).in_(left)))).all()
    }
    moved_from = {s.key: names[s.sprint_id] for s in unique if s.sprint_id in names}
    for story in unique:
        story.sprint_id, story.updated_at = sprint.id, now
        session.add(story)
    for story in unique:  # every commit is a decision on the record; a forced one says why (below)
        if story not in not_ready:
            moved = {"from": moved_from[story.key]} if story.key in moved_from else {}
            await audit.record(
                session,
                actor=actor,
                action="sprint.commit",
                subject=story.key,
                payload={"sprint": sprint.name, "team": team.name, **moved},
                at=now,
            )
    for story in not_ready:
        await audit.record(
            session,
            actor=actor,
            action="sprint.force_commit",
            subject=story.key,
            payload={
                "sprint": sprint.name,
                "team": team.name,
                "reason": (force_reason or "").strip(),
                "missing": [c.key for c in checks[story.id].missing],  # type: ignore[index]
            },
            at=now,
        )
    await session.flush()
    return CommitResult(sprint, unique, not_ready, moved_from)
