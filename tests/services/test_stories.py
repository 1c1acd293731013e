"""Stories: adding, numbering, finding, listing, editing, assigning and finishing them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.services import audit, readiness, sprints, stories
from bot.services.errors import Conflict, Forbidden, Invalid, NotFound
from tests.conftest import ALICE, BOB, DAVE, FRANK, make_config
from tests.factories import (
    PLANNED,
    SPRINT_START,
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

CONFIG = make_config()  # the test configuration (as the `config` fixture), for calls that take no fixture
BEFORE_START = SPRINT_START - timedelta(days=3)  # the team's date when a sprint is not under way yet

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


async def _add(s, config, *, actor=ALICE, team_name="recsys", **kw):
    """stories.add_story itself (make_story raises what the gate refuses; here the refusal is the result)."""
    return await stories.add_story(
        s, config=config, team=team(config, team_name), title="Train the ranker", actor=actor, **kw
    )


async def test_adding_a_not_ready_story_into_a_sprint_keeps_it_in_the_backlog_with_the_reason(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
    outbox_before = await outbox_rows(db)
    async with tx(db) as s:
        added = await _add(s, config, story_type="eng", sprint=sprint, today=BEFORE_START)
    # the story is stored, numbered, and waits in the backlog; the refusal says why, naming it
    assert (added.story.key, added.sprint) == ("S-1", None)
    assert isinstance(added.refused, Conflict)
    assert added.refused.message.startswith("Not Ready: S-1 lacks Acceptance criteria, Dependencies.")
    assert '--force reason="why"' in added.refused.message
    assert added.refused.field == "sprint"
    async with tx(db) as s:
        stored = await get(s, "S-1")
    assert (stored.title, stored.sprint_id, stored.status) == ("Train the ranker", None, "open")
    # nothing entered the sprint: no commit on the record, nothing announced
    assert await audit_rows(db) == []
    assert await outbox_rows(db) == outbox_before
    async with tx(db) as s:
        assert (await make_story(s, config)).key == "S-2"


async def test_adding_into_a_sprint_by_someone_not_a_lead_keeps_it_in_the_backlog(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
    async with tx(db) as s:
        added = await _add(s, config, actor=BOB, sprint=sprint, force_reason=PLANNED, today=BEFORE_START)
    assert added.sprint is None
    assert isinstance(added.refused, Forbidden)
    assert added.refused.message == "Only the leads of team recsys can commit stories to a sprint."
    async with tx(db) as s:
        stored = await get(s, "S-1")
    assert (stored.sprint_id, stored.created_by) == (None, BOB)
    assert await audit_rows(db) == []


async def test_an_add_the_gate_lets_in_names_the_sprint_and_no_refusal(db, config):
    """A new story has no answers yet, so only a reason lets it in; then the result names the sprint."""
    async with tx(db) as s:
        sprint = await make_sprint(s, config, team_name="platform", name="P1", actor=FRANK)
    async with tx(db) as s:
        added = await _add(s, config, team_name="platform", actor=FRANK, sprint=sprint, force_reason="ops")
    assert added.refused is None
    assert added.sprint is not None and added.sprint.name == "P1"
    assert added.story.sprint_id == sprint.id


async def test_adding_into_another_teams_sprint_is_refused_and_nothing_stored(db, config):
    async with tx(db) as s:
        other = await make_sprint(s, config, team_name="platform", name="P1", actor=FRANK)
    before = await snapshot(db)
    error = await refused(db, Conflict, lambda s: _add(s, config, sprint=other, force_reason=PLANNED))
    assert error.message == "Sprint P1 belongs to team platform, not recsys."
    assert await snapshot(db) == before


async def test_a_forced_add_into_a_sprint_is_stored_and_audited(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config, name="Sprint 1")
        story = await make_story(
            s, config, story_type="eng", sprint=sprint, force_reason="  hotfix ", today=BEFORE_START
        )
        sprint_id = sprint.id
    assert story.sprint_id == sprint_id
    async with tx(db) as s:
        assert (await get(s, "S-1")).sprint_id == sprint_id
    (row,) = await audit_rows(db)
    assert (row.action, row.subject, row.actor) == ("sprint.force_commit", "S-1", ALICE)
    assert json.loads(row.payload) == {
        "sprint": "Sprint 1",
        "team": "recsys",
        "points": None,
        "reason": "hotfix",
        "missing": ["acceptance_criteria", "dependencies"],
    }


@pytest.mark.parametrize("reason", ["", "  "])
async def test_a_forced_add_needs_a_real_reason(db, config, reason):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
    before = await snapshot(db)
    error = await refused(db, Invalid, lambda s: _add(s, config, sprint=sprint, force_reason=reason))
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


async def test_editing_a_ready_story_into_a_sprint_needs_no_force_and_is_a_plain_commit(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
        await answer_all(s, config, await make_story(s, config, story_type="eng"), "ready")
    async with tx(db) as s:
        await stories.edit_story(
            s, config=config, story=await get(s, "S-1"), actor=ALICE, sprint=sprint, today=BEFORE_START
        )
    async with tx(db) as s:
        assert (await get(s, "S-1")).sprint_id == sprint.id
    (row,) = await audit_rows(db)
    assert (row.action, row.subject) == ("sprint.commit", "S-1")  # no force: nothing to justify
    assert json.loads(row.payload) == {"sprint": "Sprint 1", "team": "recsys", "points": None}


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


@pytest.mark.parametrize(
    ("asked", "shown", "keys"), [(0, 1, ["S-1", "S-2"]), (-3, 1, ["S-1", "S-2"]), (99, 3, ["S-5"])]
)
async def test_a_page_out_of_range_shows_the_nearest_page(db, config, asked, shown, keys):
    async with tx(db) as s:
        for _ in range(5):
            await make_story(s, config)
    result = await _page(db, config, asked)
    assert (result.page, _keys(result.items), result.total, result.pages) == (shown, keys, 5, 3)


@pytest.mark.parametrize("asked", [1, 4])
async def test_a_list_with_nothing_in_it_is_one_empty_page(db, config, asked):
    async with tx(db) as s:
        await make_story(s, config, team_name="platform", actor=FRANK)  # another team's
    result = await _page(db, config, asked)
    assert (result.page, result.items, result.total, result.pages) == (1, [], 0, 1)


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


# --- lifecycle: start, block, unblock, drop, archive ---------------------------------------------


async def _status(db, key="S-1"):
    async with tx(db) as s:
        story = await get(s, key)
    return story.status, story.blocked_reason


async def _start(s, key="S-1", actor=BOB):
    return await stories.start_story(s, config=make_config(), story=await get(s, key), actor=actor)


async def _block(s, reason, key="S-1", actor=BOB):
    return await stories.block_story(
        s, config=make_config(), story=await get(s, key), actor=actor, reason=reason
    )


async def _unblock(s, key="S-1", actor=BOB):
    return await stories.unblock_story(s, config=make_config(), story=await get(s, key), actor=actor)


async def _drop(s, key="S-1", actor=ALICE):
    return await stories.drop_story(s, config=CONFIG, story=await get(s, key), actor=actor)


async def _archive(s, key="S-1", actor=ALICE):
    return await stories.archive_story(s, config=CONFIG, story=await get(s, key), actor=actor)


async def _done(s, config, story):
    await answer_all(s, config, story, "done")
    return await stories.complete_story(s, config=config, story=story, actor=ALICE)


async def test_start_moves_an_open_story_in_progress_and_audits_it(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    async with tx(db) as s:
        started = await _start(s)
    assert (started.status, started.blocked_reason) == ("in_progress", None)
    assert await _status(db) == ("in_progress", None)
    (row,) = await audit_rows(db)
    assert (row.action, row.subject, row.actor) == ("story.start", "S-1", BOB)
    assert json.loads(row.payload) == {"from": "open", "to": "in_progress"}


async def test_starting_a_story_in_progress_is_refused_and_changes_nothing(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        await _start(s)
    before = await snapshot(db)
    error = await refused(db, Conflict, _start)
    assert error.message == "S-1 is already in progress."
    assert await snapshot(db) == before


async def test_block_records_what_it_waits_for_and_unblock_resumes_it(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        await _start(s)
    async with tx(db) as s:
        blocked = await _block(s, "  waiting for\n GPU   quota ")
    assert (blocked.status, blocked.blocked_reason) == ("blocked", "waiting for GPU quota")
    assert await _status(db) == ("blocked", "waiting for GPU quota")
    async with tx(db) as s:
        resumed = await _unblock(s)
    assert (resumed.status, resumed.blocked_reason) == ("in_progress", None)
    assert await _status(db) == ("in_progress", None)
    rows = await audit_rows(db)
    assert [(r.action, json.loads(r.payload)) for r in rows] == [
        ("story.start", {"from": "open", "to": "in_progress"}),
        ("story.block", {"from": "in_progress", "to": "blocked", "reason": "waiting for GPU quota"}),
        ("story.start", {"from": "blocked", "to": "in_progress"}),  # unblocked: back in progress
    ]
    async with tx(db) as s:
        assert (await audit.verify(s)).ok


async def test_a_story_to_do_can_be_blocked_and_started_again(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        await _block(s, "data contract unsigned")
    assert await _status(db) == ("blocked", "data contract unsigned")
    async with tx(db) as s:
        await _start(s)  # starting a blocked story resumes it, and the reason goes
    assert await _status(db) == ("in_progress", None)


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
async def test_block_without_a_reason_is_refused(db, config, reason):
    async with tx(db) as s:
        await make_story(s, config)
    before = await snapshot(db)
    error = await refused(db, Invalid, lambda s: _block(s, reason))
    assert error.message.startswith("Say what it is waiting for")
    assert error.field == "reason"
    assert await snapshot(db) == before


async def test_a_block_reason_of_300_characters_is_kept_and_301_refused(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    error = await refused(db, Invalid, lambda s: _block(s, "x" * 301))
    assert error.message == "Keep the reason to 300 characters."
    assert await _status(db) == ("open", None)
    async with tx(db) as s:
        await _block(s, "y" * 300)
    assert await _status(db) == ("blocked", "y" * 300)


async def test_blocking_a_blocked_story_is_refused_and_keeps_its_reason(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        await _block(s, "GPU quota")
    before = await snapshot(db)
    error = await refused(db, Conflict, lambda s: _block(s, "something else"))
    assert error.message == "S-1 is already blocked."
    assert await snapshot(db) == before


@pytest.mark.parametrize("start_first", [False, True])
async def test_unblocking_a_story_that_is_not_blocked_is_refused(db, config, start_first):
    async with tx(db) as s:
        await make_story(s, config)
        if start_first:
            await _start(s)
    before = await snapshot(db)
    error = await refused(db, Conflict, _unblock)
    assert error.message == f"S-1 is {'in progress' if start_first else 'to do'}, not blocked."
    assert await snapshot(db) == before


async def test_finishing_a_blocked_story_clears_its_reason(db, config):
    async with tx(db) as s:
        await make_story(s, config, story_type="eng")
        await _block(s, "review pending")
        await _done(s, config, await get(s, "S-1"))
    assert await _status(db) == ("done", None)
    assert [r.action for r in await audit_rows(db)] == ["story.block", "story.done"]


@pytest.mark.parametrize("closed", ["done", "archived"])
async def test_a_closed_story_does_not_move_any_more(db, config, closed):
    async with tx(db) as s:
        story = await make_story(s, config, story_type="eng")
        if closed == "done":
            await _done(s, config, story)
        else:
            await _archive(s)
    before = await snapshot(db)
    for call, message in [
        (_start, f"S-1 is {closed}; it cannot become in progress."),
        (lambda s: _block(s, "GPU"), f"S-1 is {closed}; it cannot become blocked."),
        (_unblock, f"S-1 is {closed}, not blocked."),
    ]:
        assert (await refused(db, Conflict, call)).message == message
    assert await snapshot(db) == before


async def test_stories_in_progress_and_blocked_stay_on_the_lists(db, config):
    async with tx(db) as s:
        for title in ("to do", "doing", "stuck"):
            await make_story(s, config, title=title)
        await _start(s, "S-2")
        await _block(s, "GPU", "S-3")
    async with tx(db) as s:
        listed = await stories.list_stories(s, config=config, team=team(config))
        not_ready = await stories.list_stories(s, config=config, team=team(config), not_ready=True)
    assert _keys(listed) == ["S-1", "S-2", "S-3"]
    assert [i.story.status for i in listed] == ["open", "in_progress", "blocked"]
    assert _keys(not_ready) == ["S-1", "S-2", "S-3"]


# --- drop ------------------------------------------------------------------------------------------


async def test_a_lead_drops_a_story_back_to_the_backlog_audited(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config, name="Sprint 1")
        await make_story(s, config, points=5, sprint=sprint, force_reason=PLANNED)
        await _start(s)
    committed = await audit_rows(db)
    async with tx(db) as s:
        left = await _drop(s)
    assert left.name == "Sprint 1"
    async with tx(db) as s:
        stored = await get(s, "S-1")
    # out of the sprint, work on it not forgotten: it stays in progress
    assert (stored.sprint_id, stored.status) == (None, "in_progress")
    row = (await audit_rows(db))[len(committed)]
    assert (row.action, row.subject, row.actor) == ("sprint.drop", "S-1", ALICE)
    assert json.loads(row.payload) == {"sprint": "Sprint 1", "team": "recsys", "points": 5}


async def test_dropping_by_someone_not_a_lead_is_forbidden(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
        await make_story(s, config, sprint=sprint, force_reason=PLANNED)
    before = await snapshot(db)
    error = await refused(db, Forbidden, lambda s: _drop(s, actor=BOB))
    assert error.message == "Only the leads of team recsys can drop stories from a sprint."
    assert await snapshot(db) == before


async def test_in_a_team_without_leads_anyone_may_drop(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config, team_name="platform", name="P1", actor=FRANK)
        await make_story(s, config, team_name="platform", actor=FRANK, sprint=sprint, force_reason="ops")
    async with tx(db) as s:
        await _drop(s, actor=FRANK)
    async with tx(db) as s:
        assert (await get(s, "S-1")).sprint_id is None


async def test_dropping_a_backlog_or_done_story_is_refused(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
        await make_story(s, config)
        done = await make_story(s, config, story_type="eng", sprint=sprint, force_reason=PLANNED)
        await _done(s, config, done)
    before = await snapshot(db)
    assert (await refused(db, Conflict, _drop)).message == "S-1 is in the backlog, not in a sprint."
    assert (
        await refused(db, Conflict, lambda s: _drop(s, "S-2"))
    ).message == "S-2 is done; only open stories leave a sprint."
    assert await snapshot(db) == before


async def test_moving_a_story_to_the_backlog_in_its_form_is_a_drop(db, config):
    """The story form's Backlog choice takes a story out of its sprint as `story drop` does."""
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
        await make_story(s, config, sprint=sprint, force_reason=PLANNED)
    before = await snapshot(db)

    async def to_backlog(s, actor):
        await stories.edit_story(s, config=config, story=await get(s, "S-1"), actor=actor, to_backlog=True)

    error = await refused(db, Forbidden, lambda s: to_backlog(s, BOB))
    assert error.message == "Only the leads of team recsys can drop stories from a sprint."
    assert error.field == "sprint"
    assert await snapshot(db) == before
    async with tx(db) as s:
        await to_backlog(s, ALICE)
    async with tx(db) as s:
        assert (await get(s, "S-1")).sprint_id is None
    assert (await audit_rows(db))[-1].action == "sprint.drop"


