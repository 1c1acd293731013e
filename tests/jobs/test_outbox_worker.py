"""The outbox worker against the fake Slack Web API: order per channel, pacing, Retry-After, backoff,
dead letters, leases after a crash, two workers on one database, edits and thread replies."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import update
from sqlmodel import select

from bot.config import OutboxConfig
from bot.jobs import outbox_worker
from bot.jobs.outbox_worker import OutboxWorker, counts, list_messages, purge_dead, retry_message
from bot.store.db import session_factory
from bot.store.models import CeremonyRun, OutboxMessage
from bot.store.outbox import enqueue, find
from tests.conftest import BOB, GOV, PLATFORM, RECSYS
from tests.factories import outbox_rows, tx
from tests.slack.helpers import deliver

POST = "chat.postMessage"
RATE_LIMITED = {"ok": False, "error": "ratelimited"}
FATAL = {"ok": False, "error": "fatal_error"}


@pytest.fixture(autouse=True)
def _fresh_fake(fake_slack):
    fake_slack.reset()
    yield
    fake_slack.reset()


# ---------------------------------------------------------------------------------------------- helpers


async def put(db, clock, key: str, channel: str = RECSYS, text: str | None = None, **kwargs) -> int:
    """Queue one message (due now on the test clock unless not_before says otherwise); its id."""
    kwargs.setdefault("not_before", clock.now())
    payload = kwargs.pop("payload", None) or {"text": text or key}
    async with tx(db) as s:
        assert await enqueue(s, dedupe_key=key, channel=channel, payload=payload, **kwargs)
        row = await find(s, key)
        assert row is not None and row.id is not None
        return row.id


async def row_of(db, message_id: int) -> OutboxMessage:
    async with tx(db) as s:
        row = await s.get(OutboxMessage, message_id)
        assert row is not None
        return row


async def set_row(db, message_id: int, **values) -> None:
    async with tx(db) as s:
        await s.exec(update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values))  # type: ignore[call-overload]


def posted(fake_slack) -> list[tuple[str, str]]:
    """(channel, text) of every successful chat.postMessage, in the order Slack received them."""
    return [(c.args["channel"], c.args["text"]) for c in fake_slack.delivered()]


async def pending(db) -> int:
    async with tx(db) as s:
        n = await counts(s)
    return n.get("pending", 0) + n.get("sending", 0)


def network_down_worker(db, clock, settings: OutboxConfig) -> OutboxWorker:
    """A worker whose Slack is a closed port: every call is a connection error."""
    client = AsyncWebClient(token="xoxb-test-token", base_url="http://127.0.0.1:1/api/", retry_handlers=[])
    return OutboxWorker(session_factory(db), client, clock=clock, settings=settings)


# --------------------------------------------------------------------------------------------- delivery


async def test_a_queued_message_is_posted_once_and_marked_sent(db, clock, fake_slack, make_worker):
    mid = await put(db, clock, "hello", text="Hello, recsys")
    worker = make_worker()

    assert await worker.run_once() == 1

    (call,) = fake_slack.of(POST)
    assert call.args["channel"] == RECSYS and call.args["text"] == "Hello, recsys"
    assert call.headers.get("Authorization") == "Bearer xoxb-test-token"
    row = await row_of(db, mid)
    assert row.state == "sent"
    assert row.attempts == 1
    assert row.slack_ts and row.slack_ts.startswith("1700000000.")
    assert row.sent_at == clock.now()
    assert row.last_error is None and row.locked_until is None
    assert worker.stats.sent == 1

    clock.advance(seconds=60)
    assert await worker.run_once() == 0
    assert len(fake_slack.of(POST)) == 1
    assert (await row_of(db, mid)).state == "sent"


async def test_the_ts_stored_is_the_one_slack_answered(db, clock, fake_slack, make_worker, monkeypatch):
    answers: dict[str, str] = {}
    success = fake_slack._success

    def recording(method, args):
        body = success(method, args)
        answers[args["text"]] = body["ts"]
        return body

    monkeypatch.setattr(fake_slack, "_success", recording)
    a = await put(db, clock, "a", RECSYS)
    b = await put(db, clock, "b", PLATFORM)
    await make_worker().run_once()
    assert (await row_of(db, a)).slack_ts == answers["a"]
    assert (await row_of(db, b)).slack_ts == answers["b"]
    assert answers["a"] != answers["b"]


async def test_other_methods_and_blocks_go_as_stored(db, clock, fake_slack, make_worker):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    await put(db, clock, "blocks", payload={"text": "fallback", "blocks": blocks})
    await put(
        db, clock, "react", PLATFORM, method="reactions.add", payload={"name": "eyes", "timestamp": "1.2"}
    )
    await make_worker().run_once()
    (post,) = fake_slack.of(POST)
    assert post.args["blocks"] == blocks and post.args["text"] == "fallback"
    (react,) = fake_slack.of("reactions.add")
    assert react.args == {"channel": PLATFORM, "name": "eyes", "timestamp": "1.2"}
    assert {r.state for r in await outbox_rows(db)} == {"sent"}


async def test_nothing_queued_nothing_sent(db, clock, fake_slack, make_worker):
    worker = make_worker()
    assert await worker.run_once() == 0
    assert fake_slack.calls == []
    assert await worker.next_due() is None


# ---------------------------------------------------------------------------------------------- order


async def test_one_channel_goes_in_id_order_one_message_per_round(db, clock, fake_slack, make_worker):
    ids = [await put(db, clock, f"m{i}") for i in range(5)]
    worker = make_worker(settings=OutboxConfig(per_channel_interval_seconds=1))

    for n in range(5):
        assert await worker.run_once() == 1
        assert [t for _, t in posted(fake_slack)] == [f"m{i}" for i in range(n + 1)]
        clock.advance(seconds=1)
    assert await worker.run_once() == 0

    rows = await outbox_rows(db)
    assert [r.id for r in rows] == ids
    assert all(r.state == "sent" for r in rows)
    sent_at = [r.sent_at for r in rows]
    assert sent_at == sorted(sent_at) and len(set(sent_at)) == 5


async def test_different_channels_go_in_the_same_round(db, clock, fake_slack, make_worker):
    for channel in (RECSYS, PLATFORM, GOV):
        await put(db, clock, f"{channel}-1", channel)
        await put(db, clock, f"{channel}-2", channel)
    worker = make_worker()

    assert await worker.run_once() == 3
    assert sorted(posted(fake_slack)) == sorted((c, f"{c}-1") for c in (RECSYS, PLATFORM, GOV))
    clock.advance(seconds=1)
    assert await worker.run_once() == 3
    assert sorted(t for _, t in posted(fake_slack)[3:]) == sorted(f"{c}-2" for c in (RECSYS, PLATFORM, GOV))


async def test_a_backlog_in_one_channel_does_not_starve_the_others(db, clock, fake_slack, make_worker):
    now = clock.now()
    async with tx(db) as s:
        for i in range(outbox_worker.BATCH):
            await enqueue(
                s, dedupe_key=f"bulk{i}", channel=RECSYS, payload={"text": f"bulk{i}"}, not_before=now
            )
    await put(db, clock, "urgent", PLATFORM)

    await make_worker().run_once()

    assert (PLATFORM, "urgent") in posted(fake_slack)


# --------------------------------------------------------------------------------------------- pacing


async def test_a_channel_sends_at_most_once_per_interval(db, clock, fake_slack, make_worker):
    await put(db, clock, "first")
    await put(db, clock, "second")
    worker = make_worker(settings=OutboxConfig(per_channel_interval_seconds=1))

    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    clock.advance(seconds=0.5)
    assert await worker.run_once() == 0
    clock.advance(seconds=0.499)
    assert await worker.run_once() == 0
    assert [t for _, t in posted(fake_slack)] == ["first"]

    clock.advance(seconds=0.001)
    assert await worker.run_once() == 1
    assert [t for _, t in posted(fake_slack)] == ["first", "second"]


async def test_pacing_of_one_channel_does_not_hold_back_another(db, clock, fake_slack, make_worker):
    await put(db, clock, "r1", RECSYS)
    await put(db, clock, "r2", RECSYS)
    worker = make_worker(settings=OutboxConfig(per_channel_interval_seconds=1))
    assert await worker.run_once() == 1
    await put(db, clock, "p1", PLATFORM)
    assert await worker.run_once() == 1
    assert posted(fake_slack) == [(RECSYS, "r1"), (PLATFORM, "p1")]


async def test_interval_zero_sends_the_next_message_at_once(db, clock, fake_slack, make_worker):
    for i in range(3):
        await put(db, clock, f"m{i}")
    worker = make_worker(settings=OutboxConfig(per_channel_interval_seconds=0))
    for _ in range(3):
        assert await worker.run_once() == 1
    assert [t for _, t in posted(fake_slack)] == ["m0", "m1", "m2"]


# ----------------------------------------------------------------------------------------- not_before


async def test_a_message_due_later_waits_for_its_time(db, clock, fake_slack, make_worker):
    due = clock.now() + timedelta(minutes=10)
    mid = await put(db, clock, "later", not_before=due)
    worker = make_worker()

    assert await worker.run_once() == 0
    clock.advance(minutes=9, seconds=59)
    assert await worker.run_once() == 0
    assert fake_slack.of(POST) == []
    assert await worker.next_due() == due
    assert (await row_of(db, mid)).state == "pending"

    clock.set(due)
    assert await worker.run_once() == 1
    assert [t for _, t in posted(fake_slack)] == ["later"]
    assert (await row_of(db, mid)).sent_at == due


async def test_a_later_message_does_not_hold_back_other_channels(db, clock, fake_slack, make_worker):
    await put(db, clock, "tomorrow", RECSYS, not_before=clock.now() + timedelta(days=1))
    await put(db, clock, "now", PLATFORM)
    assert await make_worker().run_once() == 1
    assert posted(fake_slack) == [(PLATFORM, "now")]


# ------------------------------------------------------------------------------------------------ 429


async def test_429_pauses_every_channel_until_retry_after_has_passed(db, clock, fake_slack, make_worker):
    limited = await put(db, clock, "limited", RECSYS)
    other = await put(db, clock, "other", PLATFORM, not_before=clock.now() + timedelta(seconds=1))
    fake_slack.fail(POST, 429, RATE_LIMITED, headers={"Retry-After": "3"})
    worker = make_worker(settings=OutboxConfig(per_channel_interval_seconds=1))
    start = clock.now()

    assert await worker.run_once() == 1
    assert len(fake_slack.of(POST)) == 1 and posted(fake_slack) == []
    row = await row_of(db, limited)
    assert row.state == "pending"
    assert row.attempts == 0  # a rate limit is not a failed attempt
    assert row.next_attempt_at == start + timedelta(seconds=3)
    assert "429" in (row.last_error or "")
    assert worker.stats.rate_limited == 1 and worker.stats.retried == 0

    # the other channel's message is due at +1 s, but every send waits for Slack's Retry-After
    for _ in range(5):
        clock.advance(seconds=0.5)
        assert await worker.run_once() == 0
    assert clock.now() - start == timedelta(seconds=2.5)
    assert len(fake_slack.of(POST)) == 1
    assert (await row_of(db, other)).state == "pending"

    clock.advance(seconds=0.5)
    assert await worker.run_once() == 2
    assert sorted(posted(fake_slack)) == sorted([(PLATFORM, "other"), (RECSYS, "limited")])
    row = await row_of(db, limited)
    assert row.state == "sent" and row.attempts == 1 and row.last_error is None
    assert row.sent_at == start + timedelta(seconds=3)

    clock.advance(seconds=10)
    assert await worker.run_once() == 0
    assert Counter(t for _, t in posted(fake_slack)) == {"limited": 1, "other": 1}


async def test_retry_after_is_honoured_as_slack_sends_it(db, clock, fake_slack, make_worker):
    mid = await put(db, clock, "x")
    fake_slack.fail(POST, 429, RATE_LIMITED, headers={"Retry-After": "30"})
    worker = make_worker()
    await worker.run_once()
    assert (await row_of(db, mid)).next_attempt_at == clock.now() + timedelta(seconds=30)
    clock.advance(seconds=29)
    assert await worker.run_once() == 0
    clock.advance(seconds=1)
    assert await worker.run_once() == 1
    assert posted(fake_slack) == [(RECSYS, "x")]


async def test_429_without_retry_after_waits_a_second(db, clock, fake_slack, make_worker):
    mid = await put(db, clock, "x")
    fake_slack.fail(POST, 429, RATE_LIMITED)
    worker = make_worker()
    await worker.run_once()
    assert (await row_of(db, mid)).next_attempt_at == clock.now() + timedelta(seconds=1)
    assert await worker.run_once() == 0
    clock.advance(seconds=1)
    assert await worker.run_once() == 1


async def test_many_429s_never_dead_letter_a_message(db, clock, fake_slack, make_worker):
    mid = await put(db, clock, "patient")
    fake_slack.fail(POST, 429, RATE_LIMITED, times=5, headers={"Retry-After": "1"})
    worker = make_worker(settings=OutboxConfig(max_attempts=2))
    await deliver(worker, clock)
    row = await row_of(db, mid)
    assert row.state == "sent" and row.attempts == 1
    assert len(fake_slack.of(POST)) == 6 and worker.stats.dead == 0


# ------------------------------------------------------------------------------------------------ 5xx


async def test_5xx_backs_off_keeps_order_and_delivers_once(db, clock, fake_slack, make_worker):
    first = await put(db, clock, "first")
    second = await put(db, clock, "second")
    fake_slack.fail(POST, 500, FATAL, times=3)
    worker = make_worker(settings=OutboxConfig(max_attempts=8, backoff_seconds=2, backoff_cap_seconds=900))

    delays = []
    for attempt in range(1, 4):
        failed_at = clock.now()
        assert await worker.run_once() == 1
        row = await row_of(db, first)
        assert row.state == "pending" and row.attempts == attempt
        assert row.last_error and "500" in row.last_error and "fatal_error" in row.last_error
        delay = (row.next_attempt_at - failed_at).total_seconds()
        assert 2 * 2 ** (attempt - 1) * 0.8 <= delay <= 2 * 2 ** (attempt - 1) * 1.2
        delays.append(delay)
        # nothing goes before the backoff is over, and the second message waits behind the first
        clock.set(row.next_attempt_at - timedelta(milliseconds=1))
        assert await worker.run_once() == 0
        assert (await row_of(db, second)).state == "pending"
        clock.set(row.next_attempt_at)
    assert delays == sorted(delays) and delays[0] < delays[-1]
    assert posted(fake_slack) == []
    assert worker.stats.retried == 3 and worker.stats.by_error["fatal_error"] == 3

    assert await worker.run_once() == 1
    clock.advance(seconds=1)
    assert await worker.run_once() == 1
    assert [t for _, t in posted(fake_slack)] == ["first", "second"]
    row = await row_of(db, first)
    assert row.state == "sent" and row.attempts == 4 and row.last_error is None
    assert (await row_of(db, second)).attempts == 1
    clock.advance(seconds=3600)
    assert await worker.run_once() == 0
    assert len(fake_slack.delivered()) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_any_5xx_is_retried(db, clock, fake_slack, make_worker, status):
    mid = await put(db, clock, "x")
    fake_slack.fail(POST, status, {"ok": False, "error": "service_unavailable"})
    worker = make_worker()
    await worker.run_once()
    row = await row_of(db, mid)
    assert row.state == "pending" and row.attempts == 1 and str(status) in (row.last_error or "")
    await deliver(worker, clock)
    assert (await row_of(db, mid)).state == "sent"


async def test_retryable_ok_false_answers_are_retried(db, clock, fake_slack, make_worker):
    mid = await put(db, clock, "x")
    fake_slack.fail(POST, 200, {"ok": False, "error": "internal_error"})
    worker = make_worker()
    await worker.run_once()
    row = await row_of(db, mid)
    assert row.state == "pending" and row.attempts == 1 and "internal_error" in (row.last_error or "")
    await deliver(worker, clock)
    assert (await row_of(db, mid)).state == "sent"


async def test_backoff_never_exceeds_the_cap(db, clock, fake_slack, make_worker, monkeypatch):
    monkeypatch.setattr(outbox_worker.random, "uniform", lambda low, high: high)
    mid = await put(db, clock, "x")
    fake_slack.fail(POST, 500, FATAL, times=5)
    worker = make_worker(settings=OutboxConfig(max_attempts=50, backoff_seconds=2, backoff_cap_seconds=10))
    for _ in range(5):
        failed_at = clock.now()
        await worker.run_once()
        row = await row_of(db, mid)
        assert row.next_attempt_at - failed_at <= timedelta(seconds=10)
        clock.set(row.next_attempt_at)


# ------------------------------------------------------------------------------------------ dead letter


async def test_dead_letter_after_max_attempts_then_the_channel_moves_on(db, clock, fake_slack, make_worker):
    doomed = await put(db, clock, "doomed")
    nxt = await put(db, clock, "next")
    fake_slack.fail(POST, 500, FATAL, times=3)
    worker = make_worker(settings=OutboxConfig(max_attempts=3, backoff_seconds=1))

    for _ in range(2):
        assert await worker.run_once() == 1
        clock.set(max((await row_of(db, doomed)).next_attempt_at, clock.now() + timedelta(seconds=1)))
    assert (await row_of(db, doomed)).state == "pending"
    assert await worker.run_once() == 1

    row = await row_of(db, doomed)
    assert row.state == "dead"
    assert row.attempts == 3
    assert row.last_error is not None and "fatal_error" in row.last_error and "3 attempts" in row.last_error
    assert row.sent_at is None and row.slack_ts is None and row.locked_until is None
    assert worker.stats.dead == 1 and worker.stats.retried == 2
    assert len(fake_slack.of(POST)) == 3

    clock.advance(seconds=1)
    assert await worker.run_once() == 1
    assert posted(fake_slack) == [(RECSYS, "next")]
    assert (await row_of(db, nxt)).state == "sent"
    clock.advance(seconds=3600)
    assert await worker.run_once() == 0
    assert len(fake_slack.of(POST)) == 4  # the dead message is not tried again


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (
            "not_in_channel",
            "; invite the bot to #C0123RECSYS (type /invite and the app's name in that channel)",
        ),
        ("channel_not_found", "; invite the bot to #C0123RECSYS if it is a private channel"),
    ],
)
async def test_a_channel_the_bot_is_not_in_is_logged_with_what_to_do(
    db, clock, fake_slack, make_worker, caplog, error, says
):
    mid = await put(db, clock, "x")
    fake_slack.fail(POST, 200, {"ok": False, "error": error})
    with caplog.at_level(logging.ERROR, logger="bot.jobs.outbox_worker"):
        await make_worker().run_once()
    [record] = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert record.getMessage().startswith(
        f"outbox {mid} to {RECSYS} dead-lettered: {error} (permanent){says}"
    )


async def test_other_permanent_errors_are_logged_without_advice(db, clock, fake_slack, make_worker, caplog):
    await put(db, clock, "x")
    fake_slack.fail(POST, 200, {"ok": False, "error": "invalid_auth"})
    with caplog.at_level(logging.ERROR, logger="bot.jobs.outbox_worker"):
        await make_worker().run_once()
    [record] = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert record.getMessage().endswith("dead-lettered: invalid_auth (permanent)")


async def test_max_attempts_one_means_no_retry(db, clock, fake_slack, make_worker):
    mid = await put(db, clock, "x")
    fake_slack.fail(POST, 503, FATAL)
    worker = make_worker(settings=OutboxConfig(max_attempts=1))
    await worker.run_once()
    row = await row_of(db, mid)
    assert row.state == "dead" and row.attempts == 1 and "1 attempts" in (row.last_error or "")


@pytest.mark.parametrize("status", [200, 404])
@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "invalid_auth"])
async def test_a_permanent_error_is_dead_at_once(db, clock, fake_slack, make_worker, status, error):
    mid = await put(db, clock, "x")
    nxt = await put(db, clock, "y")
    fake_slack.fail(POST, status, {"ok": False, "error": error})
    worker = make_worker(settings=OutboxConfig(max_attempts=8))

    assert await worker.run_once() == 1
    row = await row_of(db, mid)
    assert row.state == "dead"
    assert row.attempts == 1
    assert row.last_error is not None and error in row.last_error and "permanent" in row.last_error
    assert worker.stats.dead == 1 and worker.stats.retried == 0

    clock.advance(seconds=1)
    assert await worker.run_once() == 1
    assert posted(fake_slack) == [(RECSYS, "y")]
    assert (await row_of(db, nxt)).state == "sent"
    assert len(fake_slack.of(POST)) == 2


# ---------------------------------------------------------------------------------------------- network


async def test_a_network_error_is_retried_with_backoff_not_dead_at_once(db, clock, fake_slack, make_worker):
    mid = await put(db, clock, "x")
    settings = OutboxConfig(max_attempts=5, backoff_seconds=2)
    down = network_down_worker(db, clock, settings)

    delays = []
    for attempt in (1, 2):
        failed_at = clock.now()
        assert await down.run_once() == 1
        row = await row_of(db, mid)
        assert row.state == "pending" and row.attempts == attempt
        assert row.last_error and "network" in row.last_error
        delays.append((row.next_attempt_at - failed_at).total_seconds())
        clock.set(row.next_attempt_at)
    assert 1.6 <= delays[0] <= 2.4 and 3.2 <= delays[1] <= 4.8
    assert down.stats.dead == 0 and down.stats.retried == 2

    # the network comes back (another worker, the same database): delivered once
    up = make_worker(settings=settings)
    assert await up.run_once() == 1
    row = await row_of(db, mid)
    assert row.state == "sent" and row.attempts == 3 and row.last_error is None
    assert posted(fake_slack) == [(RECSYS, "x")]


async def test_a_network_outage_dead_letters_only_after_max_attempts(db, clock, make_worker):
    mid = await put(db, clock, "x")
    down = network_down_worker(db, clock, OutboxConfig(max_attempts=3, backoff_seconds=1))
    for _ in range(3):
        assert await down.run_once() == 1
        row = await row_of(db, mid)
        clock.set(max(row.next_attempt_at, clock.now() + timedelta(seconds=1)))  # backoff and pacing
    assert row.state == "dead" and row.attempts == 3
    assert "network" in (row.last_error or "") and "3 attempts" in (row.last_error or "")


# ------------------------------------------------------------------------------------------------ leases


async def test_a_message_left_sending_by_a_crashed_worker_is_delivered(db, clock, fake_slack, make_worker):
    mid = await put(db, clock, "orphan")
    await set_row(db, mid, state="sending", locked_until=clock.now() - timedelta(seconds=1), attempts=1)

    worker = make_worker()
    assert await worker.run_once() == 1
    assert posted(fake_slack) == [(RECSYS, "orphan")]
    row = await row_of(db, mid)
    assert row.state == "sent" and row.locked_until is None and row.attempts == 2


async def test_a_lease_in_the_future_is_not_touched(db, clock, fake_slack, make_worker):
    mid = await put(db, clock, "leased")
    behind = await put(db, clock, "behind")
    lease = clock.now() + timedelta(seconds=60)
    await set_row(db, mid, state="sending", locked_until=lease)

    worker = make_worker()
    assert await worker.run_once() == 0
    clock.advance(seconds=59)
    assert await worker.run_once() == 0
    assert fake_slack.calls == []
    row = await row_of(db, mid)
    assert row.state == "sending" and row.locked_until == lease and row.attempts == 0
    assert (await row_of(db, behind)).state == "pending"  # and the channel's order holds

    clock.set(lease)
    assert await worker.run_once() == 1
    assert posted(fake_slack) == [(RECSYS, "leased")]


async def test_a_crash_between_claim_and_send_delays_but_never_loses(db, clock, fake_slack, make_worker):
    mid = await put(db, clock, "x")
    crashed = make_worker()
    # the first worker claims the message and dies before it can call Slack
    claimed = await crashed._claim_heads(clock.now())
    assert [c.row.id for c in claimed] == [mid]
    row = await row_of(db, mid)
    assert row.state == "sending" and row.locked_until == clock.now() + crashed.lease("chat.postMessage")

    survivor = make_worker()
    assert await survivor.run_once() == 0
    clock.advance(seconds=crashed.lease("chat.postMessage").total_seconds())
    assert await survivor.run_once() == 1
    assert posted(fake_slack) == [(RECSYS, "x")]


async def test_two_workers_deliver_each_message_exactly_once(db, clock, fake_slack, make_worker):
    texts = {c: [f"{c}-{i}" for i in range(6)] for c in (RECSYS, PLATFORM, GOV)}
    for i in range(6):
        for c in texts:
            await put(db, clock, texts[c][i], c)
    settings = OutboxConfig(per_channel_interval_seconds=1)
    a, b = make_worker(settings=settings, name="a"), make_worker(settings=settings, name="b")

    for _ in range(100):
        if not await pending(db):
            break
        await asyncio.gather(a.run_once(), b.run_once(), a.run_once(), b.run_once())
        clock.advance(seconds=1)
    assert not await pending(db)

    assert Counter(t for _, t in posted(fake_slack)) == Counter(t for ts in texts.values() for t in ts)
    assert len(fake_slack.of(POST)) == 18
    for c, expected in texts.items():
        assert [t for ch, t in posted(fake_slack) if ch == c] == expected
    assert a.stats.sent + b.stats.sent == 18
    assert {r.state for r in await outbox_rows(db)} == {"sent"}


async def test_two_workers_with_interval_zero_still_send_each_once(db, clock, fake_slack, make_worker):
    for i in range(10):
        await put(db, clock, f"m{i}")
    settings = OutboxConfig(per_channel_interval_seconds=0)
    workers = [make_worker(settings=settings, name=str(n)) for n in range(3)]
    for _ in range(50):
        if not await pending(db):
            break
        await asyncio.gather(*(w.run_once() for w in workers))
    assert [t for _, t in posted(fake_slack)] == [f"m{i}" for i in range(10)]
    assert len(fake_slack.of(POST)) == 10


async def test_two_workers_together_keep_one_message_per_second_per_channel(
    db, clock, fake_slack, make_worker
):
    for i in range(4):
        await put(db, clock, f"m{i}")
    settings = OutboxConfig(per_channel_interval_seconds=1)
    a, b = make_worker(settings=settings, name="a"), make_worker(settings=settings, name="b")
    for _ in range(100):
        if not await pending(db):
            break
        await a.run_once()
        await b.run_once()
        clock.advance(seconds=0.25)
    assert [t for _, t in posted(fake_slack)] == [f"m{i}" for i in range(4)]
    times = [r.sent_at for r in await outbox_rows(db)]
    assert all(y - x >= timedelta(seconds=1) for x, y in pairwise(times)), times


async def test_a_429_pauses_the_other_worker_too(db, clock, fake_slack, make_worker):
    await put(db, clock, "limited", RECSYS)
    await put(db, clock, "other", PLATFORM, not_before=clock.now() + timedelta(seconds=1))
    fake_slack.fail(POST, 429, RATE_LIMITED, headers={"Retry-After": "3"})
    a, b = make_worker(name="a"), make_worker(name="b")
    await a.run_once()
    assert [c.args["text"] for c in fake_slack.of(POST)] == ["limited"]
    clock.advance(seconds=1)
    await b.run_once()
    assert [c.args["text"] for c in fake_slack.of(POST)] == ["limited"]


# ------------------------------------------------------------------------------- edits and thread replies


async def test_an_edit_and_a_thread_reply_go_after_their_message_with_its_ts(
    db, clock, fake_slack, make_worker
):
    original = await put(db, clock, "original", text="Standup at 9:30")
    edit = await put(
        db,
        clock,
        "edit",
        method="chat.update",
        payload={"text": "Standup moved to 10:00"},
        update_of=original,
    )
    reply = await put(db, clock, "reply", text="Thread: answers here", thread_of=original)
    fake_slack.fail(POST, 500, FATAL)  # the original needs a second attempt
    worker = make_worker(settings=OutboxConfig(backoff_seconds=1))

    assert await worker.run_once() == 1
    assert fake_slack.of("chat.update") == []
    await deliver(worker, clock)

    ts = (await row_of(db, original)).slack_ts
    assert ts
    (update_call,) = fake_slack.of("chat.update")
    assert update_call.args == {"channel": RECSYS, "ts": ts, "text": "Standup moved to 10:00"}
    replies = [c for c in fake_slack.delivered() if c.args.get("thread_ts")]
    assert [(c.args["thread_ts"], c.args["text"]) for c in replies] == [(ts, "Thread: answers here")]
    # a 500 may come after Slack posted it, so the second attempt looks in the channel first
    assert [c.method for c in fake_slack.calls if "x-fake-failed" not in c.headers] == [
        "conversations.history",
        POST,
        "chat.update",
        POST,
    ]
    assert (await row_of(db, edit)).state == "sent"
    assert (await row_of(db, edit)).slack_ts == ts
    assert (await row_of(db, reply)).state == "sent"


async def test_a_dependent_in_another_queue_waits_for_its_message(db, clock, fake_slack, make_worker):
    """The reference is checked on its own, not only through the channel's order."""
    original = await put(db, clock, "original")
    reply = await put(db, clock, "reply", BOB, text="in thread", thread_of=original)
    fake_slack.fail(POST, 500, FATAL)
    worker = make_worker(settings=OutboxConfig(backoff_seconds=1))

    assert await worker.run_once() == 1  # the original fails; the reply must not go without a ts
    assert fake_slack.of(POST)[0].args["text"] == "original"
    assert len(fake_slack.of(POST)) == 1
    assert (await row_of(db, reply)).state == "pending"

    await deliver(worker, clock)
    ts = (await row_of(db, original)).slack_ts
    call = next(c for c in fake_slack.delivered() if c.args["text"] == "in thread")
    assert call.args["thread_ts"] == ts and call.args["channel"] == BOB


