"""Messages about stories: a new owner hears about their story."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import readiness, stories
from bot.services.events import StoryAssigned
from bot.slack.blocks.stories import assignment_dm
from bot.store import outbox
from bot.store.models import Story

if TYPE_CHECKING:
    from bot.notify.notifier import Notifier


async def assigned(n: Notifier, session: AsyncSession, event: StoryAssigned) -> None:
    """A DM to the new owner, once per assignment: the story, what it lacks, buttons to act on it."""
    story = await session.get(Story, event.story_id)
    if story is None:
        return
    ready = await readiness.checklist(session, story, "ready", n.config)
    await outbox.enqueue(
        session,
        dedupe_key=f"assign:{story.key}:{event.owner}:{event.at.isoformat()}",
        channel=event.owner,
        payload=assignment_dm(
            story, actor=event.actor, sprint_name=await stories.sprint_name(session, story), ready=ready
        ),
    )
