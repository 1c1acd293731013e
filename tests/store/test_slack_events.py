"""Events API deliveries: the first delivery of an event id is handled, retries are not."""

from __future__ import annotations

import pytest

from bot.store.models import SlackEvent
from bot.store.slack_events import claim_event
from tests.factories import tx


async def test_claim_is_true_once_then_false(db):
    async with tx(db) as s:
        assert await claim_event(s, "Ev0123") is True
        assert await claim_event(s, "Ev0123") is False
    async with tx(db) as s:
        assert await claim_event(s, "Ev0123") is False
        row = await s.get(SlackEvent, "Ev0123")
    assert row is not None
    assert row.received_at.tzinfo is not None


async def test_different_events_are_claimed_separately(db):
    async with tx(db) as s:
        assert [await claim_event(s, e) for e in ("Ev1", "Ev2", "Ev1", "Ev3")] == [True, True, False, True]


async def test_a_claim_rolled_back_can_be_claimed_again(db):
    with pytest.raises(RuntimeError):
        async with tx(db) as s:
            assert await claim_event(s, "Ev9")
            raise RuntimeError("handler failed")
    async with tx(db) as s:
        assert await claim_event(s, "Ev9") is True
