"""An approver who is on no team, typing or clicking in the governance channel or their App Home, is
answered for the team whose reviews they decide instead of "I can't tell which team this is for"."""

from __future__ import annotations

import json

from bot.slack import ids
from tests.conftest import CAROL, GOV, make_config
from tests.slack.helpers import ok, shown, warning

ERIN = "U05ERIN"  # approves for recsys and for platform, on no team either


async def test_an_approver_typing_in_the_governance_channel_gets_that_team(slack, db):
    await ok(slack, "story add Train the ranker")
    await ok(slack, "exp add S-1 Two-tower")

    body = await ok(slack, "exp list", user=CAROL, channel=GOV)

    assert "*Experiments · team recsys* — 1 experiment" in shown(body)
    assert "*E-1* Two-tower · proposed" in shown(body)
    assert "can't tell which team" not in shown(body)


async def test_anyone_typing_in_a_governance_channel_gets_its_team(slack, db):
    body = await ok(slack, "story list", user="U07NOBODY", channel=GOV)
    assert "Stories · team recsys" in shown(body)


async def test_an_approver_clicking_add_a_story_on_their_home_gets_a_form_for_that_team(slack, db):
    response = await slack.click(ids.OPEN_STORY_ADD, user=CAROL, from_home=True)

    assert response.status_code == 200
    view = slack.last_view()
    assert view["callback_id"] == ids.STORY_MODAL
    assert json.loads(view["private_metadata"])["team"] == "recsys"


async def test_an_approver_of_two_teams_outside_a_channel_is_still_asked(make_app, db):
    config = make_config(
        governance={"approvers": [CAROL, ERIN]},
        platform={"governance": {"channel": "C0999PLATGOV", "approvers": [ERIN]}},
    )
    async with make_app(config) as slack:
        text = warning(await slack.command("story list", user=ERIN, channel="D05ERIN"))
        assert "I can't tell which team this is for (recsys, platform)." in text
        # in either governance channel the channel decides
        assert "team platform" in shown(await ok(slack, "story list", user=ERIN, channel="C0999PLATGOV"))
        assert "team recsys" in shown(await ok(slack, "story list", user=ERIN, channel=GOV))
