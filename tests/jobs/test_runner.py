"""The clock runner: one APScheduler job per occasion plus a sweep, catch-up on start, a clean stop."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import AppConfig
from bot.jobs.outbox_worker import OutboxWorker, Stats
from bot.jobs.runner import SWEEP, OccasionTrigger, Runner, build_clock
from bot.services.schedule import occasions
from tests.conftest import PLATFORM, RECSYS, make_config
from tests.factories import outbox_rows


def runner_config(**changes: Any) -> AppConfig:
    """recsys's ceremonies in Berlin, platform's standup in New York, a team without any; 90 min grace."""
    return make_config(
        grace_minutes=90,
        ceremonies={
            "standup": {"cron": "30 9 * * mon-fri", "close_after_minutes": 120, "grace_minutes": 30},
            "planning": {"cron": "0 10 * * mon", "every_weeks": 2, "nudge_hours_before": [24, 2]},
            "review": {"cron": "0 15 * * fri", "every_weeks": 2},
        },
        platform={
            "timezone": "America/New_York",
            "ceremonies": {"standup": {"cron": "0 10 * * mon-fri", "grace_minutes": 0}},
        },
        teams=[{"name": "quiet", "channel": "C0QUIET"}],
        **changes,
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class StubWorker:
    """Stands in for the outbox worker: its loop ends when the runner asks it to stop."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.stopped = False
        self.stats = Stats()
        self.on_sent = None

    async def run_forever(self, stop: asyncio.Event) -> None:
        self.started.set()
        await stop.wait()
        self.stopped = True


def test_build_adds_one_job_per_occasion_and_a_sweep(make_jobs):
    config = runner_config()
    runner = Runner(make_jobs(config), StubWorker())  # type: ignore[arg-type]
    scheduler = runner.build()
    jobs = {job.id: job for job in scheduler.get_jobs()}
    expected = {f"{t.name}:{o.kind}" for t in config.teams for o in occasions(config, t)}
    assert expected == {
        "recsys:standup",
        "recsys:standup_summary",
        "recsys:planning",
        "recsys:planning_nudge_24h",
        "recsys:planning_nudge_2h",
        "recsys:review",
        "platform:standup",
    }
    # and, since recsys has a governance channel, the audit log's head posted there (check, then anchor)
    assert set(jobs) == expected | {"sweep", "audit-anchor", "outbox-prune"}
    assert not scheduler.running

    sweep = jobs["sweep"]
    assert isinstance(sweep.trigger, IntervalTrigger)
    assert sweep.trigger.interval == SWEEP == timedelta(minutes=5)
    assert sweep.kwargs == {}

    for team in config.teams:
        for occ in occasions(config, team):
            job = jobs[f"{team.name}:{occ.kind}"]
            assert isinstance(job.trigger, OccasionTrigger)
            assert job.trigger.occasion == occ
            assert job.kwargs == {"team": team.name}
            assert job.coalesce is True and job.max_instances == 1
    assert jobs["recsys:standup"].misfire_grace_time == 30 * 60
    assert jobs["recsys:planning"].misfire_grace_time == 90 * 60
    assert jobs["platform:standup"].misfire_grace_time == 1  # a zero grace still lets it run on time


def test_triggers_fire_at_the_occasions_times(make_jobs):
    config = runner_config()
    runner = Runner(make_jobs(config), StubWorker())  # type: ignore[arg-type]
    jobs = {job.id: job for job in runner.build().get_jobs()}
    now = utc(2026, 12, 7, 6, 0)  # Mon 07:00 in Berlin, 01:00 in New York
    expected = {
        "recsys:standup": utc(2026, 12, 7, 8, 30),
        "recsys:standup_summary": utc(2026, 12, 7, 10, 30),
        "recsys:planning_nudge_2h": utc(2026, 12, 7, 7, 0),
        "recsys:planning": utc(2026, 12, 7, 9, 0),
        "recsys:planning_nudge_24h": utc(2026, 12, 13, 9, 0),  # Sunday's for today has passed
        "recsys:review": utc(2026, 12, 11, 14, 0),
        "platform:standup": utc(2026, 12, 7, 15, 0),
    }
    for job_id, when in expected.items():
        trigger = jobs[job_id].trigger
        assert trigger.get_next_fire_time(None, now) == when, job_id
        # the same as the occasion's own schedule
        occ = trigger.occasion
        first = next(occ.fire_times(now - timedelta(microseconds=1), now + timedelta(days=8)))[0]
        assert first == when, job_id
    # a time that is exactly now still fires now
    standup = jobs["recsys:standup"].trigger
    assert standup.get_next_fire_time(None, utc(2026, 12, 7, 8, 30)) == utc(2026, 12, 7, 8, 30)
    # after a fire, the next one (skipping the weekend)
    assert standup.get_next_fire_time(utc(2026, 12, 11, 8, 30), utc(2026, 12, 11, 8, 30)) == utc(
        2026, 12, 14, 8, 30
    )
    # a trigger follows a sequence of fire times like APScheduler walks it
    fired, previous = [], None
    for _ in range(6):
        previous = standup.get_next_fire_time(previous, now)
        fired.append(previous)
    assert fired == [utc(2026, 12, d, 8, 30) for d in (7, 8, 9, 10, 11, 14)]
    assert "recsys/standup" in str(standup) and "Europe/Berlin" in str(standup)