async def test_if_the_message_is_dead_its_edit_and_reply_are_dead_too(db, clock, fake_slack, make_worker):
    original = await put(db, clock, "original")
    edit = await put(db, clock, "edit", method="chat.update", payload={"text": "v2"}, update_of=original)
    reply = await put(db, clock, "reply", thread_of=original)
    after = await put(db, clock, "after")
    fake_slack.fail(POST, 200, {"ok": False, "error": "channel_not_found"})
    worker = make_worker()

    await deliver(worker, clock)

    assert (await row_of(db, original)).state == "dead"
    for dependent in (edit, reply):
        row = await row_of(db, dependent)
        assert row.state == "dead"
        assert row.last_error and str(original) in row.last_error and "never delivered" in row.last_error
        assert row.sent_at is None
    assert fake_slack.of("chat.update") == []
    assert posted(fake_slack) == [(RECSYS, "after")]
    assert (await row_of(db, after)).state == "sent"
    assert worker.stats.dead == 3


# ------------------------------------------------------------------------------------ the 'Done when'


async def test_every_message_once_and_in_order_through_429s_and_500s(
    db, clock, fake_slack, make_worker, monkeypatch
):
    rng = random.Random(20261207)
    monkeypatch.setattr(outbox_worker, "random", random.Random(7))  # the backoff jitter, repeatable
    channels = (RECSYS, PLATFORM, GOV)
    order: dict[str, list[str]] = {c: [] for c in channels}
    for i in range(30):
        channel = channels[i % 3]
        text = f"{channel}#{i}"
        order[channel].append(text)
        await put(db, clock, f"k{i}", channel, text=text)
    worker = make_worker(
        settings=OutboxConfig(
            max_attempts=20, per_channel_interval_seconds=1, backoff_seconds=1, backoff_cap_seconds=8
        )
    )

    def failed_calls() -> Counter[str]:
        return Counter(
            c.headers["x-fake-failed"] for c in fake_slack.of(POST) if "x-fake-failed" in c.headers
        )

    # After each success, maybe hand the fake a short run of failures (once the last run is used up):
    # about half of all calls fail, as 429s (Retry-After: 1) or 500s.
    injected, seen_ok = 0, 0
    for _ in range(5000):
        if not await pending(db):
            break
        successes = len(fake_slack.delivered())
        if injected == failed_calls().total() and successes > seen_ok:
            seen_ok = successes
            roll = rng.random()
            if roll < 0.35:
                times = rng.randint(1, 2)
                fake_slack.fail(POST, 429, RATE_LIMITED, times=times, headers={"Retry-After": "1"})
                injected += times
            elif roll < 0.8:
                times = rng.randint(1, 3)
                fake_slack.fail(POST, 500, FATAL, times=times)
                injected += times
        await worker.run_once()
        clock.advance(seconds=0.25)
    else:
        raise AssertionError(f"the outbox never drained: {await outbox_rows(db)}")
    failed = failed_calls()
    assert failed["429"] >= 3 and failed["500"] >= 5, failed
    assert failed.total() == injected

    # every message delivered exactly once
    successes = Counter(t for _, t in posted(fake_slack))
    assert successes == Counter(t for texts in order.values() for t in texts)
    # and in order per channel
    by_channel: dict[str, list[str]] = defaultdict(list)
    for channel, text in posted(fake_slack):
        by_channel[channel].append(text)
    assert by_channel == order

    rows = await outbox_rows(db)
    assert {r.state for r in rows} == {"sent"}
    assert len({r.slack_ts for r in rows}) == 30
    # the pacing held throughout: never two messages of a channel within a second
    for channel in channels:
        times = sorted(r.sent_at for r in rows if r.channel == channel)
        assert all(b - a >= timedelta(seconds=1) for a, b in pairwise(times))
    assert worker.stats.sent == 30 and worker.stats.dead == 0
    assert worker.stats.rate_limited == failed["429"]


