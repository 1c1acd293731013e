"""Messages about stories: a new owner hears about their story."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.events import StoryAssigned
from bot.store import outbox
from bot.store.models import Story
from bot.text import escape

if TYPE_CHECKING:
    from bot.notify.notifier import Notifier


async def assigned(n: Notifier, session: AsyncSession, event: StoryAssigned) -> None:
    """A DM to the new owner, once per assignment."""
    story = await session.get(Story, event.story_id)
    if story is None:
        return
    await outbox.enqueue(
        session,
        dedupe_key=f"assign:{story.key}:{event.owner}:{event.at.isoformat()}",
        channel=event.owner,
        payload={"text": f"<@{event.actor}> assigned you {story.key}: {escape(story.title)}"},
    )
