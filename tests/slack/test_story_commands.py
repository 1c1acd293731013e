"""`story add/list/show/edit/assign/done`: what the person sees, what is stored, what is sent."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.slack import ids
from bot.store.models import AuditEvent, OutboxMessage, Sprint, Story
from tests import slack_driver
from tests.conftest import ALICE, BOB, DAVE, FRANK, PLATFORM, RECSYS
from tests.factories import rows, stored_story
from tests.slack.helpers import buttons, ok, refused, shown, strings
from tests.slack_driver import SlackDriver

SPRINT_1 = '"Sprint 1" --from 2026-12-07 --to 2026-12-18'
SPRINT_2 = '"Sprint 2" --from 2026-12-21 --to 2027-01-01'


def listed_keys(body: dict[str, Any]) -> list[str]:
    """The story keys a list reply shows, in order."""
    keys = []
    for block in body.get("blocks", []):
        match = re.match(r"^\*(S-\d+)\* ", (block.get("text") or {}).get("text", ""))
        if block["type"] == "section" and match:
            keys.append(match.group(1))
    return keys


# --- story add ------------------------------------------------------------------------------------


async def test_story_add_with_every_option(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    body = await ok(
        slack,
        'story add "Train ranker v2" --type ml --owner <@U02BOB|bob> --points 5 --sprint current '
        '--force reason="planned"',
    )

    assert body["response_type"] == "ephemeral"
    assert body["text"] == "Added S-1 to sprint Sprint 1."
    text = shown(body)
    # the answer names the sprint and where it stands (Monday 7 December is its first day)
    assert ":white_check_mark: Added *S-1* Train ranker v2 to *Sprint 1* (current, day 1 of 10).\n" in text
    assert ":no_entry:" not in text
    # the Definition-of-Ready checklist, every ml criterion missing, and a button to fill it
    assert (
        "*Definition of Ready*\n*S-1* lacks 6 of 6 criteria (marked :x: below).\n"
        ":x: Data availability — _Which dataset and version the work needs, and where it is_\n"
        ":x: Feature stability — _Features are defined and will not change mid-sprint_\n"
    ) in text
    assert ":x: Validation data" in text
    [fill] = buttons(body)
    assert fill["text"]["text"] == "Fill Definition of Ready"
    assert fill["action_id"] == "open_ready_modal"
    assert fill["value"] == "S-1"

    stored = await stored_story(db, 1)
    [sprint] = await rows(db, Sprint)
    assert (stored.team, stored.type, stored.title, stored.owner, stored.points) == (
        "recsys",
        "ml",
        "Train ranker v2",
        BOB,
        5,
    )
    assert stored.sprint_id == sprint.id and stored.status == "open" and stored.created_by == ALICE
    # not Ready, so into the sprint only by force, which is audited
    [forced] = await rows(db, AuditEvent)
    assert (forced.actor, forced.action, forced.subject) == (ALICE, "sprint.force_commit", "S-1")
    assert json.loads(forced.payload)["reason"] == "planned"

    # through the outbox (not directly): the sprint start and the commit in the team channel, the new
    # owner's DM, and, as it went in although not Ready, a second DM saying what it still lacks
    started, dm, committed, forced_dm = await rows(db, OutboxMessage)
    assert [m.channel for m in (started, dm, committed, forced_dm)] == [RECSYS, BOB, RECSYS, BOB]
    assert all(m.state == "pending" and m.method == "chat.postMessage" for m in (dm, committed, forced_dm))
    dm_payload = json.loads(dm.payload)
    assert sorted(dm_payload) == ["blocks", "channel", "text"]
    assert (dm_payload["channel"], dm_payload["text"]) == (
        BOB,
        "<@U01ALICE> assigned you S-1: Train ranker v2",
    )
    # the story at a glance (tests/slack/test_assignment_dm.py tests the rest of the DM)
    assert dm_payload["blocks"][0]["text"]["text"] == (
        ":bust_in_silhouette: <@U01ALICE> assigned you *S-1* Train ranker v2"
    )
    assert json.loads(committed.payload)["text"] == "1 committed to Sprint 1"
    assert "committed your story *S-1* Train ranker v2 (5 pt)" in json.loads(forced_dm.payload)["text"]
    assert not slack.fake.of("chat.postMessage")


async def test_story_add_defaults_to_an_unowned_ml_story_in_the_backlog(slack, db):
    body = await ok(slack, "story add Fix the feature store")
    assert body["text"] == "Added S-1 to the backlog."
    stored = await stored_story(db, 1)
    assert (stored.type, stored.owner, stored.points, stored.sprint_id) == ("ml", None, None, None)
    assert await rows(db, OutboxMessage) == []


async def test_story_add_owned_by_oneself_sends_no_dm(slack, db):
    await ok(slack, "story add Mine --owner <@U01ALICE|alice>")
    assert (await stored_story(db, 1)).owner == ALICE
    assert await rows(db, OutboxMessage) == []


async def test_story_add_eng_story_gets_the_eng_checklist(slack, db):
    body = await ok(slack, "story add Fix login --type eng --points 0")
    assert (
        "*S-1* lacks 2 of 2 criteria (marked :x: below).\n"
        ":x: Acceptance criteria — _How we will know the story is done_\n"
        ":x: Dependencies — _Other teams, services or stories this waits on_\n"
    ) in shown(body)
    stored = await stored_story(db, 1)
    assert (stored.type, stored.points) == ("eng", 0)


async def test_story_add_to_next_and_named_sprints(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, f"sprint start {SPRINT_2}")
    added = await ok(slack, 'story add A --sprint next --force reason="planned"')
    assert added["text"] == "Added S-1 to sprint Sprint 2."
    added = await ok(slack, 'story add B --sprint "Sprint 1" --force reason="planned"')
    assert added["text"] == "Added S-2 to sprint Sprint 1."
    sprints = {s.name: s.id for s in await rows(db, Sprint)}
    assert (await stored_story(db, 1)).sprint_id == sprints["Sprint 2"]
    assert (await stored_story(db, 2)).sprint_id == sprints["Sprint 1"]


# --- story add into a sprint: the readiness gate of sprint commit ---------------------------------


async def test_story_add_of_a_not_ready_story_into_a_sprint_keeps_it_in_the_backlog(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    outbox_before = await rows(db, OutboxMessage)
    body = await ok(slack, "story add Train ranker --sprint current")
    # stored, and the answer says where it is and why it is not where it was asked to go
    assert body["text"] == "Added S-1 to the backlog."
    text = shown(body)
    assert (
        ":white_check_mark: Added *S-1* Train ranker to the backlog.\n"
        ":no_entry: It is not in the sprint you asked for: Not Ready: S-1 lacks Data availability, "
        "Feature stability, Reproducible environment, Measurable evaluation criteria, Data contract, "
        "Validation data. "
        "Fill the criteria with `ready S-n`, or let a lead commit anyway with a reason "
        '(--force reason="why").'
    ) in text
    # the checklist of what it lacks follows, with its button
    assert "*Definition of Ready*\n*S-1* lacks 6 of 6 criteria (marked :x: below).\n" in text
    assert [b["value"] for b in buttons(body)] == ["S-1"]
    stored = await stored_story(db, 1)
    assert (stored.title, stored.sprint_id, stored.status) == ("Train ranker", None, "open")
    # nothing entered the sprint: no commit on the record, nothing announced
    assert await rows(db, AuditEvent) == []
    assert await rows(db, OutboxMessage) == outbox_before
    assert listed_keys(await ok(slack, "story list --sprint backlog")) == ["S-1"]
    assert listed_keys(await ok(slack, "story list --sprint current")) == []
    assert (await ok(slack, "story add Next one"))["text"] == "Added S-2 to the backlog."


async def test_story_add_into_a_sprint_with_force_is_added_and_audited(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    body = await ok(slack, 'story add Train ranker --sprint current --force reason="hotfix"')
    assert body["text"] == "Added S-1 to sprint Sprint 1."
    assert ":white_check_mark: Added *S-1* Train ranker to *Sprint 1* (current, day 1 of 10)." in shown(body)
    [sprint] = await rows(db, Sprint)
    stored = await stored_story(db, 1)
    assert (stored.title, stored.sprint_id) == ("Train ranker", sprint.id)
    [event] = await rows(db, AuditEvent)
    assert (event.actor, event.action, event.subject) == (ALICE, "sprint.force_commit", "S-1")
    assert json.loads(event.payload) == {
        "sprint": "Sprint 1",
        "team": "recsys",
        "points": None,  # no scope_added: Sprint 1 started today (the app's clock), its planning day
        "reason": "hotfix",
        "missing": [
            "data_available",
            "feature_stability",
            "reproducible_env",
            "eval_criteria",
            "data_contract",
            "validation_dataset",
        ],
    }


async def test_story_add_into_a_sprint_by_a_non_lead_keeps_it_in_the_backlog(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    outbox_before = await rows(db, OutboxMessage)
    for n, command in enumerate(
        (
            "story add Train ranker --sprint current",
            'story add Train ranker --sprint current --force reason="hotfix"',
        ),
        start=1,
    ):
        body = await ok(slack, command, user=BOB)
        assert body["text"] == f"Added S-{n} to the backlog."
        assert (
            f":white_check_mark: Added *S-{n}* Train ranker to the backlog.\n"
            ":no_entry: It is not in the sprint you asked for: "
            "Only the leads of team recsys can commit stories to a sprint."
        ) in shown(body)
    # both stored, for Bob, in the backlog; nothing went into the sprint or was announced
    assert [(s.created_by, s.sprint_id) for s in await rows(db, Story)] == [(BOB, None), (BOB, None)]
    assert await rows(db, AuditEvent) == []
    assert await rows(db, OutboxMessage) == outbox_before


async def test_story_add_into_a_closed_or_another_teams_sprint_is_refused_and_stores_nothing(slack, db):
    await ok(slack, 'sprint start "Old" --from 2026-12-07 --to 2026-12-18')
    await ok(slack, "sprint close")
    await refused(
        slack,
        db,
        'story add Train ranker --sprint Old --force reason="hotfix"',
        "Sprint Old is closed; add the story to the current or next sprint.",
        usage=False,
    )
    await ok(slack, 'sprint start "P1" --from 2026-12-07 --to 2026-12-18', user=FRANK, channel=PLATFORM)
    # another team's sprint is not even found from this channel
    await refused(
        slack,
        db,
        'story add Train ranker --sprint P1 --force reason="hotfix"',
        "Team recsys has no sprint called 'P1'",
        usage="story add",
    )
    assert await rows(db, Story) == []


async def test_story_add_force_needs_a_sprint_and_a_reason(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    await refused(
        slack,
        db,
        'story add Train ranker --force reason="hotfix"',
        "--force only matters with --sprint",
        usage="story add",
    )
    await refused(
        slack,
        db,
        "story add Train ranker --sprint current --force",
        "--force needs a reason",
        usage="story add",
    )
    await refused(
        slack,
        db,
        'story add Train ranker --sprint current --force reason="  "',
        "--force needs a reason",
        usage="story add",
    )
    assert await rows(db, Story) == []


async def test_story_add_title_with_an_equals_sign_is_kept_whole(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    body = await ok(slack, "story add Fix a=b parsing")
    assert body["text"] == "Added S-1 to the backlog."
    assert (await stored_story(db, 1)).title == "Fix a=b parsing"
    forced = await ok(slack, 'story add Fix a=b parsing --sprint current --force reason="hotfix"')
    assert forced["text"] == "Added S-2 to sprint Sprint 1."
    assert (await stored_story(db, 2)).title == "Fix a=b parsing"
    [event] = await rows(db, AuditEvent)
    assert (event.subject, json.loads(event.payload)["reason"]) == ("S-2", "hotfix")


async def test_story_numbers_count_up(slack, db):
    for title in ("one", "two", "three"):
        await ok(slack, f"story add {title}")
    assert sorted(s.number for s in await rows(db, Story)) == [1, 2, 3]
    assert (await ok(slack, "story add four"))["text"].startswith("Added S-4 ")


async def test_story_add_quoted_and_smart_quoted_titles(slack, db):
    await ok(slack, 'story add "Fix user\'s features" --points 2')
    await ok(slack, "story add “Retrain   the ranker” --points 3")
    assert (await stored_story(db, 1)).title == "Fix user's features"
    assert (await stored_story(db, 2)).title == "Retrain the ranker"


async def test_story_add_title_with_special_characters_is_stored_plain_and_shown_escaped(slack, db):
    # typed: a < b & c — Slack sends it escaped
    body = await ok(slack, "story add a &lt; b &amp; c")
    assert (await stored_story(db, 1)).title == "a < b & c"
    assert ":white_check_mark: Added *S-1* a &lt; b &amp; c to the backlog." in shown(body)

    card = await ok(slack, "story show S-1")
    assert card["blocks"][0]["text"]["text"] == "*S-1* a &lt; b &amp; c"
    listing = await ok(slack, "story list")
    assert "*S-1* a &lt; b &amp; c\n" in shown(listing)


async def test_story_add_title_of_exactly_200_characters_counts_characters_not_entities(slack, db):
    # 196 + " & b" = 200 characters typed; Slack sends 204 ("&amp;")
    await ok(slack, "story add " + "a" * 196 + " &amp; b")
    assert (await stored_story(db, 1)).title == "a" * 196 + " & b"


async def test_story_add_link_in_title_keeps_the_url(slack, db):
    await ok(slack, "story add Check <https://wandb.ai/team/run|wandb.ai/team/run> results")
    assert (await stored_story(db, 1)).title == "Check https://wandb.ai/team/run results"


async def test_story_add_without_arguments_opens_the_story_form(slack, db, monkeypatch):
    monkeypatch.setattr(slack_driver, "_ids", itertools.count(900))
    response = await slack.command("story add")

    assert response.status_code == 200
    assert response.text == ""  # an empty ack: the form is the answer
    [call] = slack.fake.of("views.open")
    assert call.args["trigger_id"] == "trigger.900"
    view = call.args["view"]
    assert view["type"] == "modal" and view["callback_id"] == "story_modal"
    assert view["title"]["text"] == "New story"
    assert [b["block_id"] for b in view["blocks"]] == ["title", "type", "owner", "points", "sprint"]
    title = view["blocks"][0]["element"]
    assert "initial_value" not in title and title["max_length"] == 200
    meta = json.loads(view["private_metadata"])
    assert meta["channel"] == RECSYS and meta["team"] == "recsys" and "story" not in meta
    assert await rows(db, Story) == []


async def test_story_add_form_offers_the_open_sprints(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, f"sprint start {SPRINT_2}")
    await ok(slack, 'sprint start "Sprint 3" --from 2027-01-04 --to 2027-01-15')
    await ok(slack, 'sprint start "P1" --from 2026-12-07 --to 2026-12-18', channel=PLATFORM, user=FRANK)
    await slack.command("story add")
    sprint_field = slack.last_view()["blocks"][4]["element"]
    # every open sprint of the channel's team, in date order; no other team's
    assert [o["text"]["text"] for o in sprint_field["options"]] == [
        "Backlog",
        "Sprint 1 (current)",
        "Sprint 2 (planned)",
        "Sprint 3 (planned)",
    ]
    assert sprint_field["initial_option"]["value"] == "backlog"


async def test_story_add_in_the_platform_channel_belongs_to_platform(slack, db):
    body = await ok(slack, "story add Migrate dashboards", user=FRANK, channel=PLATFORM)
    assert body["text"] == "Added S-1 to the backlog."
    assert (await stored_story(db, 1)).team == "platform"
    assert listed_keys(await ok(slack, "story list", user=FRANK, channel=PLATFORM)) == ["S-1"]
    assert listed_keys(await ok(slack, "story list")) == []


# --- story list -----------------------------------------------------------------------------------


async def test_story_list_is_paginated_within_slack_limits(slack, db):
    for i in range(1, 46):
        await ok(slack, f"story add Story number {i} --points {i % 8} --owner <@U01ALICE|alice>")

    body = await ok(slack, "story list")
    assert body["response_type"] == "ephemeral"
    assert len(body["blocks"]) <= 50
    assert body["blocks"][0]["text"]["text"] == "*Stories · team recsys* — 45 stories"
    assert listed_keys(body) == [f"S-{n}" for n in range(1, 21)]
    assert "Page 1 of 3" in shown(body)
    [nxt] = buttons(body)
    assert nxt["text"]["text"] == "Next →"
    assert nxt["action_id"].startswith("story_list_page")
    assert json.loads(nxt["value"]) == {"page": 2, "filters": {"tokens": []}}

    mine = await ok(slack, "story list --mine")
    assert len(mine["blocks"]) <= 50 and listed_keys(mine)[:2] == ["S-1", "S-2"]
    [nxt] = buttons(mine)
    assert json.loads(nxt["value"])["filters"] == {"tokens": ["--mine"]}


async def test_story_list_not_ready_is_paginated_over_the_not_ready_stories_only(slack, db):
    for i in range(1, 31):
        kind = "--type eng" if i % 6 == 0 else "--type ml"
        await ok(slack, f"story add Story {i} {kind}")
        if i % 6 == 0:
            await ok(slack, f"ready S-{i} acceptance_criteria=ok dependencies=none")
    await ok(slack, "ready S-1 data_available=v3")  # partly answered is still not Ready

    body = await ok(slack, "story list --not-ready")
    assert body["blocks"][0]["text"]["text"] == "*Stories · team recsys · not Ready* — 25 stories"
    expected = [f"S-{n}" for n in range(1, 31) if n % 6]
    assert listed_keys(body) == expected[:20]
    assert "Page 1 of 2" in shown(body)
    [nxt] = buttons(body)
    assert json.loads(nxt["value"]) == {"page": 2, "filters": {"tokens": ["--not-ready"]}}


async def test_story_list_of_a_short_backlog_has_no_page_buttons(slack, db):
    for title in ("one", "two"):
        await ok(slack, f"story add {title}")
    body = await ok(slack, "story list")
    assert listed_keys(body) == ["S-1", "S-2"]
    assert buttons(body) == [] and "Page" not in shown(body)
    assert body["blocks"][0]["text"]["text"] == "*Stories · team recsys* — 2 stories"


async def test_story_list_when_there_are_none(slack, db):
    body = await ok(slack, "story list")
    [block] = body["blocks"]
    assert "Stories · team recsys" in block["text"]["text"]
    assert block["text"]["text"].endswith(": no stories match.")


@pytest.fixture
async def four_stories(slack: SlackDriver) -> None:
    """S-1 Alice's Ready eng story (backlog), S-2 Bob's ml story forced into Sprint 1, S-3 unowned ml
    (backlog), S-4 Alice's done eng story."""
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, "story add Ready one --type eng --owner <@U01ALICE|alice> --points 2")
    await ok(slack, "ready S-1 acceptance_criteria=tests dependencies=none")
    await ok(
        slack,
        "story add Bob's model --owner <@U02BOB|bob> --points 5 --sprint current --force reason=planned",
    )
    await ok(slack, "story add Nobody's")
    await ok(slack, "story add Finished --type eng --owner <@U01ALICE|alice> --points 1")
    await ok(slack, "dod S-4 code_review=https://git/pr/4 tests=unit")
    assert "is done" in (await ok(slack, "story done S-4"))["text"]