# ---------------------------------------------------------------------------------------------- helpers


async def _dead(db, clock, key: str, **kwargs) -> int:
    mid = await put(db, clock, key, **kwargs)
    await set_row(db, mid, state="dead", attempts=8, last_error="fatal_error after 8 attempts")
    return mid


async def test_list_messages_newest_first_with_state_and_limit(db, clock):
    a = await put(db, clock, "a")
    b = await _dead(db, clock, "b")
    c = await put(db, clock, "c", PLATFORM)
    d = await _dead(db, clock, "d", channel=PLATFORM)
    async with tx(db) as s:
        assert [r.id for r in await list_messages(s)] == [d, c, b, a]
        assert [r.id for r in await list_messages(s, state="dead")] == [d, b]
        assert [r.id for r in await list_messages(s, state="pending")] == [c, a]
        assert [r.id for r in await list_messages(s, state="sent")] == []
        assert [r.id for r in await list_messages(s, limit=2)] == [d, c]
        assert [r.id for r in await list_messages(s, state="dead", limit=1)] == [d]


async def test_counts_by_state(db, clock, make_worker):
    async with tx(db) as s:
        assert await counts(s) == {}
    await put(db, clock, "a")
    await put(db, clock, "b", PLATFORM)
    await put(db, clock, "c", PLATFORM)
    await _dead(db, clock, "d", channel=GOV)
    await make_worker().run_once()
    async with tx(db) as s:
        assert await counts(s) == {"sent": 2, "pending": 1, "dead": 1}


