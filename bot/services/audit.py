"""The audit log: append-only rows, each hash covering its content and the previous row's hash.

With CADENCE_AUDIT_KEY set (in every process that writes or verifies the log, never in the database),
each hash is an HMAC-SHA256 under that key: someone who can write the database but does not hold the key
cannot edit a row and recompute the chain, nor append a row of their own. Without it the hashes are plain
SHA-256, which shows accidental damage but not a careful rewrite. What each layer protects against is in
docs/audit.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AUDIT_KEY_MIN
from bot.services import events
from bot.store.models import AuditEvent, Counter
from bot.store.queries import insert_ignore, next_number
from bot.store.types import utcnow
from bot.text import plural

GENESIS = "0" * 64
HEAD = "audit"  # counter row: the seq of the newest row ever written
_PG_AUDIT_LOCK = 0x0CAD_E7CE  # advisory lock id serialising appends on PostgreSQL


KEY_ENV = "CADENCE_AUDIT_KEY"
_key: bytes | None = None
_key_read = False


def use_key(key: str | None) -> None:
    """Set the key this process signs and verifies with (tests; processes read CADENCE_AUDIT_KEY)."""
    global _key, _key_read
    if key is not None and len(key) < AUDIT_KEY_MIN:
        raise ValueError(f"{KEY_ENV} must be at least {AUDIT_KEY_MIN} characters")
    _key, _key_read = (key.encode() if key else None), True


def current_key() -> bytes | None:
    if not _key_read:
        use_key(os.environ.get(KEY_ENV) or None)
    return _key


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    payload: str,
    prev_hash: str,
    key: bytes | None = None,
) -> str:
    """The row's digest: HMAC-SHA256 under `key` when there is one, else SHA-256."""
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
    if key:
        return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _hash_of(row: AuditEvent, key: bytes | None) -> str:
    return row_hash(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        payload=row.payload,
        prev_hash=row.prev_hash,
        key=key,
    )


async def _lock(session: AsyncSession) -> None:
    """Serialise appends (and a rekey) on PostgreSQL; SQLite's BEGIN IMMEDIATE already does."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await (await session.connection()).execute(
            text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK}
        )


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
    await _lock(session)
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
        hash="",
    )
    event.hash = _hash_of(event, current_key())
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


async def verify(session: AsyncSession, *, key: bytes | None = None) -> Verification:
    """Recompute the chain from the first row (under `key`, by default this process's) and hold it against
    the head counter both ways: rows removed from the end, and rows added beyond it. Names the first row
    that does not match."""
    key = current_key() if key is None else key
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
        if _hash_of(row, key) != row.hash:
            return Verification(False, checked, row.seq, f"row {row.seq} was changed after it was written")
        if row.seq > written:
            return Verification(
                False, checked, row.seq, f"row {row.seq} is beyond the {written} rows the log has written"
            )
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


async def rekey(session: AsyncSession, *, old: bytes | None, new: bytes | None, actor: str) -> int:
    """Sign the whole chain again: from `old` (None: the plain SHA-256 of a log started before it had a
    key) to `new`. Refuses unless the chain verifies under `old` first. Records the change as a row of its
    own, and returns how many rows were signed again."""
    await _lock(session)
    before = await verify(session, key=old or b"")
    if not before.ok:
        raise ValueError(f"the log does not verify under the old key: {before.reason}")
    prev_hash, count = GENESIS, 0
    async for row in _rows(session):
        row.prev_hash = prev_hash
        row.hash = _hash_of(row, new)
        session.add(row)
        prev_hash, count = row.hash, count + 1
    await session.flush()
    global _key, _key_read
    saved = (_key, _key_read)
    _key, _key_read = new, True
    try:
        await record(session, actor=actor, action="audit.rekey", subject="audit", payload={"rows": count})
    finally:
        _key, _key_read = saved
    return count


async def anchor(session: AsyncSession) -> tuple[int, str] | None:
    """Record that the log's head (its newest row's number and digest) is to be posted outside the
    database; None for an empty log. The same head is posted once however often it is anchored."""
    last = (await session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1))).first()
    if last is None:
        return None
    events.record(session, events.AuditAnchored(last.seq, last.hash))
    return last.seq, last.hash


async def against_anchors(session: AsyncSession, anchors: list[tuple[int, str]]) -> Verification:
    """Hold the log against heads posted earlier (row number, digest): a row that an anchor names must be
    there with that digest. This catches what the chain alone cannot: rows removed from the end with the
    counter lowered to match, or a chain rewritten from before an anchored row by someone with the key."""
    for seq, digest in sorted(set(anchors)):
        row = await session.get(AuditEvent, seq)
        if row is None:
            return Verification(False, 0, seq, f"row {seq} was anchored in Slack but is missing from the log")
        if row.hash != digest:
            return Verification(False, 0, seq, f"row {seq} differs from the digest anchored in Slack")
    return Verification(True, len(set(anchors)))


def report_check(session: AsyncSession, result: Verification) -> None:
    """A failed check becomes an alert to the governance channels; a passing one records nothing."""
    if not result.ok:
        events.record(session, events.AuditCheckFailed(result.first_bad_seq, result.reason))


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