# --- archive ---------------------------------------------------------------------------------------


async def test_anyone_may_archive_a_backlog_story_and_it_is_audited(db, config):
    async with tx(db) as s:
        await make_story(s, config, actor=BOB)
        await _block(s, "no data")
    async with tx(db) as s:
        archived = await _archive(s, actor=BOB)
    assert (archived.status, archived.blocked_reason, archived.sprint_id) == ("archived", None, None)
    row = (await audit_rows(db))[-1]
    assert (row.action, row.subject, row.actor) == ("story.archive", "S-1", BOB)
    assert json.loads(row.payload) == {"from": "blocked", "to": "archived"}


async def test_archiving_a_story_in_a_sprint_takes_a_lead_and_takes_it_out(db, config):
    async with tx(db) as s:
        sprint = await make_sprint(s, config)
        await make_story(s, config, sprint=sprint, force_reason=PLANNED)
    before = await snapshot(db)
    error = await refused(db, Forbidden, lambda s: _archive(s, actor=BOB))
    assert error.message == "Only the leads of team recsys can archive a story that is in a sprint."
    assert await snapshot(db) == before
    async with tx(db) as s:
        await _archive(s, actor=ALICE)
    async with tx(db) as s:
        stored = await get(s, "S-1")
        view = await sprints.overview(s, config=config, team=team(config), sprint=sprint)
    assert (stored.status, stored.sprint_id) == ("archived", None)
    assert view.stories == []  # off the board


