"""Scenario tests for the App Home tab: what each person sees, published once per Events API delivery."""

from __future__ import annotations

import json
import time
from typing import Any

from bot.slack import ids
from bot.store.models import SlackEvent
from tests.conftest import ALICE, BOB, DAVE, FRANK, PLATFORM
from tests.factories import rows
from tests.slack.helpers import new_story

SPRINT_CMD = 'sprint start "Sprint 14" --from 2026-12-07 --to 2026-12-18 --goal "Ship the ranker"'


def home_opened(user: str = ALICE, tab: str = "home") -> dict[str, Any]:
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": "D0" + user[1:],
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }


def sections(view: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]


def story_rows(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Story key → its section block (the ones with a button as accessory)."""
    out = {}
    for b in view["blocks"]:
        if b["type"] == "section" and b.get("accessory"):
            text = b["text"]["text"]
            out[text[1 : text.index("*", 1)]] = b
    return out


async def open_home(slack, user: str = ALICE, **kwargs: Any) -> dict[str, Any]:
    response = await slack.event(home_opened(user), **kwargs)
    assert response.status_code == 200, response.text
    publishes = slack.fake.of("views.publish")
    assert publishes, "the home was not published"
    assert publishes[-1].args["user_id"] == user
    return publishes[-1].args["view"]


async def test_home_shows_my_open_stories_with_gaps_and_fill_buttons(slack, db):
    await slack.command(SPRINT_CMD)
    await new_story(
        slack, "Train the ranker --owner <@U01ALICE|alice> --sprint current --points 5 --force reason=planned"
    )
    await new_story(slack, "Backfill features --owner <@U01ALICE|alice>")
    await new_story(
        slack, "Bob's story --owner <@U02BOB|bob> --sprint current --points 3 --force reason=planned"
    )
    await new_story(slack, "Nobody's story")
    await slack.command('ready S-1 data_available=v7 data_contract=n/a reason="internal"')
    slack.fake.reset()

    response = await slack.event(home_opened(ALICE))

    assert response.status_code == 200
    [publish] = slack.fake.of("views.publish")
    assert publish.args["user_id"] == ALICE
    view = publish.args["view"]
    assert view["type"] == "home"
    mine = story_rows(view)
    assert sorted(mine) == ["S-1", "S-2"]
    assert "Bob's story" not in json.dumps(view) and "Nobody's story" not in json.dumps(view)

    s1 = mine["S-1"]["text"]["text"]
    assert "Train the ranker" in s1 and "Sprint 14" in s1
    assert "not Ready (2/6)" in s1
    assert "Missing: Feature stability, Reproducible environment" in s1
    assert "Data availability" not in s1 and "Data contract" not in s1  # answered / waived
    s2 = mine["S-2"]["text"]["text"]
    assert "backlog" in s2 and "(0/6)" in s2
    for key, row in mine.items():
        assert row["accessory"]["action_id"] == ids.OPEN_READY_MODAL
        assert row["accessory"]["value"] == key
        assert row["accessory"]["text"]["text"] == "Fill readiness"

    glance = next(t for t in sections(view) if "Sprint 14" in t and "Goal" in t)
    assert "Ship the ranker" in glance
    assert "0/2 stories done" in glance and "0/8 points" in glance
    headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
    assert "Team recsys: current sprint" in headers
    assert "Team platform: current sprint" not in headers  # not Alice's team


async def test_ready_stories_offer_the_definition_of_done_and_sort_last(slack, db):
    await new_story(slack, "Ready one --owner <@U01ALICE|alice> --type eng")
    await new_story(slack, "Unready one --owner <@U01ALICE|alice> --type eng")
    await slack.command("ready S-1 acceptance_criteria=green dependencies=none")

    view = await open_home(slack)

    rows_ = story_rows(view)
    assert list(rows_) == ["S-2", "S-1"]  # the ones needing work first
    assert ":large_green_circle: Ready" in rows_["S-1"]["text"]["text"]
    assert "Missing" not in rows_["S-1"]["text"]["text"]
    assert rows_["S-1"]["accessory"]["action_id"] == ids.OPEN_DONE_MODAL
    assert rows_["S-2"]["accessory"]["action_id"] == ids.OPEN_READY_MODAL


async def test_done_stories_leave_the_home(slack, db):
    await new_story(slack, "Shipped --owner <@U01ALICE|alice> --type eng")
    await slack.command("dod S-1 code_review=pr/12 tests=ci")
    await slack.command("story done S-1")

    view = await open_home(slack)

    assert story_rows(view) == {}
    assert "You own no open stories." in sections(view)


async def test_home_without_a_current_sprint_says_how_to_start_one(slack, db):
    view = await open_home(slack, BOB)

    assert "You own no open stories." in sections(view)
    assert any("No current sprint" in t and "/scrum sprint start" in t for t in sections(view))
    assert ids.OPEN_STORY_ADD in json.dumps(view)


async def test_each_person_sees_their_own_team(slack, db):
    await slack.command(SPRINT_CMD)
    await new_story(slack, "Platform work --owner <@U04FRANK|frank>", user=FRANK, channel=PLATFORM)

    view = await open_home(slack, FRANK)

    assert slack.fake.of("views.publish")[-1].args["user_id"] == FRANK
    assert list(story_rows(view)) == ["S-1"]
    headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
    assert "Team platform: current sprint" in headers
    assert "Team recsys: current sprint" not in headers
    assert "Sprint 14" not in json.dumps(view)


async def test_a_retried_delivery_publishes_once(slack, db):
    await slack.event(home_opened(ALICE), event_id="Ev0HOME0001")

    response = await slack.event(home_opened(ALICE), event_id="Ev0HOME0001", retry=1)

    assert response.status_code == 200
    assert len(slack.fake.of("views.publish")) == 1
    assert [e.event_id for e in await rows(db, SlackEvent)] == ["Ev0HOME0001"]


async def test_a_new_event_id_publishes_again(slack, db):
    await slack.event(home_opened(ALICE), event_id="Ev0HOME0001")
    await new_story(slack, "Fresh story --owner <@U01ALICE|alice>")

    await slack.event(home_opened(ALICE), event_id="Ev0HOME0002")

    first, second = slack.fake.of("views.publish")
    assert story_rows(first.args["view"]) == {}
    assert list(story_rows(second.args["view"])) == ["S-1"]
    events = sorted(e.event_id for e in await rows(db, SlackEvent) if not e.event_id.startswith("trigger:"))
    assert events == ["Ev0HOME0001", "Ev0HOME0002"]


async def test_opening_the_messages_tab_publishes_nothing(slack, db):
    response = await slack.event(home_opened(ALICE, tab="messages"))

    assert response.status_code == 200
    assert slack.fake.of("views.publish") == []


async def test_home_with_many_stories_stays_within_slacks_limits(slack, db):
    await slack.command(SPRINT_CMD)
    for n in range(1, 36):
        await new_story(
            slack, f"Story {n} --owner <@U01ALICE|alice> --sprint current --points 1 --force reason=planned"
        )

    view = await open_home(slack)

    assert len(view["blocks"]) <= 100
    assert len(story_rows(view)) == 30
    assert any("5 more" in b["elements"][0]["text"] for b in view["blocks"] if b["type"] == "context")
    assert "/scrum story list --mine" in json.dumps(view)
    assert any("0/35 stories done" in t for t in sections(view))  # the sprint glance survives


async def test_a_failed_publish_still_acks_and_its_retry_is_deduplicated(slack, db):
    slack.fake.fail("views.publish", 500, {"ok": False, "error": "internal_error"})

    first = await slack.event(home_opened(DAVE), event_id="Ev0HOME0009")
    again = await slack.event(home_opened(DAVE), event_id="Ev0HOME0009", retry=1)

    assert first.status_code == 200 and again.status_code == 200
    [attempt] = slack.fake.of("views.publish")
    assert attempt.args["user_id"] == DAVE
    assert [e.event_id for e in await rows(db, SlackEvent)] == ["Ev0HOME0009"]


async def test_home_for_someone_outside_every_team_lists_their_stories_only(slack, db):
    await new_story(slack, "Contractor work --owner <@U07ZED|zed>")

    view = await open_home(slack, "U07ZED")

    assert list(story_rows(view)) == ["S-1"]
    assert not any(b["type"] == "header" and "Team" in b["text"]["text"] for b in view["blocks"])
    assert BOB not in json.dumps(view)