@pytest.mark.parametrize(
    ("command", "keys", "heading"),
    [
        ("story list", ["S-1", "S-2", "S-3"], "Stories · team recsys"),
        ("story list --mine", ["S-1"], "Stories · team recsys · mine"),
        ("story list --mine --all", ["S-1", "S-4"], "Stories · team recsys · mine"),
        ("story list --not-ready", ["S-2", "S-3"], "Stories · team recsys · not Ready"),
        ("story list --sprint backlog", ["S-1", "S-3"], "Stories · team recsys · backlog"),
        ("story list --sprint current", ["S-2"], "Stories · team recsys · sprint Sprint 1"),
        ('story list --sprint "Sprint 1"', ["S-2"], "Stories · team recsys · sprint Sprint 1"),
        ("story list --all", ["S-1", "S-2", "S-3", "S-4"], "Stories · team recsys"),
        ("story list --all --not-ready", ["S-2", "S-3"], "Stories · team recsys · not Ready"),
        ("story list --mine --sprint current", [], "Stories · team recsys · mine · sprint Sprint 1"),
    ],
)
async def test_story_list_filters(slack, db, four_stories, command, keys, heading):
    body = await ok(slack, command)
    assert listed_keys(body) == keys
    assert body["text"] == heading


async def test_story_list_lines_show_type_owner_points_sprint_and_readiness(slack, db, four_stories):
    text = shown(await ok(slack, "story list --all"))
    assert "*S-1* Ready one\neng · <@U01ALICE> · 2 pt · backlog · :large_green_circle: Ready" in text
    assert "*S-2* Bob's model\nml · <@U02BOB> · 5 pt · Sprint 1 · :red_circle: not Ready (0/6)" in text
    assert "*S-3* Nobody's\nml · _unassigned_ · backlog · :red_circle: not Ready (0/6)" in text
    assert "*S-4* Finished\neng · <@U01ALICE> · 1 pt · backlog · :white_check_mark: done" in text