def test_triggers_follow_dst(make_jobs):
    config = runner_config()
    runner = Runner(make_jobs(config), StubWorker())  # type: ignore[arg-type]
    jobs = {job.id: job for job in runner.build().get_jobs()}
    standup = jobs["recsys:standup"].trigger
    assert standup.get_next_fire_time(None, utc(2026, 10, 23, 0)) == utc(2026, 10, 23, 7, 30)
    assert standup.get_next_fire_time(utc(2026, 10, 23, 7, 30), utc(2026, 10, 23, 8)) == utc(
        2026, 10, 26, 8, 30
    )
    summary = jobs["recsys:standup_summary"].trigger
    assert summary.get_next_fire_time(None, utc(2026, 10, 26, 0)) == utc(2026, 10, 26, 10, 30)


async def test_start_catches_up_then_stop_ends_everything(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = runner_config()
    clock.set(utc(2026, 12, 7, 8, 30))
    worker = StubWorker()
    runner = Runner(make_jobs(config), worker)  # type: ignore[arg-type]
    try:
        await runner.start()
        # the catch-up ran what was due on the (fake) clock before the scheduler started
        rows = await outbox_rows(db)
        assert [r.channel for r in rows] == [RECSYS]
        assert runner.scheduler.running
        assert {j.id for j in runner.scheduler.get_jobs()} >= {"sweep", "recsys:standup", "platform:standup"}
        assert all(j.next_run_time is not None for j in runner.scheduler.get_jobs())
        await asyncio.wait_for(worker.started.wait(), timeout=5)
    finally:
        await runner.stop()
    assert worker.stopped
    assert runner.scheduler.state == STATE_STOPPED
    assert runner._worker_task is not None and runner._worker_task.done()


async def test_stop_with_the_real_worker_loop(db, make_jobs, make_worker, clock, fake_slack):
    fake_slack.reset()
    config = runner_config()
    clock.set(utc(2026, 12, 5, 12, 0))  # Saturday: nothing due
    runner = Runner(make_jobs(config), make_worker())
    await runner.start()
    await asyncio.sleep(0)  # let the worker task begin its first round
    await asyncio.wait_for(runner.stop(), timeout=5)
    assert runner._worker_task is not None and runner._worker_task.done()
    assert runner._worker_task.exception() is None


async def test_a_failing_round_is_logged_not_raised(make_jobs, caplog):
    config = runner_config()
    jobs = make_jobs(config)
    calls = []

    async def broken(now=None, *, team=None):
        calls.append(team)
        raise RuntimeError("database is gone")

    jobs.run_due = broken  # type: ignore[method-assign]
    runner = Runner(jobs, StubWorker())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="bot.jobs.runner"):
        await runner._tick(team="recsys")
        await runner._tick()
    assert calls == ["recsys", None]
    assert [r.getMessage() for r in caplog.records] == ["running due ceremonies failed"] * 2