async def test_retry_message_requeues_a_dead_message_which_is_then_delivered(
    db, clock, fake_slack, make_worker
):
    mid = await _dead(db, clock, "x")
    later = clock.advance(hours=1)
    async with tx(db) as s:
        row = await retry_message(s, mid, later)
        assert row is not None and row.id == mid
    row = await row_of(db, mid)
    assert row.state == "pending" and row.attempts == 0 and row.next_attempt_at == later
    assert row.locked_until is None

    await make_worker().run_once()
    assert posted(fake_slack) == [(RECSYS, "x")]
    assert (await row_of(db, mid)).state == "sent"


async def test_retry_message_refuses_unknown_and_live_messages(db, clock, make_worker):
    pend = await put(db, clock, "pending")
    sent = await put(db, clock, "sent", PLATFORM)
    await set_row(db, sent, state="sent")
    before = await outbox_rows(db)
    async with tx(db) as s:
        assert await retry_message(s, 999_999, clock.now()) is None
        assert await retry_message(s, pend, clock.now()) is None
        assert await retry_message(s, sent, clock.now()) is None
    assert [r.model_dump() for r in await outbox_rows(db)] == [r.model_dump() for r in before]


async def test_purge_dead_removes_dead_messages_nothing_refers_to(db, clock):
    keep_pending = await put(db, clock, "pending")
    dead_alone = await _dead(db, clock, "alone")
    dead_edited = await _dead(db, clock, "edited", channel=PLATFORM)
    await put(
        db, clock, "edit", PLATFORM, method="chat.update", payload={"text": "v2"}, update_of=dead_edited
    )
    dead_threaded = await _dead(db, clock, "threaded", channel=GOV)
    await put(db, clock, "reply", GOV, thread_of=dead_threaded)
    dead_run = await _dead(db, clock, "run", channel=BOB)
    async with tx(db) as s:
        s.add(
            CeremonyRun(
                team="recsys",
                ceremony="standup",
                scheduled_for=clock.now(),
                status="done",
                message_id=dead_run,
                claimed_by="test",
            )
        )

    async with tx(db) as s:
        assert await purge_dead(s) == 1
    ids = {r.id for r in await outbox_rows(db)}
    assert dead_alone not in ids
    assert {keep_pending, dead_edited, dead_threaded, dead_run} <= ids
    async with tx(db) as s:
        assert await purge_dead(s) == 0
        assert (await s.exec(select(CeremonyRun))).one().message_id == dead_run


