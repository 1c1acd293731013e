"""Two weeks of two teams, as a Scrum master lives them: every reminder, nudge and summary at its
time, exactly once, nobody away bothered; a restart that catches up what it missed; a flaky Slack.

The clock jumps from one scheduled occasion to the next (as APScheduler would wake the process),
`run_due` runs what is due, and the outbox worker delivers it a second or so at a time."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.config import AppConfig
from bot.jobs.ceremonies import CeremonyJobs
from bot.jobs.outbox_worker import OutboxWorker, tag
from bot.services import away, standups
from bot.services.schedule import occasions
from bot.slack import ids
from bot.store.db import session_factory, unit_of_work
from bot.store.models import CeremonyRun, OutboxMessage
from tests.clock import FakeClock
from tests.conftest import ALICE, BOB, DAVE, FRANK, PLATFORM, RECSYS, SPRINT_CEREMONIES, make_config
from tests.factories import answer_all, make_planned_story, make_sprint, make_story, outbox_rows, tx
from tests.fake_slack import Call, FakeSlack
from tests.slack.helpers import deliver, posted
from tests.slack_driver import SlackDriver

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
HOLIDAY = date(2026, 12, 16)  # a Wednesday: recsys has the day off
DAVE_AWAY = (date(2026, 12, 11), date(2026, 12, 15))  # Fri 11 .. Tue 15 Dec

PLATFORM_CEREMONIES = {"standup": {"cron": "0 10 * * mon-fri"}, "refinement": {"cron": "0 14 * * wed"}}

START = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)  # Monday of the second week of sprint S1
END = START + timedelta(days=14)


def berlin(day: int, hhmm: str) -> datetime:
    h, m = (int(p) for p in hhmm.split(":"))
    return datetime(2026, 12, day, h, m, tzinfo=BERLIN).astimezone(UTC)


def new_york(day: int, hhmm: str) -> datetime:
    h, m = (int(p) for p in hhmm.split(":"))
    return datetime(2026, 12, day, h, m, tzinfo=NEW_YORK).astimezone(UTC)


# ── what a Scrum master expects, written out ──────────────────────────────────────────────────
# (local time of the team, where it goes, what it is). recsys times are Berlin, platform New York;
# DMs go to people of recsys, so their times are Berlin too.

EXPECTED_MESSAGES: list[tuple[str, str, str]] = [
    # ── before anything is scheduled: owners hear about the stories Alice gave them ──
    ("Mon 07 01:00", BOB, "assigned"),  # S-1
    ("Mon 07 01:00", BOB, "assigned"),  # S-3
    ("Mon 07 01:00", BOB, "assigned"),  # S-4
    ("Mon 07 01:00", DAVE, "assigned"),  # S-5
    ("Sun 06 19:00", FRANK, "assigned"),  # the platform story, in New York time
    # ── … and the team channel hears the sprints start and what Alice committed to them ──
    ("Mon 07 01:00", RECSYS, "sprint start"),  # S1
    ("Mon 07 01:00", RECSYS, "sprint start"),  # S2
    *[("Mon 07 01:00", RECSYS, "commit")] * 7,  # one post per commit: S-1 … S-7
    # the owners of stories forced in although not Ready hear what they lack (Alice forced them: she
    # is not told about her own S-2 and S-6; S-7 has no owner)
    ("Mon 07 01:00", BOB, "forced"),  # S-1
    ("Mon 07 01:00", BOB, "forced"),  # S-3 (not Ready yet when it was committed)
    ("Mon 07 01:00", BOB, "forced"),  # S-4
    ("Mon 07 01:00", DAVE, "forced"),  # S-5
    # ── week 2 of sprint S1 ──
    ("Mon 07 09:30", RECSYS, "standup"),
    ("Mon 07 09:30", BOB, "standup"),  # Bob and Dave asked for the prompt as a DM too
    ("Mon 07 09:30", DAVE, "standup"),
    ("Mon 07 11:30", RECSYS, "summary"),
    ("Mon 07 10:00", PLATFORM, "standup"),
    ("Tue 08 09:30", RECSYS, "standup"),
    ("Tue 08 09:30", BOB, "standup"),
    ("Tue 08 09:30", DAVE, "standup"),
    ("Tue 08 09:45", RECSYS, "answer"),  # Bob answers in the thread
    ("Tue 08 11:30", RECSYS, "summary"),
    ("Tue 08 10:00", PLATFORM, "standup"),
    ("Wed 09 09:30", RECSYS, "standup"),
    ("Wed 09 09:30", BOB, "standup"),
    ("Wed 09 09:30", DAVE, "standup"),
    ("Wed 09 11:30", RECSYS, "summary"),
    ("Wed 09 10:00", PLATFORM, "standup"),
    ("Wed 09 14:00", PLATFORM, "refinement"),
    ("Thu 10 09:30", RECSYS, "standup"),
    ("Thu 10 09:30", BOB, "standup"),
    ("Thu 10 09:30", DAVE, "standup"),
    ("Thu 10 11:30", RECSYS, "summary"),
    ("Thu 10 10:00", PLATFORM, "standup"),
    ("Fri 11 09:30", RECSYS, "standup"),
    ("Fri 11 09:30", BOB, "standup"),  # Dave is away from today: no DM
    ("Fri 11 11:30", RECSYS, "summary"),
    ("Fri 11 15:00", RECSYS, "review"),  # the last Friday of S1: review, then retro
    ("Fri 11 16:00", RECSYS, "retro"),
    ("Fri 11 10:00", PLATFORM, "standup"),
    # ── the weekend before planning S2 ──
    ("Sun 13 10:00", RECSYS, "readiness"),  # 24 h before planning: summary in the channel …
    ("Sun 13 10:00", ALICE, "nudge"),  # … and a DM to each owner of a not-Ready story
    ("Sun 13 10:00", BOB, "nudge"),  # (Dave owns one too, but he is away)
    ("Sun 13 12:00", RECSYS, "update"),  # Bob fills S-4 in the form: the summary is edited
    # ── week 1 of sprint S2 ──
    ("Mon 14 08:00", RECSYS, "readiness"),  # 2 h before planning
    ("Mon 14 08:00", ALICE, "nudge"),  # Bob is all Ready now
    ("Mon 14 09:30", RECSYS, "standup"),
    ("Mon 14 09:30", BOB, "standup"),
    ("Mon 14 10:00", RECSYS, "planning"),
    ("Mon 14 11:30", RECSYS, "summary"),
    ("Mon 14 10:00", PLATFORM, "standup"),
    ("Tue 15 09:30", RECSYS, "standup"),
    ("Tue 15 09:30", BOB, "standup"),
    ("Tue 15 11:30", RECSYS, "summary"),
    ("Tue 15 10:00", PLATFORM, "standup"),
    # Wed 16 is a recsys holiday: no standup, no summary; platform works
    ("Wed 16 10:00", PLATFORM, "standup"),
    ("Wed 16 14:00", PLATFORM, "refinement"),
    ("Thu 17 09:30", RECSYS, "standup"),
    ("Thu 17 09:30", BOB, "standup"),
    ("Thu 17 09:30", DAVE, "standup"),  # back from time away
    ("Thu 17 11:30", RECSYS, "summary"),
    ("Thu 17 10:00", PLATFORM, "standup"),
    ("Fri 18 09:30", RECSYS, "standup"),
    ("Fri 18 09:30", BOB, "standup"),
    ("Fri 18 09:30", DAVE, "standup"),
    ("Fri 18 11:30", RECSYS, "summary"),
    ("Fri 18 10:00", PLATFORM, "standup"),
    # no review or retro on Fri 18: the middle of S2
]

# (team, what, local time, status, note) for every ceremony_run row: one per occurrence.
EXPECTED_RUNS: list[tuple[str, str, datetime, str, str | None]] = [
    *[
        ("recsys", "standup", berlin(d, "09:30"), "done", None)
        for d in (7, 8, 9, 10, 11, 14, 15, 17, 18)  # nine working days: ten minus the holiday
    ],
    ("recsys", "standup", berlin(16, "09:30"), "skipped", "team holiday 2026-12-16"),
    ("recsys", "standup_summary", berlin(7, "11:30"), "done", "0 answered, 3 did not"),
    ("recsys", "standup_summary", berlin(8, "11:30"), "done", "1 answered, 2 did not"),
    ("recsys", "standup_summary", berlin(9, "11:30"), "done", "0 answered, 3 did not"),
    ("recsys", "standup_summary", berlin(10, "11:30"), "done", "0 answered, 3 did not"),
    ("recsys", "standup_summary", berlin(11, "11:30"), "done", "0 answered, 2 did not"),  # Dave away
    ("recsys", "standup_summary", berlin(14, "11:30"), "done", "0 answered, 2 did not"),
    ("recsys", "standup_summary", berlin(15, "11:30"), "done", "0 answered, 2 did not"),
    ("recsys", "standup_summary", berlin(16, "11:30"), "skipped", "team holiday 2026-12-16"),
    ("recsys", "standup_summary", berlin(17, "11:30"), "done", "0 answered, 3 did not"),
    ("recsys", "standup_summary", berlin(18, "11:30"), "done", "0 answered, 3 did not"),
    ("recsys", "review", berlin(11, "15:00"), "done", None),
    ("recsys", "retro", berlin(11, "16:00"), "done", None),
    ("recsys", "planning_nudge_24h", berlin(13, "10:00"), "done", "1 of 5 Ready; nudged 2"),
    ("recsys", "planning_nudge_2h", berlin(14, "08:00"), "done", "2 of 5 Ready; nudged 1"),
    ("recsys", "planning", berlin(14, "10:00"), "done", None),
    *[
        ("platform", "standup", new_york(d, "10:00"), "done", None)
        for d in (7, 8, 9, 10, 11, 14, 15, 16, 17, 18)
    ],
    ("platform", "refinement", new_york(9, "14:00"), "done", None),
    ("platform", "refinement", new_york(16, "14:00"), "done", None),
]

KINDS = {
    ":sunrise:": "standup",
    ":memo:": "summary",
    ":traffic_light:": "readiness",
    ":wave: Planning": "nudge",
    ":clipboard:": "planning",
    ":movie_camera:": "review",
    ":thinking_face:": "retro",
    ":mag:": "refinement",
    "*<@": "answer",
    "<@": "assigned",
}


def kind_of(call: Call) -> str:
    if call.method == "chat.update":
        return "update"
    text = call.args.get("text", "")
    # the sprint's own posts (bot/notify/sprints.py), by their fallback text
    if re.fullmatch(r"Sprint .+ started", text):
        return "sprint start"
    if re.fullmatch(r"\d+ committed to .+", text):
        return "commit"
    if re.fullmatch(r"<@\w+> committed your story .+", text):
        return "forced"
    found = [k for prefix, k in KINDS.items() if text.startswith(prefix)]
    assert len(found) == 1, text
    return found[0]


def label(at: datetime, channel: str) -> str:
    zone = NEW_YORK if channel in (PLATFORM, FRANK) else BERLIN
    return at.astimezone(zone).strftime("%a %d %H:%M")


# ── the simulation ────────────────────────────────────────────────────────────────────────────


@dataclass
class Delivery:
    at: datetime  # the clock when the batch that sent it began (an occasion, a person, a restart)
    call: Call

    @property
    def entry(self) -> tuple[str, str, str]:
        return (label(self.at, self.call.args["channel"]), self.call.args["channel"], kind_of(self.call))


@dataclass
class World:
    config: AppConfig
    db: AsyncEngine
    clock: FakeClock
    fake: FakeSlack
    make_jobs: Callable[[AppConfig], CeremonyJobs]
    make_worker: Callable[..., OutboxWorker]
    slack: SlackDriver
    deliveries: list[Delivery] = field(default_factory=list)
    failures_injected: int = 0


Hook = Callable[["World", CeremonyJobs], Awaitable[None]]


async def bob_answers_tuesday(world: World, jobs: CeremonyJobs) -> None:
    """Bob posts his update (what the standup form's submission does) a quarter after the prompt."""
    async with jobs.notifier.transaction() as s:
        run = (
            await s.exec(
                select(CeremonyRun).where(
                    CeremonyRun.ceremony == "standup", CeremonyRun.scheduled_for == berlin(8, "09:30")
                )
            )
        ).one()
        await standups.answer(
            s,
            config=jobs.config,
            run=run,
            user_id=BOB,
            yesterday="Loader",
            today="Ranker",
            blockers="GPU quota",
        )


async def bob_fills_s4(world: World, jobs: CeremonyJobs) -> None:
    """Bob clicks 'Fill readiness' in his nudge DM and completes the form for S-4."""
    slack = world.slack
    await slack.click(ids.OPEN_READY_MODAL, "S-4", user=BOB, channel="D02BOB")
    view = slack.last_view()
    values = {
        b["block_id"]: {"type": "plain_text_input", "value": f"{b['block_id']} settled"}
        for b in view["blocks"]
        if b["type"] == "input"
    }
    response = await slack.submit(view, values, user=BOB)
    assert response.status_code == 200, response.text


HOOKS: dict[datetime, Hook] = {
    berlin(8, "09:45"): bob_answers_tuesday,
    berlin(13, "12:00"): bob_fills_s4,
}


def inject_failures(world: World, batch: int) -> None:
    """A share of Slack's answers are 429 (with Retry-After) or 500, spread over the fortnight."""
    if batch % 3 == 0:
        world.fake.fail(
            "chat.postMessage",
            429,
            {"ok": False, "error": "ratelimited"},
            headers={"Retry-After": "1"},
        )
        world.failures_injected += 1
    elif batch % 3 == 1:
        world.fake.fail("chat.postMessage", 500, times=2)
        world.failures_injected += 2
    if batch % 7 == 0:
        world.fake.fail("chat.update", 503, {"ok": False, "error": "service_unavailable"})


async def simulate(
    world: World,
    *,
    crash_after: datetime | None = None,
    restart_at: datetime | None = None,
    flaky: bool = False,
) -> tuple[CeremonyJobs, CeremonyJobs]:
    """Live the fortnight. With crash_after, the process dies right after running that occasion (before
    delivering it) and a new one starts at restart_at. Returns the (first, last) CeremonyJobs."""
    occs = [o for t in world.config.teams for o in occasions(world.config, t)]
    first = jobs = world.make_jobs(world.config)
    worker = world.make_worker(world.config.outbox)
    hooks = sorted(HOOKS.items())
    cursor, down, batch = START, False, 1
    await _batch(world, worker, START, asyncio.sleep(0), flaky=flaky, batch=0)  # what setup queued
    while True:
        at = min(o.next_fire(cursor) for o in occs)
        hook = hooks[0][1] if hooks and hooks[0][0] <= at else None
        if hook is not None:
            at = hooks.pop(0)[0]
        if at >= END:
            break
        if down:
            assert restart_at is not None
            if at < restart_at:  # nothing runs while the process is down
                assert hook is None, "a person acted while the bot was down"
                cursor = at
                continue
            # the new process: a catch-up round on start, then its own worker
            world.clock.set(restart_at)
            jobs, worker, down = world.make_jobs(world.config), world.make_worker(world.config.outbox), False
            await _batch(world, worker, restart_at, jobs.run_due(), flaky=flaky, batch=batch)
            batch += 1
        world.clock.set(max(at, world.clock.now()))
        work = hook(world, jobs) if hook is not None else jobs.run_due()
        if crash_after is not None and at == crash_after:
            await work  # claimed and queued, then the process dies before delivering anything
            down, crash_after = True, None
        else:
            await _batch(world, worker, at, work, flaky=flaky, batch=batch)
            batch += 1
        cursor = at
    return first, jobs


async def _batch(world: World, worker: OutboxWorker, at: datetime, work: Awaitable[Any], **kw: Any) -> None:
    if kw["flaky"]:
        inject_failures(world, kw["batch"])
    before = len(world.fake.calls)
    await work
    await deliver(worker, world.clock)
    for call in world.fake.calls[before:]:
        if call.method in ("chat.postMessage", "chat.update") and "x-fake-failed" not in call.headers:
            world.deliveries.append(Delivery(at, call))


# ── fixtures ──────────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def fortnight_config() -> AppConfig:
    """Both teams work on Berlin and New York time (the default is UTC); recsys has a holiday."""
    return make_config(
        timezone="UTC",
        recsys={"timezone": "Europe/Berlin", "holidays": [HOLIDAY]},
        ceremonies=SPRINT_CEREMONIES,
        platform={"timezone": "America/New_York", "ceremonies": PLATFORM_CEREMONIES},
    )


@pytest.fixture
async def world(
    db, fake_slack, clock, make_jobs, make_worker, make_app, fortnight_config
) -> AsyncIterator[World]:
    """Sprints S1 and S2 of recsys with stories, Dave away for some days, Bob and Dave on standup DMs."""
    fake_slack.reset()
    clock.set(START)
    config = fortnight_config
    async with tx(db) as s:
        s1 = await make_sprint(s, config, name="S1", starts_on=date(2026, 11, 30), days=11)
        s2 = await make_sprint(s, config, name="S2", starts_on=date(2026, 12, 14), days=11)
        assert (s1.state, s2.state) == ("active", "planned")
        # Alice, the lead, plans the stories in, forcing the not-Ready ones past the gate.
        await make_planned_story(s, config, s1, title="Ranker baseline", owner=BOB, points=3)  # S-1
        await make_planned_story(s, config, s1, title="Event logging", story_type="eng", owner=ALICE)  # S-2
        ready = await make_planned_story(s, config, s2, title="Feature store v2", story_type="eng", owner=BOB)
        await answer_all(s, config, ready, "ready")  # S-3: Ready
        await make_planned_story(s, config, s2, title="Retrain ranker", owner=BOB, points=5)  # S-4
        await make_planned_story(s, config, s2, title="Drift dashboard", story_type="eng", owner=DAVE)  # S-5
        await make_planned_story(s, config, s2, title="Candidate generation", owner=ALICE)  # S-6
        await make_planned_story(s, config, s2, title="Label audit", story_type="eng")  # S-7: nobody's
        # imported through the API (not by Frank himself), so Frank is told it was assigned to him
        await make_story(
            s,
            config,
            team_name="platform",
            title="Upgrade k8s",
            story_type="eng",
            owner=FRANK,
            actor="api:import",
        )
        await away.set_away(s, user_id=DAVE, starts_on=DAVE_AWAY[0], ends_on=DAVE_AWAY[1], today=START.date())
        await standups.set_standup_dm(s, user_id=BOB, enabled=True)
        await standups.set_standup_dm(s, user_id=DAVE, enabled=True)
    async with make_app(config) as driver:
        yield World(config, db, clock, fake_slack, make_jobs, make_worker, driver)


# ── checks ────────────────────────────────────────────────────────────────────────────────────


async def runs(db: AsyncEngine) -> list[CeremonyRun]:
    async with unit_of_work(session_factory(db)) as s:
        return list((await s.exec(select(CeremonyRun).order_by(col(CeremonyRun.scheduled_for)))).all())


def canonical(args: dict[str, Any]) -> str:
    return json.dumps(args, sort_keys=True, separators=(",", ":"))


async def assert_each_message_delivered_once_in_order(world: World) -> list[OutboxMessage]:
    """Every outbox row went out exactly once (matched by its exact arguments, with the ts it edits or
    the thread it answers), no call went out that is not a row, and each channel got its rows in order."""
    rows = await outbox_rows(world.db)
    assert rows, "nothing was queued"
    assert [r for r in rows if r.state != "sent"] == []
    by_id = {r.id: r for r in rows}
    expected: dict[str, int] = {}
    for row in rows:
        args = json.loads(row.payload)
        if row.update_of:
            args["ts"] = by_id[row.update_of].slack_ts
        if row.thread_of:
            args["thread_ts"] = by_id[row.thread_of].slack_ts
        if row.method == "chat.postMessage":  # each carries its outbox id, for a lookup after a crash
            args["metadata"] = tag(args.get("metadata"), row.id or 0)
        key = canonical(args)
        assert key not in expected, f"two rows would send the same call: {args}"
        expected[key] = row.id  # type: ignore[assignment]
    sent = Counter(canonical(d.call.args) for d in world.deliveries)
    twice = {k: n for k, n in sent.items() if n > 1}
    assert twice == {}, f"delivered more than once: {twice}"
    assert set(sent) == set(expected), {
        "delivered but never queued": set(sent) - set(expected),
        "queued but never delivered": set(expected) - set(sent),
    }
    per_channel: dict[str, list[int]] = defaultdict(list)
    for d in world.deliveries:
        per_channel[d.call.args["channel"]].append(expected[canonical(d.call.args)])
    for channel, order in per_channel.items():
        assert order == sorted(order), f"{channel} got its messages out of order: {order}"
    return rows


async def assert_runs_as_expected(world: World) -> list[CeremonyRun]:
    found = await runs(world.db)
    got = sorted((r.team, r.ceremony, r.scheduled_for, r.status, r.note) for r in found)
    assert got == sorted(EXPECTED_RUNS)
    return found


def assert_messages_as_expected(world: World, expected: list[tuple[str, str, str]]) -> None:
    got = [d.entry for d in world.deliveries]
    assert sorted(got) == sorted(expected)
    assert len(got) == len(expected)


def assert_nobody_away_is_dmd(world: World) -> None:
    away_days = {DAVE_AWAY[0] + timedelta(days=n) for n in range((DAVE_AWAY[1] - DAVE_AWAY[0]).days + 1)}
    to_dave = [d for d in world.deliveries if d.call.args["channel"] == DAVE]
    assert to_dave, "Dave got no standup DM at all"
    for d in to_dave:
        assert d.at.astimezone(BERLIN).date() not in away_days, d.entry
        # never a nudge: he is away for both rounds (the setup DMs came before he left)
        assert kind_of(d.call) in ("standup", "assigned", "forced")


def shown(args: dict[str, Any]) -> str:
    """The fallback text and the text of every section."""
    return "\n".join([args["text"], *(b["text"]["text"] for b in args["blocks"] if b["type"] == "section")])


def content_checks(world: World) -> None:
    """The words in the messages that matter to the people reading them."""
    by_entry: dict[tuple[str, str, str], list[Call]] = defaultdict(list)
    for d in world.deliveries:
        by_entry[d.entry].append(d.call)

    def one(when: str, channel: str, what: str) -> dict[str, Any]:
        [call] = by_entry[(when, channel, what)]
        return call.args

    # the setup posts: each commit names its story and the reason it was forced in; Bob's DM about
    # a story forced in says what it lacks and has the button to fill it
    commits = [shown(c.args) for c in by_entry[("Mon 07 01:00", RECSYS, "commit")]]
    assert len(commits) == 7
    [s1] = [c for c in commits if "*S-1* Ranker baseline (3 pt) — :warning: not Ready" in c]
    assert s1.startswith("1 committed to S1\n")
    assert ":warning: S-1 went in although not Ready (audited): _planned in setup_" in s1
    bob_forced = [c.args for c in by_entry[("Mon 07 01:00", BOB, "forced")]]
    [s4] = [a for a in bob_forced if "*S-4* Retrain ranker (5 pt)" in a["text"]]
    assert s4["text"].startswith(
        f"<@{ALICE}> committed your story *S-4* Retrain ranker (5 pt) to sprint *S2*"
    )
    assert "It still lacks: Data availability, Feature stability" in s4["text"]
    [fill] = [e for b in s4["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert (fill["action_id"], fill["value"]) == (ids.OPEN_READY_MODAL, "S-4")

    tues = one("Tue 08 11:30", RECSYS, "summary")["text"]
    assert tues.startswith(":memo: *Standup summary* · 1 answered · 2 did not")
    assert f"<@{BOB}> :construction: *Blocked:* GPU quota" in tues
    assert f"No update from <@{ALICE}>, <@{DAVE}>." in tues
    fri = one("Fri 11 11:30", RECSYS, "summary")["text"]
    assert f"No update from <@{ALICE}>, <@{BOB}>." in fri and f"Away: <@{DAVE}>." in fri

    # the standup DM carries the same button as the channel prompt
    def button_value(args: dict[str, Any]) -> str:
        [value] = [
            e["value"]
            for b in args["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == ids.OPEN_STANDUP_MODAL
        ]
        return value

    assert button_value(one("Mon 07 09:30", BOB, "standup")) == button_value(
        one("Mon 07 09:30", RECSYS, "standup")
    )
    assert "Sprint *S1* · 5 working days left" in shown(one("Mon 07 09:30", RECSYS, "standup"))

    sunday = one("Sun 13 10:00", RECSYS, "readiness")["text"]
    assert sunday.startswith(
        ":traffic_light: *Readiness for S2* (planning in 24 hours): 1 of 5 stories Ready."
    )
    assert f"Waiting on <@{ALICE}> (S-6), <@{BOB}> (S-4)." in sunday
    assert "No owner: S-7." in sunday
    assert f"Away: <@{DAVE}>." in sunday
    edited = one("Sun 13 12:00", RECSYS, "update")["text"]
    assert "2 of 5 stories Ready" in edited and f"<@{BOB}>" not in edited.split("Away:")[0]
    monday = one("Mon 14 08:00", RECSYS, "readiness")["text"]
    assert monday.startswith(
        ":traffic_light: *Readiness for S2* (planning in 2 hours): 2 of 5 stories Ready."
    )
    assert f"Waiting on <@{ALICE}> (S-6)." in monday

    nudge = one("Sun 13 10:00", BOB, "nudge")
    assert nudge["text"].startswith(":wave: Planning for *S2* is in 24 hours.")
    assert "S-4" in json.dumps(nudge["blocks"]) and "S-3" not in json.dumps(nudge["blocks"])
    assert "Candidate generation" in json.dumps(one("Mon 14 08:00", ALICE, "nudge")["blocks"])

    planning = one("Mon 14 10:00", RECSYS, "planning")["text"]
    assert planning.startswith(
        ":clipboard: *Sprint planning for team recsys* starts now (Mon 14 Dec, 10:00)."
    )
    review = one("Fri 11 15:00", RECSYS, "review")
    assert "Sprint *S1*: 0 of 2 stories done, 0 of 3 points." in shown(review)
    refinement = one("Wed 09 14:00", PLATFORM, "refinement")
    assert "(Wed 09 Dec, 14:00)" in refinement["text"]
    assert "1 open story is not Ready yet: `/scrum story list --not-ready`." in shown(refinement)


async def assert_summaries_answer_their_standup(world: World) -> None:
    """Each summary (and Bob's answer) is a reply in the thread of the same day's standup prompt."""
    found = await runs(world.db)
    rows = {r.dedupe_key: r for r in await outbox_rows(world.db)}
    prompts = {r.scheduled_for: r.message_id for r in found if r.ceremony == "standup" and r.team == "recsys"}
    summaries = [r for r in found if r.ceremony == "standup_summary" and r.status == "done"]
    assert len(summaries) == 9
    for run in summaries:
        row = rows[f"run:{run.id}"]
        assert row.thread_of is not None
        assert row.thread_of == prompts[run.scheduled_for - timedelta(minutes=120)]
        assert json.loads(row.payload)["reply_broadcast"] is True
    [answer] = [r for key, r in rows.items() if key.startswith("standup:")]
    assert answer.thread_of == prompts[berlin(8, "09:30")]


# ── the tests ─────────────────────────────────────────────────────────────────────────────────


async def test_a_fortnight_sends_exactly_what_a_scrum_master_expects(world):
    await simulate(world)
    assert_messages_as_expected(world, EXPECTED_MESSAGES)
    await assert_runs_as_expected(world)
    await assert_each_message_delivered_once_in_order(world)
    assert_nobody_away_is_dmd(world)
    content_checks(world)
    await assert_summaries_answer_their_standup(world)
    # every ceremony message is recorded on its run
    by_id = {r.id: r for r in await outbox_rows(world.db)}
    for run in await runs(world.db):
        if run.status == "done" and run.ceremony != "standup_summary":
            assert run.message_id in by_id, (run.ceremony, run.scheduled_for)
    # and a second pass over the whole fortnight finds nothing left to do
    jobs = world.make_jobs(world.config)
    world.clock.set(END)
    assert await jobs.run_due() == []


async def test_a_restart_catches_up_planning_missed_while_down_exactly_once(world):
    """The process dies right after queuing Monday's standup (nothing of it delivered) and comes back at
    10:40 Berlin: planning (10:00) is 40 minutes late, inside the 120-minute grace window, so it runs
    once, and the standup prompt and DM queued before the crash go out then."""
    restart = berlin(14, "10:40")
    first, last = await simulate(world, crash_after=berlin(14, "09:30"), restart_at=restart)
    assert first is not last

    moved = {
        ("Mon 14 09:30", RECSYS, "standup"),
        ("Mon 14 09:30", BOB, "standup"),
        ("Mon 14 10:00", RECSYS, "planning"),
    }
    expected = [e for e in EXPECTED_MESSAGES if e not in moved] + [
        ("Mon 14 10:40", RECSYS, "standup"),
        ("Mon 14 10:40", BOB, "standup"),
        ("Mon 14 10:40", RECSYS, "planning"),
    ]
    assert_messages_as_expected(world, expected)
    found = await assert_runs_as_expected(world)
    [planning] = [r for r in found if r.ceremony == "planning"]
    assert planning.claimed_at == restart
    assert planning.claimed_by == last.instance
    await assert_each_message_delivered_once_in_order(world)
    assert_nobody_away_is_dmd(world)

    # the old process (had it survived) and a second new one find nothing more to do
    world.clock.set(berlin(14, "10:45"))
    assert await first.run_due() == []
    assert await world.make_jobs(world.config).run_due() == []
    async with unit_of_work(session_factory(world.db)) as s:
        rows = (await s.exec(select(OutboxMessage).where(OutboxMessage.state != "sent"))).all()
    assert rows == []


async def test_planning_missed_beyond_grace_is_recorded_not_posted(world):
    """Down from Monday 09:30 to 13:00 Berlin: planning is three hours late, outside the grace window;
    it is recorded as missed and not posted. The summary (11:30, 90 minutes late) still goes out."""
    restart = berlin(14, "13:00")
    await simulate(world, crash_after=berlin(14, "09:30"), restart_at=restart)
    found = await runs(world.db)
    [planning] = [r for r in found if r.ceremony == "planning"]
    assert planning.status == "missed"
    assert planning.message_id is None
    assert "outside the 120 min grace window" in (planning.note or "")
    [summary] = [
        r for r in found if r.ceremony == "standup_summary" and r.scheduled_for == berlin(14, "11:30")
    ]
    assert summary.status == "done"
    got = [d.entry for d in world.deliveries]
    assert ("Mon 14 13:00", RECSYS, "planning") not in got
    assert [e for e in got if e[0].startswith("Mon 14") and e[1] == RECSYS] == [
        ("Mon 14 08:00", RECSYS, "readiness"),
        ("Mon 14 13:00", RECSYS, "standup"),
        ("Mon 14 13:00", RECSYS, "summary"),
    ]
    await assert_each_message_delivered_once_in_order(world)


async def test_a_flaky_slack_delays_messages_but_delivers_each_once_in_order(world):
    await simulate(world, flaky=True)
    assert world.failures_injected >= 20
    failed = [c for c in world.fake.calls if "x-fake-failed" in c.headers]
    assert {c.headers["x-fake-failed"] for c in failed} >= {"429", "500"}
    assert len(failed) >= 20
    assert_messages_as_expected(world, EXPECTED_MESSAGES)
    await assert_runs_as_expected(world)
    rows = await assert_each_message_delivered_once_in_order(world)
    assert any(r.attempts > 1 for r in rows)
    assert_nobody_away_is_dmd(world)
    content_checks(world)


async def test_queued_messages_are_due_by_the_clock_that_queued_them(
    db, clock, fake_slack, make_jobs, make_worker, fortnight_config
):
    """The first standup of November, run on a clock that is behind the wall clock: it is due at once."""
    fake_slack.reset()
    at = datetime(2026, 11, 2, 9, 30, tzinfo=BERLIN).astimezone(UTC)  # a Monday standup, 09:30 Berlin
    assert at < datetime.now(UTC)
    clock.set(at)
    made = await make_jobs(fortnight_config).run_due()
    assert [(r.team, r.ceremony) for r in made] == [("recsys", "standup")]
    worker = make_worker(fortnight_config.outbox)
    assert await worker.next_due() <= at
    assert await worker.run_once() >= 1
    assert [c.args["channel"] for c in fake_slack.of("chat.postMessage")][:1] == [RECSYS]


async def test_a_nudge_about_one_story_reads_well(world):
    world.clock.set(berlin(13, "10:00"))
    jobs = world.make_jobs(world.config)
    assert [r.ceremony for r in await jobs.run_due()] == ["planning_nudge_24h"]
    await deliver(world.make_worker(world.config.outbox), world.clock)
    [dm] = [m for m in posted(world.slack, BOB) if ":wave:" in m["text"]]
    assert dm["text"].startswith(
        ":wave: Planning for *S2* is in 24 hours. 1 of your stories is not Ready yet; please fill in"
    )
