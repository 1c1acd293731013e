"""Emails and #channel names in the configuration, resolved through Slack's Web API (the fake one):
what the bot then uses, and what it says about a name Slack does not know."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import AppConfig, ConfigError, parse_config
from bot.integrations.slack_names import SlackUnavailable, check_with_slack, resolve_names
from bot.jobs.ceremonies import CeremonyJobs
from bot.jobs.outbox_worker import OutboxWorker
from tests.clock import FakeClock
from tests.conftest import ALICE, BOB, CAROL, DAVE, FRANK, GOV, PLATFORM, RECSYS
from tests.fake_slack import FakeSlack
from tests.slack.helpers import deliver, ok, posted, shown

# the recsys team with its channel and people written as a person would, knowing no ids
BY_NAME = """\
timezone: Europe/Berlin
teams:
  - name: recsys
    channel: "#recsys"
    members: [alice@example.com, bob@example.com, U03DAVE]
    leads: [alice@example.com]
    governance:
      channel: "#ml-reviews"
      approvers: [carol@example.com]
    ceremonies:
      retro: {cron: "0 16 * * mon"}
  - name: platform
    channel: C0789PLATFORM
    members: [frank@example.com]
"""


@pytest.fixture
def workspace(fake_slack: FakeSlack) -> FakeSlack:
    """The fake Slack's directory: the test people with their emails, and a few pages of channels
    (conversations.list answers two a page), #ml-reviews a private one the bot was invited to."""
    fake_slack.reset()
    for user, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (DAVE, "dave"), (FRANK, "frank")):
        fake_slack.users[user] = {"email": f"{name}@example.com", "real_name": name.title()}
    fake_slack.channels.update(
        {
            "C0GENERAL": {"name": "general"},
            "C0RANDOM": {"name": "random"},
            PLATFORM: {"name": "platform"},
            "C0OLD": {"name": "old-recsys", "is_archived": True},
            RECSYS: {"name": "recsys"},
            "G0SECRET": {"name": "secret", "is_private": True},  # the bot is not in it
            GOV: {"name": "ml-reviews", "is_private": True, "is_member": True},
        }
    )
    return fake_slack


