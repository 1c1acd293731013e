"""`sprint start/current/plan/commit/close`: per team, leads decide, the readiness gate holds."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.models import AuditEvent, Sprint, Story
from tests.conftest import ALICE, BOB, DAVE, FRANK, PLATFORM, make_config
from tests.factories import rows
from tests.slack.helpers import ok, refused, shown, strings, warning
from tests.slack_driver import SlackDriver

SPRINT_1 = '"Sprint 1" --from 2026-12-07 --to 2026-12-18'
SPRINT_2 = '"Sprint 2" --from 2026-12-21 --to 2027-01-01'


async def sprints(db: AsyncEngine) -> dict[str, Sprint]:
    return {s.name: s for s in await rows(db, Sprint)}


async def placement(db: AsyncEngine) -> dict[str, str | None]:
    """Story key → the name of its sprint (None: backlog)."""
    names = {s.id: s.name for s in await rows(db, Sprint)}
    return {s.key: names.get(s.sprint_id) for s in await rows(db, Story)}


# --- sprint start ---------------------------------------------------------------------------------


async def test_sprint_start_creates_the_current_sprint(slack, db):
    body = await ok(slack, f'sprint start {SPRINT_1} --goal "Ship ranker v2"')
    assert body["response_type"] == "ephemeral"
    assert body["text"] == "Sprint 1 created as the current sprint."
    assert shown(body).endswith(
        ":runner: Created Sprint 1 as the current sprint of team recsys.\n"
        "*Sprint 1* (current) · Mon 07 Dec → Fri 18 Dec 2026\n_Goal:_ Ship ranker v2"
    )
    assert ":warning:" not in shown(body)  # it starts today: nothing to warn about
    sprint = (await sprints(db))["Sprint 1"]
    assert (sprint.team, sprint.starts_on, sprint.ends_on, sprint.goal, sprint.state, sprint.created_by) == (
        "recsys",
        date(2026, 12, 7),
        date(2026, 12, 18),
        "Ship ranker v2",
        "active",
        ALICE,
    )


async def test_sprint_start_when_one_is_current_queues_the_next(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    body = await ok(slack, "sprint start Sprint 2 --from=2026-12-21 --to=2027-01-01")
    assert body["text"] == "Sprint 2 created as the next sprint."
    assert ":runner: Created Sprint 2 as the next sprint of team recsys." in shown(body)
    assert "*Sprint 2* (next) · Mon 21 Dec → Fri 01 Jan 2027" in shown(body)
    assert {n: s.state for n, s in (await sprints(db)).items()} == {
        "Sprint 1": "active",
        "Sprint 2": "planned",
    }


async def test_sprint_start_overlapping_an_open_sprint_is_refused(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    await refused(
        slack,
        db,
        'sprint start "Sprint 2" --from 2026-12-14 --to 2026-12-25',
        "2026-12-14..2026-12-25 overlaps sprint Sprint 1 (2026-12-07..2026-12-18)",
    )


async def test_sprint_start_with_a_name_already_used_is_refused(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    await refused(
        slack,
        db,
        'sprint start "Sprint 1" --from 2027-01-04 --to 2027-01-15',
        "already has a sprint called 'Sprint 1'",
    )
    await ok(slack, "sprint close")
    # also once it is closed
    await refused(
        slack,
        db,
        'sprint start "Sprint 1" --from 2027-01-04 --to 2027-01-15',
        "already has a sprint called 'Sprint 1'",
    )


async def test_sprint_start_by_a_non_lead_is_forbidden(slack, db):
    text = await refused(
        slack,
        db,
        f"sprint start {SPRINT_1}",
        "Only the leads of team recsys can start a sprint",
        usage=False,
        user=BOB,
    )
    assert text == ":warning: Only the leads of team recsys can start a sprint."
    assert await sprints(db) == {}


async def test_sprints_belong_to_the_team_of_the_channel(slack, db):
    # platform names no leads: any member may start its sprints
    body = await ok(slack, f"sprint start {SPRINT_1}", user=FRANK, channel=PLATFORM)
    assert "Created Sprint 1 as the current sprint of team platform." in shown(body)
    [sprint] = await rows(db, Sprint)
    assert sprint.team == "platform" and sprint.created_by == FRANK

    # recsys has none, and may use the same name and dates
    warning(
        await slack.command("sprint current"), "Team recsys has no current sprint", usage="sprint current"
    )
    await ok(slack, f"sprint start {SPRINT_1}")
    assert sorted(s.team for s in await rows(db, Sprint)) == ["platform", "recsys"]

    current = await ok(slack, "sprint current", user=FRANK, channel=PLATFORM)
    assert current["text"] == "Sprint Sprint 1"
    await ok(
        slack,
        'story add Migrate dashboards --sprint current --force reason="planned"',
        user=FRANK,
        channel=PLATFORM,
    )
    stored = (await rows(db, Story))[0]
    platform_sprint = next(s for s in await rows(db, Sprint) if s.team == "platform")
    assert (stored.team, stored.sprint_id) == ("platform", platform_sprint.id)
    # platform's sprint is not recsys's: a recsys story cannot name it
    await ok(slack, 'sprint start "P1" --from 2027-01-04 --to 2027-01-15', user=FRANK, channel=PLATFORM)
    await refused(
        slack, db, 'story add Foo --sprint "P1"', "Team recsys has no sprint called 'P1'", usage="story add"
    )
    # a recsys lead cannot close platform's sprint from the recsys channel: it closes recsys's
    await ok(slack, "sprint close")
    assert {(s.team, s.name): s.state for s in await rows(db, Sprint)} == {
        ("platform", "Sprint 1"): "active",
        ("platform", "P1"): "planned",
        ("recsys", "Sprint 1"): "closed",
    }


# --- sprint current -------------------------------------------------------------------------------


async def test_sprint_current_is_a_board(slack, db):
    await ok(slack, f'sprint start {SPRINT_1} --goal "Ship ranker v2"')
    await ok(slack, 'story add Fix login --type eng --points 3 --sprint current --force reason="planned"')
    await ok(slack, 'story add Train ranker --points 5 --sprint current --force reason="planned"')
    await ok(slack, "story add Backlog item --points 8")
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "story done S-1")

    body = await ok(slack, "sprint current", user=BOB)
    assert body["response_type"] == "ephemeral"
    assert body["text"] == "Sprint Sprint 1"
    heading, glance, to_do, done = body["blocks"]
    assert (
        heading["text"]["text"]
        == "*Sprint 1* (current) · Mon 07 Dec → Fri 18 Dec 2026\n_Goal:_ Ship ranker v2"
    )
    # where the sprint stands (Monday 7 December is its first of ten working days), then the counts
    assert glance["elements"][0]["text"] == (
        "Day 1 of 10 · 9 working days left · 1/2 stories done · 3/8 points · 1/2 Ready or done"
    )
    # its stories by status, each group with its points; the backlog story is not on the board
    assert to_do["text"]["text"] == (
        "*:white_circle: To do (1 · 5 pt)*\n*S-2* Train ranker (5 pt) · :red_circle: not Ready (0/6)"
    )
    assert done["text"]["text"] == "*:white_check_mark: Done (1 · 3 pt)*\n*S-1* Fix login (3 pt)"


# --- sprint plan ----------------------------------------------------------------------------------


@pytest.fixture
async def planning(slack: SlackDriver) -> None:
    """Sprint 1 current with S-3 committed; backlog: S-1 Ready (Bob), S-2 not Ready (Dave), S-4 not Ready."""
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, "story add Fix login --type eng --owner <@U02BOB|bob> --points 3")
    await ok(slack, "ready S-1 acceptance_criteria=tests dependencies=none")
    await ok(slack, "story add Train ranker --owner <@U03DAVE|dave> --points 5")
    await ok(slack, "ready S-2 data_available=clicks@v3 eval_criteria=ndcg")
    await ok(slack, "story add Cache warmup --type eng --points 2")
    await ok(slack, "ready S-3 acceptance_criteria=p95 dependencies=none")
    await ok(slack, "sprint commit S-3")  # Ready: no forced commit in the audit log
    await ok(slack, "story add Fix typo --type eng")


async def test_sprint_plan_shows_ready_and_not_ready_stories_with_owners_and_gaps(slack, db, planning):
    body = await ok(slack, "sprint plan", user=BOB)
    assert body["response_type"] == "ephemeral"
    assert body["text"] == "Planning Sprint 1"
    assert len(body["blocks"]) <= 50
    text = shown(body)
    assert "*Planning* *Sprint 1* (current) · Mon 07 Dec → Fri 18 Dec 2026" in text
    assert "2 of 4 stories Ready · 2 points committed" in text
    assert "*Committed (1)*\n*S-3* Cache warmup · _unassigned_ · 2 pt · :large_green_circle: Ready" in text
    assert (
        "*Ready in the backlog (1)*\n*S-1* Fix login · <@U02BOB> · 3 pt · :large_green_circle: Ready" in text
    )
    assert "*Not Ready (2)*" in text
    assert (
        "*S-2* Train ranker · <@U03DAVE> · 5 pt · :red_circle: not Ready (2/6) — lacks Feature stability, "
        "Reproducible environment, Data contract, Validation data"
    ) in text
    assert (
        "*S-4* Fix typo · _unassigned_ · :red_circle: not Ready (0/2) — lacks Acceptance criteria, Dependencies"
        in text
    )
    # the hint names only what can go in as it is: the Ready one, into the sprint being planned
    assert (
        'Commit the Ready ones with `/scrum sprint commit S-1 --to "Sprint 1"`; '
        'a lead can force a not-Ready story in with `--force reason="…"`.'
    ) in text
    # looking changes nothing
    assert (await placement(db))["S-1"] is None


async def test_sprint_plan_targets_the_next_sprint_and_takes_a_name(slack, db, planning):
    await ok(slack, f"sprint start {SPRINT_2}")
    assert (await ok(slack, "sprint plan"))["text"] == "Planning Sprint 2"
    assert "*Committed (0)*\n_Nothing committed yet._" in shown(await ok(slack, "sprint plan"))
    named = await ok(slack, 'sprint plan "Sprint 1"')
    assert named["text"] == "Planning Sprint 1"
    assert "*Committed (1)*" in shown(named)


# --- sprint commit --------------------------------------------------------------------------------


async def test_sprint_commit_adds_ready_stories_to_the_sprint_being_planned(slack, db, planning):
    await ok(slack, f"sprint start {SPRINT_2}")
    body = await ok(slack, "sprint commit S-1")
    assert body["response_type"] == "ephemeral"
    assert body["text"] == "Committed S-1"
    # the next sprint is the default, named with when it starts; it has not started: no scope added
    assert shown(body).endswith(":inbox_tray: Committed S-1 to *Sprint 2* (next, starts Mon 21 Dec).")
    assert (await placement(db))["S-1"] == "Sprint 2"
    assert await rows(db, AuditEvent, AuditEvent.action == "sprint.force_commit") == []
    [event] = await rows(db, AuditEvent, AuditEvent.subject == "S-1")
    assert (event.actor, event.action) == (ALICE, "sprint.commit")
    assert json.loads(event.payload) == {"sprint": "Sprint 2", "team": "recsys", "points": 3}
    assert "*Committed (1)*\n*S-1* Fix login" in shown(await ok(slack, "sprint plan"))


async def test_sprint_commit_names_each_story_once(slack, db, planning):
    body = await ok(slack, "sprint commit S-1 s1 S-1")
    assert body["text"] == "Committed S-1"
    assert (await placement(db))["S-1"] == "Sprint 1"


async def test_sprint_commit_to_a_named_sprint(slack, db, planning):
    await ok(slack, f"sprint start {SPRINT_2}")
    await ok(slack, "sprint commit S-1 --sprint current")
    assert (await placement(db))["S-1"] == "Sprint 1"


async def test_sprint_commit_says_when_a_story_leaves_the_current_sprint(slack, db, planning):
    await ok(slack, f"sprint start {SPRINT_2}")
    body = await ok(slack, "sprint commit S-3")
    assert "Moved out of another sprint: S-3 from Sprint 1." in shown(body)
    assert (await placement(db))["S-3"] == "Sprint 2"


async def test_sprint_commit_of_not_ready_stories_is_refused_listing_what_each_lacks(slack, db, planning):
    text = await refused(
        slack,
        db,
        "sprint commit S-1 S-2 S-4",
        "Not Ready: S-2 lacks Feature stability, Reproducible environment, Data contract, Validation data; "
        "S-4 lacks Acceptance criteria, Dependencies.",
        'let a lead commit anyway with a reason (--force reason="why")',
    )
    assert "S-1 lacks" not in text
    # nothing moved, not even the Ready one
    assert await placement(db) == {"S-1": None, "S-2": None, "S-3": "Sprint 1", "S-4": None}


async def test_sprint_commit_force_with_a_reason_is_audited(slack, db, planning):
    body = await ok(slack, 'sprint commit S-1 S-2 --force reason="agreed with the PO"')
    text = shown(body)
    assert ":inbox_tray: Committed S-1, S-2 to *Sprint 1* (current, day 1 of 10)." in text
    assert ":warning: Forced although not Ready (audited): S-2." in text
    assert "scope added" not in text  # Sprint 1's first day is planning day
    assert await placement(db) == {"S-1": "Sprint 1", "S-2": "Sprint 1", "S-3": "Sprint 1", "S-4": None}

    # the Ready one is a plain commit, the forced one carries the reason and what it lacks
    plain, forced = await rows(db, AuditEvent, AuditEvent.subject.in_(["S-1", "S-2"]))
    assert (plain.actor, plain.action, plain.subject) == (ALICE, "sprint.commit", "S-1")
    assert (forced.actor, forced.action, forced.subject) == (ALICE, "sprint.force_commit", "S-2")
    assert json.loads(forced.payload) == {
        "sprint": "Sprint 1",
        "team": "recsys",
        "points": 5,  # no scope_added: Sprint 1's first day is planning day
        "reason": "agreed with the PO",
        "missing": ["feature_stability", "reproducible_env", "data_contract", "validation_dataset"],
    }


async def test_sprint_commit_force_needs_a_real_reason(slack, db, planning):
    await refused(slack, db, "sprint commit S-2 --force", "--force needs a reason", usage="sprint commit")
    await refused(slack, db, 'sprint commit S-2 --force reason=""', "--force needs a reason")
    await refused(slack, db, 'sprint commit S-2 --force reason="   "', "--force needs a reason")
    await refused(
        slack, db, 'sprint commit S-2 reason="agreed"', 'reason="…" goes with --force', usage="sprint commit"
    )


async def test_sprint_commit_by_a_non_lead_is_forbidden(slack, db, planning):
    await refused(
        slack,
        db,
        "sprint commit S-1",
        "Only the leads of team recsys can commit stories to a sprint",
        usage=False,
        user=BOB,
    )
    await refused(slack, db, 'sprint commit S-2 --force reason="x"', "Only the leads", usage=False, user=BOB)


async def test_sprint_commit_refuses_stories_it_cannot_take(slack, db, planning):
    await refused(slack, db, "sprint commit S-3", "S-3 is already in sprint Sprint 1")
    await refused(slack, db, "sprint commit S-1 S-999", "There is no story S-999", usage="sprint commit")
    await refused(slack, db, "sprint commit S-1 X-1", "'X-1' is not a story id", usage="sprint commit")
    await ok(slack, "story add Dashboards --type eng", user=FRANK, channel=PLATFORM)
    await refused(slack, db, "sprint commit S-5", "S-5 belongs to team platform, not recsys")
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "story done S-1")
    await refused(slack, db, "sprint commit S-1", "S-1 is already done")


# --- sprint close ---------------------------------------------------------------------------------


@pytest.fixture
async def sprint_under_way(slack: SlackDriver) -> None:
    """Sprint 1 current (S-1 3 pt done, S-2 5 pt and S-3 open), Sprint 2 next, S-4 in the backlog."""
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, f"sprint start {SPRINT_2}")
    await ok(slack, 'story add Fix login --type eng --points 3 --sprint current --force reason="planned"')
    await ok(slack, 'story add Train ranker --points 5 --sprint current --force reason="planned"')
    await ok(slack, 'story add Cache warmup --type eng --sprint current --force reason="planned"')
    await ok(slack, "story add Someday")
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "story done S-1")


async def test_sprint_close_carries_unfinished_stories_over_and_reports_velocity(slack, db, sprint_under_way):
    body = await ok(slack, "sprint close")
    # the answer is for the lead; the team hears it from the post in the team channel
    assert body["response_type"] == "ephemeral"
    assert body["text"] == "Sprint Sprint 1 closed"
    assert body["blocks"][-1]["elements"][0]["text"] == "Posted in <#C0123RECSYS> for the team."
    text = shown(body)
    assert "*Sprint Sprint 1 closed.* Velocity: 3 points (1 " in text
    assert "Carried over to sprint *Sprint 2* (2): S-2 Train ranker, S-3 Cache warmup" in text
    assert "Sprint 2 is now the current sprint." in text

    state = await sprints(db)
    assert state["Sprint 1"].state == "closed" and state["Sprint 1"].closed_at is not None
    assert state["Sprint 2"].state == "active"
    assert await placement(db) == {"S-1": "Sprint 1", "S-2": "Sprint 2", "S-3": "Sprint 2", "S-4": None}
    [event] = await rows(db, AuditEvent, AuditEvent.action == "sprint.close")
    assert (event.actor, event.subject) == (ALICE, "sprint:recsys:Sprint 1")
    assert json.loads(event.payload) == {"done": ["S-1"], "carried_over": ["S-2", "S-3"], "to": "Sprint 2"}

    assert (await ok(slack, "sprint current"))["text"] == "Sprint Sprint 2"


async def test_sprint_close_without_a_next_sprint_returns_stories_to_the_backlog(slack, db, sprint_under_way):
    await ok(slack, "sprint close")
    body = await ok(slack, "sprint close")
    text = shown(body)
    assert "*Sprint Sprint 2 closed.* Velocity: 0 points (0 " in text
    assert "Carried over to the backlog (2): S-2 Train ranker, S-3 Cache warmup" in text
    assert "now the current sprint" not in text
    assert await placement(db) == {"S-1": "Sprint 1", "S-2": None, "S-3": None, "S-4": None}

    await refused(
        slack, db, "sprint close", "Team recsys has no current sprint to close", usage="sprint close"
    )


async def test_sprint_close_with_everything_done(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, 'story add Fix login --type eng --points 2 --sprint current --force reason="planned"')
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "story done S-1")
    text = shown(await ok(slack, "sprint close"))
    assert "Velocity: 2 points" in text and "Nothing carried over." in text


async def test_a_closed_sprint_takes_no_more_stories(slack, db, sprint_under_way):
    await ok(slack, "sprint close")
    await refused(slack, db, 'story add Late --sprint "Sprint 1"', "Sprint Sprint 1 is closed")
    await refused(slack, db, 'sprint commit S-4 --sprint "Sprint 1"', "Sprint Sprint 1 is closed")


async def test_sprint_close_by_a_non_lead_is_forbidden(slack, db, sprint_under_way):
    await refused(
        slack, db, "sprint close", "Only the leads of team recsys can close a sprint", usage=False, user=BOB
    )
    assert (await sprints(db))["Sprint 1"].state == "active"


# --- sprint names are user text too ---------------------------------------------------------------

NAME = "&lt;!channel&gt; &amp; co"  # a lead typed: <!channel> & co
LEAK = "bug: the sprint name goes unescaped into the message's fallback text (commands/sprint.py, story.py)"


@pytest.mark.parametrize(
    "command",
    [
        pytest.param("sprint current"),
        pytest.param("sprint plan"),
        pytest.param("story list --sprint current"),
        pytest.param("sprint close"),
        "story list",
        "story add Foo --sprint current --force reason=planned",
        "sprint commit S-1 --force reason=x",
        "story show S-1",
    ],
)
async def test_sprint_names_never_become_control_sequences(slack, db, command):
    await ok(slack, "story add Foo")
    await ok(slack, f"sprint start {NAME} --from 2026-12-07 --to 2026-12-18")
    await ok(slack, "story add Bar --sprint current --force reason=planned")
    assert "<!channel> & co" in await sprints(db)
    body = await ok(slack, command)
    for text in strings(body):
        assert "<!channel>" not in text, text


async def test_sprint_start_reply_never_contains_a_typed_channel_mention(slack, db):
    body = await ok(slack, f'sprint start {NAME} --from 2026-12-07 --to 2026-12-18 --goal "&lt;!here&gt;"')
    assert "*&lt;!channel&gt; &amp; co* (current)" in shown(body)
    assert "_Goal:_ &lt;!here&gt;" in shown(body)
    for text in strings(body):
        assert "<!channel>" not in text and "<!here>" not in text, text


# --- sprint commit: which sprint, and scope added -------------------------------------------------


SCOPE_ADDED = "The sprint is under way: recorded as scope added (the sprint review shows it)."


async def test_sprint_commit_on_the_sprints_first_day_is_a_plain_commit(slack, db, planning):
    # Sprint 1 started today (the app's clock): its first day is planning day, not added scope
    body = await ok(slack, "sprint commit S-1")
    assert shown(body) == "Committed S-1\n:inbox_tray: Committed S-1 to *Sprint 1* (current, day 1 of 10)."
    assert "scope added" not in shown(body)
    assert (await placement(db))["S-1"] == "Sprint 1"
    [event] = await rows(db, AuditEvent, AuditEvent.subject == "S-1")
    assert event.action == "sprint.commit"
    assert json.loads(event.payload) == {"sprint": "Sprint 1", "team": "recsys", "points": 3}


@pytest.mark.parametrize(
    ("now", "day", "scope_added"),
    [
        # the team's date decides, in Berlin: 22:59 UTC on 7 December is still its first day there...
        (datetime(2026, 12, 7, 22, 59, tzinfo=UTC), 1, False),
        # ...and 23:00 UTC is already midnight of Tuesday 8 December: the sprint is under way
        (datetime(2026, 12, 7, 23, 0, tzinfo=UTC), 2, True),
        (datetime(2026, 12, 10, 9, 0, tzinfo=UTC), 4, True),
        (datetime(2026, 12, 18, 16, 0, tzinfo=UTC), 10, True),  # its last day
    ],
)
async def test_sprint_commit_goes_to_the_current_sprint_when_none_is_planned(
    slack, db, planning, clock, now, day, scope_added
):
    clock.set(now)
    body = await ok(slack, "sprint commit S-1")
    text = shown(body)
    assert f":inbox_tray: Committed S-1 to *Sprint 1* (current, day {day} of 10)." in text
    # after its first day, Sprint 1 is under way: a commit to it is scope added
    assert (SCOPE_ADDED in text) is scope_added
    assert ("scope added" in text) is scope_added
    assert (await placement(db))["S-1"] == "Sprint 1"
    [event] = await rows(db, AuditEvent, AuditEvent.subject == "S-1")
    assert event.action == "sprint.commit"
    expected = {"sprint": "Sprint 1", "team": "recsys", "points": 3}
    if scope_added:
        expected["scope_added"] = True
    assert json.loads(event.payload) == expected


@pytest.mark.parametrize(
    ("to", "sprint", "label"),
    [
        ("--to next", "Sprint 2", "*Sprint 2* (next, starts Mon 21 Dec)"),
        ("--to current", "Sprint 1", "*Sprint 1* (current, day 2 of 10)"),
        ('--to "Sprint 1"', "Sprint 1", "*Sprint 1* (current, day 2 of 10)"),
        ("--to=next", "Sprint 2", "*Sprint 2* (next, starts Mon 21 Dec)"),
        ('--sprint "Sprint 1"', "Sprint 1", "*Sprint 1* (current, day 2 of 10)"),  # the older spelling
    ],
)
async def test_sprint_commit_to_picks_the_sprint(slack, db, planning, clock, to, sprint, label):
    clock.advance(days=1)  # Tuesday: Sprint 1 is under way, Sprint 2 has not started
    await ok(slack, f"sprint start {SPRINT_2}")
    body = await ok(slack, f"sprint commit S-1 {to}")
    assert f":inbox_tray: Committed S-1 to {label}." in shown(body)
    assert ("scope added" in shown(body)) is (sprint == "Sprint 1")
    assert (await placement(db))["S-1"] == sprint


async def test_sprint_commit_to_a_sprint_that_is_over_says_so(slack, db, planning, clock):
    clock.set(datetime(2026, 12, 21, 8, 0, tzinfo=UTC))  # Monday after Sprint 1's last day
    body = await ok(slack, "sprint commit S-1")
    assert ":inbox_tray: Committed S-1 to *Sprint 1* (current, ended Fri 18 Dec, 3 days ago)." in shown(body)


async def test_sprint_commit_refuses_another_teams_sprint_by_name(slack, db, planning):
    await ok(slack, 'sprint start "P1" --from 2026-12-07 --to 2026-12-18', user=FRANK, channel=PLATFORM)
    await refused(
        slack, db, "sprint commit S-1 --to P1", "Team recsys has no sprint called 'P1'", usage="sprint commit"
    )


# --- sprint current: the board --------------------------------------------------------------------


async def test_sprint_current_groups_stories_by_status_with_points_and_reasons(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    for args in (
        "Fix login --type eng --points 3",
        "Train ranker --owner <@U02BOB|bob> --points 5",
        "Cache warmup --type eng --points 2",
        "Drift dashboard --type eng --owner <@U03DAVE|dave> --points 1",
        "Label audit --type eng",
    ):
        await ok(slack, f'story add {args} --sprint current --force reason="planned"')
    await ok(slack, "story start S-2", user=BOB)
    await ok(slack, 'story block S-4 reason="waiting for the data contract"', user=DAVE)
    await ok(slack, 'story block S-5 reason="GPU quota"')
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "story done S-1")
    await ok(slack, "story add Backlog item --points 8")
    await ok(slack, "story add Put away --sprint current --force reason=planned")
    await ok(slack, "story archive S-7")

    body = await ok(slack, "sprint current")
    texts = [
        b["text"]["text"] if b["type"] == "section" else b["elements"][0]["text"] for b in body["blocks"]
    ]
    assert texts == [
        "*Sprint 1* (current) · Mon 07 Dec → Fri 18 Dec 2026",
        "Day 1 of 10 · 9 working days left · 1/5 stories done · 3/11 points · 1/5 Ready or done",
        "*:octagonal_sign: Blocked (2 · 1 pt)*\n"
        "*S-4* Drift dashboard (1 pt) · <@U03DAVE> · :red_circle: not Ready (0/2) — _waiting for the data contract_\n"
        "*S-5* Label audit · :red_circle: not Ready (0/2) — _GPU quota_",
        "*:large_blue_circle: In progress (1 · 5 pt)*\n*S-2* Train ranker (5 pt) · <@U02BOB> · :red_circle: not Ready (0/6)",
        "*:white_circle: To do (1 · 2 pt)*\n*S-3* Cache warmup (2 pt) · :red_circle: not Ready (0/2)",
        "*:white_check_mark: Done (1 · 3 pt)*\n*S-1* Fix login (3 pt)",
    ]


async def test_sprint_current_counts_the_days(slack, db, clock):
    await ok(slack, f"sprint start {SPRINT_1}")

    def status(body):
        return body["blocks"][1]["elements"][0]["text"].split(" · 0/0")[0]

    clock.set(datetime(2026, 12, 10, 9, 0, tzinfo=UTC))  # Thursday of week 1
    assert status(await ok(slack, "sprint current")) == "Day 4 of 10 · 6 working days left"
    clock.set(datetime(2026, 12, 18, 9, 0, tzinfo=UTC))  # its last day
    assert status(await ok(slack, "sprint current")) == "Day 10 of 10 · 0 working days left"
    clock.set(datetime(2026, 12, 19, 9, 0, tzinfo=UTC))
    assert status(await ok(slack, "sprint current")) == (
        ":hourglass: Ended 1 day ago — close it with `sprint close` (unfinished stories carry over)."
    )
    clock.set(datetime(2026, 12, 21, 9, 0, tzinfo=UTC))
    body = await ok(slack, "sprint current")
    assert status(body).startswith(":hourglass: Ended 3 days ago — close it with `sprint close`")
    assert (
        body["blocks"][-1]["text"]["text"]
        == "_No stories in this sprint yet: `sprint commit S-n` adds them._"
    )


async def test_sprint_current_before_it_starts(slack, db):
    await ok(slack, 'sprint start "Sprint 1" --from 2026-12-14 --to 2026-12-25')
    body = await ok(slack, "sprint current")
    assert body["blocks"][1]["elements"][0]["text"].startswith("Starts Mon 14 Dec. · 0/0 stories done")


async def test_the_team_date_decides_the_day_not_utc(make_app, db, clock):
    """23:30 UTC on Sunday 6 December is already Monday in Berlin: day 1 of Sprint 1."""
    clock.set(datetime(2026, 12, 6, 23, 30, tzinfo=UTC))
    async with make_app(make_config()) as slack:
        await ok(slack, f"sprint start {SPRINT_1}")
        body = await ok(slack, "sprint current")
    assert body["blocks"][1]["elements"][0]["text"].startswith("Day 1 of 10 · ")


# --- sprint start: dates in the past --------------------------------------------------------------


async def test_sprint_start_that_would_already_be_over_is_refused(slack, db):
    text = await refused(
        slack,
        db,
        'sprint start "Sprint 0" --from 2026-11-23 --to 2026-12-04',
        "2026-11-23..2026-12-04 ended 3 days ago; check --from and --to (today is 2026-12-07).",
        usage="sprint start NAME",
        sends_nothing=True,
    )
    assert text.startswith(":warning: ")
    assert await sprints(db) == {}


async def test_sprint_start_in_the_past_warns_but_creates_it(slack, db):
    body = await ok(slack, 'sprint start "Sprint 1" --from 2026-11-30 --to 2026-12-11')
    assert shown(body).endswith(
        ":warning: It started 7 days ago (2026-11-30); check the dates if that is a typo."
    )
    assert (await sprints(db))["Sprint 1"].state == "active"
    one_day = await ok(
        slack, 'sprint start "Sprint 2" --from 2026-12-06 --to 2026-12-18', channel=PLATFORM, user=FRANK
    )
    assert "It started 1 day ago (2026-12-06)" in shown(one_day)


# --- sprint plan: the hint names what can go in ---------------------------------------------------


async def test_sprint_plan_hint_when_nothing_is_ready_or_the_backlog_is_empty(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    hint = (await ok(slack, "sprint plan"))["blocks"][-1]["elements"][0]["text"]
    assert hint == "The backlog is empty: add stories with `/scrum story add`."
    await ok(slack, "story add Fix login --type eng")
    hint = (await ok(slack, "sprint plan"))["blocks"][-1]["elements"][0]["text"]
    assert hint == (
        "Nothing in the backlog is Ready yet: fill criteria with `/scrum ready S-n`; "
        'a lead can force a not-Ready story in with `--force reason="…"`.'
    )
