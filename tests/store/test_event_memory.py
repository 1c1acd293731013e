"""Handled Events API ids are kept long enough to drop Slack's retries, then forgotten."""

from datetime import timedelta

from bot.store.models import SlackEvent
from bot.store.slack_events import claim_event, forget_before
from bot.store.types import utcnow
from tests.factories import rows, tx


async def test_old_event_ids_are_forgotten_and_recent_ones_kept(db):
    async with tx(db) as s:
        assert await claim_event(s, "Ev-old")
        assert await claim_event(s, "Ev-new")
    async with tx(db) as s:
        old = await s.get(SlackEvent, "Ev-old")
        old.received_at = utcnow() - timedelta(days=3)
        s.add(old)
    async with tx(db) as s:
        assert await forget_before(s, utcnow() - timedelta(days=2)) == 1
    assert [e.event_id for e in await rows(db, SlackEvent)] == ["Ev-new"]
    async with tx(db) as s:
        assert not await claim_event(s, "Ev-new")  # a retry of a recent event is still dropped
