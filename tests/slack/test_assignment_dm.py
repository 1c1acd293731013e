"""The DM a new owner gets: the story at a glance (key, title, type, points, sprint or backlog, readiness),
each criterion its Definition of Ready lacks once with what to write, and buttons that open the
readiness form and the story — which work from the DM."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.slack import ids
from tests.conftest import ALICE, BOB
from tests.slack.helpers import ML_READY, buttons, deliver, make_ready, missing_once, ok, posted, shown
from tests.slack_driver import SlackDriver

BOB_DM = "D02BOBDM"  # the channel of Bob's DM with the app, as Slack reports it on a click there


@pytest.fixture
def worker(make_worker):
    return make_worker()


async def dm_to_bob(slack: SlackDriver, worker, clock) -> dict[str, Any]:
    await deliver(worker, clock)
    [dm] = posted(slack, BOB)
    return dm


async def test_the_dm_shows_the_story_what_it_lacks_and_buttons(slack, db, worker, clock):
    await ok(slack, "story add Train the ranker --points 5")
    await ok(slack, 'ready S-1 data_available=s3://clicks validation_dataset=n/a reason="no PII"')

    await ok(slack, "story assign S-1 <@U02BOB|bob>")
    dm = await dm_to_bob(slack, worker, clock)

    assert dm["text"] == f"<@{ALICE}> assigned you S-1: Train the ranker"  # the notification
    text = shown(dm)
    assert f":bust_in_silhouette: <@{ALICE}> assigned you *S-1* Train the ranker" in text
    assert "ml · 5 points · backlog · :red_circle: not Ready (2/6)" in text
    assert "Its Definition of Ready still lacks:" in text
    missing_once(
        text,
        "Feature stability",
        "Reproducible environment",
        "Measurable evaluation criteria",
        "Data contract",
    )
    assert ":x: Data contract — _Schema and owner agreed with the data producer_" in text
    assert "Data availability" not in text and "Validation data" not in text  # answered, waived
    assert [(b["text"]["text"], b["action_id"], b["value"]) for b in buttons(dm)] == [
        ("Fill readiness", ids.OPEN_READY_MODAL, "S-1"),
        ("Open story", ids.OPEN_STORY_EDIT, "S-1"),
    ]


async def test_a_story_in_a_sprint_with_one_point_says_so(slack, db, worker, clock):
    await ok(slack, "sprint start Sprint 7 --from 2026-12-07 --to 2026-12-18")
    await ok(slack, 'story add Tune the ranker --points 1 --sprint current --force reason="agreed"')

    await ok(slack, "story assign S-1 <@U02BOB|bob>")
    dm = await dm_to_bob(slack, worker, clock)

    assert "ml · 1 point · sprint Sprint 7 · :red_circle: not Ready (0/6)" in shown(dm)
    missing_once(shown(dm), *ML_READY)


async def test_a_ready_story_offers_its_definition_of_done_instead(slack, db, worker, clock):
    await ok(slack, "story add Train the ranker")
    await make_ready(slack)

    await ok(slack, "story assign S-1 <@U02BOB|bob>")
    dm = await dm_to_bob(slack, worker, clock)

    text = shown(dm)
    assert "ml · no points yet · backlog · :large_green_circle: Ready" in text
    assert "still lacks" not in text and ":x:" not in text
    assert [(b["text"]["text"], b["action_id"]) for b in buttons(dm)] == [
        ("Fill Definition of Done", ids.OPEN_DONE_MODAL),
        ("Open story", ids.OPEN_STORY_EDIT),
    ]


async def test_an_eng_story_lists_its_own_criteria(slack, db, worker, clock):
    await ok(slack, "story add Fix login --type eng --owner <@U02BOB|bob>")
    dm = await dm_to_bob(slack, worker, clock)
    text = shown(dm)
    assert "eng · no points yet · backlog · :red_circle: not Ready (0/2)" in text
    missing_once(text, "Acceptance criteria", "Dependencies")


async def test_the_dm_buttons_open_the_readiness_form_and_the_story_form(slack, db, worker, clock):
    await ok(slack, "story add Train the ranker --owner <@U02BOB|bob>")
    dm = await dm_to_bob(slack, worker, clock)
    fill, story = buttons(dm)

    await slack.click(fill["action_id"], fill["value"], user=BOB, channel=BOB_DM)
    view = slack.last_view()
    assert view["callback_id"] == ids.CRITERIA_MODAL
    assert json.loads(view["private_metadata"])["story"] == "S-1"

    await slack.click(story["action_id"], story["value"], user=BOB, channel=BOB_DM)
    view = slack.last_view()
    assert view["callback_id"] == ids.STORY_MODAL
    assert json.loads(view["private_metadata"])["story"] == "S-1"


async def test_the_dm_escapes_what_people_typed(slack, db, worker, clock):
    await ok(slack, "story add &lt;!channel&gt; ping &amp; run --owner <@U02BOB|bob>")
    dm = await dm_to_bob(slack, worker, clock)
    for text in [dm["text"], shown(dm)]:
        assert "<!channel>" not in text
    assert "*S-1* &lt;!channel&gt; ping &amp; run" in shown(dm)


async def test_nobody_is_told_when_they_assign_themselves(slack, db, worker, clock):
    await ok(slack, "story add Train the ranker")
    await ok(slack, "story assign S-1 <@U02BOB|bob>", user=BOB)
    await deliver(worker, clock)
    assert posted(slack) == []
