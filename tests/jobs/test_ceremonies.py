"""Ceremony runs: claimed exactly once, caught up within grace, skipped on holidays, nudges and standups
through the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.integrations.slack_directory import SlackDirectory
from bot.jobs.ceremonies import CeremonyJobs
from bot.jobs.outbox_worker import delivery_client
from bot.notify import Notifier
from bot.notify.ceremonies import refresh_readiness_summary
from bot.notify.templates import Renderer
from bot.services import away, standups, stories
from bot.slack import ids
from bot.store.db import create_engine, is_sqlite, session_factory
from bot.store.models import CeremonyRun, Member, OutboxMessage
from tests.conftest import ALICE, BOB, DAVE, FRANK, PLATFORM, RECSYS, SPRINT_CEREMONIES, make_config
from tests.factories import (
    answer_all,
    make_planned_story,
    make_sprint,
    make_story,
    outbox_rows,
    put_in_sprint,
    tx,
)
from tests.factories import rows as table_rows
from tests.slack.helpers import deliver


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Mon 7 Dec 2026; Berlin is UTC+1: standup 09:30 local = 08:30 UTC, planning 10:00 local = 09:00 UTC
MON = date(2026, 12, 7)
STANDUP = utc(2026, 12, 7, 8, 30)
PLANNING = utc(2026, 12, 7, 9, 0)
ROUND_1 = utc(2026, 12, 6, 9, 0)  # Sun, the readiness nudge 24 h before planning
ROUND_2 = utc(2026, 12, 7, 7, 0)  # Mon, the one 2 h before


STANDUP_ONLY = {"standup": {"cron": "30 9 * * mon-fri", "close_after_minutes": 120}}


async def all_runs(db: AsyncEngine) -> list[CeremonyRun]:
    async with tx(db) as s:
        rows = await s.exec(
            select(CeremonyRun).order_by(col(CeremonyRun.scheduled_for), col(CeremonyRun.ceremony))
        )
        return list(rows.all())


def body(row: OutboxMessage) -> dict[str, Any]:
    return json.loads(row.payload)


def buttons(payload: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for block in payload.get("blocks", []):
        if block.get("accessory", {}).get("type") == "button":
            out.append(block["accessory"])
        if block["type"] == "actions":
            out += [e for e in block["elements"] if e["type"] == "button"]
    return out


async def run_rows(db: AsyncEngine) -> list[OutboxMessage]:
    """Outbox rows the ceremony jobs made (not e.g. story assignment notices)."""
    return [r for r in await outbox_rows(db) if r.dedupe_key.startswith(("run:", "update:"))]


def kinds_by_channel(rows: list[OutboxMessage], runs: list[CeremonyRun]) -> Counter[tuple[str, str]]:
    kind_of = {r.id: r.ceremony for r in runs}
    out: Counter[tuple[str, str]] = Counter()
    for row in rows:
        parts = row.dedupe_key.split(":")
        kind = kind_of[int(parts[1])]
        out[(kind + (":dm" if len(parts) > 2 else ""), row.channel)] += 1
    return out


async def opt_in(db: AsyncEngine, *users: str) -> None:
    async with tx(db) as s:
        for user in users:
            await standups.set_standup_dm(s, user_id=user, enabled=True)


async def set_away(db: AsyncEngine, user: str, first: date, last: date) -> None:
    async with tx(db) as s:
        await away.set_away(s, user_id=user, starts_on=first, ends_on=last, today=first - timedelta(days=1))


# ---------------------------------------------------------------- a fortnight of two teams


# both teams with a two-week sprint, platform in New York
FORTNIGHT = make_config(
    ceremonies=SPRINT_CEREMONIES, platform={"timezone": "America/New_York", "ceremonies": SPRINT_CEREMONIES}
)


async def test_two_weeks_of_two_teams_fire_exactly_the_expected_runs(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = FORTNIGHT
    jobs = make_jobs(config)
    async with tx(db) as s:
        for name in ("recsys", "platform"):
            await make_sprint(s, config, team_name=name, name="Sprint 1", starts_on=MON, days=13)
        sprint = (await s.exec(select(stories.Sprint).where(stories.Sprint.team == "recsys"))).one()
        await make_planned_story(s, config, sprint, title="Rank better", owner=BOB, actor=BOB)
        await standups.set_standup_dm(s, user_id=DAVE, enabled=True)

    start, end = utc(2026, 12, 7, 6, 0), utc(2026, 12, 21, 6, 0)
    made: list[CeremonyRun] = []
    now = start
    while now <= end:
        clock.set(now)
        made += await jobs.run_due(now)
        now += timedelta(hours=1)

    runs = await all_runs(db)
    assert sorted(r.id for r in made) == sorted(r.id for r in runs)
    assert {r.status for r in runs} == {"done"}
    per_team = Counter((r.team, r.ceremony) for r in runs)
    for name in ("recsys", "platform"):
        assert {k: v for (t, k), v in per_team.items() if t == name} == {
            "standup": 10,
            "standup_summary": 10,
            "planning": 1,
            "planning_nudge_2h": 1,
            "planning_nudge_24h": 1,
            "review": 1,
            "retro": 1,
        }

    def times(team: str, kind: str) -> list[datetime]:
        return [r.scheduled_for for r in runs if r.team == team and r.ceremony == kind]

    # recsys in Berlin (UTC+1); planning in the sprint's first week, review and retro in its last
    assert times("recsys", "planning") == [utc(2026, 12, 7, 9, 0)]
    assert times("recsys", "planning_nudge_2h") == [utc(2026, 12, 7, 7, 0)]
    assert times("recsys", "planning_nudge_24h") == [utc(2026, 12, 20, 9, 0)]  # for planning on 21 Dec
    assert times("recsys", "review") == [utc(2026, 12, 18, 14, 0)]
    assert times("recsys", "retro") == [utc(2026, 12, 18, 15, 0)]
    assert times("recsys", "standup")[:2] == [utc(2026, 12, 7, 8, 30), utc(2026, 12, 8, 8, 30)]
    assert times("recsys", "standup_summary")[0] == utc(2026, 12, 7, 10, 30)
    # platform in New York (UTC-5)
    assert times("platform", "planning") == [utc(2026, 12, 7, 15, 0)]
    assert times("platform", "planning_nudge_2h") == [utc(2026, 12, 7, 13, 0)]
    assert times("platform", "planning_nudge_24h") == [utc(2026, 12, 20, 15, 0)]
    assert times("platform", "review") == [utc(2026, 12, 18, 20, 0)]
    assert times("platform", "retro") == [utc(2026, 12, 18, 21, 0)]
    assert times("platform", "standup")[0] == utc(2026, 12, 7, 14, 30)

    everything = await outbox_rows(db)
    # what setup caused, before any ceremony: both sprint starts in their team channels, Alice's forced
    # commit of Bob's story in recsys's, and Bob's DM about his story going in although not Ready
    setup = [r for r in everything if not r.dedupe_key.startswith("run:")]
    recsys_sprint, platform_sprint = sorted(
        await table_rows(db, stories.Sprint), key=lambda x: x.team != "recsys"
    )
    assert [(r.channel, r.dedupe_key.split(":")[0]) for r in setup] == [
        (RECSYS, "sprint"),
        (PLATFORM, "sprint"),
        (RECSYS, "commit"),
        (BOB, "commit"),
    ]
    assert [r.dedupe_key for r in setup[:2]] == [
        f"sprint:{recsys_sprint.id}:start",
        f"sprint:{platform_sprint.id}:start",
    ]
    assert setup[3].dedupe_key == f"{setup[2].dedupe_key}:forced:S-1"
    # everything else the ceremony jobs made
    ceremony_rows = [r for r in everything if r.dedupe_key.startswith("run:")]
    assert len(ceremony_rows) + len(setup) == len(everything)
    expected = Counter()
    for channel in (RECSYS, PLATFORM):
        expected.update(
            {
                ("standup", channel): 10,
                ("standup_summary", channel): 10,
                ("planning", channel): 1,
                ("planning_nudge_2h", channel): 1,
                ("planning_nudge_24h", channel): 1,
                ("review", channel): 1,
                ("retro", channel): 1,
            }
        )
    expected.update(
        {
            ("standup:dm", DAVE): 10,  # DAVE opted in to standup DMs
            ("planning_nudge_2h:dm", BOB): 1,  # BOB's story is not Ready
            ("planning_nudge_24h:dm", BOB): 1,
        }
    )
    assert kinds_by_channel(ceremony_rows, runs) == expected
    assert len(ceremony_rows) == 25 * 2 + 12

    # once more at the same time (and at an earlier one): nothing new
    assert await jobs.run_due(end) == []
    assert await jobs.run_due(utc(2026, 12, 18, 16, 0)) == []
    assert len(await outbox_rows(db)) == len(everything)
    assert len(await all_runs(db)) == len(runs)


async def test_run_due_filters_by_team(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    jobs = make_jobs(FORTNIGHT)
    made = await jobs.run_due(STANDUP, team="recsys")
    assert [(r.team, r.ceremony) for r in made] == [("recsys", "standup")]
    assert await jobs.run_due(STANDUP, team="platform") == []  # 09:30 in New York is later
    platform_standup = utc(2026, 12, 7, 14, 30)
    made = await jobs.run_due(platform_standup)
    # platform's clock has known its occasions since 08:30, so the planning nudge due at 13:00 (two hours
    # before 10:00 in New York) is caught up, inside its grace
    assert sorted((r.team, r.ceremony, r.status) for r in made) == [
        ("platform", "planning_nudge_2h", "done"),
        ("platform", "standup", "done"),
        ("recsys", "planning", "missed"),
        ("recsys", "standup_summary", "missed"),
    ]


# ---------------------------------------------------------------- catch-up


async def seed_history(jobs: CeremonyJobs) -> None:
    """A standup on Friday, so the database has seen runs before (not a fresh install)."""
    made = await jobs.run_due(utc(2026, 12, 4, 8, 30))
    assert [r.ceremony for r in made] == ["standup"]


async def test_catch_up_within_grace_runs_once(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    jobs = make_jobs(make_config(ceremonies=STANDUP_ONLY))
    await seed_history(jobs)
    now = STANDUP + timedelta(minutes=30)
    clock.set(now)
    (run,) = await jobs.run_due(now)
    assert (run.ceremony, run.scheduled_for, run.status, run.note) == ("standup", STANDUP, "done", None)
    assert run.claimed_at == now
    assert await jobs.run_due(now) == []
    assert await jobs.run_due(now + timedelta(minutes=5)) == []
    rows = [r for r in await run_rows(db) if r.dedupe_key == f"run:{run.id}"]
    assert len(rows) == 1
    assert rows[0].channel == RECSYS


async def test_a_fresh_database_runs_what_is_due_now(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    jobs = make_jobs(make_config(ceremonies=STANDUP_ONLY))
    (run,) = await jobs.run_due(STANDUP)
    assert (run.ceremony, run.status) == ("standup", "done")
    assert len(await run_rows(db)) == 1


async def test_outside_grace_is_recorded_missed_without_a_message(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    jobs = make_jobs(make_config(ceremonies=STANDUP_ONLY))
    await seed_history(jobs)
    before = await run_rows(db)
    now = STANDUP + timedelta(hours=3)
    clock.set(now)
    made = await jobs.run_due(now)
    assert [(r.ceremony, r.scheduled_for, r.status) for r in made] == [
        ("standup", STANDUP, "missed"),
        ("standup_summary", STANDUP + timedelta(minutes=120), "done"),
    ]
    missed = made[0]
    assert missed.note == "missed by 180 min, outside the 120 min grace window"
    assert missed.message_id is None
    # the summary is within its grace but has no standup to summarize: noted, nothing sent
    assert made[1].note == "the standup itself did not run"
    assert await run_rows(db) == before
    # never twice
    assert await jobs.run_due(now + timedelta(minutes=1)) == []


async def test_per_ceremony_grace_is_honoured(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    long = make_config(ceremonies={"standup": {"cron": "30 9 * * mon-fri", "grace_minutes": 240}})
    jobs = make_jobs(long)
    await seed_history(jobs)
    (run,) = await jobs.run_due(STANDUP + timedelta(hours=3))
    assert run.status == "done"
    assert any(r.dedupe_key == f"run:{run.id}" for r in await run_rows(db))


async def test_short_per_ceremony_grace(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    short = make_config(
        ceremonies={"standup": {"cron": "30 9 * * mon-fri", "grace_minutes": 10}}, grace_minutes=600
    )
    jobs = make_jobs(short)
    await seed_history(jobs)
    before = await run_rows(db)
    (run,) = await jobs.run_due(STANDUP + timedelta(minutes=30))
    assert run.status == "missed"
    assert run.note == "missed by 30 min, outside the 10 min grace window"
    assert await run_rows(db) == before
    # exactly at the edge of the window still runs
    (edge,) = await jobs.run_due(STANDUP + timedelta(days=1, minutes=10))
    assert edge.status == "done"


async def test_global_grace_is_honoured(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    jobs = make_jobs(make_config(ceremonies={"standup": {"cron": "30 9 * * mon-fri"}}, grace_minutes=15))
    await seed_history(jobs)
    (run,) = await jobs.run_due(STANDUP + timedelta(minutes=20))
    assert run.status == "missed"
    assert run.note == "missed by 20 min, outside the 15 min grace window"


async def test_fresh_database_records_nothing_old_as_missed(db, make_jobs, clock, fake_slack):
    """Nothing scheduled before the clock first ran is missed; what fell due after it, without a tick
    in its grace, is recorded as missed and not sent."""
    fake_slack.reset()
    jobs = make_jobs(make_config(ceremonies=STANDUP_ONLY))
    assert await jobs.run_due(STANDUP + timedelta(minutes=30)) == []  # Monday's 09:30 standup was before
    (summary,) = await jobs.run_due(STANDUP + timedelta(hours=5))
    assert (summary.ceremony, summary.status) == ("standup_summary", "missed")
    assert summary.scheduled_for == STANDUP + timedelta(hours=2)
    assert [r.ceremony for r in await all_runs(db)] == ["standup_summary"]
    assert await outbox_rows(db) == []
    # from its first run on, the team is caught up as usual
    (tuesday,) = await jobs.run_due(STANDUP + timedelta(days=1))
    assert tuesday.status == "done"


async def test_fresh_database_with_mixed_grace_records_nothing_as_missed(db, make_jobs, clock, fake_slack):
    """A fresh install has missed nothing, also when one ceremony's grace is shorter than another's."""
    fake_slack.reset()
    config = make_config(
        ceremonies={
            "standup": {"cron": "30 9 * * mon-fri", "grace_minutes": 10},
            "planning": {"cron": "0 10 * * mon", "grace_minutes": 120},
        }
    )
    jobs = make_jobs(config)
    await jobs.run_due(PLANNING + timedelta(minutes=5))
    assert [r for r in await all_runs(db) if r.status == "missed"] == []


async def test_down_longer_than_the_lookback_records_nothing(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    jobs = make_jobs(make_config(ceremonies=STANDUP_ONLY))
    await seed_history(jobs)  # Friday
    # back on Wednesday 12:00: only runs since Tuesday 10:00 lie within the 26 h lookback
    made = await jobs.run_due(utc(2026, 12, 9, 12, 0))
    assert [(r.ceremony, r.scheduled_for.date(), r.status) for r in made] == [
        ("standup_summary", date(2026, 12, 8), "missed"),
        ("standup", date(2026, 12, 9), "missed"),
        ("standup_summary", date(2026, 12, 9), "done"),
    ]


# ---------------------------------------------------------------- exactly once across processes


def second_engine(db: AsyncEngine) -> AsyncEngine:
    if is_sqlite(db):
        return create_engine(f"sqlite:///{db.url.database}")
    return create_engine(db.url.render_as_string(hide_password=False))


async def test_two_processes_claim_each_occurrence_once(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = make_config(
        ceremonies={
            "standup": {"cron": "30 9 * * mon-fri", "close_after_minutes": 120},
            "planning": {"cron": "0 10 * * mon", "nudge_hours_before": [2]},
            "retro": {"cron": "0 16 * * fri"},
        },
        grace_minutes=180,
    )
    async with tx(db) as s:
        sprint = await make_sprint(s, config, starts_on=MON)
        await make_planned_story(s, config, sprint, owner=BOB, actor=BOB)
        await make_planned_story(s, config, sprint, owner=DAVE, actor=DAVE)
    await opt_in(db, ALICE, BOB)

    first = make_jobs(config)
    first.instance = "clock-a"
    other = second_engine(db)
    try:
        sessions = session_factory(other)
        second = CeremonyJobs(
            config=config,
            sessions=sessions,
            clock=clock,
            notifier=Notifier(config, sessions, Renderer(), clock),
            directory=SlackDirectory(delivery_client("xoxb-test", fake_slack.api_url), sessions, clock),
            instance="clock-b",
        )
        moments = [
            ROUND_2,  # the nudge at 07:00
            PLANNING,  # standup 08:30 (caught up), planning 09:00
            utc(2026, 12, 7, 10, 45),  # the standup summary
            utc(2026, 12, 8, 8, 30),
            utc(2026, 12, 8, 8, 30),
            utc(2026, 12, 11, 16, 0),  # retro (and Friday's standup, missed by then)
        ]
        made_a: list[CeremonyRun] = []
        made_b: list[CeremonyRun] = []
        for now in moments:
            clock.set(now)
            a, b = await asyncio.gather(first.run_due(now), second.run_due(now))
            made_a += a
            made_b += b
    finally:
        await other.dispose()

    runs = await all_runs(db)
    ids_a, ids_b = {r.id for r in made_a}, {r.id for r in made_b}
    assert not ids_a & ids_b
    assert ids_a | ids_b == {r.id for r in runs}
    assert {r.claimed_by for r in runs} <= {"clock-a", "clock-b"}
    occurrences = Counter((r.ceremony, r.scheduled_for) for r in runs)
    assert set(occurrences.values()) == {1}
    assert sorted(occurrences) == sorted(
        [
            ("planning_nudge_2h", utc(2026, 12, 7, 7, 0)),
            ("standup", STANDUP),
            ("planning", PLANNING),
            ("standup_summary", utc(2026, 12, 7, 10, 30)),
            ("standup", utc(2026, 12, 8, 8, 30)),
            ("standup", utc(2026, 12, 11, 8, 30)),
            ("standup_summary", utc(2026, 12, 11, 10, 30)),
            ("retro", utc(2026, 12, 11, 15, 0)),
        ]
    )
    rows = await run_rows(db)
    assert len({r.dedupe_key for r in rows}) == len(rows)
    assert kinds_by_channel(rows, runs) == Counter(
        {
            ("planning_nudge_2h", RECSYS): 1,
            ("planning_nudge_2h:dm", BOB): 1,
            ("planning_nudge_2h:dm", DAVE): 1,
            ("standup", RECSYS): 2,  # Friday's was missed
            ("standup:dm", ALICE): 2,
            ("standup:dm", BOB): 2,
            ("planning", RECSYS): 1,
            ("standup_summary", RECSYS): 1,  # Tuesday's fell outside the look back, Friday's was missed
            ("retro", RECSYS): 1,
        }
    )


# ---------------------------------------------------------------- holidays


async def test_holiday_skips_the_ceremony_and_its_summary(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = make_config(ceremonies=STANDUP_ONLY, recsys={"holidays": [date(2026, 12, 8)]})
    await opt_in(db, ALICE)
    jobs = make_jobs(config)
    monday = await jobs.run_due(STANDUP)
    assert [r.status for r in monday] == ["done"]
    assert [r.status for r in await jobs.run_due(STANDUP + timedelta(minutes=120))] == ["done"]
    before = await outbox_rows(db)

    tuesday = STANDUP + timedelta(days=1)
    (standup,) = await jobs.run_due(tuesday + timedelta(minutes=5))
    assert (standup.ceremony, standup.status, standup.note) == (
        "standup",
        "skipped",
        "team holiday 2026-12-08",
    )
    assert standup.message_id is None
    made = await jobs.run_due(tuesday + timedelta(minutes=125))
    assert [(r.ceremony, r.status, r.note) for r in made] == [
        ("standup_summary", "skipped", "team holiday 2026-12-08")
    ]
    assert [r.ceremony for r in await all_runs(db)].count("standup_summary") == 2
    assert await outbox_rows(db) == before


async def test_holiday_of_another_team_does_not_matter(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    platform = {"holidays": [date(2026, 12, 7)], "ceremonies": {"standup": {"cron": "30 9 * * mon-fri"}}}
    jobs = make_jobs(make_config(ceremonies=STANDUP_ONLY, platform=platform))
    made = await jobs.run_due(STANDUP)
    assert sorted((r.team, r.status) for r in made) == [("platform", "skipped"), ("recsys", "done")]


# ---------------------------------------------------------------- standups


async def test_standup_message_dms_and_summary(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = make_config(ceremonies=STANDUP_ONLY)
    await opt_in(db, ALICE, BOB)
    await set_away(db, BOB, MON, MON + timedelta(days=2))
    jobs = make_jobs(config)
    clock.set(STANDUP)
    (run,) = await jobs.run_due(STANDUP)
    rows = await run_rows(db)
    channel = next(r for r in rows if r.dedupe_key == f"run:{run.id}")
    assert run.message_id == channel.id
    assert channel.channel == RECSYS
    payload = body(channel)
    assert payload["text"].startswith(":sunrise: *Standup time, team recsys!*")
    assert "The summary posts at 11:30." in payload["blocks"][0]["text"]["text"]
    (button,) = buttons(payload)
    assert button["action_id"] == ids.OPEN_STANDUP_MODAL == "open_standup_modal"
    assert button["value"] == str(run.id)
    # DMs: ALICE opted in; BOB opted in but away; DAVE did not opt in
    dms = [r for r in rows if r.dedupe_key.startswith(f"run:{run.id}:dm:")]
    assert [r.channel for r in dms] == [ALICE]
    assert buttons(body(dms[0]))[0]["value"] == str(run.id)

    # answers: DAVE (blocked) after BOB… blockers first, ALICE did not answer
    async with tx(db) as s:
        standup = await standups.get_run(s, run.id)
        await standups.answer(
            s, config=config, run=standup, user_id=BOB, yesterday="", today="train <model>", blockers=""
        )
        await standups.answer(
            s,
            config=config,
            run=standup,
            user_id=DAVE,
            yesterday="a",
            today="fix the join",
            blockers="waiting on <!here> data",
        )
    (summary_run,) = await jobs.run_due(STANDUP + timedelta(minutes=121))
    assert (summary_run.ceremony, summary_run.status) == ("standup_summary", "done")
    assert summary_run.note == "2 answered, 1 did not"
    summary = next(r for r in await run_rows(db) if r.dedupe_key == f"run:{summary_run.id}")
    assert summary.thread_of == channel.id
    assert summary.channel == RECSYS
    text = body(summary)["text"]
    assert body(summary)["reply_broadcast"] is True
    assert text.startswith(":memo: *Standup summary* · 2 answered · 1 did not")
    assert text.index(f"<@{DAVE}>") < text.index(f"<@{BOB}>")
    assert "*Blocked:* waiting on &lt;!here&gt; data" in text
    assert "*Today:* train &lt;model&gt;" in text
    assert f"No update from <@{ALICE}>." in text
    assert "Away:" not in text  # BOB is away but answered anyway


async def test_standup_summary_lists_the_away_who_did_not_answer(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    jobs = make_jobs(make_config(ceremonies=STANDUP_ONLY))
    await set_away(db, DAVE, MON, MON)
    assert [r.ceremony for r in await jobs.run_due(STANDUP)] == ["standup"]
    (summary_run,) = await jobs.run_due(STANDUP + timedelta(minutes=120))
    summary = next(r for r in await run_rows(db) if r.dedupe_key == f"run:{summary_run.id}")
    text = body(summary)["text"]
    assert text.splitlines() == [
        ":memo: *Standup summary* · 0 answered · 2 did not",
        f"No update from <@{ALICE}>, <@{BOB}>.",
        f"Away: <@{DAVE}>.",
    ]
    assert summary_run.note == "0 answered, 2 did not"


async def test_standup_dm_waits_for_the_local_time_of_each_person(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = make_config(ceremonies={"standup": {"cron": "30 9 * * mon-fri", "dm_local_time": "09:00"}})
    await opt_in(db, ALICE, BOB)
    fake_slack.user_tz[BOB] = "America/New_York"
    # tests/fake_slack.py does not serve users.info as slack_sdk calls it (HTTP GET) and ignores user_tz,
    # so BOB's zone is also put in the directory's cache (fresh for 24 h), which is read before Slack.
    async with tx(db) as s:
        bob = await s.get(Member, BOB)
        bob.tz, bob.tz_fetched_at = "America/New_York", STANDUP
        s.add(bob)
    jobs = make_jobs(config)
    now = STANDUP
    clock.set(now)
    assert [r.ceremony for r in await jobs.run_due(now)] == ["standup"]
    dms = {r.channel: r for r in await run_rows(db) if ":dm:" in r.dedupe_key}
    assert set(dms) == {ALICE, BOB}
    # 09:00 in New York on Mon 7 Dec is 14:00 UTC
    assert dms[BOB].next_attempt_at == utc(2026, 12, 7, 14, 0)
    # ALICE is in Berlin (the team's zone): 09:00 local has passed, so she gets it now
    assert dms[ALICE].next_attempt_at == now


async def test_standup_dm_goes_at_the_local_time_of_the_persons_own_date(db, make_jobs, clock, fake_slack):
    """An evening standup in Berlin (Mon 7 Dec 22:00 CET) is already Tuesday 06:00 in Tokyo: Tokyo's
    09:00 DM goes on Tuesday morning, not on the Monday morning that passed before the standup."""
    fake_slack.reset()
    config = make_config(ceremonies={"standup": {"cron": "0 22 * * mon-fri", "dm_local_time": "09:00"}})
    await opt_in(db, BOB)
    async with tx(db) as s:
        bob = await s.get(Member, BOB)
        bob.tz, bob.tz_fetched_at = "Asia/Tokyo", utc(2026, 12, 7, 21, 0)
        s.add(bob)
    jobs = make_jobs(config)
    now = utc(2026, 12, 7, 21, 0)  # 22:00 in Berlin
    clock.set(now)
    assert [r.ceremony for r in await jobs.run_due(now)] == ["standup"]
    (dm,) = [r for r in await run_rows(db) if ":dm:" in r.dedupe_key]
    assert dm.next_attempt_at == utc(2026, 12, 8, 0, 0)  # Tue 8 Dec 09:00 in Tokyo


async def test_standup_dm_in_the_teams_zone_later_in_the_morning(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = make_config(ceremonies={"standup": {"cron": "30 9 * * mon-fri", "dm_local_time": "11:15"}})
    await opt_in(db, ALICE)
    jobs = make_jobs(config)
    await jobs.run_due(STANDUP)
    (dm,) = [r for r in await run_rows(db) if ":dm:" in r.dedupe_key]
    assert dm.next_attempt_at == utc(2026, 12, 7, 10, 15)


async def test_standup_dm_goes_by_the_local_date_across_a_dst_change(db, make_jobs, clock, fake_slack):
    """A standup just after midnight in Berlin falls on the previous UTC day; time away is by local date."""
    fake_slack.reset()
    config = make_config(ceremonies={"standup": {"cron": "15 0 * * mon-fri"}})
    await opt_in(db, ALICE)
    async with tx(db) as s:
        await away.set_away(
            s,
            user_id=ALICE,
            starts_on=date(2026, 10, 26),
            ends_on=date(2026, 10, 26),
            today=date(2026, 10, 22),
        )
    jobs = make_jobs(config)

    async def dms_at(now: datetime) -> list[str]:
        clock.set(now)
        (run,) = await jobs.run_due(now)
        assert run.ceremony == "standup"
        return [r.channel for r in await run_rows(db) if r.dedupe_key.startswith(f"run:{run.id}:dm:")]

    assert await dms_at(utc(2026, 10, 22, 22, 15)) == [ALICE]  # Fri 23 Oct 00:15 CEST
    assert await dms_at(utc(2026, 10, 25, 23, 15)) == []  # Mon 26 Oct 00:15 CET: away that day
    assert await dms_at(utc(2026, 10, 26, 23, 15)) == [ALICE]  # Tue 27 Oct 00:15 CET


async def test_standup_without_opt_in_sends_no_dms(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    jobs = make_jobs(make_config(ceremonies=STANDUP_ONLY))
    async with tx(db) as s:
        await standups.set_standup_dm(s, user_id=BOB, enabled=True)
        await standups.set_standup_dm(s, user_id=BOB, enabled=False)
        await standups.set_standup_dm(s, user_id=FRANK, enabled=True)  # not in the team
    await jobs.run_due(STANDUP)
    rows = await run_rows(db)
    assert [r.channel for r in rows] == [RECSYS]


# ---------------------------------------------------------------- readiness nudges


NUDGES = {"planning": {"cron": "0 10 * * mon", "every_weeks": 2, "nudge_hours_before": [24, 2]}}


async def planning_setup(db: AsyncEngine, config: Any) -> None:
    """Sprint 1 is current (from 23 Nov); Sprint 2 (from 7 Dec) is being planned.
    S-1, S-2 BOB's, S-3 DAVE's, S-5 nobody's are not Ready; S-4 (ALICE's) is; S-6 is in Sprint 1.
    Each owner adds their own story (no DM); ALICE, the lead, plans them in, forcing the not-Ready."""
    async with tx(db) as s:
        current = await make_sprint(s, config, name="Sprint 1", starts_on=date(2026, 11, 23), days=13)
        planned = await make_sprint(s, config, name="Sprint 2", starts_on=MON, days=13)
        await make_planned_story(s, config, planned, title="Rank <better>", owner=BOB, actor=BOB)
        await make_planned_story(s, config, planned, title="Features", owner=BOB, actor=BOB)
        await make_planned_story(s, config, planned, title="Drift", owner=DAVE, actor=DAVE)
        s4 = await make_story(s, config, title="Ready one", owner=ALICE, actor=ALICE)
        await answer_all(s, config, s4, "ready")
        await put_in_sprint(s, config, s4, planned, reason=None)
        await make_planned_story(s, config, planned, title="Nobody's")
        await make_planned_story(s, config, current, title="Old", owner=DAVE, actor=DAVE)


async def make_ready(db: AsyncEngine, config: Any, *keys: str) -> None:
    async with tx(db) as s:
        for key in keys:
            await answer_all(s, config, await stories.get_story(s, key), "ready")


def dm_stories(row: OutboxMessage) -> list[str]:
    found = buttons(body(row))
    assert {b["action_id"] for b in found} == {ids.OPEN_READY_MODAL}
    assert ids.OPEN_READY_MODAL == "open_ready_modal"
    return [b["value"] for b in found]


async def test_nudge_rounds_before_planning(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = make_config(ceremonies=NUDGES)
    await planning_setup(db, config)
    jobs = make_jobs(config)

    clock.set(ROUND_1)
    (run,) = await jobs.run_due(ROUND_1)
    assert (run.ceremony, run.status) == ("planning_nudge_24h", "done")
    assert run.note == "1 of 5 Ready; nudged 2"
    assert run.sprint_id is not None
    rows = await run_rows(db)
    dms = {r.channel: r for r in rows if r.dedupe_key.startswith(f"run:{run.id}:dm:")}
    assert set(dms) == {BOB, DAVE}  # one DM each; ALICE's story is Ready, S-5 has nobody to ask
    assert dm_stories(dms[BOB]) == ["S-1", "S-2"]
    assert dm_stories(dms[DAVE]) == ["S-3"]  # S-6 is not in the sprint being planned
    bob_text = body(dms[BOB])["text"]
    assert bob_text.startswith(
        ":wave: Planning for *Sprint 2* is in 24 hours. 2 of your stories are not Ready"
    )
    assert "*S-1* Rank &lt;better&gt;" in body(dms[BOB])["blocks"][1]["text"]["text"]
    assert "Missing: Data availability" in body(dms[BOB])["blocks"][1]["text"]["text"]
    (summary,) = [r for r in rows if r.dedupe_key == f"run:{run.id}"]
    assert summary.channel == RECSYS and run.message_id == summary.id
    assert body(summary)["text"].splitlines() == [
        ":traffic_light: *Readiness for Sprint 2* (planning in 24 hours): 1 of 5 stories Ready.",
        f"Waiting on <@{BOB}> (S-1, S-2), <@{DAVE}> (S-3).",
        "No owner: S-5.",
    ]

    await make_ready(db, config, "S-1", "S-2")
    clock.set(ROUND_2)
    (run2,) = await jobs.run_due(ROUND_2)
    assert run2.ceremony == "planning_nudge_2h"
    assert run2.note == "3 of 5 Ready; nudged 1"
    rows2 = await run_rows(db)
    dms2 = [r for r in rows2 if r.dedupe_key.startswith(f"run:{run2.id}:dm:")]
    assert [r.channel for r in dms2] == [DAVE]
    assert dm_stories(dms2[0]) == ["S-3"]
    assert body(dms2[0])["text"].startswith(
        ":wave: Planning for *Sprint 2* is in 2 hours. 1 of your stories is"
    )
    (summary2,) = [r for r in rows2 if r.dedupe_key == f"run:{run2.id}"]
    assert "3 of 5 stories Ready" in body(summary2)["text"]
    assert f"Waiting on <@{DAVE}> (S-3)." in body(summary2)["text"]

    # and the planning reminder itself says where readiness stands
    (planning,) = await jobs.run_due(PLANNING)
    reminder = next(r for r in await run_rows(db) if r.dedupe_key == f"run:{planning.id}")
    assert (
        "Planning *Sprint 2*: 3 of 5 stories Ready."
        in body(reminder)["text"] + body(reminder)["blocks"][0]["text"]["text"]
    )
    assert len(await run_rows(db)) == len(rows2) + 1


async def test_everything_ready_sends_no_dms(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = make_config(ceremonies=NUDGES)
    await planning_setup(db, config)
    await make_ready(db, config, "S-1", "S-2", "S-3", "S-5")
    jobs = make_jobs(config)
    (run,) = await jobs.run_due(ROUND_1)
    rows = await run_rows(db)
    assert [r.channel for r in rows] == [RECSYS]
    assert run.note == "5 of 5 Ready; nudged 0"
    assert body(rows[0])["text"].splitlines()[-1] == "Everything is Ready. :tada:"


async def test_no_sprint_to_plan_is_noted_and_sends_nothing(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    jobs = make_jobs(make_config(ceremonies=NUDGES))
    (run,) = await jobs.run_due(ROUND_1)
    assert (run.ceremony, run.status, run.note) == ("planning_nudge_24h", "done", "no sprint to plan")
    assert run.message_id is None and run.sprint_id is None
    assert await outbox_rows(db) == []


async def test_nudges_skip_people_away_and_the_summary_lists_them(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = make_config(ceremonies=NUDGES)
    await planning_setup(db, config)
    await set_away(db, BOB, date(2026, 12, 5), date(2026, 12, 8))
    jobs = make_jobs(config)
    clock.set(ROUND_1)
    (run,) = await jobs.run_due(ROUND_1)
    rows = await run_rows(db)
    assert [r.channel for r in rows if ":dm:" in r.dedupe_key] == [DAVE]
    (summary,) = [r for r in rows if r.dedupe_key == f"run:{run.id}"]
    assert body(summary)["text"].splitlines() == [
        ":traffic_light: *Readiness for Sprint 2* (planning in 24 hours): 1 of 5 stories Ready.",
        f"Waiting on <@{DAVE}> (S-3).",
        "No owner: S-5.",
        f"Away: <@{BOB}>.",
    ]
    assert run.note == "1 of 5 Ready; nudged 1"


async def test_refresh_edits_the_summary_in_place(db, make_jobs, clock, fake_slack, make_worker):
    fake_slack.reset()
    config = make_config(ceremonies=NUDGES)
    await planning_setup(db, config)
    jobs = make_jobs(config)
    clock.set(ROUND_1)
    (run,) = await jobs.run_due(ROUND_1)
    summary_id = run.message_id
    assert summary_id is not None

    clock.set(ROUND_1 + timedelta(hours=1))
    await make_ready(db, config, "S-3")
    async with tx(db) as s:
        assert await refresh_readiness_summary(jobs.notifier, s, await stories.get_story(s, "S-3")) is True
    updates = [r for r in await outbox_rows(db) if r.method == "chat.update"]
    assert len(updates) == 1
    (update,) = updates
    assert (update.update_of, update.channel, update.state) == (summary_id, RECSYS, "pending")
    text = body(update)["text"]
    assert "(planning in 23 hours): 2 of 5 stories Ready." in text
    assert f"Waiting on <@{BOB}> (S-1, S-2)." in text and DAVE not in text

    # a second change before delivery folds into the same pending edit
    clock.set(ROUND_1 + timedelta(hours=2))
    await make_ready(db, config, "S-1")
    async with tx(db) as s:
        assert await refresh_readiness_summary(jobs.notifier, s, await stories.get_story(s, "S-1")) is True
    updates = [r for r in await outbox_rows(db) if r.method == "chat.update"]
    assert [r.id for r in updates] == [update.id]
    assert "3 of 5 stories Ready" in body(updates[0])["text"]
    assert f"Waiting on <@{BOB}> (S-2)." in body(updates[0])["text"]

    # delivered: the edit goes to the summary's ts
    await deliver(make_worker(), clock)
    posted = {c.args["channel"]: c for c in fake_slack.of("chat.postMessage")}
    assert set(posted) == {RECSYS, BOB, DAVE}
    (edit,) = fake_slack.of("chat.update")
    async with tx(db) as s:
        sent_summary = await s.get(OutboxMessage, summary_id)
    assert edit.args["ts"] == sent_summary.slack_ts
    assert edit.args["channel"] == RECSYS
    assert "3 of 5 stories Ready" in edit.args["text"]

    # once the edit is out, a further change queues a new one
    await make_ready(db, config, "S-2")
    async with tx(db) as s:
        assert await refresh_readiness_summary(jobs.notifier, s, await stories.get_story(s, "S-2")) is True
    updates = [r for r in await outbox_rows(db) if r.method == "chat.update"]
    assert len(updates) == 2
    assert updates[1].state == "pending" and updates[1].update_of == summary_id
    assert "4 of 5 stories Ready" in body(updates[1])["text"]


async def test_refresh_uses_the_latest_round(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = make_config(ceremonies=NUDGES)
    await planning_setup(db, config)
    jobs = make_jobs(config)
    await jobs.run_due(ROUND_1)
    (run2,) = await jobs.run_due(ROUND_2)
    clock.set(ROUND_2 + timedelta(minutes=60))
    await make_ready(db, config, "S-3")
    async with tx(db) as s:
        assert await refresh_readiness_summary(jobs.notifier, s, await stories.get_story(s, "S-3")) is True
    (update,) = [r for r in await outbox_rows(db) if r.method == "chat.update"]
    assert update.update_of == run2.message_id
    assert "(planning soon)" in body(update)["text"]


async def test_refresh_without_a_summary_does_nothing(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = make_config(ceremonies=NUDGES)
    await planning_setup(db, config)
    jobs = make_jobs(config)
    async with tx(db) as s:
        backlog = await make_story(s, config, title="Backlog", owner=BOB, actor=BOB)
        assert await refresh_readiness_summary(jobs.notifier, s, backlog) is False  # no sprint
        assert (
            await refresh_readiness_summary(jobs.notifier, s, await stories.get_story(s, "S-1")) is False
        )  # no round
    assert [r for r in await outbox_rows(db) if r.method == "chat.update"] == []


async def test_standup_reminder_shows_the_current_sprint(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    config = make_config(ceremonies=STANDUP_ONLY)
    async with tx(db) as s:
        await make_sprint(s, config, name="Sprint <1>", starts_on=MON, days=13, goal="Ship & <!channel>")
    jobs = make_jobs(config)
    assert [r.ceremony for r in await jobs.run_due(STANDUP)] == ["standup"]
    (row,) = await run_rows(db)
    text = body(row)["blocks"][0]["text"]["text"]
    assert text.splitlines() == [
        ":sunrise: *Standup time, team recsys!* Share yesterday, today and anything blocking you.",
        "Sprint *Sprint &lt;1&gt;* · 10 working days left · _Ship &amp; &lt;!channel&gt;_",
        "The summary posts at 11:30.",
    ]
    # on the sprint's last Friday one working day is left
    (friday,) = [
        r
        for r in await jobs.run_due(utc(2026, 12, 18, 8, 30))
        if r.ceremony == "standup" and r.status == "done"
    ]
    last = next(r for r in await run_rows(db) if r.dedupe_key == f"run:{friday.id}")
    assert "· 1 working day left ·" in body(last)["blocks"][0]["text"]["text"]


async def test_planning_reminder_without_a_sprint(db, make_jobs, clock, fake_slack):
    fake_slack.reset()
    jobs = make_jobs(make_config(ceremonies=NUDGES))
    (run,) = await jobs.run_due(PLANNING)
    assert (run.ceremony, run.status) == ("planning", "done")
    (row,) = await run_rows(db)
    assert body(row)["blocks"][0]["text"]["text"].splitlines() == [
        ":clipboard: *Sprint planning for team recsys* starts now (Mon 07 Dec, 10:00).",
        "No sprint to plan yet: create one with `/scrum sprint start`.",
        "Type `/scrum sprint plan` for the readiness gate.",
    ]
    # every second week (counted from the epoch's first Monday while there is no sprint)
    assert await jobs.run_due(PLANNING + timedelta(days=7)) == []


async def test_a_failing_occurrence_does_not_hold_up_the_others(db, make_jobs, clock, fake_slack, tmp_path):
    fake_slack.reset()
    (tmp_path / "ceremonies").mkdir()
    (tmp_path / "ceremonies" / "review.md.j2").write_text("Review of {{ sprint.name }}", encoding="utf-8")
    config = make_config(
        ceremonies={"review": {"cron": "0 9 * * fri"}, "standup": {"cron": "30 9 * * mon-fri"}},
        templates_dir=str(tmp_path),
    )
    assert Renderer(str(tmp_path)).check() == []  # the samples have a sprint, so check-config passes
    jobs = make_jobs(config)
    await jobs.run_due(utc(2026, 12, 10, 8, 30))  # Thursday's standup: the team has run before
    friday_standup = utc(2026, 12, 11, 8, 30)
    with contextlib.suppress(Exception):  # the review (08:00 UTC, no sprint) fails to render
        await jobs.run_due(friday_standup)
    assert ("standup", friday_standup) in {(r.ceremony, r.scheduled_for) for r in await all_runs(db)}


async def test_a_ceremony_added_to_the_config_posts_no_stale_reminder_on_its_first_start(
    db, make_jobs, clock, fake_slack
):
    """The team's standup has run for days; a refinement at 11:00 is added and the clock restarted at
    12:00 the same day. The 11:00 refinement was never missed (it was not there), so nothing is posted
    for it; the next one, and the standup's own catch-up, work as before."""
    fake_slack.reset()
    jobs = make_jobs(make_config(ceremonies=STANDUP_ONLY))
    await seed_history(jobs)
    added = make_config(ceremonies={**STANDUP_ONLY, "refinement": {"cron": "0 11 * * mon-fri"}})
    restarted = make_jobs(added)
    noon = STANDUP + timedelta(hours=2, minutes=30)  # Monday 12:00 in Berlin; the standup ran at 09:30
    made = await restarted.run_due(noon)
    assert [(r.ceremony, r.status) for r in made] == [("standup", "missed"), ("standup_summary", "done")]
    assert not [r for r in await all_runs(db) if r.ceremony == "refinement"]
    (tuesday,) = [r for r in await restarted.run_due(noon + timedelta(days=1)) if r.ceremony == "refinement"]
    assert tuesday.status == "done"
