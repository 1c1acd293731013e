"""`whoami`: the ids a person needs to write themselves and their channel into config.yaml, and what the
configuration already makes them, through the signed slash command."""

from __future__ import annotations

from functools import partial

from tests.conftest import ALICE, BOB, CAROL, GOV, PLATFORM, RECSYS, make_config
from tests.slack import helpers
from tests.slack.helpers import shown, warning

ok = partial(helpers.ok, ephemeral=True)  # for the person alone


async def test_whoami_in_the_team_channel_shows_the_ids_and_the_roles(slack):
    body = await ok(slack, "whoami")
    assert body["text"] == f"Your Slack user id is {ALICE}; this channel's id is {RECSYS}."
    assert shown(body).splitlines()[:5] == [
        f"Your Slack user id is {ALICE}; this channel's id is {RECSYS}.",
        f"*Your Slack user id:* `{ALICE}`",
        f"*This channel's id:* `{RECSYS}` (team *recsys*'s channel)",
        "*Your teams:*",
        "• *recsys*: member and lead",
    ]
    assert f"put `{ALICE}` under its `members:` in config.yaml" in shown(body)
    assert helpers.sent(slack) == []  # answered in the ack; nothing else shown to anyone


async def test_whoami_of_an_approver_in_the_review_channel(slack):
    text = shown(await ok(slack, "whoami", user=CAROL, channel=GOV))
    assert f"*This channel's id:* `{GOV}` (where team *recsys*'s reviews are decided)" in text
    assert "• *recsys*: approver" in text


async def test_whoami_lists_every_team_with_its_roles(make_app):
    config = make_config(
        platform={"members": [BOB], "leads": [BOB]},
        governance={"approvers": [BOB]},
    )
    async with make_app(config, user=BOB, channel=PLATFORM) as slack:
        text = shown(await ok(slack, "whoami"))
    assert f"*This channel's id:* `{PLATFORM}` (team *platform*'s channel)" in text
    assert "• *recsys*: member and approver\n• *platform*: member and lead" in text


async def test_whoami_of_someone_in_no_team_in_a_channel_no_team_uses(slack):
    text = shown(await ok(slack, "whoami", user="U0NEWCOMER", channel="C0ELSEWHERE"))
    assert "*Your Slack user id:* `U0NEWCOMER`" in text
    assert "*This channel's id:* `C0ELSEWHERE` (no team uses it yet)" in text
    assert "*Your teams:* none yet." in text


async def test_whoami_in_a_direct_message_says_where_to_type_it_for_a_channel_id(slack):
    body = await ok(slack, "whoami", channel="D0ALICE")
    assert "*This conversation:* `D0ALICE`, a direct message. Type `/scrum whoami` in a channel" in shown(
        body
    )


async def test_whoami_takes_no_arguments(slack):
    warning(await slack.command("whoami @bob"), "`whoami` takes no arguments.", usage="whoami")


async def test_help_lists_whoami(slack):
    assert "`/scrum whoami`\n    Your Slack user id, this channel's id and your teams" in shown(
        await ok(slack, "help")
    )