# --- story show -----------------------------------------------------------------------------------


async def test_story_show_card(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(
        slack,
        'story add Train ranker --owner <@U02BOB|bob> --points 5 --sprint current --force reason="planned"',
    )
    await ok(slack, "ready S-1 data_available=s3://recsys/clicks@v3")
    await ok(slack, 'ready S-1 data_contract=n/a reason="internal data"')

    body = await ok(slack, "story show S-1")
    assert body["response_type"] == "ephemeral"
    blocks = body["blocks"]
    assert blocks[0]["text"]["text"] == "*S-1* Train ranker"
    assert (
        blocks[1]["elements"][0]["text"]
        == "*Type* ml · *Owner* <@U02BOB> · *Points* 5 · *Sprint* Sprint 1 · *Status* to do"
    )
    ready = blocks[3]["text"]["text"]
    assert ready.startswith("*Definition of Ready* — :red_circle: not Ready (2/6)")
    assert ":white_check_mark: Data availability: s3://recsys/clicks@v3" in ready
    assert ":heavy_minus_sign: Data contract: n/a — internal data (<@U01ALICE>)" in ready
    assert ":x: Feature stability" in ready
    done = blocks[4]["text"]["text"]
    assert done.startswith("*Definition of Done* — 0/4")
    assert ":x: Data lineage" in done and ":x: Monitoring" in done
    assert [(b["text"]["text"], b["action_id"], b["value"]) for b in buttons(body)] == [
        ("Fill readiness", "open_ready_modal", "S-1"),
        ("Fill Definition of Done", "open_done_modal", "S-1"),
        ("Edit", "open_story_edit", "S-1"),
        ("Mark done", "mark_story_done", "S-1"),
    ]


async def test_story_show_accepts_key_variants(slack, db):
    await ok(slack, "story add Train ranker")
    for key in ("S-1", "s-1", "S1", "s1"):
        assert (await ok(slack, f"story show {key}"))["blocks"][0]["text"]["text"] == "*S-1* Train ranker"


async def test_story_show_of_a_done_story_has_no_buttons(slack, db):
    await ok(slack, "story add Fix login --type eng")
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "story done S-1")
    body = await ok(slack, "story show S-1")
    assert "*Status* done" in shown(body)
    assert "*Definition of Done* — 2/2" in shown(body)
    assert buttons(body) == []


