"""The audit log's head, posted to every governance channel: a record the database cannot rewrite."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig
from bot.services.events import AuditAnchored, AuditCheckFailed
from bot.store import outbox

if TYPE_CHECKING:
    from bot.notify.notifier import Notifier

ANCHOR_TYPE = "cadence_audit_head"  # the message metadata's event_type, found again by verify --against-slack


def anchor_channels(config: AppConfig) -> list[str]:
    """Where heads are posted: each governance channel once."""
    return sorted({t.governance.channel for t in config.teams if t.governance is not None})


async def _to_governance(n: Notifier, session: AsyncSession, key: str, payload: dict[str, Any]) -> None:
    """One message to each governance channel; `key` makes a repeat of it a no-op."""
    for channel in anchor_channels(n.config):
        await outbox.enqueue(session, dedupe_key=f"{key}:{channel}", channel=channel, payload=payload)


async def audit_anchored(n: Notifier, session: AsyncSession, event: AuditAnchored) -> None:
    text = (
        f":lock: Audit log head: row {event.seq}, digest `{event.digest}`. Kept here so that "
        "`cadence audit verify --against-slack` can tell if the log is ever shortened or rewritten."
    )
    metadata = {"event_type": ANCHOR_TYPE, "event_payload": {"seq": event.seq, "digest": event.digest}}
    await _to_governance(n, session, f"audit-head:{event.seq}", {"text": text, "metadata": metadata})


async def audit_check_failed(n: Notifier, session: AsyncSession, event: AuditCheckFailed) -> None:
    """The same finding is posted once (a check every few hours would otherwise repeat it)."""
    digest = hashlib.sha256(event.reason.encode()).hexdigest()[:16]
    text = (
        f":rotating_light: The audit log no longer matches what was recorded: {event.reason}. "
        "Someone changed the database; compare with `cadence audit verify --against-slack` and "
        "restore from a backup taken before that row."
    )
    await _to_governance(n, session, f"audit-check:{event.first_bad_seq}:{digest}", {"text": text})