@pytest.fixture
def client(fake_slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test-token", base_url=fake_slack.api_url)


async def refused(text: str, client: AsyncWebClient) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        await resolve_names(parse_config(text), client)
    return caught.value.problems


# ── resolving ────────────────────────────────────────────────────────────────────────────────


async def test_emails_and_channel_names_become_ids(workspace, client):
    config = await resolve_names(parse_config(BY_NAME), client)
    recsys, platform = config.teams
    assert recsys.channel == RECSYS
    assert recsys.members == [ALICE, BOB, DAVE] and recsys.leads == [ALICE]
    assert recsys.governance is not None
    assert recsys.governance.channel == GOV and recsys.governance.approvers == [CAROL]
    assert platform.channel == PLATFORM and platform.members == [FRANK]
    # what is not a name is as it was, and lines are still known
    assert recsys.ceremonies["retro"].cron == "0 16 * * mon"
    assert config.where(("teams", 0, "members")) == "config.yaml:5"


async def test_a_drift_rule_channel_written_as_a_name_becomes_its_id(workspace, client):
    text = BY_NAME + (
        "drift:\n  rules:\n"
        '    - {model: "*", metric: psi, direction: above, warn: 0.1, team: platform, channel: "#random"}\n'
        "    - {model: '*', metric: auc, direction: below, warn: 0.8, team: recsys}\n"
    )
    config = await resolve_names(parse_config(text), client)
    assert [r.channel for r in config.drift.rules] == ["C0RANDOM", None]
    wrong = text.replace('"#random"', '"#nowhere"')
    (problem,) = await refused(wrong, client)
    assert "drift.rules[0].channel" in problem and "no channel named #nowhere" in problem


async def test_ids_are_taken_as_written_and_each_name_is_asked_once(workspace, client):
    await resolve_names(parse_config(BY_NAME), client)
    assert sorted(c.args["email"] for c in workspace.of("users.lookupByEmail")) == [
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
        "frank@example.com",
    ]
    assert not workspace.of("users.info") and not workspace.of("conversations.info")


async def test_channels_are_found_across_pages_and_the_listing_stops_when_all_are_found(workspace, client):
    await resolve_names(parse_config(BY_NAME), client)
    pages = workspace.of("conversations.list")
    # #recsys is on the third page of two and #ml-reviews on the fourth; nothing after is asked for
    assert [p.args.get("cursor") for p in pages] == [None, "2", "4"]
    assert all(p.args["types"] == "public_channel,private_channel" for p in pages)
    assert all(p.args["exclude_archived"] in ("1", "true") for p in pages)


async def test_a_config_without_names_asks_slack_nothing(workspace, client):
    text = "teams: [{name: recsys, channel: C0123RECSYS, members: [U01ALICE]}]\n"
    config = await resolve_names(parse_config(text), client)
    assert config.teams[0].channel == RECSYS
    assert workspace.calls == []


async def test_names_slack_does_not_know_refuse_the_start_one_sentence_each_by_line(workspace, client):
    text = (
        BY_NAME.replace("bob@example.com", "bobby@example.com")
        .replace('"#recsys"', '"#recsys-team"')
        .replace("frank@example.com", "frank@example.org")
    )
    assert await refused(text, client) == [
        "config.yaml:4: teams[0].channel: no channel named #recsys-team that the bot can see: check the "
        "spelling; if the channel is private, invite the bot first (/invite @cadence in the channel); or "
        "write the channel id (type /scrum whoami in the channel to see it)",
        "config.yaml:5: teams[0].members[1]: no one in this Slack workspace has the email "
        "bobby@example.com: check the spelling, or write their user id instead (they see it by typing "
        "/scrum whoami)",
        "config.yaml:14: teams[1].members[0]: no one in this Slack workspace has the email "
        "frank@example.org: check the spelling, or write their user id instead (they see it by typing "
        "/scrum whoami)",
    ]


async def test_a_private_channel_the_bot_is_not_in_cannot_be_found(workspace, client):
    problems = await refused(BY_NAME.replace('"#ml-reviews"', '"#secret"'), client)
    assert problems == [
        "config.yaml:8: teams[0].governance.channel: no channel named #secret that the bot can see: check "
        "the spelling; if the channel is private, invite the bot first (/invite @cadence in the channel); "
        "or write the channel id (type /scrum whoami in the channel to see it)"
    ]
    workspace.channels["G0SECRET"]["is_member"] = True  # after /invite @cadence
    config = await resolve_names(parse_config(BY_NAME.replace('"#ml-reviews"', '"#secret"')), client)
    assert config.teams[0].governance is not None and config.teams[0].governance.channel == "G0SECRET"


async def test_an_archived_channel_is_not_found_by_name(workspace, client):
    assert (await refused(BY_NAME.replace('"#recsys"', '"#old-recsys"'), client))[0].startswith(
        "config.yaml:4: teams[0].channel: no channel named #old-recsys that the bot can see"
    )


async def test_one_channel_written_as_a_name_and_as_an_id_is_two_teams_sharing_it(workspace, client):
    text = BY_NAME.replace("channel: C0789PLATFORM", "channel: C0123RECSYS")
    assert await refused(text, client) == [
        "config.yaml:13: teams[1].channel: two teams share the channel 'C0123RECSYS' (teams[0] has it too); "
        "each team needs its own channel"
    ]


async def test_a_missing_scope_is_one_sentence_saying_which_and_what_to_do(workspace, client):
    workspace.fail(
        "users.lookupByEmail", 200, {"ok": False, "error": "missing_scope", "needed": "users:read.email"}
    )
    assert await refused(BY_NAME, client) == [
        "config.yaml:5: teams[0].members[0]: the Slack app lacks the users:read.email scope, which it needs to look people up by "
        "email: update the app with the manifest from `cadence manifest` and reinstall it to the "
        "workspace, or write ids instead of emails and #names"
    ]


async def test_a_refused_token_is_one_sentence(workspace, client):
    workspace.fail("conversations.list", 200, {"ok": False, "error": "invalid_auth"})
    assert await refused(BY_NAME, client) == [
        "config.yaml:4: teams[0].channel: Slack refused SLACK_BOT_TOKEN (invalid_auth); copy the Bot User OAuth Token "
        "(xoxb-…) from the app's Install App page"
    ]


async def test_slack_out_of_reach_is_one_sentence():
    nowhere = AsyncWebClient(token="xoxb-test-token", base_url="http://127.0.0.1:9/api/", timeout=2)
    (problem,) = await refused(BY_NAME, nowhere)
    assert problem.startswith(
        "config.yaml:4: teams[0].channel: could not reach Slack at http://127.0.0.1:9/api/ ("
    )
    assert problem.endswith("check the network, or write ids instead of emails and #names")


# ── checking the ids too (check-config --slack) ──────────────────────────────────────────────


async def test_check_with_slack_confirms_ids_and_flags_the_unknown_the_archived_and_the_deactivated(
    workspace, client
):
    workspace.unknown_users.add(DAVE)
    workspace.users[FRANK]["deleted"] = True
    text = BY_NAME.replace("frank@example.com", FRANK).replace("C0789PLATFORM", "C0OLD")
    who, lookups = await check_with_slack(parse_config(text), client)
    assert who == "cadence in Test"
    said = {(lookup.ref.written, lookup.id, lookup.detail, lookup.problem) for lookup in lookups}
    assert ("#recsys", RECSYS, "#recsys", None) in said
    assert ("alice@example.com", ALICE, "Alice", None) in said
    assert ("#ml-reviews", GOV, "#ml-reviews (private)", None) in said
    problems = {lookup.ref.written: lookup.problem for lookup in lookups if lookup.problem}
    assert problems == {
        DAVE: f"Slack knows no user {DAVE} in this workspace: check the id, or write the person's email "
        "instead (anyone can see their own id by typing /scrum whoami)",
        FRANK: f"{FRANK} is Frank, whose Slack account is deactivated; remove them from the configuration",
        "C0OLD": "C0OLD is #old-recsys, which is archived, so messages to it fail; unarchive it or choose "
        "another channel",
    }


async def test_check_with_slack_stops_at_a_refused_token(workspace, client):
    workspace.fail("auth.test", 200, {"ok": False, "error": "token_revoked"})
    with pytest.raises(SlackUnavailable, match=r"Slack refused SLACK_BOT_TOKEN \(token_revoked\)"):
        await check_with_slack(parse_config(BY_NAME), client)


# ── the bot, started with names, only ever uses ids ──────────────────────────────────────────


async def test_a_ceremony_reminder_goes_to_the_resolved_channel(
    workspace,
    client,
    clock: FakeClock,
    make_jobs: Callable[[AppConfig], CeremonyJobs],
    make_worker: Callable[..., OutboxWorker],
):
    config = await resolve_names(parse_config(BY_NAME), client)
    workspace.reset()
    jobs = make_jobs(config)
    await jobs.run_due(clock.now())  # the team's first look: nothing before now was missed
    clock.set(clock.now().replace(hour=15, minute=0))  # Mon 16:00 in Berlin: the retro
    (run,) = await jobs.run_due(clock.now())
    assert run.ceremony == "retro"
    await deliver(make_worker(), clock)
    (message,) = posted_to_anyone(workspace)
    assert message["channel"] == RECSYS


def posted_to_anyone(fake: FakeSlack) -> list[dict[str, Any]]:
    return [c.args for c in fake.delivered()]


async def test_whoami_in_an_app_started_with_emails_shows_the_roles_of_the_id(workspace, client, make_app):
    config = await resolve_names(parse_config(BY_NAME), client)
    async with make_app(config, user=CAROL, channel=GOV) as slack:
        text = shown(await ok(slack, "whoami", ephemeral=True))
    assert f"*Your Slack user id:* `{CAROL}`" in text
    assert f"*This channel's id:* `{GOV}` (where team *recsys*'s reviews are decided)" in text
    assert "• *recsys*: approver" in text
    assert posted(slack) == []
