"""The outbox: messages the bot sends on its own initiative are rows first, delivered later."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import UPLOAD_METHOD, OutboxMessage
from bot.store.queries import insert_ignore
from bot.store.types import utcnow

DUE_NOW = datetime(1970, 1, 1, tzinfo=UTC)  # next_attempt_at of a message that may go as soon as possible
NOW = "cadence.outbox.now"  # session.info key: when the notifier queued this transaction's messages


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
    now = session.info.get(NOW) or utcnow()
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
            "due_at": not_before or now,
            "update_of": update_of,
            "thread_of": thread_of,
        },
    )


async def enqueue_upload(
    session: AsyncSession,
    *,
    dedupe_key: str,
    channel: str,
    files: list[tuple[str, str, bytes]],
    initial_comment: str | None = None,
    thread_of: int | None = None,
    not_before: datetime | None = None,
) -> bool:
    """Queue files (filename, title, content) to be uploaded and shared in `channel`, in the thread of
    the outbox message `thread_of` when given. The contents travel base64-encoded in the payload."""
    payload: dict[str, Any] = {
        "file_uploads": [
            {"filename": name, "title": title, "content_b64": base64.b64encode(content).decode("ascii")}
            for name, title, content in files
        ]
    }
    if initial_comment:
        payload["initial_comment"] = initial_comment
    return await enqueue(
        session,
        dedupe_key=dedupe_key,
        channel=channel,
        payload=payload,
        method=UPLOAD_METHOD,
        not_before=not_before,
        thread_of=thread_of,
    )


async def find(session: AsyncSession, dedupe_key: str) -> OutboxMessage | None:
    return (await session.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))).first()


async def _pending_update(session: AsyncSession, update_of: int) -> OutboxMessage | None:
    return (
        await session.exec(
            select(OutboxMessage).where(
                OutboxMessage.update_of == update_of, OutboxMessage.state == "pending"
            )
        )
    ).first()


def _set_payload(row: OutboxMessage, payload: dict[str, Any]) -> None:
    row.payload = json.dumps({**payload, "channel": row.channel}, sort_keys=True, separators=(",", ":"))


async def replace_pending_update(session: AsyncSession, *, update_of: int, payload: dict[str, Any]) -> bool:
    """Fold a new edit of a message into one still waiting to be sent; False if none is waiting."""
    pending = await _pending_update(session, update_of)
    if pending is None:
        return False
    _set_payload(pending, payload)
    session.add(pending)
    return True


async def edit(
    session: AsyncSession,
    *,
    original: int,
    channel: str,
    payload: dict[str, Any],
    dedupe_key: str,
    not_before: datetime | None = None,
) -> datetime:
    """Queue a chat.update of an earlier message (sent once the original is). A newer edit folds into
    one that is still waiting, which then goes at the earlier of the two times, so a burst of changes
    makes one call. Returns when the edit is due."""
    due = not_before or DUE_NOW
    pending = await _pending_update(session, original)
    if pending is not None:
        _set_payload(pending, payload)
        pending.next_attempt_at = min(pending.next_attempt_at, due)
        session.add(pending)
        return pending.next_attempt_at
    await enqueue(
        session,
        dedupe_key=dedupe_key,
        channel=channel,
        payload=payload,
        method="chat.update",
        update_of=original,
        not_before=not_before,
    )
    return due


async def revise(
    session: AsyncSession, message_id: int, payload: dict[str, Any], *, due_now: bool = False
) -> bool:
    """Rewrite a message that has not been sent yet (and send it as soon as possible if `due_now`);
    False if it has gone (or is going) already, and needs an edit instead."""
    row = await session.get(OutboxMessage, message_id)
    if row is None or row.state != "pending":
        return False
    _set_payload(row, payload)
    if due_now:
        row.next_attempt_at = DUE_NOW
    session.add(row)
    return True
