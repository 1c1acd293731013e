"""Drift incidents in Slack, as signed scenarios: every button clicked twice and by an outsider, the
storm (10,000 breaching readings make at most 3 posts or edits), and the quiet-day hold."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.jobs.outbox_worker import OutboxWorker
from bot.services import drift
from bot.slack import ids
from bot.store.models import AuditEvent, DriftIncident, OutboxMessage, Story
from tests.conftest import BOB, FRANK, RECSYS, make_config
from tests.drift.conftest import T0, drift_config, reading
from tests.factories import rows
from tests.slack.helpers import deliver, posted, replies, shown, updates

POSTS_OR_EDITS = ("chat.postMessage", "chat.update", "chat.postEphemeral")


@pytest.fixture
def worker(make_worker: Callable[..., OutboxWorker]) -> OutboxWorker:
    return make_worker()


@pytest.fixture
async def dslack(make_app, clock):
    clock.set(T0)
    async with make_app(drift_config(RUNBOOK_RULES)) as driver:
        yield driver


RUNBOOK_RULES = [
    {
        "model": "recsys-*",
        "metric": "psi",
        "direction": "above",
        "warn": 0.1,
        "critical": 0.2,
        "team": "recsys",
        "runbook": "https://wiki.example.com/runbooks/psi",
    }
]


async def ingest(slack, clock, readings: list[drift.Reading]) -> drift.Ingested:
    async with slack.app.state.deps.transaction() as session:
        return await drift.ingest(
            session, config=slack.app.state.deps.config, readings=readings, now=clock.now()
        )


async def opened(slack, clock, worker, value: float = 0.15) -> dict[str, Any]:
    """D-1 opened by one breaching reading and its message delivered: the message as Slack got it."""
    done = await ingest(slack, clock, [reading(value)])
    assert done.opened == ["D-1"]
    await deliver(worker, clock)
    [message] = posted(slack, RECSYS)
    return message


def element(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    return next(
        e
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id
    )


async def pick(slack, value: str, *, user: str | None = None) -> None:
    """Choose an option of the snooze menu, as Slack sends a static_select."""
    payload = {
        "type": "block_actions",
        "team": {"id": "T0001", "domain": "test"},
        "user": {"id": user or slack.user, "team_id": "T0001"},
        "api_app_id": "A0001",
        "trigger_id": "trigger.snooze",
        "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": RECSYS},
        "channel": {"id": RECSYS, "name": "team"},
        "response_url": slack.fake.response_url("snooze"),
        "actions": [
            {
                "type": "static_select",
                "action_id": ids.DRIFT_SNOOZE,
                "block_id": "b1",
                "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": value},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    await slack.interact(payload)


async def test_the_alert_shows_the_incident_and_its_buttons(dslack, db, clock, worker):
    message = await opened(dslack, clock, worker)
    text = shown(message)
    assert "*D-1*" in text and "warn" in text and "recsys-ranker · psi" in text
    assert element(message, ids.DRIFT_ACK)["value"] == "D-1"
    assert [o["value"] for o in element(message, ids.DRIFT_SNOOZE)["options"]] == [
        "D-1|1h",
        "D-1|24h",
        "D-1|resolved",
    ]
    assert element(message, ids.DRIFT_RUNBOOK)["url"] == "https://wiki.example.com/runbooks/psi"
    assert element(message, ids.DRIFT_STORY)["text"]["text"] == "Create retraining story"


async def test_acknowledge_edits_the_message_once_and_a_second_click_says_who(dslack, db, clock, worker):
    await opened(dslack, clock, worker)
    await dslack.click(ids.DRIFT_ACK, "D-1")
    await dslack.click(ids.DRIFT_ACK, "D-1", user=BOB)
    await deliver(worker, clock)

    [edit] = updates(dslack)
    assert "Acknowledged* by <@U01ALICE>" in shown(edit)
    first, second = replies(dslack)
    assert "You acknowledged *D-1*" in shown(first)
    assert second["response_type"] == "ephemeral" and "<@U01ALICE>" in second["text"]
    assert len(await rows(db, AuditEvent, AuditEvent.action == "drift.acknowledge")) == 1


async def test_an_outsider_is_refused_by_every_control(dslack, db, clock, worker):
    await opened(dslack, clock, worker)
    await dslack.click(ids.DRIFT_ACK, "D-1", user=FRANK)
    await pick(dslack, "D-1|24h", user=FRANK)
    await dslack.click(ids.DRIFT_STORY, "D-1", user=FRANK)
    await deliver(worker, clock)

    assert updates(dslack) == []
    assert len(replies(dslack)) == 3 and all(r["response_type"] == "ephemeral" for r in replies(dslack))
    assert all("recsys" in r["text"] for r in replies(dslack))
    [incident] = await rows(db, DriftIncident)
    assert (incident.state, incident.snoozed_until, incident.story_id) == ("open", None, None)
    assert [a.action for a in await rows(db, AuditEvent)] == ["drift.open"]


async def test_snooze_twice_keeps_one_snooze_and_says_so(dslack, db, clock, worker):
    await opened(dslack, clock, worker)
    await pick(dslack, "D-1|24h")
    await pick(dslack, "D-1|24h", user=BOB)
    await deliver(worker, clock)

    [incident] = await rows(db, DriftIncident)
    assert incident.snoozed_until == T0 + timedelta(hours=24)
    assert len(await rows(db, AuditEvent, AuditEvent.action == "drift.snooze")) == 1
    assert "snoozed until" in shown(updates(dslack)[-1])
    assert "is snoozed" in shown(replies(dslack)[0])


async def test_the_retraining_story_is_made_once_and_the_alert_then_shows_it(dslack, db, clock, worker):
    await opened(dslack, clock, worker)
    await dslack.click(ids.DRIFT_STORY, "D-1")
    await dslack.click(ids.DRIFT_STORY, "D-1", user=BOB)
    await deliver(worker, clock)

    [story] = await rows(db, Story)
    assert story.type == "ml" and "recsys-ranker" in story.title and story.sprint_id is None
    assert len(await rows(db, AuditEvent, AuditEvent.action == "drift.story")) == 1
    assert all(story.key in shown(r) for r in replies(dslack))
    assert element(updates(dslack)[-1], ids.DRIFT_STORY)["text"]["text"] == f"Show {story.key}"


async def test_the_runbook_click_is_only_acknowledged(dslack, db, clock, worker):
    await opened(dslack, clock, worker)
    before = len(await rows(db, OutboxMessage))
    response = await dslack.click(ids.DRIFT_RUNBOOK, "D-1")
    assert response.status_code == 200
    assert replies(dslack) == [] and len(await rows(db, OutboxMessage)) == before


async def test_a_storm_of_ten_thousand_readings_makes_at_most_three_posts_or_edits(dslack, db, clock, worker):
    step = timedelta(milliseconds=5)  # 10,000 windows within a minute
    for batch in range(10):
        readings = [
            reading(0.15 if n < 5000 else 0.35, window=n, step=step)
            for n in range(batch * 1000, (batch + 1) * 1000)
        ]
        await ingest(dslack, clock, readings)
    await deliver(worker, clock)

    calls = [c for c in dslack.fake.calls if c.method in POSTS_OR_EDITS]
    assert 1 <= len(calls) <= 3, [c.method for c in calls]
    [incident] = await rows(db, DriftIncident)
    assert (incident.key, incident.severity, incident.breaching_windows) == ("D-1", "critical", 10_000)


async def test_a_warning_on_a_holiday_waits_for_the_next_working_day_and_a_critical_one_does_not(
    make_app, db, clock, worker
):
    holiday = datetime(2026, 12, 25, 10, 0, tzinfo=UTC)  # a Friday, the team's holiday
    config = make_config(drift={"rules": RUNBOOK_RULES}, recsys={"holidays": ["2026-12-25"]})
    clock.set(holiday)
    async with make_app(config) as slack:
        async with slack.app.state.deps.transaction() as session:
            await drift.ingest(
                session,
                config=config,
                readings=[drift.Reading("recsys-a", "psi", 0.15, holiday)],
                now=holiday,
            )
        await worker.run_once()
        assert posted(slack, RECSYS) == []  # held over the holiday and the weekend
        [held] = [r for r in await rows(db, OutboxMessage) if r.state == "pending"]
        assert held.next_attempt_at.astimezone(UTC).date() == datetime(2026, 12, 28).date()

        async with slack.app.state.deps.transaction() as session:
            await drift.ingest(
                session, config=config, readings=[drift.Reading("recsys-b", "psi", 0.5, holiday)], now=holiday
            )
        await worker.run_once()
        [critical] = posted(slack, RECSYS)  # at once, while the warning still waits
        assert critical["text"].startswith("D-2 critical drift: recsys-b")
        await deliver(worker, clock)  # the clock moves on to Monday: the warning goes
        assert posted(slack, RECSYS)[1]["text"].startswith("D-1 warn drift: recsys-a")