async def test_purge_dead_removes_a_dead_message_with_its_dead_dependents(db, clock, fake_slack, make_worker):
    original = await put(db, clock, "original")
    await put(db, clock, "edit", method="chat.update", payload={"text": "v2"}, update_of=original)
    fake_slack.fail(POST, 200, {"ok": False, "error": "channel_not_found"})
    await deliver(make_worker(), clock)
    assert {r.state for r in await outbox_rows(db)} == {"dead"}

    async with tx(db) as s:
        removed = await purge_dead(s)
    assert await outbox_rows(db) == []
    assert removed == 2


async def test_purge_dead_with_nothing_dead(db, clock):
    await put(db, clock, "a")
    async with tx(db) as s:
        assert await purge_dead(s) == 0
    assert len(await outbox_rows(db)) == 1


async def test_the_payload_channel_is_the_rows(db, clock, fake_slack, make_worker):
    await put(db, clock, "x", BOB, payload={"channel": "C0ELSEWHERE", "text": "hi"})
    await make_worker().run_once()
    assert posted(fake_slack) == [(BOB, "hi")]
    (row,) = await outbox_rows(db)
    assert json.loads(row.payload)["channel"] == BOB


async def test_next_due_reports_the_earliest_pending_time(db, clock, make_worker):
    soon = clock.now() + timedelta(minutes=5)
    await put(db, clock, "late", not_before=clock.now() + timedelta(hours=1))
    await put(db, clock, "soon", PLATFORM, not_before=soon)
    assert await make_worker().next_due() == soon