# --- story edit -----------------------------------------------------------------------------------


async def test_story_edit_opens_a_prefilled_form(slack, db, monkeypatch):
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(
        slack,
        "story add Fix login --type eng --owner <@U02BOB|bob> --points 3 --sprint current "
        "--force reason=planned",
    )
    [sprint] = await rows(db, Sprint)
    before = await stored_story(db, 1)

    monkeypatch.setattr(slack_driver, "_ids", itertools.count(700))
    response = await slack.command("story edit S-1")
    assert response.status_code == 200 and response.text == ""
    [call] = slack.fake.of("views.open")
    assert call.args["trigger_id"] == "trigger.700"
    view = call.args["view"]
    assert view["callback_id"] == "story_modal"
    assert view["title"]["text"] == "Edit S-1"
    assert view["submit"]["text"] == "Save"
    fields = {b["block_id"]: b["element"] for b in view["blocks"]}
    assert fields["title"]["initial_value"] == "Fix login"
    assert fields["type"]["initial_option"]["value"] == "eng"
    assert fields["owner"]["initial_user"] == BOB
    assert str(fields["points"]["initial_value"]) == "3"
    assert fields["sprint"]["initial_option"]["value"] == str(sprint.id)
    assert fields["sprint"]["initial_option"]["text"]["text"] == "Sprint 1 (current)"
    meta = json.loads(view["private_metadata"])
    assert meta["story"] == "S-1" and meta["channel"] == RECSYS and meta["team"] == "recsys"
    assert meta["response_url"].endswith("/response/cmd700")
    # opening the form changes nothing
    assert await stored_story(db, 1) == before


