"""The audit log: an append-only hash chain that names the first row someone tampered with."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.services import audit
from bot.store.types import UTCDateTime
from tests.conftest import ALICE, BOB, CAROL
from tests.factories import audit_rows, execute, tx


async def _record_many(db, n=5):
    async with tx(db) as s:
        for i in range(1, n + 1):
            await audit.record(
                s,
                actor=ALICE if i % 2 else BOB,
                action="ready.waive",
                subject=f"S-{(i % 2) + 1}",
                payload={"criterion": f"c{i}", "reason": f"reason {i} — ünïcode"},
            )


async def _verify(db):
    async with tx(db) as s:
        return await audit.verify(s)


async def test_an_empty_log_verifies(db):
    result = await _verify(db)
    assert result.ok
    assert result.checked == 0
    assert result.first_bad_seq is None


async def test_records_form_a_chain(db):
    async with tx(db) as s:
        first = await audit.record(
            s, actor=ALICE, action="story.done", subject="S-1", payload={"b": 1, "a": 2}
        )
        second = await audit.record(s, actor=CAROL, action="review.approve", subject="R-1")
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == audit.GENESIS
    assert second.prev_hash == first.hash
    assert len(first.hash) == 64 and first.hash != second.hash
    rows = await audit_rows(db)
    assert rows[0].payload == '{"a":2,"b":1}'  # canonical JSON, exactly as hashed
    assert rows[1].payload == "{}"
    assert [r.hash for r in rows] == [first.hash, second.hash]


async def test_a_chain_written_in_several_transactions_verifies(db):
    await _record_many(db, 3)
    await _record_many(db, 4)
    result = await _verify(db)
    assert result.ok, result.reason
    assert result.checked == 7
    async with tx(db) as s:
        assert await audit.count(s) == 7


async def test_the_hash_survives_the_database_round_trip_with_a_given_time(db):
    at = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    async with tx(db) as s:
        event = await audit.record(s, actor=ALICE, action="x", subject="S-1", at=at)
    (row,) = await audit_rows(db)
    assert row.at == at
    assert row.hash == event.hash
    assert (await _verify(db)).ok


async def test_a_time_given_in_another_timezone_still_verifies(db):
    berlin = timezone(timedelta(hours=1))
    async with tx(db) as s:
        await audit.record(
            s, actor=ALICE, action="x", subject="S-1", at=datetime(2026, 3, 1, 10, 0, tzinfo=berlin)
        )
    assert (await _verify(db)).ok


async def test_changing_a_payload_is_detected_at_that_row(db):
    await _record_many(db, 5)
    await execute(
        db, "UPDATE audit_event SET payload = :p WHERE seq = 3", p='{"criterion":"c3","reason":"fine"}'
    )
    result = await _verify(db)
    assert not result.ok
    assert result.first_bad_seq == 3
    assert result.checked == 2
    assert "row 3" in result.reason and "changed" in result.reason


@pytest.mark.parametrize(
    ("column", "value"),
    [("actor", "U99MALLORY"), ("action", "story.undone"), ("subject", "S-99")],
)
async def test_changing_any_column_is_detected(db, column, value):
    await _record_many(db, 4)
    await execute(db, f"UPDATE audit_event SET {column} = :v WHERE seq = 2", v=value)
    result = await _verify(db)
    assert not result.ok
    assert result.first_bad_seq == 2


async def test_changing_the_time_is_detected(db):
    await _record_many(db, 3)
    async with tx(db) as s:
        row = await s.get(audit.AuditEvent, 2)
        row.at = row.at + timedelta(seconds=1)
        s.add(row)
    result = await _verify(db)
    assert (result.ok, result.first_bad_seq) == (False, 2)


async def test_rewriting_a_row_with_a_fresh_hash_breaks_the_next_link(db):
    await _record_many(db, 4)
    rows = await audit_rows(db)
    forged_payload = '{"criterion":"c2","reason":"forged"}'
    forged_hash = audit.row_hash(
        seq=2,
        at=rows[1].at,
        actor=rows[1].actor,
        action=rows[1].action,
        subject=rows[1].subject,
        payload=forged_payload,
        prev_hash=rows[1].prev_hash,
    )
    await execute(
        db, "UPDATE audit_event SET payload = :p, hash = :h WHERE seq = 2", p=forged_payload, h=forged_hash
    )
    result = await _verify(db)
    assert not result.ok
    assert result.first_bad_seq == 3
    assert "does not follow" in result.reason


async def test_deleting_a_middle_row_names_the_missing_seq(db):
    await _record_many(db, 5)
    await execute(db, "DELETE FROM audit_event WHERE seq = 3")
    result = await _verify(db)
    assert not result.ok
    assert result.first_bad_seq == 3
    assert result.checked == 2
    assert "row 3 is missing" in result.reason


async def test_deleting_the_first_row_is_detected(db):
    await _record_many(db, 3)
    await execute(db, "DELETE FROM audit_event WHERE seq = 1")
    result = await _verify(db)
    assert (result.ok, result.first_bad_seq) == (False, 1)


async def test_swapping_two_rows_content_is_detected(db):
    await _record_many(db, 5)
    cols = ["at", "actor", "action", "subject", "payload", "prev_hash", "hash"]
    rows = {r.seq: r for r in await audit_rows(db)}
    # hash is unique: park row 2's hash first, then move each row's content into the other's seq.
    await execute(db, "UPDATE audit_event SET hash = 'parked' WHERE seq = 2")
    for target, source in ((3, 2), (2, 3)):
        src = rows[source]
        await execute(
            db,
            f"UPDATE audit_event SET {', '.join(f'{c} = :{c}' for c in cols)} WHERE seq = :seq",
            seq=target,
            types={"at": UTCDateTime()},
            **{c: getattr(src, c) for c in cols},
        )
    swapped = {r.seq: r for r in await audit_rows(db)}
    assert swapped[2].payload == rows[3].payload and swapped[3].payload == rows[2].payload
    result = await _verify(db)
    assert not result.ok
    assert result.first_bad_seq == 2


async def test_renumbering_rows_is_detected(db):
    await _record_many(db, 3)
    await execute(db, "UPDATE audit_event SET seq = 10 WHERE seq = 3")
    await execute(db, "UPDATE audit_event SET seq = 3 WHERE seq = 2")
    await execute(db, "UPDATE audit_event SET seq = 2 WHERE seq = 10")
    result = await _verify(db)
    assert not result.ok
    assert result.first_bad_seq == 2


async def test_verify_reads_long_chains_in_batches(db):
    async with tx(db) as s:
        for i in range(25):
            await audit.record(s, actor=ALICE, action="a", subject=f"S-{i}")
    async with tx(db) as s:
        rows = [r.seq async for r in audit._rows(s, batch=7)]
    assert rows == list(range(1, 26))
    assert (await _verify(db)).checked == 25


async def test_history_returns_one_subjects_rows_in_order(db):
    async with tx(db) as s:
        await audit.record(s, actor=ALICE, action="ready.waive", subject="S-1", payload={"n": 1})
        await audit.record(s, actor=BOB, action="ready.waive", subject="S-2", payload={"n": 2})
        await audit.record(s, actor=ALICE, action="story.done", subject="S-1", payload={"n": 3})
        await audit.record(s, actor=BOB, action="x", subject="S-10", payload={"n": 4})
    async with tx(db) as s:
        s1 = await audit.history(s, "S-1")
        s2 = await audit.history(s, "S-2")
        none = await audit.history(s, "S-3")
    assert [(r.seq, r.action, json.loads(r.payload)["n"]) for r in s1] == [
        (1, "ready.waive", 1),
        (3, "story.done", 3),
    ]
    assert [r.seq for r in s2] == [2]
    assert none == []


async def test_a_rolled_back_record_leaves_no_gap(db):
    await _record_many(db, 2)
    with pytest.raises(RuntimeError):
        async with tx(db) as s:
            await audit.record(s, actor=ALICE, action="x", subject="S-1")
            raise RuntimeError("abort")
    async with tx(db) as s:
        event = await audit.record(s, actor=ALICE, action="y", subject="S-1")
    assert event.seq == 3
    assert (await _verify(db)).ok


async def test_the_count_of_missing_rows_agrees_with_its_number(db):
    await _record_many(db, 1)
    await execute(db, "DELETE FROM audit_event WHERE seq = 1")
    assert (await _verify(db)).reason == "row 1 is missing: 1 row was written, 0 remain"


async def test_one_remaining_row_is_counted_as_one(db):
    await _record_many(db, 2)
    await execute(db, "DELETE FROM audit_event WHERE seq = 2")
    assert (await _verify(db)).reason == "row 2 is missing: 2 rows were written, 1 remains"
