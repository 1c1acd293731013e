"""Sprints: starting, finding, the planning gate, committing stories and closing with carry-over."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from bot.services import audit, readiness, sprints, stories
from bot.services.errors import Conflict, Forbidden, Invalid, NotFound
from tests.conftest import ALICE, BOB, FRANK
from tests.factories import (
    PLANNED,
    SPRINT_START,
    answer_all,
    audit_rows,
    get,
    make_sprint,
    make_story,
    refused,
    snapshot,
    team,
    tx,
)

D = SPRINT_START  # a Monday


def _start(config, name, starts_on, ends_on, *, team_name="recsys", goal=None):
    async def call(s):
        found = team(config, team_name)
        return await sprints.start_sprint(
            s,
            team=found,
            name=name,
            starts_on=starts_on,
            ends_on=ends_on,
            actor=(found.leads or found.members)[0],
            goal=goal,
        )

    return call


async def _resolve(db, config, ref, team_name="recsys"):
    async with tx(db) as s:
        return await sprints.resolve_sprint(s, team=team(config, team_name), ref=ref)


# --- parse_date ----------------------------------------------------------------------------------


def test_parse_date_accepts_iso_dates():
    assert sprints.parse_date(" 2026-12-07 ", option="--from") == date(2026, 12, 7)


@pytest.mark.parametrize("text", ["", "tomorrow", "07.12.2026", "2026-13-01", "2026-02-30", "2026/12/07"])
def test_parse_date_refuses_anything_else(text):
    with pytest.raises(Invalid) as info:
        sprints.parse_date(text, option="--from")
    assert info.value.message.startswith(f"--from {text!r} is not a date")
    assert "YYYY-MM-DD" in info.value.message
    assert info.value.field == "--from"


# --- start ---------------------------------------------------------------------------------------


async def test_first_sprint_is_active_second_is_planned(db, config):
    async with tx(db) as s:
        first = await _start(config, "Sprint 1", D, D + timedelta(days=13), goal="  Ship ranker v2 ")(s)
        second = await _start(config, "Sprint 2", D + timedelta(days=14), D + timedelta(days=27))(s)
    assert (first.state, second.state) == ("active", "planned")
    stored = await _resolve(db, config, "Sprint 1")
    assert stored.goal == "Ship ranker v2"
    assert (stored.team, stored.starts_on, stored.ends_on, stored.created_by) == (
        "recsys",
        D,
        D + timedelta(days=13),
        ALICE,
    )
    assert (await _resolve(db, config, "Sprint 2")).goal is None


async def test_a_third_sprint_is_also_planned_and_next_is_the_earliest(db, config):
    async with tx(db) as s:
        await _start(config, "A", D, D + timedelta(days=13))(s)
        await _start(config, "C", D + timedelta(days=28), D + timedelta(days=41))(s)
        third = await _start(config, "B", D + timedelta(days=14), D + timedelta(days=27))(s)
    assert third.state == "planned"
    assert (await _resolve(db, config, "current")).name == "A"
    assert (await _resolve(db, config, "next")).name == "B"


async def test_sprint_name_whitespace_is_collapsed(db, config):
    async with tx(db) as s:
        sprint = await _start(config, "  Sprint    7 ", D, D + timedelta(days=13))(s)
    assert sprint.name == "Sprint 7"


@pytest.mark.parametrize(
    ("starts_on", "ends_on"),
    [
        (D + timedelta(days=5), D + timedelta(days=20)),  # starts inside
        (D - timedelta(days=5), D + timedelta(days=1)),  # ends inside
        (D - timedelta(days=5), D + timedelta(days=30)),  # contains it
        (D + timedelta(days=1), D + timedelta(days=2)),  # inside it
        (D + timedelta(days=13), D + timedelta(days=20)),  # starts on its last day
        (D - timedelta(days=5), D),  # ends on its first day
    ],
)
async def test_overlapping_dates_are_refused(db, config, starts_on, ends_on):
    async with tx(db) as s:
        await _start(config, "Sprint 1", D, D + timedelta(days=13))(s)
    before = await snapshot(db)
    error = await refused(db, Conflict, _start(config, "Sprint 2", starts_on, ends_on))
    assert "overlaps sprint Sprint 1" in error.message
    assert await snapshot(db) == before


async def test_adjacent_sprints_do_not_overlap(db, config):
    async with tx(db) as s:
        await _start(config, "Sprint 1", D, D + timedelta(days=13))(s)
        second = await _start(config, "Sprint 2", D + timedelta(days=14), D + timedelta(days=27))(s)
    assert second.state == "planned"


async def test_other_teams_and_closed_sprints_do_not_overlap(db, config):
    async with tx(db) as s:
        await _start(config, "Sprint 1", D, D + timedelta(days=13))(s)
        other = await _start(config, "P1", D, D + timedelta(days=13), team_name="platform")(s)
        await sprints.close_sprint(s, team=team(config), actor=ALICE)
        again = await _start(config, "Sprint 1b", D, D + timedelta(days=13))(s)
    assert other.state == "active"
    assert again.state == "active"


async def test_duplicate_name_is_refused_even_when_closed(db, config):
    async with tx(db) as s:
        await _start(config, "Sprint 1", D, D + timedelta(days=13))(s)
    before = await snapshot(db)
    error = await refused(
        db, Conflict, _start(config, "Sprint 1", D + timedelta(days=14), D + timedelta(days=27))
    )
    assert error.message == "Team recsys already has a sprint called 'Sprint 1'."
    assert await snapshot(db) == before
    async with tx(db) as s:
        await sprints.close_sprint(s, team=team(config), actor=ALICE)
    await refused(db, Conflict, _start(config, "Sprint 1", D + timedelta(days=14), D + timedelta(days=27)))


async def test_the_same_name_in_another_team_is_fine(db, config):
    async with tx(db) as s:
        await _start(config, "Sprint 1", D, D + timedelta(days=13))(s)
        await _start(config, "Sprint 1", D, D + timedelta(days=13), team_name="platform")(s)
    assert (await _resolve(db, config, "Sprint 1", "platform")).team == "platform"


@pytest.mark.parametrize("ends_on", [D, D - timedelta(days=1)])
async def test_end_not_after_start_is_refused(db, config, ends_on):
    before = await snapshot(db)
    error = await refused(db, Invalid, _start(config, "Sprint 1", D, ends_on))
    assert error.message == "--to must be after --from."
    assert error.field == "--to"
    assert await snapshot(db) == before


async def test_a_sprint_of_42_days_is_accepted_and_43_refused(db, config):
    error = await refused(db, Invalid, _start(config, "Long", D, D + timedelta(days=43)))
    assert "at most 42 days" in error.message
    assert error.field == "--to"
    async with tx(db) as s:
        sprint = await _start(config, "Long", D, D + timedelta(days=42))(s)
    assert sprint.state == "active"


@pytest.mark.parametrize("name", ["current", "next", "Current", " NEXT ", "x" * 81])
async def test_reserved_or_long_names_are_refused(db, config, name):
    before = await snapshot(db)
    error = await refused(db, Invalid, _start(config, name, D, D + timedelta(days=13)))
    assert "not current/next" in error.message
    assert error.field == "name"
    assert await snapshot(db) == before


async def test_empty_name_is_refused(db, config):
    error = await refused(db, Invalid, _start(config, "   ", D, D + timedelta(days=13)))
    assert error.message == "The sprint needs a name."


async def test_overlong_goal_is_refused(db, config):
    error = await refused(db, Invalid, _start(config, "S", D, D + timedelta(days=13), goal="g" * 501))
    assert error.field == "--goal"


# --- resolve -------------------------------------------------------------------------------------


async def test_resolve_current_next_and_by_name(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="Sprint 1")
        await make_sprint(s, config, name="Sprint 2", starts_on=D + timedelta(days=14))
    assert (await _resolve(db, config, "current")).name == "Sprint 1"
    assert (await _resolve(db, config, " CURRENT ")).name == "Sprint 1"
    assert (await _resolve(db, config, "next")).name == "Sprint 2"
    assert (await _resolve(db, config, "Sprint 2")).name == "Sprint 2"


async def test_resolve_unknown_refs(db, config):
    async with tx(db) as s:
        with pytest.raises(NotFound) as current:
            await sprints.resolve_sprint(s, team=team(config), ref="current")
        with pytest.raises(NotFound) as nxt:
            await sprints.resolve_sprint(s, team=team(config), ref="next")
        with pytest.raises(NotFound) as named:
            await sprints.resolve_sprint(s, team=team(config), ref="Sprint 9")
    assert "Team recsys has no current sprint" in current.value.message
    assert "Team recsys has no next sprint" in nxt.value.message
    assert named.value.message == "Team recsys has no sprint called 'Sprint 9'."


async def test_resolve_does_not_see_other_teams_sprints(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="P1", team_name="platform", actor=FRANK)
    with pytest.raises(NotFound):
        await _resolve(db, config, "P1")
    with pytest.raises(NotFound):
        await _resolve(db, config, "current")


# --- plan ----------------------------------------------------------------------------------------


async def test_plan_lists_committed_and_backlog_candidates_with_readiness(db, config):
    async with tx(db) as s:
        current = await make_sprint(s, config, name="Sprint 1")
        nxt = await make_sprint(s, config, name="Sprint 2", starts_on=D + timedelta(days=14))
        in_current = await make_story(s, config, title="in current", sprint=current, force_reason=PLANNED)
        committed = await make_story(s, config, title="committed", story_type="eng", points=3)
        await answer_all(s, config, committed, "ready")
        await _commit(s, config, [committed.key], sprint=nxt)
        ready = await make_story(s, config, title="ready", story_type="eng", points=5)
        await answer_all(s, config, ready, "ready")
        await make_story(s, config, title="not ready", owner=BOB)
        await make_story(s, config, title="other team", team_name="platform", actor=FRANK)
    async with tx(db) as s:
        plan = await sprints.plan(s, config=config, team=team(config))
    assert plan.sprint.name == "Sprint 2"  # the next sprint is the one being planned
    assert [p.story.key for p in plan.committed] == ["S-2"]
    assert [p.story.key for p in plan.candidates] == ["S-3", "S-4"]
    assert [p.ready.complete for p in plan.candidates] == [True, False]
    assert len(plan.candidates[1].ready.missing) == 6
    assert plan.committed_points == 3
    assert plan.ready_count == 2
    assert in_current.key not in [p.story.key for p in plan.committed + plan.candidates]


async def test_plan_targets_the_current_sprint_when_there_is_no_next(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="Sprint 1")
        plan = await sprints.plan(s, config=config, team=team(config))
    assert plan.sprint.name == "Sprint 1"
    assert plan.committed == [] and plan.candidates == []


async def test_plan_without_any_sprint_is_not_found(db, config):
    async with tx(db) as s:
        with pytest.raises(NotFound) as info:
            await sprints.plan(s, config=config, team=team(config))
    assert "no sprint to plan" in info.value.message


async def test_plan_leaves_out_done_stories(db, config):
    async with tx(db) as s:
        await make_sprint(s, config)
        story = await make_story(s, config, story_type="eng")
        await answer_all(s, config, story, "done")
        await stories.complete_story(s, config=config, story=story, actor=ALICE)
        plan = await sprints.plan(s, config=config, team=team(config))
    assert plan.candidates == []


# --- commit --------------------------------------------------------------------------------------


PLANNING_DAY = D - timedelta(days=3)  # the Friday before Sprint 1 starts: no sprint is under way yet


async def _commit(s, config, keys, today=PLANNING_DAY, **kw):
    """sprint commit as Alice, on `today` (the team's date the adapters pass; scope added depends on it)."""
    return await sprints.commit(
        s, config=config, team=team(config), keys=keys, actor=ALICE, today=today, **kw
    )


async def _sprint_of(db, key):
    async with tx(db) as s:
        story = await get(s, key)
        return await stories.sprint_name(s, story)


async def test_commit_adds_ready_stories_to_the_planned_sprint(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="Sprint 1")
        await make_sprint(s, config, name="Sprint 2", starts_on=D + timedelta(days=14))
        for _ in range(2):
            await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
    async with tx(db) as s:
        result = await _commit(s, config, ["S-1", "s2"])
    assert result.sprint.name == "Sprint 2"
    assert [st.key for st in result.added] == ["S-1", "S-2"]
    assert result.forced == []
    assert await _sprint_of(db, "S-1") == "Sprint 2"
    assert await _sprint_of(db, "S-2") == "Sprint 2"
    # every commit is on the record, Ready or not; a Ready one has no reason and nothing missing
    rows = await audit_rows(db)
    assert [(r.action, r.subject, r.actor) for r in rows] == [
        ("sprint.commit", "S-1", ALICE),
        ("sprint.commit", "S-2", ALICE),
    ]
    assert json.loads(rows[0].payload) == {"sprint": "Sprint 2", "team": "recsys", "points": None}


async def test_commit_to_a_named_sprint(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="Sprint 1")
        await make_sprint(s, config, name="Sprint 2", starts_on=D + timedelta(days=14))
        await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
    async with tx(db) as s:
        sprint1 = await sprints.resolve_sprint(s, team=team(config), ref="Sprint 1")
        await _commit(s, config, ["S-1"], sprint=sprint1)
    assert await _sprint_of(db, "S-1") == "Sprint 1"


async def test_commit_refuses_not_ready_stories_and_moves_nothing(db, config):
    async with tx(db) as s:
        await make_sprint(s, config)
        ready = await make_story(s, config, story_type="eng")
        await answer_all(s, config, ready, "ready")
        half = await make_story(s, config, story_type="eng")
        await readiness.record_answers(
            s, story=half, kind="ready", config=config, actor=ALICE, answers={"dependencies": "none"}
        )
    before = await snapshot(db)
    error = await refused(db, Conflict, lambda s: _commit(s, config, ["S-1", "S-2"]))
    assert error.message.startswith("Not Ready: S-2 lacks Acceptance criteria.")
    assert "S-1" not in error.message
    assert "--force" in error.message
    assert await snapshot(db) == before
    assert await _sprint_of(db, "S-1") is None


async def test_force_commit_moves_them_and_audits_each_not_ready_story(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="Sprint 1")
        await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
        await make_story(s, config, story_type="eng")
        await make_story(s, config, story_type="ml")
    async with tx(db) as s:
        result = await _commit(s, config, ["S-1", "S-2", "S-3"], force_reason="  hotfix agreed with the PO ")
    assert [st.key for st in result.added] == ["S-1", "S-2", "S-3"]
    assert [st.key for st in result.forced] == ["S-2", "S-3"]
    for key in ("S-1", "S-2", "S-3"):
        assert await _sprint_of(db, key) == "Sprint 1"
    rows = await audit_rows(db)
    assert [(r.action, r.subject, r.actor) for r in rows] == [
        ("sprint.commit", "S-1", ALICE),  # Ready: a plain commit, no reason on it
        ("sprint.force_commit", "S-2", ALICE),
        ("sprint.force_commit", "S-3", ALICE),
    ]
    assert json.loads(rows[0].payload) == {"sprint": "Sprint 1", "team": "recsys", "points": None}
    assert json.loads(rows[1].payload) == {
        "sprint": "Sprint 1",
        "team": "recsys",
        "points": None,
        "reason": "hotfix agreed with the PO",
        "missing": ["acceptance_criteria", "dependencies"],
    }
    assert len(json.loads(rows[2].payload)["missing"]) == 6
    async with tx(db) as s:
        assert (await audit.verify(s)).ok


async def test_force_with_only_ready_stories_forces_nothing(db, config):
    async with tx(db) as s:
        await make_sprint(s, config)
        await answer_all(s, config, await make_story(s, config, story_type="eng", points=3), "ready")
        result = await _commit(s, config, ["S-1"], force_reason="just in case")
    assert result.forced == []
    # audited as the plain commit it is: no force_commit row, no reason recorded
    (row,) = await audit_rows(db)
    assert (row.action, row.subject) == ("sprint.commit", "S-1")
    assert json.loads(row.payload) == {"sprint": "Sprint 1", "team": "recsys", "points": 3}


@pytest.mark.parametrize("reason", ["", "   "])
async def test_force_needs_a_reason(db, config, reason):
    async with tx(db) as s:
        await make_sprint(s, config)
        await make_story(s, config)
    before = await snapshot(db)
    error = await refused(db, Invalid, lambda s: _commit(s, config, ["S-1"], force_reason=reason))
    assert "--force needs a reason" in error.message
    assert await snapshot(db) == before


async def test_commit_refuses_a_story_of_another_team(db, config):
    async with tx(db) as s:
        await make_sprint(s, config)
        await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
        await answer_all(
            s,
            config,
            await make_story(s, config, story_type="eng", team_name="platform", actor=FRANK),
            "ready",
        )
    before = await snapshot(db)
    error = await refused(db, Conflict, lambda s: _commit(s, config, ["S-1", "S-2"], force_reason="x"))
    assert error.message == "S-2 belongs to team platform, not recsys."
    assert await snapshot(db) == before


async def test_commit_refuses_a_done_story(db, config):
    async with tx(db) as s:
        await make_sprint(s, config)
        story = await make_story(s, config, story_type="eng")
        await answer_all(s, config, story, "ready")
        await answer_all(s, config, story, "done")
        await stories.complete_story(s, config=config, story=story, actor=ALICE)
    before = await snapshot(db)
    error = await refused(db, Conflict, lambda s: _commit(s, config, ["S-1"]))
    assert error.message == "S-1 is already done."
    assert await snapshot(db) == before


async def test_commit_refuses_a_story_already_in_the_sprint(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config, name="Sprint 1")
        for _ in range(2):
            await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
        await _commit(s, config, ["S-1"], sprint=sprint)
    before = await snapshot(db)
    error = await refused(db, Conflict, lambda s: _commit(s, config, ["S-2", "S-1"]))
    assert error.message == "S-1 is already in sprint Sprint 1."
    assert await snapshot(db) == before


async def test_commit_refuses_unknown_and_malformed_ids_and_an_empty_list(db, config):
    async with tx(db) as s:
        await make_sprint(s, config)
    await refused(db, NotFound, lambda s: _commit(s, config, ["S-7"]))
    await refused(db, Invalid, lambda s: _commit(s, config, ["seven"]))
    error = await refused(db, Invalid, lambda s: _commit(s, config, []))
    assert "at least one story" in error.message


async def test_commit_into_a_closed_sprint_is_refused(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="Old")
        await sprints.close_sprint(s, team=team(config), actor=ALICE)
        await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
    async with tx(db) as s:
        old = await sprints.resolve_sprint(s, team=team(config), ref="Old")
    before = await snapshot(db)
    error = await refused(db, Conflict, lambda s: _commit(s, config, ["S-1"], sprint=old))
    assert error.message == "Sprint Old is closed."
    assert await snapshot(db) == before


async def test_commit_without_any_sprint_is_not_found(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    await refused(db, NotFound, lambda s: _commit(s, config, ["S-1"]))


async def test_commit_the_same_story_twice_in_one_call_adds_it_once(db, config):
    async with tx(db) as s:
        await make_sprint(s, config)
        await make_story(s, config)
        result = await _commit(s, config, ["S-1", "s-1"], force_reason="pair")
    assert [st.key for st in result.added] == ["S-1"]
    assert [r.subject for r in await audit_rows(db)] == ["S-1"]


# --- close ---------------------------------------------------------------------------------------


async def _finish(s, config, story, actor=ALICE):
    await answer_all(s, config, story, "done")
    await stories.complete_story(s, config=config, story=story, actor=actor)


async def test_close_carries_unfinished_stories_to_the_next_sprint(db, config):
    async with tx(db) as s:
        current = await make_sprint(s, config, name="Sprint 1")
        await make_sprint(s, config, name="Sprint 2", starts_on=D + timedelta(days=14))
        done1 = await make_story(s, config, story_type="eng", points=3, sprint=current, force_reason=PLANNED)
        await make_story(s, config, story_type="eng", points=5, sprint=current, force_reason=PLANNED)
        done2 = await make_story(s, config, story_type="eng", points=2, sprint=current, force_reason=PLANNED)
        await make_story(s, config, story_type="eng", points=8)  # backlog: untouched
        await _finish(s, config, done1)
        await _finish(s, config, done2)
    async with tx(db) as s:
        report = await sprints.close_sprint(s, team=team(config), actor=ALICE)
    assert report.closed.name == "Sprint 1"
    assert report.closed.state == "closed"
    assert report.closed.closed_at is not None
    assert [st.key for st in report.done] == ["S-1", "S-3"]
    assert [st.key for st in report.carried_over] == ["S-2"]
    assert report.velocity == 5
    assert report.next_sprint is not None and report.next_sprint.name == "Sprint 2"

    assert (await _resolve(db, config, "current")).name == "Sprint 2"
    assert (await _resolve(db, config, "Sprint 1")).state == "closed"
    with pytest.raises(NotFound):
        await _resolve(db, config, "next")
    assert await _sprint_of(db, "S-1") == "Sprint 1"
    assert await _sprint_of(db, "S-2") == "Sprint 2"
    assert await _sprint_of(db, "S-3") == "Sprint 1"
    assert await _sprint_of(db, "S-4") is None

    rows = [r for r in await audit_rows(db) if r.action == "sprint.close"]
    assert len(rows) == 1
    assert (rows[0].subject, rows[0].actor) == ("sprint:recsys:Sprint 1", ALICE)
    assert json.loads(rows[0].payload) == {"done": ["S-1", "S-3"], "carried_over": ["S-2"], "to": "Sprint 2"}


async def test_close_without_a_next_sprint_returns_unfinished_to_the_backlog(db, config):
    async with tx(db) as s:
        current = await make_sprint(s, config, name="Sprint 1")
        story = await make_story(s, config, points=5)
        await answer_all(s, config, story, "ready")
        await _commit(s, config, [story.key], sprint=current)
    async with tx(db) as s:
        report = await sprints.close_sprint(s, team=team(config), actor=ALICE)
    assert report.next_sprint is None
    assert report.done == []
    assert report.velocity == 0
    assert [st.key for st in report.carried_over] == ["S-1"]
    assert await _sprint_of(db, "S-1") is None
    with pytest.raises(NotFound):
        await _resolve(db, config, "current")
    (row,) = [r for r in await audit_rows(db) if r.action == "sprint.close"]
    assert json.loads(row.payload) == {"done": [], "carried_over": ["S-1"], "to": "backlog"}


async def test_close_without_a_current_sprint_is_not_found(db, config):
    before = await snapshot(db)
    error = await refused(db, NotFound, lambda s: sprints.close_sprint(s, team=team(config), actor=ALICE))
    assert "Team recsys has no current sprint to close." == error.message
    assert await snapshot(db) == before


async def test_close_only_touches_the_teams_own_sprint(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="Sprint 1")
        await make_sprint(s, config, name="P1", team_name="platform", actor=FRANK)
        await sprints.close_sprint(s, team=team(config), actor=ALICE)
    assert (await _resolve(db, config, "current", "platform")).name == "P1"


# --- only leads decide (the rule is in the services, whichever way it is asked) ----------------


async def test_starting_closing_and_committing_by_someone_not_a_lead_is_forbidden(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="Sprint 1")
        await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
    before = await snapshot(db)

    async def start(s):
        await sprints.start_sprint(
            s,
            team=team(config),
            name="Sprint 2",
            starts_on=D + timedelta(days=14),
            ends_on=D + timedelta(days=27),
            actor=BOB,
        )

    async def commit(s):
        await sprints.commit(s, config=config, team=team(config), keys=["S-1"], actor=BOB)

    async def close(s):
        await sprints.close_sprint(s, team=team(config), actor=BOB)

    messages = [(await refused(db, Forbidden, call)).message for call in (start, commit, close)]
    assert messages == [
        "Only the leads of team recsys can start a sprint.",
        "Only the leads of team recsys can commit stories to a sprint.",
        "Only the leads of team recsys can close a sprint.",
    ]
    assert await snapshot(db) == before


async def test_in_a_team_without_leads_any_member_may_start_commit_and_close(db, config):
    platform = team(config, "platform")
    async with tx(db) as s:
        await make_sprint(s, config, name="P1", team_name="platform", actor=FRANK)
        story = await make_story(s, config, team_name="platform", actor=FRANK, story_type="eng")
        await answer_all(s, config, story, "ready")
        result = await sprints.commit(s, config=config, team=platform, keys=[story.key], actor=FRANK)
        report = await sprints.close_sprint(s, team=platform, actor=FRANK)
    assert [st.key for st in result.added] == ["S-1"]
    assert report.closed.name == "P1"


async def test_overview_counts_points_and_readiness(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config, name="Sprint 1")
        a = await make_story(s, config, story_type="eng", points=3, sprint=sprint, force_reason=PLANNED)
        b = await make_story(s, config, story_type="eng", points=5, sprint=sprint, force_reason=PLANNED)
        await make_story(s, config, story_type="eng", points=8, sprint=sprint, force_reason=PLANNED)
        await _finish(s, config, a)
        await answer_all(s, config, b, "ready")
        view = await sprints.overview(s, config=config, team=team(config), sprint=sprint)
    assert view.points_total == 16
    assert view.points_done == 3
    assert view.done_count == 1
    assert view.ready_count == 2


# --- which sprint, and scope added ----------------------------------------------------------------


async def test_commit_without_a_next_sprint_goes_to_the_current_one(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="Sprint 1")
        await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
    async with tx(db) as s:
        result = await _commit(s, config, ["S-1"])
    assert result.sprint.name == "Sprint 1"
    assert await _sprint_of(db, "S-1") == "Sprint 1"


@pytest.mark.parametrize(
    ("today", "scope_added"),
    [
        (D - timedelta(days=3), False),  # planned before it starts
        (D, False),  # its first day is planning day: not added scope
        (D + timedelta(days=1), True),  # from its second day it is under way
        (D + timedelta(days=9), True),
        (D + timedelta(days=20), True),  # over but not closed: still the current sprint
    ],
)
async def test_committing_to_the_current_sprint_under_way_is_scope_added(db, config, today, scope_added):
    async with tx(db) as s:
        await make_sprint(s, config, name="Sprint 1")
        await answer_all(s, config, await make_story(s, config, story_type="eng", points=2), "ready")
        await make_story(s, config, story_type="eng")
    async with tx(db) as s:
        result = await _commit(s, config, ["S-1", "S-2"], today=today, force_reason="hotfix")
    assert result.scope_added is scope_added
    plain, forced = await audit_rows(db)
    assert (plain.action, forced.action) == ("sprint.commit", "sprint.force_commit")
    expected = {"sprint": "Sprint 1", "team": "recsys", "points": 2}
    if scope_added:
        expected["scope_added"] = True
    assert json.loads(plain.payload) == expected
    assert json.loads(forced.payload).get("scope_added", False) is scope_added


async def test_committing_to_the_next_sprint_is_never_scope_added(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="Sprint 1")
        await make_sprint(s, config, name="Sprint 2", starts_on=D + timedelta(days=14))
        await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
    async with tx(db) as s:
        # even on a day inside Sprint 2's dates: it is not under way until it becomes the current sprint
        result = await _commit(s, config, ["S-1"], today=D + timedelta(days=15))
    assert (result.sprint.name, result.scope_added) == ("Sprint 2", False)
    assert "scope_added" not in json.loads((await audit_rows(db))[0].payload)


async def test_scope_added_is_judged_on_the_day_the_adapters_pass_not_the_hosts(db, config):
    """The Slack adapters pass the team's date by the app's clock; the host's date must not decide."""
    far_future = D + timedelta(days=400)  # a sprint the host's clock has not reached
    async with tx(db) as s:
        await make_sprint(s, config, name="Later", starts_on=far_future)
        await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
        await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
    async with tx(db) as s:
        under_way = await _commit(s, config, ["S-1"], today=far_future + timedelta(days=1))
        not_yet = await _commit(s, config, ["S-2"], today=far_future - timedelta(days=1))
    assert (under_way.scope_added, not_yet.scope_added) == (True, False)


async def test_a_commit_that_moves_a_story_from_another_sprint_records_where_from(db, config):
    async with tx(db) as s:
        current = await make_sprint(s, config, name="Sprint 1")
        await make_sprint(s, config, name="Sprint 2", starts_on=D + timedelta(days=14))
        story = await make_story(s, config, story_type="eng", points=3)
        await answer_all(s, config, story, "ready")
        await _commit(s, config, [story.key], sprint=current)
    async with tx(db) as s:
        result = await _commit(s, config, ["S-1"])  # the default: the next sprint
    assert result.moved_from == {"S-1": "Sprint 1"}
    assert await _sprint_of(db, "S-1") == "Sprint 2"
    row = (await audit_rows(db))[-1]
    assert (row.action, row.subject) == ("sprint.commit", "S-1")
    assert json.loads(row.payload) == {
        "sprint": "Sprint 2",
        "team": "recsys",
        "points": 3,
        "from": "Sprint 1",
    }


async def test_an_archived_or_in_progress_story_and_the_gate(db, config):
    async with tx(db) as s:
        await make_sprint(s, config)
        doing = await make_story(s, config, story_type="eng")
        await answer_all(s, config, doing, "ready")
        await stories.start_story(s, config=config, story=doing, actor=BOB)
        gone = await make_story(s, config, story_type="eng")
        await stories.archive_story(s, config=config, story=gone, actor=ALICE)
    # a story already in progress may still be committed; an archived one may not
    async with tx(db) as s:
        result = await _commit(s, config, ["S-1"])
    assert [st.key for st in result.added] == ["S-1"]
    before = await snapshot(db)
    error = await refused(db, Conflict, lambda s: _commit(s, config, ["S-2"], force_reason="x"))
    assert error.message == "S-2 is already archived."
    assert await snapshot(db) == before


# --- a sprint that would already be over ------------------------------------------------------------


async def test_a_sprint_that_ended_before_today_is_refused(db, config):
    async def start(s):
        await sprints.start_sprint(
            s,
            team=team(config),
            name="Sprint 1",
            starts_on=D,
            ends_on=D + timedelta(days=11),
            actor=ALICE,
            today=D + timedelta(days=14),
        )

    before = await snapshot(db)
    error = await refused(db, Invalid, start)
    assert error.message == (
        "2026-01-05..2026-01-16 ended 3 days ago; check --from and --to (today is 2026-01-19)."
    )
    assert error.field == "--to"
    assert await snapshot(db) == before


async def test_a_sprint_ending_today_or_started_in_the_past_is_accepted(db, config):
    async with tx(db) as s:
        ending_today = await sprints.start_sprint(
            s,
            team=team(config),
            name="A",
            starts_on=D,
            ends_on=D + timedelta(days=4),
            actor=ALICE,
            today=D + timedelta(days=4),
        )
        started = await sprints.start_sprint(
            s,
            team=team(config),
            name="B",
            starts_on=D + timedelta(days=7),
            ends_on=D + timedelta(days=18),
            actor=ALICE,
            today=D + timedelta(days=9),
        )
    assert (ending_today.state, started.state) == ("active", "planned")


async def test_one_day_over_says_day_not_days(db, config):
    error = await refused(
        db,
        Invalid,
        lambda s: sprints.start_sprint(
            s,
            team=team(config),
            name="S",
            starts_on=D,
            ends_on=D + timedelta(days=4),
            actor=ALICE,
            today=D + timedelta(days=5),
        ),
    )
    assert "ended 1 day ago;" in error.message


# --- where a sprint stands ------------------------------------------------------------------------


def _sprint(starts_on=D, days=11):
    from bot.store.models import Sprint

    return Sprint(
        team="recsys",
        name="S",
        starts_on=starts_on,
        ends_on=starts_on + timedelta(days=days),
        state="active",
        created_by=ALICE,
    )


def test_working_days_count_mondays_to_fridays_first_and_last_day_included():
    assert sprints.working_days(_sprint(days=11)) == 10  # Mon 5 .. Fri 16 Jan
    assert sprints.working_days(_sprint(days=13)) == 10  # .. Sun 18 Jan
    assert sprints.working_days(_sprint(days=4)) == 5
    assert sprints.working_days(_sprint(starts_on=D + timedelta(days=5), days=1)) == 0  # a weekend


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (D - timedelta(days=1), sprints.SprintDay(0, 10, True, False, 0)),
        (D, sprints.SprintDay(1, 10, False, False, 0)),
        (D + timedelta(days=1), sprints.SprintDay(2, 10, False, False, 0)),
        (D + timedelta(days=4), sprints.SprintDay(5, 10, False, False, 0)),  # Friday
        (D + timedelta(days=5), sprints.SprintDay(6, 10, False, False, 0)),  # Saturday: next working day
        (D + timedelta(days=7), sprints.SprintDay(6, 10, False, False, 0)),  # Monday of week 2
        (D + timedelta(days=11), sprints.SprintDay(10, 10, False, False, 0)),  # its last day
        (D + timedelta(days=12), sprints.SprintDay(10, 10, False, True, 1)),
        (D + timedelta(days=14), sprints.SprintDay(10, 10, False, True, 3)),
    ],
)
def test_sprint_day(today, expected):
    assert sprints.sprint_day(_sprint(), today) == expected