async def test_a_sent_at_is_the_clock_of_delivery(db, clock, make_worker):
    mid = await put(db, clock, "x")
    clock.set(datetime(2027, 1, 1, 12, 0, tzinfo=clock.now().tzinfo))
    await make_worker().run_once()
    assert (await row_of(db, mid)).sent_at == datetime(2027, 1, 1, 12, 0, tzinfo=clock.now().tzinfo)


# ------------------------------------------------------------------------------------------ sends in doubt


async def crash_after_slack_had_it(db, clock, fake_slack, make_worker, mid: int) -> OutboxWorker:
    """A worker claims the message, Slack posts it, and the worker dies before recording that."""
    crashed = make_worker()
    (claim,) = await crashed._claim_heads(clock.now())
    args = json.loads(claim.row.payload) | {"metadata": outbox_worker.tag(None, mid)}
    await crashed.client.api_call(POST, json=args)
    clock.advance(seconds=crashed.lease(POST).total_seconds())
    return crashed


async def test_every_post_carries_its_outbox_id_in_the_message_metadata(db, clock, fake_slack, make_worker):
    plain = await put(db, clock, "plain", text="Standup time")
    head = await put(
        db,
        clock,
        "head",
        GOV,
        payload={
            "text": "audit head",
            "metadata": {"event_type": "cadence_audit_head", "event_payload": {"row": 7}},
        },
    )
    await make_worker().run_once()
    by_text = {c.args["text"]: c.args["metadata"] for c in fake_slack.of(POST)}
    assert by_text["Standup time"] == {
        "event_type": "cadence_outbox",
        "event_payload": {"cadence_outbox_id": plain},
    }
    # a message with metadata of its own keeps its type and gains the id
    assert by_text["audit head"] == {
        "event_type": "cadence_audit_head",
        "event_payload": {"row": 7, "cadence_outbox_id": head},
    }
    assert [m.metadata for m in fake_slack.channel_messages(RECSYS)] == [by_text["Standup time"]]


