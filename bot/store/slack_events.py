"""Events API deliveries already handled: Slack retries a delivery it thinks was lost."""

from __future__ import annotations

import hashlib
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


async def claim_trigger(session: AsyncSession, trigger_id: str) -> bool:
    """True the first time an interaction's trigger id is seen. Slack gives each slash command, click and
    form submission its own; the same one again is a replay of a signed request. Stored hashed beside
    the event ids (any length fits, and they are pruned alike)."""
    key = "trigger:" + hashlib.sha256(trigger_id.encode()).hexdigest()[:48]
    return await claim_event(session, key)


async def forget_before(session: AsyncSession, before: datetime) -> int:
    """Drop event ids older than `before`: Slack retries a delivery within minutes, not days."""
    result = await session.exec(delete(SlackEvent).where(col(SlackEvent.received_at) < before))
    return int(result.rowcount or 0)
