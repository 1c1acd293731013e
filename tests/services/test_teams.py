"""Which team a request is for, and who may take a team's sprint decisions."""

from __future__ import annotations

import pytest

from bot.config import parse_config
from bot.services.errors import Forbidden, Invalid
from bot.services.teams import require_lead, require_member, resolve_team
from tests.conftest import ALICE, BOB, CAROL, DAVE, FRANK, GOV, PLATFORM, RECSYS

NOBODY = "U07NOBODY"  # in no team, approves nothing

ONE_TEAM = parse_config(
    f"""
teams:
  - name: solo
    channel: C0SOLO
    members: [{ALICE}]
"""
)

OVERLAPPING = parse_config(
    f"""
teams:
  - name: recsys
    channel: {RECSYS}
    members: [{ALICE}, {BOB}]
  - name: platform
    channel: {PLATFORM}
    members: [{BOB}, {FRANK}]
  - name: search
    channel: C0SEARCH
    members: [{DAVE}]
    leads: [{BOB}]
"""
)


@pytest.mark.parametrize(
    ("channel", "user", "team"),
    [
        (RECSYS, ALICE, "recsys"),
        (PLATFORM, FRANK, "platform"),
        (PLATFORM, ALICE, "platform"),  # the channel wins over membership
        (RECSYS, CAROL, "recsys"),  # even for someone in no team
    ],
)
def test_the_channel_decides(config, channel, user, team):
    assert resolve_team(config, channel_id=channel, user_id=user).name == team


@pytest.mark.parametrize(("user", "team"), [(ALICE, "recsys"), (DAVE, "recsys"), (FRANK, "platform")])
def test_elsewhere_the_one_team_you_belong_to(config, user, team):
    assert resolve_team(config, channel_id="D0DIRECT", user_id=user).name == team
    assert resolve_team(config, channel_id=None, user_id=user).name == team


def test_a_lead_belongs_to_the_team():
    config = parse_config(
        f"""
teams:
  - name: a
    channel: C0AAA
    members: [{ALICE}]
  - name: b
    channel: C0BBB
    leads: [{CAROL}]
"""
    )
    assert resolve_team(config, channel_id=None, user_id=CAROL).name == "b"


def test_the_only_team_serves_everyone():
    assert resolve_team(ONE_TEAM, channel_id="D0DIRECT", user_id=CAROL).name == "solo"
    assert resolve_team(ONE_TEAM, channel_id=None, user_id=ALICE).name == "solo"


def test_someone_in_several_teams_outside_a_team_channel_is_asked():
    with pytest.raises(Invalid) as info:
        resolve_team(OVERLAPPING, channel_id="D0DIRECT", user_id=BOB)
    message = info.value.message
    assert "recsys, platform, search" in message
    assert "team's channel" in message
    # The channel still decides for them.
    assert resolve_team(OVERLAPPING, channel_id=PLATFORM, user_id=BOB).name == "platform"


def test_someone_in_no_team_with_several_teams_is_asked_listing_all(config):
    with pytest.raises(Invalid) as info:
        resolve_team(config, channel_id="D0DIRECT", user_id=NOBODY)
    assert "(recsys, platform)" in info.value.message


def test_a_governance_channel_belongs_to_its_team(config):
    # Carol approves recsys's reviews in C0456GOV; Frank is on platform, but here it is recsys's channel
    assert resolve_team(config, channel_id=GOV, user_id=CAROL).name == "recsys"
    assert resolve_team(config, channel_id=GOV, user_id=NOBODY).name == "recsys"


def test_an_approver_in_no_team_belongs_to_the_team_they_approve_for(config):
    assert resolve_team(config, channel_id="D0DIRECT", user_id=CAROL).name == "recsys"
    assert resolve_team(config, channel_id=None, user_id=CAROL).name == "recsys"
    # a team channel still decides
    assert resolve_team(config, channel_id=PLATFORM, user_id=CAROL).name == "platform"


SHARED_GOVERNANCE = parse_config(
    f"""
teams:
  - name: recsys
    channel: {RECSYS}
    members: [{ALICE}]
    governance: {{channel: {GOV}, approvers: [{CAROL}]}}
  - name: platform
    channel: {PLATFORM}
    members: [{FRANK}]
    governance: {{channel: {GOV}, approvers: [{CAROL}, {DAVE}]}}
"""
)


def test_a_shared_governance_channel_is_narrowed_by_who_you_are():
    assert resolve_team(SHARED_GOVERNANCE, channel_id=GOV, user_id=FRANK).name == "platform"
    assert resolve_team(SHARED_GOVERNANCE, channel_id=GOV, user_id=DAVE).name == "platform"
    with pytest.raises(Invalid) as info:  # Carol approves for both
        resolve_team(SHARED_GOVERNANCE, channel_id=GOV, user_id=CAROL)
    assert info.value.message == (
        "I can't tell which team this is for (recsys, platform). Run the command in your team's channel, or "
        "add --team NAME."
    )


def test_an_approver_of_several_teams_in_no_team_is_asked_listing_those():
    with pytest.raises(Invalid) as info:
        resolve_team(SHARED_GOVERNANCE, channel_id="D0DIRECT", user_id=CAROL)
    assert "(recsys, platform)" in info.value.message


def test_ambiguous_message_lists_only_your_teams():
    with pytest.raises(Invalid) as info:
        resolve_team(OVERLAPPING, channel_id=None, user_id=BOB)
    assert "search" in info.value.message  # Bob leads search: he belongs to all three
    config = parse_config(
        f"""
teams:
  - {{name: a, channel: C0AAA, members: [{ALICE}, {BOB}]}}
  - {{name: b, channel: C0BBB, members: [{BOB}]}}
  - {{name: c, channel: C0CCC, members: [{DAVE}]}}
"""
    )
    with pytest.raises(Invalid) as info:
        resolve_team(config, channel_id=None, user_id=BOB)
    assert "(a, b)" in info.value.message


def test_require_lead_lets_a_lead_through(config):
    require_lead(config.team("recsys"), ALICE, doing="start a sprint")


@pytest.mark.parametrize("user", [BOB, DAVE, FRANK])
def test_require_lead_refuses_others_when_the_team_has_leads(config, user):
    with pytest.raises(Forbidden) as info:
        require_lead(config.team("recsys"), user, doing="close the sprint")
    assert info.value.message == "Only the leads of team recsys can close the sprint."


def test_a_team_without_leads_lets_its_members_decide(config):
    require_lead(config.team("platform"), FRANK, doing="start a sprint")


@pytest.mark.parametrize("user", [ALICE, CAROL])
def test_a_team_without_leads_refuses_people_outside_it(config, user):
    with pytest.raises(Forbidden) as info:
        require_lead(config.team("platform"), user, doing="start a sprint")
    assert info.value.message == "Only members of team platform can start a sprint."


def test_a_team_that_lists_nobody_is_open_to_the_workspace():
    config = parse_config("teams: [{name: open, channel: C0001}]")
    require_lead(config.teams[0], CAROL, doing="start a sprint")
    assert require_member(config, "open", CAROL, doing="change S-1") is config.teams[0]


@pytest.mark.parametrize("actor", ["api:pipeline", "mlflow"])
def test_actors_that_are_not_people_are_checked_at_their_own_door(config, actor):
    assert require_member(config, "recsys", actor, doing="change S-1").name == "recsys"


def test_a_team_no_longer_configured_refuses_everyone(config):
    with pytest.raises(Forbidden) as info:
        require_member(config, "gone", ALICE, doing="change S-1")
    assert info.value.message == "Team gone is no longer configured, so nobody can change S-1."
