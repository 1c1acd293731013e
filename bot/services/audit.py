"""The audit log: append-only rows, each hash covering its content and the previous row's hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import AuditEvent, Counter
from bot.store.queries import insert_ignore, next_number
from bot.store.types import utcnow
from bot.text import plural

GENESIS = "0" * 64
HEAD = "audit"  # counter row: the seq of the newest row ever written
_PG_AUDIT_LOCK = 0x0CAD_E7CE  # advisory lock id serialising appends on PostgreSQL


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(
    *, seq: int, at: datetime, actor: str, action: str, subject: str, payload: str, prev_hash: str
) -> str:
    body = canonical_json(
        {
            "seq": seq,
            "at": at.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "payload": payload,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    subject: str,
    payload: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one decision to the chain, inside the caller's transaction."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await (await session.connection()).execute(
            text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK}
        )
    last = (await session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1))).first()
    # The head counter remembers how long the log is, so removing its newest rows is noticed too.
    await insert_ignore(session, Counter, {"name": HEAD, "value": last.seq if last else 0})
    seq = await next_number(session, HEAD)
    prev_hash = GENESIS if last is None else last.hash
    # Microsecond precision is what both SQLite and PostgreSQL keep, so the hash survives a round trip.
    at = (at or utcnow()).astimezone(UTC)  # the column keeps UTC; hash exactly what is kept
    body = canonical_json(payload or {})
    event = AuditEvent(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        payload=body,
        prev_hash=prev_hash,
        hash=row_hash(
            seq=seq, at=at, actor=actor, action=action, subject=subject, payload=body, prev_hash=prev_hash
        ),
    )
    session.add(event)
    await session.flush()
    return event


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""


async def _rows(session: AsyncSession, batch: int = 1000) -> AsyncIterator[AuditEvent]:
    after = 0
    while True:
        rows = (
            await session.exec(
                select(AuditEvent).where(AuditEvent.seq > after).order_by(col(AuditEvent.seq)).limit(batch)
            )
        ).all()
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].seq


async def verify(session: AsyncSession) -> Verification:
    """Recompute the chain from the first row; name the first row that does not match."""
    head = await session.get(Counter, HEAD)
    written = head.value if head else 0
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    async for row in _rows(session):
        if row.seq != expected_seq:
            return Verification(
                False, checked, expected_seq, f"row {expected_seq} is missing (next row is {row.seq})"
            )
        if row.prev_hash != prev_hash:
            return Verification(False, checked, row.seq, f"row {row.seq} does not follow row {row.seq - 1}")
        actual = row_hash(
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            payload=row.payload,
            prev_hash=row.prev_hash,
        )
        if actual != row.hash:
            return Verification(False, checked, row.seq, f"row {row.seq} was changed after it was written")
        prev_hash, expected_seq, checked = row.hash, expected_seq + 1, checked + 1
    if written > checked:
        return Verification(
            False,
            checked,
            checked + 1,
            f"row {checked + 1} is missing: {plural(written, 'row')} {'was' if written == 1 else 'were'} "
            f"written, {checked} {'remains' if checked == 1 else 'remain'}",
        )
    return Verification(True, checked)


async def history(session: AsyncSession, subject: str) -> list[AuditEvent]:
    rows = await session.exec(
        select(AuditEvent).where(AuditEvent.subject == subject).order_by(col(AuditEvent.seq))
    )
    return list(rows.all())


async def count(session: AsyncSession) -> int:
    return int((await session.exec(select(func.count()).select_from(AuditEvent))).one())


async def export_rows(
    session: AsyncSession, *, since: datetime | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Every row in order as plain values (payload parsed), for JSON Lines or CSV."""
    async for row in _rows(session):
        if since is not None and row.at < since:
            continue
        yield {
            "seq": row.seq,
            "at": row.at.isoformat(timespec="microseconds"),
            "actor": row.actor,
            "action": row.action,
            "subject": row.subject,
            "payload": json.loads(row.payload),
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        }
