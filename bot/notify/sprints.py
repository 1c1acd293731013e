"""Messages as a sprint moves: its start, stories committed (forced ones named, their owners told),
stories done and the close report, in the team channel unless the team's `announce` turns them off."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import Block
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Team
from bot.services import readiness, sprints
from bot.services.events import SprintClosed, SprintStarted, StoriesCommitted, StoryDone
from bot.services.sprints import CloseReport
from bot.slack import ids
from bot.slack.blocks import actions, button, render, section
from bot.slack.blocks import sprints as blocks
from bot.store import outbox
from bot.store.models import Sprint, Story
from bot.text import escape

if TYPE_CHECKING:
    from bot.notify.notifier import Notifier


def _today(n: Notifier, team: Team) -> date:
    return n.clock.now().astimezone(n.config.team_timezone(team)).date()


async def _stories(session: AsyncSession, story_ids: tuple[int, ...]) -> list[Story]:
    if not story_ids:
        return []
    rows = await session.exec(select(Story).where(col(Story.id).in_(story_ids)).order_by(col(Story.number)))
    return list(rows.all())


async def _post(session: AsyncSession, *, key: str, team: Team, text: str, body: list[Block]) -> None:
    await outbox.enqueue(
        session, dedupe_key=key, channel=team.channel, payload={"text": text, "blocks": render(body)}
    )


async def sprint_started(n: Notifier, session: AsyncSession, event: SprintStarted) -> None:
    sprint = await session.get(Sprint, event.sprint_id)
    team = n.config.team(sprint.team) if sprint else None
    if sprint is None or team is None or not team.announce.sprint_start:
        return
    await _post(
        session,
        key=f"sprint:{sprint.id}:start",
        team=team,
        text=f"Sprint {escape(sprint.name)} started",
        body=blocks.sprint_started(sprint, actor=event.actor, today=_today(n, team)),
    )


async def stories_committed(n: Notifier, session: AsyncSession, event: StoriesCommitted) -> None:
    sprint = await session.get(Sprint, event.sprint_id)
    team = n.config.team(sprint.team) if sprint else None
    if sprint is None or team is None:
        return
    committed = await _stories(session, event.story_ids)
    forced = [s for s in committed if s.id in event.forced_ids]
    key = f"commit:{sprint.id}:{'-'.join(str(i) for i in event.story_ids)}:{n.clock.now().isoformat()}"
    if team.announce.commits and committed:
        await _post(
            session,
            key=key,
            team=team,
            text=f"{len(committed)} committed to {escape(sprint.name)}",
            body=blocks.stories_committed(
                sprint,
                committed,
                forced=forced,
                actor=event.actor,
                scope_added=event.scope_added,
                reason=event.reason,
                today=_today(n, team),
            ),
        )
    # The owner of a story let in although not Ready hears it, with what it still lacks.
    for story in forced:
        if not story.owner or story.owner == event.actor:
            continue
        ready = await readiness.checklist(session, story, "ready", n.config)
        text = blocks.forced_owner_dm(
            story, sprint, actor=event.actor, reason=event.reason, missing=[c.label for c in ready.missing]
        )
        dm = [section(text), actions(button("Fill readiness", ids.OPEN_READY_MODAL, story.key, "primary"))]
        await outbox.enqueue(
            session,
            dedupe_key=f"{key}:forced:{story.key}",
            channel=story.owner,
            payload={"text": text, "blocks": render(dm)},
        )


async def story_done(n: Notifier, session: AsyncSession, event: StoryDone) -> None:
    story = await session.get(Story, event.story_id)
    team = n.config.team(story.team) if story else None
    if story is None or team is None or not team.announce.done or story.sprint_id is None:
        return
    sprint = await session.get(Sprint, story.sprint_id)
    view = await sprints.overview(session, config=n.config, team=team, sprint=sprint) if sprint else None
    await _post(
        session,
        key=f"done:{story.key}",
        team=team,
        text=f"{story.key} is done",
        body=blocks.story_finished(story, actor=event.actor, view=view),
    )


async def sprint_closed(n: Notifier, session: AsyncSession, event: SprintClosed) -> None:
    sprint = await session.get(Sprint, event.sprint_id)
    team = n.config.team(sprint.team) if sprint else None
    if sprint is None or team is None or not team.announce.close:
        return
    following = await session.get(Sprint, event.next_sprint_id) if event.next_sprint_id else None
    report = CloseReport(
        sprint, await _stories(session, event.done_ids), await _stories(session, event.carried_ids), following
    )
    await _post(
        session,
        key=f"sprint:{sprint.id}:close",
        team=team,
        text=f"Sprint {escape(sprint.name)} closed",
        body=blocks.close_report(report),
    )