async def test_story_edit_prefills_special_characters_as_typed(slack, db):
    await ok(slack, "story add a &lt; b &amp; c")
    await slack.command("story edit S-1")
    assert slack.last_view()["blocks"][0]["element"]["initial_value"] == "a < b & c"


async def test_story_edit_of_a_done_story_is_refused(slack, db):
    await ok(slack, "story add Fix login --type eng")
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "story done S-1")
    before = await stored_story(db, 1)
    response = await slack.command("story edit S-1")
    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith(":warning: S-1 is ") and "done" in body["text"]
    assert "Usage:" not in body["text"]  # a refused decision, not malformed input
    assert slack.fake.of("views.open") == []
    assert await stored_story(db, 1) == before


# --- story assign ---------------------------------------------------------------------------------


async def test_story_assign_sets_the_owner_and_dms_them(slack, db):
    await ok(slack, "story add Train ranker")
    body = await ok(slack, "story assign S-1 <@U02BOB|bob>")
    assert body["response_type"] == "ephemeral"
    assert body["text"] == "S-1 is now owned by <@U02BOB>."
    assert ":bust_in_silhouette: *S-1* Train ranker is now owned by <@U02BOB>." in shown(body)
    assert (await stored_story(db, 1)).owner == BOB
    [dm] = await rows(db, OutboxMessage)
    assert dm.channel == BOB
    assert json.loads(dm.payload)["text"] == "<@U01ALICE> assigned you S-1: Train ranker"

    await ok(slack, "story assign S-1 <@U03DAVE>")
    assert (await stored_story(db, 1)).owner == DAVE
    assert sorted(m.channel for m in await rows(db, OutboxMessage)) == [BOB, DAVE]