async def test_a_message_slack_had_before_the_crash_is_found_and_not_sent_again(
    db, clock, fake_slack, make_worker
):
    mid = await put(db, clock, "standup", text="Standup time")
    await crash_after_slack_had_it(db, clock, fake_slack, make_worker, mid)
    (already,) = fake_slack.channel_messages(RECSYS)

    survivor = make_worker()
    assert await survivor.run_once() == 1

    assert len(fake_slack.channel_messages(RECSYS)) == 1, "posted twice"
    (look,) = fake_slack.of("conversations.history")
    assert look.args["channel"] == RECSYS and look.args["include_all_metadata"] in (True, "true", "1")
    row = await row_of(db, mid)
    assert (row.state, row.slack_ts, row.in_doubt) == ("sent", already.ts, False)
    assert survivor.stats.recovered == 1 and survivor.stats.sent == 1


async def test_a_message_lost_with_the_crash_is_looked_for_then_sent_once(db, clock, fake_slack, make_worker):
    mid = await put(db, clock, "standup", text="Standup time")
    crashed = make_worker()
    await crashed._claim_heads(clock.now())  # dies before calling Slack
    clock.advance(seconds=crashed.lease(POST).total_seconds())

    survivor = make_worker()
    assert await survivor.run_once() == 1
    assert [c.method for c in fake_slack.calls] == ["conversations.history", POST]
    assert posted(fake_slack) == [(RECSYS, "Standup time")]
    assert (await row_of(db, mid)).state == "sent" and survivor.stats.recovered == 0


async def test_a_dm_in_doubt_is_looked_for_in_the_conversation_with_the_person(
    db, clock, fake_slack, make_worker
):
    mid = await put(db, clock, "dm", BOB, text="You own S-3")
    await crash_after_slack_had_it(db, clock, fake_slack, make_worker, mid)

    assert await make_worker().run_once() == 1
    (opened,) = fake_slack.of("conversations.open")
    assert opened.args["users"] == BOB
    (look,) = fake_slack.of("conversations.history")
    assert look.args["channel"] == "D" + BOB[1:]
    assert len(fake_slack.channel_messages("D" + BOB[1:])) == 1
    assert (await row_of(db, mid)).state == "sent"


async def test_a_thread_reply_in_doubt_is_looked_for_in_its_thread(db, clock, fake_slack, make_worker):
    original = await put(db, clock, "original", text="Review R-1")
    await make_worker().run_once()
    parent = (await row_of(db, original)).slack_ts
    clock.advance(seconds=5)
    reply = await put(db, clock, "reply", text="Approved by Carol", thread_of=original)
    crashed = make_worker()
    (claim,) = await crashed._claim_heads(clock.now())
    args = json.loads(claim.row.payload) | {"thread_ts": parent, "metadata": outbox_worker.tag(None, reply)}
    await crashed.client.api_call(POST, json=args)
    clock.advance(seconds=crashed.lease(POST).total_seconds())

    assert await make_worker().run_once() == 1
    (look,) = fake_slack.of("conversations.replies")
    assert (look.args["channel"], look.args["ts"]) == (RECSYS, parent)
    assert [m.text for m in fake_slack.channel_messages(RECSYS)] == ["Review R-1", "Approved by Carol"]
    assert (await row_of(db, reply)).state == "sent"


async def test_an_answer_that_never_came_marks_the_send_in_doubt_and_the_retry_finds_it(
    db, clock, fake_slack, make_worker
):
    mid = await put(db, clock, "late", text="Planning in 2 h")
    settings = OutboxConfig(lease_seconds=2, backoff_seconds=1)
    fake_slack.answer_late(POST, 2.5)  # posted at once, answered after the worker gave up (1.6 s)
    worker = make_worker(settings=settings)

    assert await worker.run_once() == 1
    row = await row_of(db, mid)
    assert (row.state, row.in_doubt) == ("pending", True)
    assert row.last_error and row.last_error.startswith("- network: TimeoutError")

    await deliver(worker, clock)
    assert len(fake_slack.channel_messages(RECSYS)) == 1, "posted twice"
    assert (await row_of(db, mid)).state == "sent" and worker.stats.recovered == 1


async def test_a_refusal_slack_answered_is_not_in_doubt(db, clock, fake_slack, make_worker):
    """ok=false (here a 429) means Slack did not post it: the retry posts without looking."""
    mid = await put(db, clock, "limited", text="Retro tomorrow")
    fake_slack.fail(POST, 429, RATE_LIMITED, headers={"Retry-After": "1"})
    worker = make_worker()
    await worker.run_once()
    assert (await row_of(db, mid)).in_doubt is False
    await deliver(worker, clock)
    assert fake_slack.of("conversations.history") == []
    assert posted(fake_slack) == [(RECSYS, "Retro tomorrow")]


async def test_without_the_history_scope_the_message_is_sent_again_and_the_log_says_why(
    db, clock, fake_slack, make_worker, caplog
):
    mid = await put(db, clock, "standup", text="Standup time")
    await crash_after_slack_had_it(db, clock, fake_slack, make_worker, mid)
    fake_slack.fail("conversations.history", 200, {"ok": False, "error": "missing_scope"})

    survivor = make_worker()
    with caplog.at_level(logging.WARNING, logger="bot.jobs.outbox_worker"):
        assert await survivor.run_once() == 1
    assert [m.text for m in fake_slack.channel_messages(RECSYS)] == ["Standup time", "Standup time"]
    assert survivor.stats.unverified == 1
    assert "missing_scope" in caplog.text and "sending it again" in caplog.text
    assert (await row_of(db, mid)).state == "sent"


