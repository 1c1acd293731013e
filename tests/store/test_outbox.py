"""The outbox: a message is a row first, once per dedupe key."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel import select

from bot.store.models import OutboxMessage
from bot.store.outbox import DUE_NOW, enqueue
from tests.conftest import BOB, RECSYS
from tests.factories import outbox_rows, tx


async def test_enqueue_stores_a_pending_message(db):
    async with tx(db) as s:
        queued = await enqueue(
            s,
            dedupe_key="nudge:S-1",
            channel=RECSYS,
            payload={"text": "Hello ✓", "blocks": [{"type": "divider"}]},
        )
    assert queued is True
    (row,) = await outbox_rows(db)
    assert row.dedupe_key == "nudge:S-1"
    assert row.channel == RECSYS
    assert row.method == "chat.postMessage"
    assert row.state == "pending"
    assert row.attempts == 0
    assert row.sent_at is None and row.slack_ts is None and row.last_error is None
    assert json.loads(row.payload) == {"channel": RECSYS, "text": "Hello ✓", "blocks": [{"type": "divider"}]}
    assert row.next_attempt_at == DUE_NOW  # due at once, whatever clock the worker runs on
    assert row.next_attempt_at.tzinfo is not None


async def test_payload_is_compact_sorted_json(db):
    async with tx(db) as s:
        await enqueue(s, dedupe_key="k", channel=BOB, payload={"text": "t", "a": 1})
    (row,) = await outbox_rows(db)
    assert row.payload == '{"a":1,"channel":"U02BOB","text":"t"}'


async def test_the_stored_call_goes_to_the_rows_channel(db):
    async with tx(db) as s:
        await enqueue(s, dedupe_key="k", channel=BOB, payload={"channel": "C0OTHER", "text": "t"})
    (row,) = await outbox_rows(db)
    assert row.channel == BOB
    assert json.loads(row.payload)["channel"] == row.channel


async def test_method_and_not_before(db):
    later = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    async with tx(db) as s:
        await enqueue(
            s,
            dedupe_key="k",
            channel=RECSYS,
            payload={"name": "eyes"},
            method="reactions.add",
            not_before=later,
        )
    (row,) = await outbox_rows(db)
    assert row.method == "reactions.add"
    assert row.next_attempt_at == later


async def test_same_dedupe_key_twice_keeps_one_row(db):
    async with tx(db) as s:
        first = await enqueue(
            s, dedupe_key="standup:recsys:2026-01-05", channel=RECSYS, payload={"text": "one"}
        )
    async with tx(db) as s:
        second = await enqueue(
            s, dedupe_key="standup:recsys:2026-01-05", channel=RECSYS, payload={"text": "two"}
        )
    assert (first, second) == (True, False)
    rows = await outbox_rows(db)
    assert len(rows) == 1
    assert json.loads(rows[0].payload)["text"] == "one"


async def test_same_dedupe_key_twice_in_one_transaction(db):
    async with tx(db) as s:
        assert await enqueue(s, dedupe_key="k", channel=RECSYS, payload={"text": "a"})
        assert not await enqueue(s, dedupe_key="k", channel=RECSYS, payload={"text": "b"})
        count = len((await s.exec(select(OutboxMessage))).all())
    assert count == 1


async def test_different_keys_are_different_messages(db):
    async with tx(db) as s:
        for key in ("a", "b", "c"):
            assert await enqueue(s, dedupe_key=key, channel=RECSYS, payload={"text": key})
    assert [r.dedupe_key for r in await outbox_rows(db)] == ["a", "b", "c"]