async def test_a_tick_runs_only_its_team(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = runner_config()
    jobs = make_jobs(config)
    runner = Runner(jobs, StubWorker())  # type: ignore[arg-type]
    clock.set(utc(2026, 12, 7, 15, 0))  # platform's standup (New York); recsys has nothing due now
    await runner._tick(team="recsys")
    assert await outbox_rows(db) == []
    await runner._tick(team="platform")
    assert [r.channel for r in await outbox_rows(db)] == [PLATFORM]


def test_build_clock_wires_the_worker(db, clock, settings, fake_slack):
    from bot.slack.app import web_client
    from bot.store.db import session_factory

    config = runner_config(outbox={"max_attempts": 3})
    sessions = session_factory(db)
    runner = build_clock(
        config=config, settings=settings, sessions=sessions, clock=clock, slack=web_client(settings)
    )
    jobs = runner.jobs
    assert jobs.config is config and jobs.clock is clock and jobs.sessions is sessions
    assert isinstance(runner.worker, OutboxWorker)
    assert runner.worker.settings.max_attempts == 3
    assert runner.worker.clock is jobs.clock
    assert runner.worker.sessions is jobs.sessions


async def test_start_says_one_line_per_team_at_info_and_each_job_at_debug(
    db, make_jobs, clock, fake_slack, caplog
):
    fake_slack.reset()
    config = runner_config()
    clock.set(utc(2026, 12, 7, 8, 30))
    runner = Runner(make_jobs(config), StubWorker())  # type: ignore[arg-type]
    caplog.set_level("DEBUG", logger="bot.jobs.runner")
    try:
        await runner.start()
    finally:
        await runner.stop()
    info = [r.getMessage() for r in caplog.records if r.name == "bot.jobs.runner" and r.levelname == "INFO"]
    debug = [r.getMessage() for r in caplog.records if r.name == "bot.jobs.runner" and r.levelname == "DEBUG"]
    # a line per team with ceremonies, and one for the clock's own jobs, however many jobs there are
    assert len(info) <= len(config.teams) + 1, info
    assert info[0] == "clock: audit log head to the governance channels, sent messages retention, sweep"
    # which occasion comes next depends on the wall clock (APScheduler reads it, not the test's clock)
    assert re.fullmatch(r"team recsys: 6 occasions scheduled; next \w+ at \S+ \S+", info[2]), info
    assert len(debug) == 6 + 1 + 3 and all(m.startswith("scheduled ") for m in debug)


async def test_the_scheduler_lag_of_each_job_reaches_the_metrics(db, make_jobs, clock, fake_slack):
    from bot.metrics import Metrics
    from tests.factories import scraped

    metrics = Metrics()
    runner = Runner(make_jobs(runner_config()), StubWorker(), metrics=metrics)  # type: ignore[arg-type]
    ran = asyncio.Event()

    async def job() -> None:
        ran.set()

    try:
        await runner.start()
        runner.scheduler.add_job(job, "date", run_date=datetime.now(UTC) + timedelta(milliseconds=50))
        await asyncio.wait_for(ran.wait(), timeout=5)
    finally:
        await runner.stop()
    figures = scraped(metrics.render().decode())
    assert figures["cadence_scheduler_lag_seconds_count"] == 1
    assert 0 <= figures["cadence_scheduler_lag_seconds_sum"] < 1


async def test_a_round_that_meets_a_locked_database_is_caught_up_by_the_next_sweep(
    db, make_jobs, clock, fake_slack, caplog
):
    """Another process holds SQLite's write lock past the busy timeout when platform's standup falls
    due: the round fails and says so; the sweep five minutes later, within the standup's 30 minutes of
    grace, sends the reminder, once."""
    if db.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock (on PostgreSQL a locked table makes the round wait, not fail)")
    from tests.slack.test_faults import sqlite_write_lock

    config = runner_config()
    runner = Runner(make_jobs(config), StubWorker())  # type: ignore[arg-type]
    clock.set(utc(2026, 12, 4, 8, 30))  # Friday's standup ran: the team's clock has been running
    await runner._tick(team="recsys")
    before = len(await outbox_rows(db))
    clock.set(utc(2026, 12, 7, 8, 30))  # Monday's standup (9:30 in Berlin)
    with caplog.at_level(logging.ERROR, logger="bot.jobs.runner"), sqlite_write_lock(db):
        await runner._tick(team="recsys")
    assert "running due ceremonies failed" in caplog.text
    assert len(await outbox_rows(db)) == before

    clock.advance(seconds=SWEEP.total_seconds())
    await runner._tick()
    await runner._tick()
    caught_up = (await outbox_rows(db))[before:]
    assert [r.channel for r in caught_up] == [RECSYS] and "Standup" in caught_up[0].payload