async def test_story_assign_to_oneself_sends_no_dm(slack, db):
    await ok(slack, "story add Train ranker")
    await ok(slack, "story assign S-1 <@U02BOB|bob>", user=BOB)
    assert (await stored_story(db, 1)).owner == BOB
    assert await rows(db, OutboxMessage) == []


# --- story done -----------------------------------------------------------------------------------


async def test_story_done_is_refused_until_the_definition_of_done_is_met(slack, db):
    await ok(slack, "story add Train ranker --points 5")

    refused = await ok(slack, "story done S-1")
    assert refused["response_type"] == "ephemeral"
    assert refused["text"] == "S-1 does not meet the Definition of Done yet: it lacks 4 of 4 criteria."
    text = shown(refused)
    # the missing criteria are named once, each on its own line with its help, in the checklist below
    assert (
        "*Definition of Done*\n"
        ":no_entry: *S-1* cannot be closed yet: it lacks 4 of 4 criteria (marked :x: below).\n"
        ":x: Data lineage — _Where the training data came from, with versions_\n"
        ":x: Model evaluation — _Results on the validation data against the baseline_\n"
        ":x: Rollback plan — _How to return to the previous model_\n"
        ":x: Monitoring — _Dashboards and alerts for the model in production_\n"
    ) in text
    for label in ("Data lineage", "Model evaluation", "Rollback plan", "Monitoring"):
        assert text.count(label) == 1, label
    [fill] = buttons(refused)
    assert (fill["action_id"], fill["value"]) == ("open_done_modal", "S-1")
    assert (await stored_story(db, 1)).status == "open"
    assert await rows(db, AuditEvent) == []

    partly = await ok(slack, "dod S-1 data_lineage=clicks@v3 model_evaluation=ndcg+2%")
    assert ":pencil: Recorded 2 answers for *S-1*." in shown(partly)
    refused = await ok(slack, "story done S-1")
    assert refused["text"] == "S-1 does not meet the Definition of Done yet: it lacks 2 of 4 criteria."
    assert [line for line in shown(refused).split("\n") if line.startswith(":x: ")] == [
        ":x: Rollback plan — _How to return to the previous model_",
        ":x: Monitoring — _Dashboards and alerts for the model in production_",
    ]
    assert (await stored_story(db, 1)).status == "open"

    await ok(slack, 'dod S-1 rollback_plan="pin model v41" monitoring=n/a reason="offline batch model"')
    body = await ok(slack, "story done S-1")
    assert body["text"] == "S-1 is done."
    assert ":tada: *S-1* Train ranker is done. Recorded in the audit log." in shown(body)

    stored = await stored_story(db, 1)
    assert stored.status == "done" and stored.done_at is not None
    audit = await rows(db, AuditEvent, AuditEvent.action == "story.done")
    assert len(audit) == 1
    assert (audit[0].actor, audit[0].subject) == (ALICE, "S-1")
    assert json.loads(audit[0].payload)["evidence"] == {
        "data_lineage": "clicks@v3",
        "model_evaluation": "ndcg+2%",
        "rollback_plan": "pin model v41",
        "monitoring": "n/a: offline batch model",
    }
    # done stories leave the default list
    assert listed_keys(await ok(slack, "story list")) == []
    assert listed_keys(await ok(slack, "story list --all")) == ["S-1"]


# --- user text never becomes a Slack control sequence ----------------------------------------------

INJECTED = "&lt;!channel&gt; ping &amp; run"  # a person typed: <!channel> ping & run


@pytest.fixture
async def injected_story(slack: SlackDriver, db: AsyncEngine) -> dict[str, Any]:
    await ok(slack, f"sprint start {SPRINT_1}")
    body = await ok(slack, f"story add {INJECTED} --points 2")
    assert (await stored_story(db, 1)).title == "<!channel> ping & run"
    return body


def assert_no_control_sequences(body: dict[str, Any]) -> None:
    for text in strings(body):
        assert "<!channel>" not in text, text
        assert "<!here>" not in text, text


async def test_story_add_reply_never_contains_a_typed_channel_mention(slack, db, injected_story):
    assert_no_control_sequences(injected_story)
    assert "&lt;!channel&gt; ping &amp; run" in shown(injected_story)


@pytest.mark.parametrize(
    "command",
    [
        "story list",
        "story list --not-ready",
        "story show S-1",
        "ready S-1",
        "ready S-1 data_available=x",
        "dod S-1",
        "story done S-1",
        "story assign S-1 <@U02BOB|bob>",
        "sprint commit S-1 --force reason=hotfix",
    ],
)
async def test_replies_never_contain_a_typed_channel_mention(slack, db, injected_story, command):
    response = await slack.command(command)
    assert response.status_code == 200
    body = response.json()
    assert not body["text"].startswith(":warning:"), body["text"]
    assert_no_control_sequences(body)


