"""Events API deliveries already handled: Slack retries a delivery it thinks was lost."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import SlackEvent
from bot.store.queries import insert_ignore
from bot.store.types import utcnow


async def claim_event(session: AsyncSession, event_id: str) -> bool:
    """True the first time an event id is seen, False for every repeat."""
    return await insert_ignore(session, SlackEvent, {"event_id": event_id, "received_at": utcnow()})


async def forget_before(session: AsyncSession, before: datetime) -> int:
    """Drop event ids older than `before`: Slack retries a delivery within minutes, not days."""
    result = await session.exec(delete(SlackEvent).where(col(SlackEvent.received_at) < before))
    return int(result.rowcount or 0)