async def test_a_lookup_that_fails_holds_the_message_in_doubt_and_posts_nothing(
    db, clock, fake_slack, make_worker
):
    mid = await put(db, clock, "standup", text="Standup time")
    await crash_after_slack_had_it(db, clock, fake_slack, make_worker, mid)
    fake_slack.fail("conversations.history", 500, FATAL)

    worker = make_worker(settings=OutboxConfig(backoff_seconds=1))
    assert await worker.run_once() == 1
    row = await row_of(db, mid)
    assert (row.state, row.in_doubt, row.attempts) == ("pending", True, 1)
    assert len(fake_slack.channel_messages(RECSYS)) == 1

    await deliver(worker, clock)
    assert len(fake_slack.channel_messages(RECSYS)) == 1
    assert (await row_of(db, mid)).state == "sent"


async def test_with_check_history_off_a_send_in_doubt_is_simply_sent_again(
    db, clock, fake_slack, make_worker
):
    mid = await put(db, clock, "standup", text="Standup time")
    await crash_after_slack_had_it(db, clock, fake_slack, make_worker, mid)
    assert await make_worker(settings=OutboxConfig(check_history=False)).run_once() == 1
    assert fake_slack.of("conversations.history") == []
    assert len(fake_slack.channel_messages(RECSYS)) == 2  # at least once: the documented fallback


async def test_delivery_latency_is_counted_from_when_the_message_fell_due(db, clock, fake_slack, make_worker):
    seen: list[float] = []
    await put(db, clock, "now", text="now")
    later = clock.now() + timedelta(hours=1)
    await put(db, clock, "later", PLATFORM, text="later", not_before=later)
    worker = make_worker()
    worker.on_sent = seen.append
    clock.advance(seconds=3)
    await worker.run_once()
    clock.set(later + timedelta(seconds=7))
    await worker.run_once()
    assert seen == [3.0, 7.0]


async def test_slack_unreachable_for_an_hour_delays_everything_and_loses_nothing(
    db, clock, fake_slack, make_worker
):
    """Connections refused for an hour with the default settings: no message dies, nothing is looked
    for (a refused connection cannot have posted anything), and when Slack is back every message goes
    once, each channel in order."""
    texts = {c: [f"{c}-{i}" for i in range(3)] for c in (RECSYS, PLATFORM)}
    for i in range(3):
        for c in texts:
            await put(db, clock, texts[c][i], c)
    down = network_down_worker(db, clock, OutboxConfig())
    back_at = clock.now() + timedelta(hours=1)
    while clock.now() < back_at:
        await down.run_once()
        # on to the next retry of a channel's head (the messages behind it wait for it)
        retries = [r.next_attempt_at for r in await outbox_rows(db) if r.attempts]
        clock.set(max(min(retries), clock.now() + timedelta(seconds=1)))
    async with tx(db) as s:
        assert (await counts(s)).get("dead", 0) == 0
    assert all(not r.in_doubt for r in await outbox_rows(db))
    assert down.stats.retried > 0

    clock.set(max(r.next_attempt_at for r in await outbox_rows(db)))  # Slack is back by every retry
    await deliver(make_worker(), clock)
    assert fake_slack.of("conversations.history") == []
    for c, expected in texts.items():
        assert [t for ch, t in posted(fake_slack) if ch == c] == expected
    assert {r.state for r in await outbox_rows(db)} == {"sent"}


# ------------------------------------------------------------------------------------------- retention


async def test_sent_messages_past_their_retention_are_deleted_unless_something_still_needs_them(
    db, clock, fake_slack, make_worker
):
    from bot.store.models import Review

    worker = make_worker(settings=OutboxConfig(per_channel_interval_seconds=0))
    long_ago = clock.now()
    old_plain = await put(db, clock, "old plain")
    old_request = await put(db, clock, "old review request", GOV)
    old_original = await put(db, clock, "old original", PLATFORM)
    old_run_message = await put(db, clock, "old standup", BOB)
    old_chain = await put(db, clock, "old chain")
    await deliver(worker, clock)
    old_chain_edit = await put(
        db, clock, "old chain edit", method="chat.update", payload={"text": "e"}, update_of=old_chain
    )
    await deliver(worker, clock)
    old_dead = await put(db, clock, "old dead", GOV)
    await set_row(db, old_dead, state="dead")
    async with tx(db) as s:
        s.add(
            Review(
                number=1,
                team="recsys",
                purpose="production",
                subject="x",
                requested_by="U01ALICE",
                source="slack",
                message_id=old_request,
            )
        )
        s.add(
            CeremonyRun(
                team="recsys",
                ceremony="standup",
                scheduled_for=long_ago,
                status="done",
                message_id=old_run_message,
                claimed_by="t",
            )
        )

    clock.advance(days=40)
    recent = await put(db, clock, "recent")
    pending_edit = await put(
        db,
        clock,
        "pending edit",
        PLATFORM,
        method="chat.update",
        payload={"text": "later"},
        update_of=old_original,
    )
    await set_row(db, pending_edit, next_attempt_at=clock.now() + timedelta(days=1))
    await deliver(worker, clock)

    async with tx(db) as s:
        deleted = await outbox_worker.prune_sent(s, clock.now() - timedelta(days=30))
    left = {r.id for r in await outbox_rows(db)}
    assert old_plain not in left and old_chain not in left and old_chain_edit not in left
    assert old_run_message not in left  # the run is past the retention too: it let go of its message
    assert {old_request, old_original, old_dead, recent, pending_edit} <= left
    assert deleted == 4
    async with tx(db) as s:
        (run,) = (await s.exec(select(CeremonyRun))).all()
    assert run.message_id is None


async def test_a_claim_that_waits_too_long_for_a_free_slot_is_given_back_untried(db, fake_slack):
    """One send at a time and a slow Slack: the second message claimed in the round would start too late
    to finish inside its lease (where another worker might take it), so it goes back to pending with no
    attempt counted, and the next round sends it, once."""
    from bot.clock import SystemClock

    client = AsyncWebClient(token="xoxb-test-token", base_url=fake_slack.api_url, retry_handlers=[])
    settings = OutboxConfig(lease_seconds=2, per_channel_interval_seconds=0)
    worker = OutboxWorker(session_factory(db), client, clock=SystemClock(), settings=settings, concurrency=1)
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    first = await put(db, worker.clock, "first", RECSYS, not_before=long_ago)
    second = await put(db, worker.clock, "second", PLATFORM, not_before=long_ago)
    fake_slack.answer_late(POST, 1.0)  # the first send holds the only slot for a second

    assert await worker.run_once() == 2
    rows = {r.id: r for r in await outbox_rows(db)}
    assert rows[first].state == "sent"
    assert (rows[second].state, rows[second].attempts, rows[second].locked_until) == ("pending", 0, None)
    assert posted(fake_slack) == [(RECSYS, "first")]

    assert await worker.run_once() == 1
    assert posted(fake_slack) == [(RECSYS, "first"), (PLATFORM, "second")]
    assert (await row_of(db, second)).state == "sent"
