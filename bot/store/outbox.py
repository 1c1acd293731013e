"""The outbox: messages the bot sends on its own initiative are rows first, delivered later."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import OutboxMessage
from bot.store.queries import insert_ignore
from bot.store.types import utcnow

DUE_NOW = datetime(1970, 1, 1, tzinfo=UTC)  # next_attempt_at of a message that may go as soon as possible


async def enqueue(
    session: AsyncSession,
    *,
    dedupe_key: str,
    channel: str,
    payload: dict[str, Any],
    method: str = "chat.postMessage",
    not_before: datetime | None = None,
    update_of: int | None = None,
    thread_of: int | None = None,
) -> bool:
    """Queue one Web API call; a second call with the same dedupe key is ignored. True if queued.
    Without `not_before` it is due at once, whatever clock the worker runs on."""
    now = utcnow()
    args = {**payload, "channel": channel}  # the row's channel is where it goes (and what is paced)
    return await insert_ignore(
        session,
        OutboxMessage,
        {
            "dedupe_key": dedupe_key,
            "method": method,
            "channel": channel,
            "payload": json.dumps(args, sort_keys=True, separators=(",", ":")),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": not_before or DUE_NOW,
            "created_at": now,
            "update_of": update_of,
            "thread_of": thread_of,
        },
    )


async def find(session: AsyncSession, dedupe_key: str) -> OutboxMessage | None:
    return (await session.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))).first()


async def replace_pending_update(session: AsyncSession, *, update_of: int, payload: dict[str, Any]) -> bool:
    """Fold a new edit of a message into one still waiting to be sent; False if none is waiting."""
    pending = (
        await session.exec(
            select(OutboxMessage).where(
                OutboxMessage.update_of == update_of, OutboxMessage.state == "pending"
            )
        )
    ).first()
    if pending is None:
        return False
    pending.payload = json.dumps(
        {**payload, "channel": pending.channel}, sort_keys=True, separators=(",", ":")
    )
    session.add(pending)
    return True


async def edit(
    session: AsyncSession, *, original: int, channel: str, payload: dict[str, Any], dedupe_key: str
) -> None:
    """Queue a chat.update of an earlier message (sent once the original is). A newer edit folds into
    one that is still waiting, so a burst of changes makes one call."""
    if not await replace_pending_update(session, update_of=original, payload=payload):
        await enqueue(
            session,
            dedupe_key=dedupe_key,
            channel=channel,
            payload=payload,
            method="chat.update",
            update_of=original,
        )