async def test_owner_dm_never_contains_a_typed_channel_mention(slack, db):
    await ok(slack, f"story add {INJECTED} --owner <@U02BOB|bob>")
    [dm] = await rows(db, OutboxMessage)
    assert json.loads(dm.payload)["text"] == "<@U01ALICE> assigned you S-1: &lt;!channel&gt; ping &amp; run"


async def test_plan_and_close_never_contain_a_typed_channel_mention(slack, db, injected_story):
    await ok(slack, "sprint commit S-1 --force reason=hotfix")
    plan = await ok(slack, "sprint plan")
    assert_no_control_sequences(plan)
    assert "*S-1* &lt;!channel&gt; ping &amp; run" in shown(plan)
    closed = await ok(slack, "sprint close")
    assert_no_control_sequences(closed)
    assert "S-1 &lt;!channel&gt; ping &amp; run" in shown(closed)


# --- the story lifecycle: start, block, unblock, drop, archive ------------------------------------


def card_fields(body: dict[str, Any]) -> str:
    """The one-line facts of a story card (type, owner, points, sprint, status)."""
    return body["blocks"][1]["elements"][0]["text"]


@pytest.fixture
async def in_sprint(slack: SlackDriver) -> None:
    """Sprint 1 current, with S-1 Train ranker (Bob's, 5 pt) forced in; S-2 Someday in the backlog."""
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(
        slack,
        "story add Train ranker --owner <@U02BOB|bob> --points 5 --sprint current --force reason=planned",
    )
    await ok(slack, "story add Someday")


async def audited(db: AsyncEngine, *actions: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (e.actor, e.action, e.subject, json.loads(e.payload))
        for e in await rows(db, AuditEvent)
        if e.action in actions
    ]


async def test_a_story_moves_across_the_board_start_block_unblock(slack, db, in_sprint):
    body = await ok(slack, "story start S-1", user=BOB)
    assert body["text"] == "S-1 is in progress."
    assert shown(body).endswith(":arrow_forward: *S-1* Train ranker is in progress.")
    assert (await stored_story(db, 1)).status == "in_progress"
    assert card_fields(await ok(slack, "story show S-1")).endswith("*Status* in progress")
    assert "ml · <@U02BOB> · 5 pt · Sprint 1 · in progress · :red_circle:" in shown(
        await ok(slack, "story list")
    )

    body = await ok(slack, 'story block S-1 reason="waiting for GPU quota"', user=BOB)
    assert body["text"] == "S-1 is blocked."
    assert shown(body).endswith(
        ":octagonal_sign: *S-1* Train ranker is blocked.\n_Waiting for:_ waiting for GPU quota"
    )
    stored = await stored_story(db, 1)
    assert (stored.status, stored.blocked_reason) == ("blocked", "waiting for GPU quota")
    assert card_fields(await ok(slack, "story show S-1")).endswith("*Status* blocked — waiting for GPU quota")

    body = await ok(slack, "story unblock S-1", user=BOB)
    assert shown(body).endswith(":arrow_forward: *S-1* Train ranker is in progress.")
    stored = await stored_story(db, 1)
    assert (stored.status, stored.blocked_reason) == ("in_progress", None)

    assert await audited(db, "story.start", "story.block") == [
        (BOB, "story.start", "S-1", {"from": "open", "to": "in_progress"}),
        (
            BOB,
            "story.block",
            "S-1",
            {"from": "in_progress", "to": "blocked", "reason": "waiting for GPU quota"},
        ),
        (BOB, "story.start", "S-1", {"from": "blocked", "to": "in_progress"}),
    ]


async def test_story_start_twice_is_refused(slack, db, in_sprint):
    await ok(slack, "story start S-1")
    text = await refused(slack, db, "story start S-1", "S-1 is already in progress.", usage=False)
    assert text == ":warning: S-1 is already in progress."


async def test_story_unblock_of_a_story_not_blocked_is_refused(slack, db, in_sprint):
    await refused(slack, db, "story unblock S-1", "S-1 is to do, not blocked.", usage=False)
    await ok(slack, 'story block S-1 reason="GPU"')
    await refused(slack, db, 'story block S-1 reason="again"', "S-1 is already blocked.", usage=False)


async def test_story_block_keeps_the_reason_as_typed(slack, db, in_sprint):
    # typed: see <issue 12> & "&lt;" literally — Slack sends the first as entities, the last escaped again
    await ok(slack, 'story block S-1 reason="see &lt;issue 12&gt; &amp; &amp;lt;b&amp;gt;"')
    assert (await stored_story(db, 1)).blocked_reason == "see <issue 12> & &lt;b&gt;"
    card = await ok(slack, "story show S-1")
    assert card_fields(card).endswith("*Status* blocked — see &lt;issue 12&gt; &amp; &amp;lt;b&amp;gt;")


async def test_a_done_story_does_not_move(slack, db):
    await ok(slack, "story add Fix login --type eng")
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "story done S-1")
    await refused(slack, db, "story start S-1", "S-1 is done; it cannot become in progress.", usage=False)
    await refused(
        slack, db, 'story block S-1 reason="x"', "S-1 is done; it cannot become blocked.", usage=False
    )
    await refused(slack, db, "story drop S-1", "S-1 is done; only open stories leave a sprint.", usage=False)
    await refused(
        slack, db, "story archive S-1", "S-1 is done; done stories stay on the record.", usage=False
    )


