"""The keyed audit chain (CADENCE_AUDIT_KEY): a database administrator without the key rewrites it as the
issue did, recomputing every hash they touch, and verification fails each time. Without a key the same
rewrites pass, which is why the key exists."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.services import audit
from bot.store.types import UTCDateTime
from tests.conftest import ALICE, BOB
from tests.factories import audit_rows, execute, tx

KEY = "a-key-of-the-operators-only-0123"


@pytest.fixture
def keyed() -> Iterator[None]:
    audit.use_key(KEY)
    yield
    audit.use_key(None)


async def _record_many(db, n=4):
    async with tx(db) as s:
        for i in range(1, n + 1):
            await audit.record(s, actor=ALICE if i % 2 else BOB, action="ready.waive", subject=f"S-{i}")


async def _verify(db):
    async with tx(db) as s:
        return await audit.verify(s)


def _plain_hash(row, **changes):
    """The hash an attacker without the key computes: SHA-256 of the row as they rewrote it."""
    values = {
        "seq": row.seq,
        "at": row.at,
        "actor": row.actor,
        "action": row.action,
        "subject": row.subject,
        "payload": row.payload,
        "prev_hash": row.prev_hash,
    }
    return audit.row_hash(**{**values, **changes})


async def _edit_last_and_recompute(db):
    last = (await audit_rows(db))[-1]
    await execute(
        db,
        "UPDATE audit_event SET actor = :a, hash = :h WHERE seq = :s",
        a="U0MALLORY",
        h=_plain_hash(last, actor="U0MALLORY"),
        s=last.seq,
    )


async def _edit_row_2_and_recompute_the_rest(db):
    rows = await audit_rows(db)
    prev = rows[0].hash
    for row in rows[1:]:
        actor = "U0MALLORY" if row.seq == 2 else row.actor
        digest = _plain_hash(row, actor=actor, prev_hash=prev)
        await execute(
            db,
            "UPDATE audit_event SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s",
            a=actor,
            p=prev,
            h=digest,
            s=row.seq,
        )
        prev = digest


async def _append_a_forged_row(db):
    from datetime import UTC, datetime

    last = (await audit_rows(db))[-1]
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    seq = last.seq + 1
    digest = audit.row_hash(
        seq=seq, at=at, actor=ALICE, action="review.decide", subject="R-1", payload="{}", prev_hash=last.hash
    )
    await execute(
        db,
        "INSERT INTO audit_event (seq, at, actor, action, subject, payload, prev_hash, hash) "
        "VALUES (:seq, :at, :actor, 'review.decide', 'R-1', '{}', :prev, :hash)",
        types={"at": UTCDateTime()},
        seq=seq,
        at=at,
        actor=ALICE,
        prev=last.hash,
        hash=digest,
    )


async def _append_and_advance_the_counter(db):
    await _append_a_forged_row(db)
    await execute(db, "UPDATE counter SET value = value + 1 WHERE name = 'audit'")


REWRITES = [
    pytest.param(_edit_last_and_recompute, id="edit-last-row-recompute-its-hash"),
    pytest.param(_edit_row_2_and_recompute_the_rest, id="edit-row-2-recompute-the-rest"),
    pytest.param(_append_and_advance_the_counter, id="append-a-row-and-advance-the-counter"),
]


@pytest.mark.parametrize("rewrite", REWRITES)
async def test_without_the_key_a_rewrite_of_the_keyed_chain_is_caught(db, keyed, rewrite):
    await _record_many(db)
    assert (await _verify(db)).ok

    await rewrite(db)

    result = await _verify(db)
    assert not result.ok, result
    assert "was changed" in result.reason or "does not follow" in result.reason


@pytest.mark.parametrize("rewrite", REWRITES)
async def test_an_unkeyed_chain_cannot_tell_the_same_rewrites(db, rewrite):
    """Why the key matters: without one, whoever can write the database can recompute SHA-256 too."""
    await _record_many(db)

    await rewrite(db)

    assert (await _verify(db)).ok


async def test_a_row_appended_while_the_counter_is_behind_is_caught_even_without_a_key(db):
    await _record_many(db)

    await _append_a_forged_row(db)  # the counter still says 4

    result = await _verify(db)
    assert not result.ok
    assert result.first_bad_seq == 5
    assert result.reason == "row 5 is beyond the 4 rows the log has written"


async def test_a_keyed_chain_does_not_verify_without_its_key_or_with_another(db, keyed):
    await _record_many(db)
    async with tx(db) as s:
        assert (await audit.verify(s)).ok
        assert not (await audit.verify(s, key=b"")).ok
        assert not (await audit.verify(s, key=b"another-key-of-16-chars")).ok


async def test_rekey_signs_an_unkeyed_log_and_records_it(db):
    await _record_many(db)
    async with tx(db) as s:
        count = await audit.rekey(s, old=None, new=KEY.encode(), actor="cli:audit-rekey")
    assert count == 4
    audit.use_key(KEY)
    try:
        assert (await _verify(db)).ok
        rows = await audit_rows(db)
        assert (rows[-1].seq, rows[-1].action, rows[-1].actor) == (5, "audit.rekey", "cli:audit-rekey")
        await _edit_last_and_recompute(db)
        assert not (await _verify(db)).ok
    finally:
        audit.use_key(None)


async def test_rekey_refuses_a_log_that_does_not_verify_and_changes_nothing(db):
    await _record_many(db)
    await execute(db, "UPDATE audit_event SET actor = 'U0MALLORY' WHERE seq = 2")
    before = await audit_rows(db)
    with pytest.raises(ValueError, match="does not verify under the old key"):
        async with tx(db) as s:
            await audit.rekey(s, old=None, new=KEY.encode(), actor="cli:audit-rekey")
    assert [(r.seq, r.hash) for r in await audit_rows(db)] == [(r.seq, r.hash) for r in before]


def test_a_key_too_short_to_be_one_is_refused():
    with pytest.raises(ValueError, match="at least 16 characters"):
        audit.use_key("short")
    audit.use_key(None)