async def test_a_done_story_cannot_be_archived(db, config):
    async with tx(db) as s:
        await _done(s, config, await make_story(s, config, story_type="eng"))
    before = await snapshot(db)
    error = await refused(db, Conflict, _archive)
    assert error.message == "S-1 is done; done stories stay on the record."
    assert await snapshot(db) == before


async def test_archiving_twice_is_refused(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        await _archive(s)
    before = await snapshot(db)
    assert (await refused(db, Conflict, _archive)).message == "S-1 is already archived."
    assert await snapshot(db) == before


async def test_an_archived_story_is_off_every_list_and_frozen(db, config):
    async with tx(db) as s:
        await make_sprint(s, config)
        await make_story(s, config, title="keep", story_type="eng")
        await make_story(s, config, title="put away", story_type="eng")
        await _archive(s, "S-2")
    async with tx(db) as s:
        for filters in ({}, {"include_done": True}, {"backlog_only": True, "include_done": True}):
            listed = await stories.list_stories(s, config=config, team=team(config), **filters)
            assert _keys(listed) == ["S-1"], filters
        page = await stories.page_of_stories(
            s, config=config, team=team(config), filters=stories.StoryFilter(include_done=True)
        )
        assert (_keys(page.items), page.total) == (["S-1"], 1)
        plan = await sprints.plan(s, config=config, team=team(config))
        assert [p.story.key for p in plan.candidates] == ["S-1"]
    before = await snapshot(db)

    async def edit(s):
        await stories.edit_story(s, config=config, story=await get(s, "S-2"), actor=ALICE, title="x")

    async def commit(s):
        await sprints.commit(
            s, config=config, team=team(config), keys=["S-2"], actor=ALICE, force_reason=PLANNED
        )

    async def answer(s):
        await readiness.record_answers(
            s,
            story=await get(s, "S-2"),
            kind="ready",
            config=config,
            actor=ALICE,
            answers={"dependencies": "x"},
        )

    async def complete(s):
        await stories.complete_story(s, config=config, story=await get(s, "S-2"), actor=ALICE)

    assert (await refused(db, Conflict, edit)).message == "S-2 is archived and can no longer be edited."
    assert (await refused(db, Conflict, commit)).message == "S-2 is already archived."
    assert (
        await refused(db, Conflict, answer)
    ).message == "S-2 is already archived; its checklists are closed."
    assert (await refused(db, Conflict, complete)).message == "S-2 is already archived."
    assert await snapshot(db) == before
