"""The clock with 300 teams: start-up time, memory, and one sweep of every ceremony due at once.

    python bench/clock_scale.py [--teams 300] [--database-url postgresql://postgres@127.0.0.1:5432/benchclock]

Each team has the ceremonies of a two-week sprint (standup with its summary, planning with two nudge
rounds, review with its summary, retro) and a current sprint with 20 stories, 10 of them lacking
readiness criteria. Each measurement runs in a fresh process of its own. The baseline is APScheduler
alone, holding as many cron jobs that do nothing. Cadence's clock builds the same jobs from the
configuration and catches up on start.

The sweep sets the clock to a Monday 09:30, when every team's standup is due. It first measures the
standups alone, then the nudge round 24 hours before planning, which reads every team's sprint and
readiness and queues a channel summary plus a DM to each owner. Each part reports how long it took and
how many messages it queued.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MONDAY = date(2027, 1, 4)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def config_text(teams: int) -> str:
    lines = ["timezone: Europe/Berlin", "teams:"]
    for t in range(teams):
        lines += [
            f"  - name: team{t:03d}",
            f"    channel: C0TEAM{t:04d}",
            f"    members: [U{t:04d}LEAD, U{t:04d}DEV1, U{t:04d}DEV2]",
            f"    leads: [U{t:04d}LEAD]",
            "    ceremonies:",
            '      standup: {cron: "30 9 * * mon-fri", close_after_minutes: 120}',
            '      planning: {cron: "0 10 * * mon", every_weeks: 2, nudge_hours_before: [24, 2]}',
            '      review: {cron: "0 15 * * fri", every_weeks: 2, summary_minutes_before: 30}',
            '      retro: {cron: "0 16 * * fri", every_weeks: 2}',
        ]
    return "\n".join(lines) + "\n"


async def seed(db: str, teams: int) -> None:
    from sqlalchemy import insert, text
    from sqlmodel import select

    from bot.config import parse_config
    from bot.services.readiness import stored_keys, summary
    from bot.store.db import create_engine, session_factory, unit_of_work
    from bot.store.migrate import upgrade
    from bot.store.models import Sprint, Story

    engine = create_engine(db)
    await upgrade(engine)
    config = parse_config(config_text(teams))
    now = datetime.now(UTC)
    async with unit_of_work(session_factory(engine)) as session:
        rows = [
            {
                "team": f"team{t:03d}",
                "name": "Sprint 1",
                "starts_on": MONDAY,
                "ends_on": MONDAY + timedelta(days=11),
                "state": "active",
                "created_by": "U0000LEAD",
                "created_at": now,
            }
            for t in range(teams)
        ]
        await session.exec(insert(Sprint), params=rows)  # type: ignore[call-overload]
    async with unit_of_work(session_factory(engine)) as session:
        ids = dict((await session.exec(select(Sprint.team, Sprint.id))).all())
        stories = []
        keys = (["dependencies"], ["acceptance_criteria", "dependencies"])
        lacking = [
            not summary(Story(type="eng", ready_keys=stored_keys(k)), "ready", config).complete for k in keys
        ]
        for t in range(teams):
            for i in range(20):
                stories.append(
                    {
                        "number": t * 20 + i + 1,
                        "team": f"team{t:03d}",
                        "type": "eng",
                        "title": f"Story {i} of team {t}",
                        "owner": f"U{t:04d}DEV{1 + i % 2}",
                        "sprint_id": ids[f"team{t:03d}"],
                        "status": "open",
                        "created_by": "U0000LEAD",
                        "created_at": now,
                        "updated_at": now,
                        "ready_keys": stored_keys(keys[i % 2]),
                        "ready_lacking": lacking[i % 2],
                    }
                )
        await session.exec(insert(Story), params=stories)  # type: ignore[call-overload]
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    await engine.dispose()


def child_baseline(teams: int) -> dict:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger

    async def nothing() -> None:
        return None

    async def go() -> dict:
        began = time.perf_counter()
        scheduler = AsyncIOScheduler(timezone=UTC)
        for t in range(teams):
            for j, cron in enumerate(
                (
                    "30 9 * * mon-fri",
                    "30 11 * * mon-fri",
                    "0 10 * * mon",
                    "0 10 * * sun",
                    "0 8 * * mon",
                    "0 15 * * fri",
                    "30 14 * * fri",
                    "0 16 * * fri",
                )
            ):
                scheduler.add_job(
                    nothing, CronTrigger.from_crontab(cron, timezone="Europe/Berlin"), id=f"{t}:{j}"
                )
        scheduler.start()
        started = time.perf_counter() - began
        jobs = len(scheduler.get_jobs())
        scheduler.shutdown(wait=False)
        return {"start_s": started, "rss_mb": rss_mb(), "jobs": jobs}

    return asyncio.run(go())


def child_cadence(teams: int, db: str, config_file: str, api: str) -> dict:
    from sqlmodel import func, select

    from bot.config import Settings, load_config
    from bot.jobs.runner import build_clock
    from bot.slack.app import web_client
    from bot.store.db import create_engine, session_factory, unit_of_work
    from bot.store.models import OutboxMessage
    from tests.clock import FakeClock

    async def queued(sessions) -> int:  # type: ignore[no-untyped-def]
        async with unit_of_work(sessions) as session:
            return int((await session.exec(select(func.count()).select_from(OutboxMessage))).one())

    async def go() -> dict:
        began = time.perf_counter()
        config = load_config(config_file)
        settings = Settings(slack_bot_token="xoxb-bench", slack_signing_secret="x", slack_api_url=api)
        sessions = session_factory(create_engine(db))
        clock = FakeClock(datetime(2027, 1, 3, 12, 0, tzinfo=UTC))  # a Sunday noon: nothing due
        runner = build_clock(
            config=config, settings=settings, sessions=sessions, clock=clock, slack=web_client(settings)
        )
        await runner.sweep()  # the catch-up on start
        scheduler = runner.build()
        scheduler.start(paused=True)
        started = time.perf_counter() - began
        jobs = len(scheduler.get_jobs())
        rss = rss_mb()
        before = await queued(sessions)
        clock.set(datetime(2027, 1, 4, 8, 30, tzinfo=UTC))  # Monday 09:30 in Berlin: every standup
        t = time.perf_counter()
        runs = await runner.jobs.run_due()
        standups = time.perf_counter() - t
        after_standups = await queued(sessions)
        clock.set(datetime(2027, 1, 17, 9, 0, tzinfo=UTC))  # Sunday 10:00: the nudges 24 h before planning
        t = time.perf_counter()
        nudges = await runner.jobs.run_due()
        nudge_s = time.perf_counter() - t
        after_nudges = await queued(sessions)
        scheduler.shutdown(wait=False)
        return {
            "start_s": started,
            "rss_mb": rss,
            "jobs": jobs,
            "standup_s": standups,
            "standup_runs": len(runs),
            "standup_msgs": after_standups - before,
            "nudge_s": nudge_s,
            "nudge_runs": len(nudges),
            "nudge_msgs": after_nudges - after_standups,
            "rss_after_mb": rss_mb(),
        }

    return asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teams", type=int, default=300)
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite file)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "baseline":
        print(json.dumps(child_baseline(args.teams)))
        return
    if args.child == "cadence":
        import logging

        logging.disable(logging.WARNING)
        print(json.dumps(child_cadence(args.teams, args.db, args.config, args.api)))
        return

    from tests.fake_slack import FakeSlack

    fake = FakeSlack().start()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.database_url or f"sqlite:///{tmp}/clock.db"
        config_file = Path(tmp) / "config.yaml"
        config_file.write_text(config_text(args.teams))
        asyncio.run(seed(db, args.teams))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        results = {}
        for kind in ("baseline", "cadence"):
            command = [sys.executable, __file__, "--child", kind, "--teams", str(args.teams), "--db", db]
            command += ["--config", str(config_file), "--api", fake.api_url]
            out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
            results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        fake.stop()
    b, c = results["baseline"], results["cadence"]
    print(f"{args.teams} teams, 8 scheduled occasions each")
    print(f"{'':<40} {'start-up':>9} {'RSS':>8} {'jobs':>6}")
    print(
        f"{'APScheduler alone, no-op jobs (baseline)':<40} {b['start_s']:>8.2f}s {b['rss_mb']:>6.0f}MB {b['jobs']:>6}"
    )
    print(
        f"{'cadence clock (jobs + catch-up sweep)':<40} {c['start_s']:>8.2f}s {c['rss_mb']:>6.0f}MB {c['jobs']:>6}"
    )
    print(
        f"\nsweep, every standup due at once: {c['standup_s']:.2f} s for {c['standup_runs']} runs, "
        f"{c['standup_msgs']} messages queued"
    )
    print(
        f"sweep, every 24 h nudge round at once: {c['nudge_s']:.2f} s for {c['nudge_runs']} runs, "
        f"{c['nudge_msgs']} messages queued; RSS after {c['rss_after_mb']:.0f} MB"
    )
    print(f"\nrerun: python bench/clock_scale.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
