"""Stories: adding, numbering, finding, listing, editing, assigning and finishing them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.services import readiness, sprints, stories
from bot.services.errors import Conflict, Forbidden, Invalid, NotFound
from tests.conftest import ALICE, BOB, DAVE, FRANK
from tests.factories import (
    PLANNED,
    answer_all,
    audit_rows,
    get,
    make_sprint,
    make_story,
    outbox_rows,
    refused,
    snapshot,
    team,
    tx,
)

# --- add ---------------------------------------------------------------------------------------


async def test_add_story_stores_what_was_given(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
        story = await make_story(
            s,
            config,
            title="Train ranker",
            story_type="eng",
            owner=ALICE,
            points=5,
            sprint=sprint,
            force_reason=PLANNED,
        )
        sprint_id = sprint.id
    assert story.key == "S-1"
    async with tx(db) as s:
        stored = await get(s, "S-1")
        assert (stored.team, stored.type, stored.title, stored.owner, stored.points) == (
            "recsys",
            "eng",
            "Train ranker",
            ALICE,
            5,
        )
        assert stored.sprint_id == sprint_id
        assert stored.status == "open"
        assert stored.created_by == ALICE
        assert stored.done_at is None


async def test_add_story_defaults_to_ml_in_the_backlog_without_owner(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    async with tx(db) as s:
        stored = await get(s, "S-1")
    assert stored.type == "ml"
    assert stored.owner is None
    assert stored.points is None
    assert stored.sprint_id is None


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("  Train   the\tranker \n", "Train the ranker"),
        ("one", "one"),
        ("a\n\nb", "a b"),
    ],
)
async def test_title_is_trimmed_and_whitespace_collapsed(db, config, given, stored):
    async with tx(db) as s:
        story = await make_story(s, config, title=given)
    assert story.title == stored
    async with tx(db) as s:
        assert (await get(s, "S-1")).title == stored


@pytest.mark.parametrize("title", ["", "   ", "\n\t "])
async def test_empty_title_is_refused_and_nothing_stored(db, config, title):
    before = await snapshot(db)
    error = await refused(db, Invalid, lambda s: make_story(s, config, title=title))
    assert error.message == "A story needs a title."
    assert error.field == "title"
    assert await snapshot(db) == before


async def test_title_of_200_characters_is_accepted(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, title="x" * 200)
    assert len(story.title) == 200


async def test_title_of_201_characters_is_refused_with_its_length(db, config):
    before = await snapshot(db)
    error = await refused(db, Invalid, lambda s: make_story(s, config, title="x" * 201))
    assert "201" in error.message
    assert "200" in error.message
    assert error.field == "title"
    assert await snapshot(db) == before


async def test_title_length_counts_after_collapsing_whitespace(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, title="   " + "x" * 200 + "   ")
    assert story.title == "x" * 200


async def test_unknown_type_is_refused_listing_the_valid_types(db, config):
    before = await snapshot(db)
    error = await refused(db, Invalid, lambda s: make_story(s, config, story_type="research"))
    assert "'research'" in error.message
    assert "eng" in error.message and "ml" in error.message
    assert error.field == "type"
    assert await snapshot(db) == before


@pytest.mark.parametrize("points", [-1, 101, 1000])
async def test_points_outside_0_to_100_are_refused(db, config, points):
    before = await snapshot(db)
    error = await refused(db, Invalid, lambda s: make_story(s, config, points=points))
    assert "0 to 100" in error.message
    assert error.field == "points"
    assert await snapshot(db) == before


@pytest.mark.parametrize("points", [0, 1, 100])
async def test_points_on_the_bounds_are_accepted(db, config, points):
    async with tx(db) as s:
        story = await make_story(s, config, points=points)
    assert story.points == points


async def test_adding_to_a_closed_sprint_is_refused(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="Sprint 1")
        await sprints.close_sprint(s, team=team(config), actor=ALICE)
    async with tx(db) as s:
        closed = await sprints.resolve_sprint(s, team=team(config), ref="Sprint 1")
    assert closed.state == "closed"
    before = await snapshot(db)
    error = await refused(db, Conflict, lambda s: make_story(s, config, sprint=closed))
    assert "Sprint 1 is closed" in error.message
    assert await snapshot(db) == before


# --- into a sprint: the readiness gate of sprint commit ----------------------------------------


async def test_adding_a_not_ready_story_into_a_sprint_is_refused_and_nothing_stored(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
    before = await snapshot(db)
    error = await refused(db, Conflict, lambda s: make_story(s, config, story_type="eng", sprint=sprint))
    assert error.message.startswith("Not Ready: S-1 lacks Acceptance criteria, Dependencies.")
    assert '--force reason="why"' in error.message
    assert error.field == "sprint"
    assert await snapshot(db) == before
    async with tx(db) as s:
        assert (await make_story(s, config)).key == "S-1"  # the refused add used up no number


async def test_adding_into_a_sprint_by_someone_not_a_lead_is_forbidden(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
    before = await snapshot(db)
    error = await refused(
        db, Forbidden, lambda s: make_story(s, config, actor=BOB, sprint=sprint, force_reason=PLANNED)
    )
    assert error.message == "Only the leads of team recsys can commit stories to a sprint."
    assert await snapshot(db) == before


async def test_a_forced_add_into_a_sprint_is_stored_and_audited(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config, name="Sprint 1")
        story = await make_story(s, config, story_type="eng", sprint=sprint, force_reason="  hotfix ")
        sprint_id = sprint.id
    assert story.sprint_id == sprint_id
    async with tx(db) as s:
        assert (await get(s, "S-1")).sprint_id == sprint_id
    (row,) = await audit_rows(db)
    assert (row.action, row.subject, row.actor) == ("sprint.force_commit", "S-1", ALICE)
    assert json.loads(row.payload) == {
        "sprint": "Sprint 1",
        "team": "recsys",
        "reason": "hotfix",
        "missing": ["acceptance_criteria", "dependencies"],
    }


async def test_a_forced_add_needs_a_real_reason(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
    before = await snapshot(db)
    error = await refused(db, Invalid, lambda s: make_story(s, config, sprint=sprint, force_reason="  "))
    assert "--force needs a reason" in error.message
    assert await snapshot(db) == before


async def test_in_a_team_without_leads_anyone_may_add_into_a_sprint(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config, team_name="platform", name="P1", actor=FRANK)
        story = await make_story(
            s, config, team_name="platform", actor=FRANK, sprint=sprint, force_reason="ops"
        )
    assert story.sprint_id == sprint.id
    assert [(r.action, r.actor) for r in await audit_rows(db)] == [("sprint.force_commit", FRANK)]


async def test_editing_a_not_ready_story_into_a_sprint_is_refused_and_changes_nothing(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
        await make_story(s, config, title="keep me")
    before = await snapshot(db)

    async def call(s):
        await stories.edit_story(
            s, config=config, story=await get(s, "S-1"), actor=ALICE, title="renamed", sprint=sprint
        )

    error = await refused(db, Conflict, call)
    assert error.message.startswith("Not Ready: S-1 lacks")
    assert error.field == "sprint"
    assert await snapshot(db) == before


async def test_editing_a_ready_story_into_a_sprint_needs_no_force_and_audits_the_commit(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
        await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
    async with tx(db) as s:
        await stories.edit_story(s, config=config, story=await get(s, "S-1"), actor=ALICE, sprint=sprint)
    async with tx(db) as s:
        assert (await get(s, "S-1")).sprint_id == sprint.id
    assert [(r.action, r.subject) for r in await audit_rows(db)] == [("sprint.commit", "S-1")]


async def test_editing_into_a_sprint_by_someone_not_a_lead_is_forbidden(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
        await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
    before = await snapshot(db)

    async def call(s):
        await stories.edit_story(s, config=config, story=await get(s, "S-1"), actor=BOB, sprint=sprint)

    error = await refused(db, Forbidden, call)
    assert error.message == "Only the leads of team recsys can commit stories to a sprint."
    assert await snapshot(db) == before


async def test_editing_a_story_that_stays_in_its_sprint_does_not_pass_the_gate_again(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
        await make_story(s, config, sprint=sprint, force_reason=PLANNED)
    audited = await audit_rows(db)
    async with tx(db) as s:
        await stories.edit_story(
            s, config=config, story=await get(s, "S-1"), actor=BOB, title="renamed", sprint=sprint
        )
    async with tx(db) as s:
        stored = await get(s, "S-1")
    assert (stored.title, stored.sprint_id) == ("renamed", sprint.id)
    assert [r.seq for r in await audit_rows(db)] == [r.seq for r in audited]


async def test_moving_a_story_to_another_sprint_passes_the_gate(db, config):
    async with tx(db) as s:
        first = await make_sprint(s, config, name="Sprint 1")
        second = await make_sprint(s, config, name="Sprint 2", starts_on=first.ends_on + timedelta(days=1))
        await make_story(s, config, sprint=first, force_reason=PLANNED)
    before = await snapshot(db)

    async def call(s):
        await stories.edit_story(s, config=config, story=await get(s, "S-1"), actor=ALICE, sprint=second)

    error = await refused(db, Conflict, call)
    assert error.message.startswith("Not Ready: S-1 lacks")
    assert await snapshot(db) == before


# --- numbering ---------------------------------------------------------------------------------


async def test_stories_are_numbered_s1_s2_s3(db, config):
    async with tx(db) as s:
        keys = [(await make_story(s, config, title=f"story {i}")).key for i in range(3)]
    assert keys == ["S-1", "S-2", "S-3"]


async def test_numbers_are_shared_across_teams(db, config):
    async with tx(db) as s:
        a = await make_story(s, config, team_name="recsys")
        b = await make_story(s, config, team_name="platform", actor=FRANK)
        c = await make_story(s, config, team_name="recsys")
    assert [a.key, b.key, c.key] == ["S-1", "S-2", "S-3"]


async def test_a_refused_add_does_not_use_up_a_number(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    await refused(db, Invalid, lambda s: make_story(s, config, title=""))
    await refused(db, Invalid, lambda s: make_story(s, config, points=500))
    async with tx(db) as s:
        story = await make_story(s, config)
    assert story.key == "S-2"


async def test_numbers_are_never_reused_after_a_story_is_deleted(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        second = await make_story(s, config)
    async with tx(db) as s:
        await s.delete(await get(s, second.key))
    async with tx(db) as s:
        third = await make_story(s, config)
    assert third.key == "S-3"


# --- get_story ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["X-1", "S-", "12abc", "", "S-1-2", "S 1", "story"])
async def test_get_story_refuses_malformed_ids(db, bad):
    async with tx(db) as s:
        with pytest.raises(Invalid) as info:
            await stories.get_story(s, bad)
    assert repr(bad) in info.value.message
    assert "S-12" in info.value.message


async def test_get_story_unknown_is_not_found(db):
    async with tx(db) as s:
        with pytest.raises(NotFound) as info:
            await stories.get_story(s, "S-99")
    assert info.value.message == "There is no story S-99."


@pytest.mark.parametrize("spelling", ["S-1", "s-1", "S1", " S-1 ", "S-0001"])
async def test_get_story_accepts_usual_spellings(db, config, spelling):
    async with tx(db) as s:
        await make_story(s, config)
    async with tx(db) as s:
        assert (await stories.get_story(s, spelling)).key == "S-1"


# --- list --------------------------------------------------------------------------------------


async def _listing_world(db, config):
    """S-1 Bob, in Sprint 1, Ready · S-2 Dave, backlog · S-3 Bob, backlog, done · S-4 platform."""
    async with tx(db) as s:
        sprint = await make_sprint(s, config, name="Sprint 1")
        s1 = await make_story(s, config, title="one", owner=BOB, story_type="eng")
        await answer_all(s, config, s1, "ready")
        await stories.edit_story(s, config=config, story=s1, actor=ALICE, sprint=sprint)
        await make_story(s, config, title="two", owner=DAVE)
        s3 = await make_story(s, config, title="three", owner=BOB, story_type="eng")
        await answer_all(s, config, s3, "done")
        await stories.complete_story(s, config=config, story=s3, actor=BOB)
        await make_story(s, config, title="four", team_name="platform", actor=FRANK)
        return sprint


def _keys(listings):
    return [item.story.key for item in listings]


async def test_list_shows_the_teams_open_stories_by_default(db, config):
    await _listing_world(db, config)
    async with tx(db) as s:
        listed = await stories.list_stories(s, config=config, team=team(config))
    assert _keys(listed) == ["S-1", "S-2"]
    assert [item.sprint_name for item in listed] == ["Sprint 1", None]
    assert listed[0].ready.complete and not listed[1].ready.complete


async def test_list_include_done(db, config):
    await _listing_world(db, config)
    async with tx(db) as s:
        listed = await stories.list_stories(s, config=config, team=team(config), include_done=True)
    assert _keys(listed) == ["S-1", "S-2", "S-3"]


async def test_list_by_owner(db, config):
    await _listing_world(db, config)
    async with tx(db) as s:
        bob = await stories.list_stories(s, config=config, team=team(config), owner=BOB)
        bob_all = await stories.list_stories(
            s, config=config, team=team(config), owner=BOB, include_done=True
        )
        frank = await stories.list_stories(s, config=config, team=team(config), owner=FRANK)
    assert _keys(bob) == ["S-1"]
    assert _keys(bob_all) == ["S-1", "S-3"]
    assert frank == []


async def test_list_by_sprint_and_backlog(db, config):
    sprint = await _listing_world(db, config)
    async with tx(db) as s:
        in_sprint = await stories.list_stories(s, config=config, team=team(config), sprint=sprint)
        backlog = await stories.list_stories(s, config=config, team=team(config), backlog_only=True)
        backlog_all = await stories.list_stories(
            s, config=config, team=team(config), backlog_only=True, include_done=True
        )
    assert _keys(in_sprint) == ["S-1"]
    assert _keys(backlog) == ["S-2"]
    assert _keys(backlog_all) == ["S-2", "S-3"]


async def test_list_not_ready(db, config):
    await _listing_world(db, config)
    async with tx(db) as s:
        listed = await stories.list_stories(s, config=config, team=team(config), not_ready=True)
        listed_all = await stories.list_stories(
            s, config=config, team=team(config), not_ready=True, include_done=True
        )
    assert _keys(listed) == ["S-2"]
    # A done story is never "not ready", even when its readiness was never filled.
    assert _keys(listed_all) == ["S-2"]


async def test_list_other_team_sees_only_its_own(db, config):
    await _listing_world(db, config)
    async with tx(db) as s:
        listed = await stories.list_stories(s, config=config, team=team(config, "platform"))
    assert _keys(listed) == ["S-4"]


# --- edit --------------------------------------------------------------------------------------


async def test_edit_changes_the_given_fields_only(db, config):
    async with tx(db) as s:
        await make_story(s, config, title="old", points=3, owner=BOB)
    async with tx(db) as s:
        story = await get(s, "S-1")
        created_updated = story.updated_at
        await stories.edit_story(
            s, config=config, story=story, actor=BOB, title="  new   title ", story_type="eng"
        )
    async with tx(db) as s:
        stored = await get(s, "S-1")
    assert stored.title == "new title"
    assert stored.type == "eng"
    assert stored.points == 3
    assert stored.owner == BOB
    assert stored.updated_at >= created_updated


async def test_edit_points_and_clear_points(db, config):
    async with tx(db) as s:
        await make_story(s, config, points=3)
    async with tx(db) as s:
        await stories.edit_story(s, config=config, story=await get(s, "S-1"), actor=ALICE, points=8)
    async with tx(db) as s:
        assert (await get(s, "S-1")).points == 8
        await stories.edit_story(s, config=config, story=await get(s, "S-1"), actor=ALICE, clear_points=True)
    async with tx(db) as s:
        assert (await get(s, "S-1")).points is None


async def test_edit_moves_between_sprint_and_backlog(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
        await make_story(s, config)
    async with tx(db) as s:
        await stories.edit_story(
            s,
            config=config,
            story=await get(s, "S-1"),
            actor=ALICE,
            sprint=sprint,
            force_reason=PLANNED,
        )
    async with tx(db) as s:
        story = await get(s, "S-1")
        assert story.sprint_id == sprint.id
        assert await stories.sprint_name(s, story) == "Sprint 1"
        await stories.edit_story(s, config=config, story=story, actor=ALICE, to_backlog=True)
    async with tx(db) as s:
        story = await get(s, "S-1")
        assert story.sprint_id is None
        assert await stories.sprint_name(s, story) is None


@pytest.mark.parametrize(
    ("changes", "error", "text"),
    [
        ({"title": " "}, Invalid, "needs a title"),
        ({"title": "y" * 201}, Invalid, "201"),
        ({"story_type": "bogus"}, Invalid, "'bogus'"),
        ({"points": 101}, Invalid, "0 to 100"),
        ({"title": "fine", "story_type": "bogus"}, Invalid, "'bogus'"),
    ],
)
async def test_edit_refusals_change_nothing(db, config, changes, error, text):
    async with tx(db) as s:
        await make_story(s, config, title="keep me", points=2)
    before = await snapshot(db)

    async def call(s):
        await stories.edit_story(s, config=config, story=await get(s, "S-1"), actor=ALICE, **changes)

    refusal = await refused(db, error, call)
    assert text in refusal.message
    assert await snapshot(db) == before


async def test_edit_into_a_closed_sprint_is_refused(db, config):
    async with tx(db) as s:
        await make_sprint(s, config, name="Old")
        await sprints.close_sprint(s, team=team(config), actor=ALICE)
        await make_story(s, config)
    async with tx(db) as s:
        closed = await sprints.resolve_sprint(s, team=team(config), ref="Old")
    before = await snapshot(db)

    async def call(s):
        await stories.edit_story(s, config=config, story=await get(s, "S-1"), actor=ALICE, sprint=closed)

    error = await refused(db, Conflict, call)
    assert "Old is closed" in error.message
    assert await snapshot(db) == before


async def test_a_done_story_cannot_be_edited(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, story_type="eng")
        await answer_all(s, config, story, "done")
        await stories.complete_story(s, config=config, story=story, actor=ALICE)
    before = await snapshot(db)

    async def call(s):
        await stories.edit_story(s, config=config, story=await get(s, "S-1"), actor=ALICE, title="new")

    error = await refused(db, Conflict, call)
    assert error.message == "S-1 is done and can no longer be edited."
    assert await snapshot(db) == before


# --- assign ------------------------------------------------------------------------------------


async def test_assign_to_someone_else_stores_owner_and_queues_one_dm(db, config):
    async with tx(db) as s:
        await make_story(s, config, title="Fix <!channel> & <http://evil|click>")
    async with tx(db) as s:
        await stories.assign_story(s, config=config, story=await get(s, "S-1"), owner=BOB, actor=ALICE)
    async with tx(db) as s:
        assert (await get(s, "S-1")).owner == BOB
    rows = await outbox_rows(db)
    assert len(rows) == 1
    (row,) = rows
    assert row.channel == BOB
    assert row.method == "chat.postMessage"
    assert row.state == "pending"
    payload = json.loads(row.payload)
    assert payload["channel"] == BOB
    text = payload["text"]
    assert "S-1" in text
    assert f"<@{ALICE}>" in text
    assert "Fix &lt;!channel&gt; &amp; &lt;http://evil|click&gt;" in text
    assert "<!channel>" not in text
    assert "<http" not in text


async def test_assign_to_yourself_queues_nothing(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    async with tx(db) as s:
        await stories.assign_story(s, config=config, story=await get(s, "S-1"), owner=ALICE, actor=ALICE)
    async with tx(db) as s:
        assert (await get(s, "S-1")).owner == ALICE
    assert await outbox_rows(db) == []


async def test_assign_to_the_same_owner_is_a_conflict(db, config):
    async with tx(db) as s:
        await make_story(s, config, owner=BOB)
    before = await snapshot(db)

    async def call(s):
        await stories.assign_story(s, config=config, story=await get(s, "S-1"), owner=BOB, actor=ALICE)

    error = await refused(db, Conflict, call)
    assert error.message == "S-1 is already assigned to that person."
    assert await snapshot(db) == before


async def test_each_reassignment_queues_one_dm_to_the_new_owner(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    for owner in (BOB, DAVE, BOB):
        async with tx(db) as s:
            await stories.assign_story(s, config=config, story=await get(s, "S-1"), owner=owner, actor=ALICE)
    assert [r.channel for r in await outbox_rows(db)] == [BOB, DAVE, BOB]


async def test_adding_a_story_for_someone_else_queues_a_dm(db, config):
    async with tx(db) as s:
        await make_story(s, config, owner=BOB, title="a < b")
        await make_story(s, config, owner=ALICE)
    rows = await outbox_rows(db)
    assert [r.channel for r in rows] == [BOB]
    assert "S-1: a &lt; b" in json.loads(rows[0].payload)["text"]


async def test_editing_without_changing_owner_queues_nothing(db, config):
    async with tx(db) as s:
        await make_story(s, config, owner=ALICE)
    async with tx(db) as s:
        await stories.edit_story(s, config=config, story=await get(s, "S-1"), actor=BOB, title="renamed")
    assert await outbox_rows(db) == []


# --- complete ----------------------------------------------------------------------------------


async def test_complete_refuses_listing_missing_done_labels_and_stores_nothing(db, config):
    async with tx(db) as s:
        story = await make_story(s, config)  # ml: lineage, evaluation, rollback, monitoring
        await readiness.record_answers(
            s, story=story, kind="done", config=config, actor=ALICE, answers={"data_lineage": "v3"}
        )
    before = await snapshot(db)

    async def call(s):
        await stories.complete_story(s, config=config, story=await get(s, "S-1"), actor=ALICE)

    error = await refused(db, stories.NotDone, call)
    assert isinstance(error, Conflict)
    assert error.message == (
        "S-1 does not meet the Definition of Done yet. Missing: Model evaluation, Rollback plan, Monitoring."
    )
    assert [c.key for c in error.checklist.missing] == ["model_evaluation", "rollback_plan", "monitoring"]
    assert await snapshot(db) == before
    async with tx(db) as s:
        assert (await get(s, "S-1")).status == "open"
    assert await audit_rows(db) == []


async def test_complete_succeeds_with_answers_and_waivers_and_is_audited(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, title="Ship model")
        await readiness.record_answers(
            s,
            story=story,
            kind="done",
            config=config,
            actor=BOB,
            answers={"data_lineage": "v3", "model_evaluation": "AUC 0.81", "rollback_plan": "pin v2"},
            waivers={"monitoring": "batch model, no live traffic"},
        )
    async with tx(db) as s:
        done = await stories.complete_story(s, config=config, story=await get(s, "S-1"), actor=BOB)
    assert done.status == "done"
    async with tx(db) as s:
        stored = await get(s, "S-1")
    assert stored.status == "done"
    assert stored.done_at is not None
    rows = [r for r in await audit_rows(db) if r.action == "story.done"]
    assert len(rows) == 1
    (row,) = rows
    assert (row.actor, row.subject) == (BOB, "S-1")
    payload = json.loads(row.payload)
    assert payload["title"] == "Ship model"
    assert payload["evidence"] == {
        "data_lineage": "v3",
        "model_evaluation": "AUC 0.81",
        "rollback_plan": "pin v2",
        "monitoring": "n/a: batch model, no live traffic",
    }
    assert row.at == stored.done_at


async def test_completing_twice_is_a_conflict(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, story_type="eng")
        await answer_all(s, config, story, "done")
        await stories.complete_story(s, config=config, story=story, actor=ALICE)
    before = await snapshot(db)

    async def call(s):
        await stories.complete_story(s, config=config, story=await get(s, "S-1"), actor=ALICE)

    error = await refused(db, Conflict, call)
    assert not isinstance(error, stories.NotDone)
    assert error.message == "S-1 is already done."
    assert await snapshot(db) == before
    assert [r.action for r in await audit_rows(db)] == ["story.done"]


async def test_ready_criteria_do_not_count_towards_done(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, story_type="eng")
        await answer_all(s, config, story, "ready")
    error = await refused(db, stories.NotDone, lambda s: _complete(s, config, "S-1"))
    assert "Code review, Tests" in error.message


async def _complete(s, config, key):
    return await stories.complete_story(s, config=config, story=await get(s, key), actor=ALICE)


# --- pages of stories --------------------------------------------------------------------------


async def _page(db, config, page=1, page_size=2, **filters):
    async with tx(db) as s:
        return await stories.page_of_stories(
            s,
            config=config,
            team=team(config),
            filters=stories.StoryFilter(**filters),
            page=page,
            page_size=page_size,
        )


async def test_pages_split_the_list_in_order(db, config):
    async with tx(db) as s:
        for i in range(5):
            await make_story(s, config, title=f"story {i}")
        await make_story(s, config, team_name="platform", actor=FRANK)
    first, last = await _page(db, config, 1), await _page(db, config, 3)
    assert _keys(first.items) == ["S-1", "S-2"]
    assert _keys(last.items) == ["S-5"]
    assert (first.total, first.pages, first.page) == (5, 3, 1)


@pytest.mark.parametrize(("asked", "shown"), [(0, 1), (-3, 1), (99, 3)])
async def test_a_page_out_of_range_shows_the_nearest_page(db, config, asked, shown):
    async with tx(db) as s:
        for _ in range(5):
            await make_story(s, config)
    result = await _page(db, config, asked)
    assert result.page == shown
    assert result.items


async def test_an_empty_list_has_one_empty_page(db, config):
    result = await _page(db, config, 1, not_ready=True)
    assert (result.items, result.total, result.pages, result.page) == ([], 0, 1, 1)


async def test_not_ready_pages_count_only_not_ready_stories(db, config):
    async with tx(db) as s:
        for i in range(6):
            story = await make_story(s, config, story_type="eng")
            if i % 2:
                await answer_all(s, config, story, "ready")
        waived = await make_story(s, config, story_type="eng")
        await readiness.record_answers(
            s,
            story=waived,
            kind="ready",
            config=config,
            actor=ALICE,
            answers={"acceptance_criteria": "green build"},
            waivers={"dependencies": "none"},
        )
    first, second = await _page(db, config, 1, not_ready=True), await _page(db, config, 2, not_ready=True)
    assert first.total == 3
    assert _keys(first.items) == ["S-1", "S-3"]
    assert _keys(second.items) == ["S-5"]
    assert all(not item.ready.complete for item in first.items + second.items)


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"include_done": True},
        {"owner": BOB},
        {"backlog_only": True},
        {"not_ready": True},
        {"not_ready": True, "include_done": True},
        {"owner": BOB, "include_done": True},
    ],
)
async def test_pages_hold_the_same_stories_as_the_full_list(db, config, filters):
    await _listing_world(db, config)
    async with tx(db) as s:
        full = await stories.list_stories(s, config=config, team=team(config), **filters)
    first = await _page(db, config, 1, page_size=1, **filters)
    assert first.total == len(full)
    paged = []
    for page in range(1, first.pages + 1):
        paged += _keys((await _page(db, config, page, page_size=1, **filters)).items)
    assert paged == _keys(full)
