"""Replays: the same signed request sent again within Slack's five minutes is acknowledged and ignored when
it would change something (a command, a click, a form), as Slack's own event retries are."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from bot.slack import ids
from bot.store.models import SlackEvent, Story
from tests.conftest import ALICE, RECSYS
from tests.factories import rows, snapshot
from tests.slack.helpers import new_story
from tests.slack.test_modals import story_values
from tests.slack_driver import signed_headers


def command_body(text: str, trigger: str = "13345224609.738474920.8088930838d") -> str:
    return urlencode(
        {
            "team_id": "T0001",
            "channel_id": RECSYS,
            "user_id": ALICE,
            "command": "/scrum",
            "text": text,
            "response_url": "http://127.0.0.1:9/response/x",
            "trigger_id": trigger,
        }
    )


async def test_a_replayed_command_that_changes_something_runs_once(slack, db):
    body = command_body("story add Train the ranker")

    first = await slack.post(body, signed_headers(body))
    again = await slack.post(body, signed_headers(body))

    assert "Added S-1" in first.json()["text"]
    assert again.status_code == 200 and again.text == ""
    assert [s.title for s in await rows(db, Story)] == ["Train the ranker"]


async def test_two_commands_with_their_own_triggers_both_run(slack, db):
    for n in (1, 2):
        body = command_body(f"story add Story {n}", trigger=f"trigger.{n}")
        assert "Added" in (await slack.post(body, signed_headers(body))).json()["text"]
    assert len(await rows(db, Story)) == 2


async def test_a_replayed_command_that_only_shows_something_is_answered_again(slack, db):
    await new_story(slack)
    body = command_body("story list", trigger="trigger.list")
    before = len(await rows(db, SlackEvent))

    answers = [(await slack.post(body, signed_headers(body))).json()["text"] for _ in range(2)]

    assert answers[0] == answers[1] and "Stories" in answers[0]
    assert len(await rows(db, SlackEvent)) == before  # reading claims nothing


async def test_a_replayed_button_opens_one_form(slack, db):
    await new_story(slack)
    payload = {
        "type": "block_actions",
        "user": {"id": ALICE},
        "trigger_id": "13345224609.1.replayed",
        "channel": {"id": RECSYS},
        "container": {"type": "message", "message_ts": "1.1", "channel_id": RECSYS, "is_ephemeral": True},
        "actions": [{"type": "button", "action_id": ids.OPEN_STORY_EDIT, "value": "S-1", "action_ts": "1.2"}],
    }
    body = urlencode({"payload": json.dumps(payload)})

    for _ in range(2):
        assert (await slack.post(body, signed_headers(body))).status_code == 200

    assert len(slack.fake.of("views.open")) == 1


async def test_a_replayed_form_submission_changes_once(slack, db):
    await new_story(slack)
    await slack.command("story edit S-1")
    view = slack.last_view()
    payload = {
        "type": "view_submission",
        "user": {"id": ALICE},
        "trigger_id": "13345224609.2.replayed",
        "view": {
            "id": "V0001",
            "type": "modal",
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "blocks": view["blocks"],
            "state": {
                "values": {k: {"input": v} for k, v in story_values(title="Renamed once").items()},
            },
        },
    }
    body = urlencode({"payload": json.dumps(payload)})

    first = await slack.post(body, signed_headers(body))
    after_first = await snapshot(db)
    again = await slack.post(body, signed_headers(body))

    assert first.status_code == 200 and again.status_code == 200 and again.text == ""
    [story] = await rows(db, Story)
    assert story.title == "Renamed once"
    unchanged = {k: v for k, v in (await snapshot(db)).items() if k != "slack_event"}
    assert unchanged == {k: v for k, v in after_first.items() if k != "slack_event"}