async def test_a_story_in_progress_or_blocked_still_offers_its_checklist_forms(slack, db, in_sprint):
    await ok(slack, "story start S-1")
    [fill] = buttons(await ok(slack, "ready S-1"))
    assert (fill["action_id"], fill["value"]) == (ids.OPEN_READY_MODAL, "S-1")
    await ok(slack, 'story block S-1 reason="GPU"')
    [fill] = buttons(await ok(slack, "dod S-1"))
    assert (fill["action_id"], fill["value"]) == (ids.OPEN_DONE_MODAL, "S-1")
    # and the card keeps its buttons
    assert [b["action_id"] for b in buttons(await ok(slack, "story show S-1"))] == [
        ids.OPEN_READY_MODAL,
        ids.OPEN_DONE_MODAL,
        ids.OPEN_STORY_EDIT,
        ids.MARK_DONE,
    ]


async def test_story_drop_takes_it_back_to_the_backlog(slack, db, in_sprint):
    await ok(slack, "story start S-1")
    body = await ok(slack, "story drop S-1")
    assert body["text"] == "Dropped S-1 from Sprint 1."
    assert shown(body).endswith(
        ":leftwards_arrow_with_hook: Dropped *S-1* Train ranker from sprint *Sprint 1*; it is back in the backlog."
    )
    stored = await stored_story(db, 1)
    assert (stored.sprint_id, stored.status) == (None, "in_progress")
    assert await audited(db, "sprint.drop") == [
        (ALICE, "sprint.drop", "S-1", {"sprint": "Sprint 1", "team": "recsys", "points": 5})
    ]
    assert listed_keys(await ok(slack, "story list --sprint backlog")) == ["S-1", "S-2"]
    assert listed_keys(await ok(slack, "story list --sprint current")) == []
    # back in the backlog: dropping it again is refused
    await refused(slack, db, "story drop S-1", "S-1 is in the backlog, not in a sprint.", usage=False)


async def test_story_drop_by_a_non_lead_is_forbidden(slack, db, in_sprint):
    text = await refused(slack, db, "story drop S-1", usage=False, user=BOB)
    assert text == ":warning: Only the leads of team recsys can drop stories from a sprint."
    assert (await stored_story(db, 1)).sprint_id is not None


async def test_story_archive_puts_a_story_away(slack, db, in_sprint):
    # a backlog story: anyone may
    body = await ok(slack, "story archive S-2", user=BOB)
    assert body["text"] == "Archived S-2."
    assert shown(body).endswith(
        ":file_cabinet: Archived *S-2* Someday: off every list and board, kept in the audit log (`audit S-2`)."
    )
    assert (await stored_story(db, 2)).status == "archived"
    # one in a sprint: a lead's decision, and it leaves the sprint
    text = await refused(slack, db, "story archive S-1", usage=False, user=BOB)
    assert text == ":warning: Only the leads of team recsys can archive a story that is in a sprint."
    await ok(slack, "story archive S-1")
    stored = await stored_story(db, 1)
    assert (stored.status, stored.sprint_id) == ("archived", None)
    assert await audited(db, "story.archive") == [
        (BOB, "story.archive", "S-2", {"from": "open", "to": "archived"}),
        (ALICE, "story.archive", "S-1", {"from": "open", "to": "archived"}),
    ]
    # the audit command shows it, in words (not the action's name)
    log = shown(await ok(slack, "audit S-1"))
    assert "story.archive" not in log
    last = [line for line in log.split("\n") if line.startswith("`#")][-1]
    assert last.split(" · ", 1)[1] == f"<@{ALICE}> · archived it: nobody will do it"


async def test_an_archived_story_is_off_the_lists_and_frozen(slack, db, in_sprint):
    await ok(slack, "story archive S-1")
    for command in ("story list", "story list --all", "story list --sprint backlog", "story list --mine"):
        assert "S-1" not in listed_keys(await ok(slack, command)), command
    assert "S-1" not in shown(await ok(slack, "sprint current"))
    assert "S-1" not in shown(await ok(slack, "sprint plan"))
    card = await ok(slack, "story show S-1")
    assert card_fields(card).endswith("*Sprint* backlog · *Status* archived")
    assert buttons(card) == []
    await refused(slack, db, "story archive S-1", "S-1 is already archived.", usage=False)
    await refused(slack, db, "story start S-1", "S-1 is archived; it cannot become in progress.", usage=False)
    await refused(
        slack,
        db,
        "story assign S-1 <@U03DAVE|dave>",
        "S-1 is archived and can no longer be edited.",
        usage=False,
    )
    await refused(
        slack,
        db,
        "ready S-1 data_available=x",
        "S-1 is already archived; its checklists are closed.",
        usage=False,
    )
    await refused(slack, db, 'sprint commit S-1 --force reason="x"', "S-1 is already archived.", usage=False)
    await refused(slack, db, "story done S-1", "S-1 is already archived.", usage=False)
    response = await slack.command("story edit S-1")
    assert response.json()["text"] == ":warning: S-1 is archived and can no longer be edited."
    assert slack.fake.of("views.open") == []
