"""Values the database cannot hold, and input echoed back at length: refused the same way on SQLite and
PostgreSQL, with a sentence that names the field, and nothing stored."""

from __future__ import annotations

import pytest

from bot.slack import ids
from bot.store.models import Story
from tests.factories import rows, snapshot
from tests.slack.helpers import new_story
from tests.slack.test_modals import story_values


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f"], ids=["NUL", "BEL", "ESC", "DEL"])
async def test_a_command_with_a_control_character_is_refused(slack, db, char):
    before = await snapshot(db)

    response = await slack.command(f"story add Train{char}the ranker")

    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith(":warning: That text holds a control character"), body
    assert await snapshot(db) == before


async def test_tabs_and_newlines_are_ordinary_text(slack, db):
    await new_story(slack, "Train\tthe ranker")
    [story] = await rows(db, Story)
    assert story.title == "Train the ranker"


async def test_a_form_with_a_control_character_shows_the_error_under_that_field(slack, db):
    await new_story(slack)
    await slack.command("story edit S-1")
    before = await snapshot(db)

    response = await slack.submit(slack.last_view(), story_values(title="Renamed\x00"))

    body = response.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == [ids.FIELD_TITLE]
    assert "control character" in body["errors"][ids.FIELD_TITLE]
    assert await snapshot(db) == before


async def test_a_user_id_longer_than_slack_makes_is_refused(slack, db):
    await new_story(slack)
    before = await snapshot(db)

    response = await slack.command("story assign S-1 <@U" + "A" * 89 + ">")

    text = response.json()["text"]
    assert text.startswith(":warning: I don't know a Slack user"), text
    assert len(text) < 300, len(text)  # the 92-character mention is not repeated whole
    assert await snapshot(db) == before


async def test_a_long_argument_is_not_echoed_whole(slack, db):
    await new_story(slack)

    response = await slack.command("story list --sprint " + "x" * 5000)

    text = response.json()["text"]
    assert text.startswith(":warning: Team recsys has no sprint called"), text
    assert len(text) < 400, len(text)
