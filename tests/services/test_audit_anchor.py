"""The audit log's head posted to the governance channels, and the log held against it: what the keyed
chain cannot catch (rows removed from the end with the counter lowered to match) the heads in Slack do."""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.integrations.slack_anchors import anchors_in
from bot.notify.audit import ANCHOR_TYPE, anchor_channels
from bot.services import audit
from tests.conftest import GOV, make_config
from tests.factories import audit_rows, execute, outbox_rows, tx
from tests.services.test_audit_keyed import _record_many, keyed  # noqa: F401 (a fixture)
from tests.slack.helpers import deliver


async def _anchor(db):
    async with tx(db) as s:
        return await audit.anchor(s)


async def test_the_head_goes_to_each_governance_channel_once_with_its_metadata(db):
    config = make_config()
    await _record_many(db)

    head = await _anchor(db)
    await _anchor(db)  # the same head again queues nothing more

    last = (await audit_rows(db))[-1]
    assert head == (4, last.hash)
    [message] = await outbox_rows(db)
    assert message.channel == GOV == anchor_channels(config)[0]
    assert f"row 4, digest `{last.hash}`" in message.payload
    assert ANCHOR_TYPE in message.payload


async def test_an_empty_log_anchors_nothing(db):
    assert await _anchor(db) is None
    assert await outbox_rows(db) == []


@pytest.mark.usefixtures("keyed")
async def test_truncation_with_the_counter_lowered_passes_the_chain_but_not_the_heads(
    db, make_worker, clock, fake_slack
):
    fake_slack.reset()
    await _record_many(db)
    await _anchor(db)
    await deliver(make_worker(), clock)
    client = AsyncWebClient(token="xoxb-test-token", base_url=fake_slack.api_url)
    anchors = await anchors_in(client, [GOV])
    last = (await audit_rows(db))[-1]
    assert anchors == [(4, last.hash)]

    # a database administrator removes the newest row and lowers the counter to match
    await execute(db, "DELETE FROM audit_event WHERE seq = 4")
    await execute(db, "UPDATE counter SET value = 3 WHERE name = 'audit'")

    async with tx(db) as s:
        assert (await audit.verify(s)).ok  # a shorter keyed chain is still a valid chain
        result = await audit.against_anchors(s, anchors)
    assert not result.ok
    assert (result.first_bad_seq, result.reason) == (
        4,
        "row 4 was anchored in Slack but is missing from the log",
    )


async def test_a_rewritten_anchored_row_differs_from_its_head(db):
    await _record_many(db)
    head = await _anchor(db)
    assert head is not None
    await execute(db, "UPDATE audit_event SET hash = :h WHERE seq = 4", h="0" * 64)
    async with tx(db) as s:
        result = await audit.against_anchors(s, [head])
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert result.reason == "row 4 differs from the digest anchored in Slack"


async def test_an_intact_log_agrees_with_its_heads(db, make_worker, clock, fake_slack):
    fake_slack.reset()
    await _record_many(db, 2)
    await _anchor(db)
    await _record_many(db, 2)
    await _anchor(db)
    await deliver(make_worker(), clock)
    anchors = await anchors_in(AsyncWebClient(token="xoxb-test-token", base_url=fake_slack.api_url), [GOV])
    assert sorted(seq for seq, _ in anchors) == [2, 4]
    async with tx(db) as s:
        result = await audit.against_anchors(s, anchors)
    assert (result.ok, result.checked) == (True, 2)


async def test_the_clock_alerts_the_governance_channels_once_when_the_log_no_longer_matches(
    make_app, db, make_worker, clock
):
    async with make_app(make_config()) as slack:
        runner = slack.app.state.runner
        await _record_many(db)
        await runner.anchor_audit()  # the log matches: its head (row 4) is posted
        await deliver(make_worker(), clock)
        assert [m.channel for m in await outbox_rows(db)] == [GOV]

        await execute(db, "DELETE FROM audit_event WHERE seq = 4")
        await execute(db, "UPDATE counter SET value = 3 WHERE name = 'audit'")
        await runner.anchor_audit()
        await runner.anchor_audit()  # the same finding is not posted twice, and no new head is posted

        messages = [m.payload for m in await outbox_rows(db)]
        assert len(messages) == 2
        assert "row 4 was anchored in Slack but is missing from the log" in messages[1]
        assert ":rotating_light:" in messages[1]
