"""When clocks go back a wall-clock time happens twice, a ceremony only once; a DM scheduled for
later does not hold up the messages queued after it for the same person."""

import json
from datetime import UTC, datetime, timedelta

from bot.services.schedule import occasions
from bot.store import outbox
from tests.conftest import make_config
from tests.factories import tx


def _fires(cron: str, start: datetime, end: datetime) -> list[str]:
    config = make_config(ceremonies={"standup": {"cron": cron}})
    [occasion] = occasions(config, config.teams[0])
    return [at.strftime("%m-%d %H:%M") for at, _ in occasion.fire_times(start, end)]


def test_a_ceremony_in_the_repeated_hour_runs_once():
    # Berlin leaves summer time on 25 Oct 2026: 02:30 local is first 00:30 UTC, then 01:30 UTC.
    fires = _fires(
        "30 2 * * *", datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 26, 12, tzinfo=UTC)
    )
    assert fires == ["10-25 00:30", "10-26 01:30"]


def test_an_hourly_cron_skips_only_the_repeated_hour():
    fires = _fires("0 * * * *", datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 4, tzinfo=UTC))
    assert fires == ["10-24 23:00", "10-25 00:00", "10-25 02:00", "10-25 03:00", "10-25 04:00"]


def test_the_skipped_hour_in_spring_does_not_run_twice_or_vanish_the_next_day():
    fires = _fires("30 2 * * *", datetime(2026, 3, 28, 12, tzinfo=UTC), datetime(2026, 3, 30, 12, tzinfo=UTC))
    assert fires[-1] == "03-30 00:30" and len(fires) == len(set(fires))


async def test_a_scheduled_dm_does_not_hold_up_later_messages(db, clock, fake_slack, make_worker):
    fake_slack.reset()
    async with tx(db) as session:
        await outbox.enqueue(
            session,
            dedupe_key="standup-dm",
            channel="U02BOB",
            payload={"text": "standup at 09:30 your time"},
            not_before=clock.now() + timedelta(hours=6),
        )
        await outbox.enqueue(
            session, dedupe_key="assigned", channel="U02BOB", payload={"text": "you got S-4"}
        )
    worker = make_worker()
    await worker.run_once()
    assert [c.args["text"] for c in fake_slack.of("chat.postMessage")] == ["you got S-4"]
    clock.advance(hours=6, seconds=1)
    await worker.run_once()
    assert [c.args["text"] for c in fake_slack.of("chat.postMessage")] == [
        "you got S-4",
        "standup at 09:30 your time",
    ]


async def test_a_message_backing_off_still_holds_its_channel_in_order(db, clock, fake_slack, make_worker):
    fake_slack.reset()
    async with tx(db) as session:
        await outbox.enqueue(session, dedupe_key="first", channel="C0001", payload={"text": "first"})
        await outbox.enqueue(session, dedupe_key="second", channel="C0001", payload={"text": "second"})
    fake_slack.fail("chat.postMessage", 500)
    worker = make_worker()
    await worker.run_once()  # "first" fails and backs off
    clock.advance(seconds=1.5)
    await worker.run_once()  # "second" must wait behind it
    assert [json.dumps(c.args.get("text")) for c in fake_slack.of("chat.postMessage")] == ['"first"']
    clock.advance(seconds=60)
    for _ in range(3):
        await worker.run_once()
        clock.advance(seconds=2)
    sent = [c.args["text"] for c in fake_slack.delivered()]
    assert sent == ["first", "second"]
