"""Who may do what (docs/authorization.md), tried the way an attacker did: as someone in no team typing in
a channel of no team, and as a member of another team in that team's channel. Every request is signed as
Slack signs it; each refusal is one ephemeral sentence and changes nothing."""

from __future__ import annotations

import json

import pytest

from bot.slack import ids
from bot.store.models import Story
from tests.conftest import ALICE, BOB, CAROL, FRANK, PLATFORM, make_config
from tests.factories import rows, scraped, snapshot
from tests.slack.helpers import ok
from tests.slack.test_modals import story_values

MALLORY = "U0MALLORY"  # in the workspace, in no team
ELSEWHERE = "C0RANDOM"  # a channel of no team

# (who tries, in which channel)
STRANGERS = [
    pytest.param(MALLORY, ELSEWHERE, id="outsider-elsewhere"),
    pytest.param(FRANK, PLATFORM, id="other-team-member"),
]


async def recsys_work(slack) -> None:
    """Recsys's S-1 with E-1 (running, with a result), its sprint, as its lead Alice made them."""
    await ok(slack, "sprint start Sprint 1 --from 2026-12-07 --to 2026-12-18", user=ALICE)
    await ok(slack, "story add Train the ranker --owner <@U02BOB|bob>", user=ALICE)
    await ok(slack, "story add Clean the labels", user=ALICE)
    await ok(slack, "exp add S-1 Two-tower ranker --metric auc --baseline 0.8 --target 0.85", user=ALICE)
    await ok(slack, "exp status E-1 running", user=ALICE)


# Each row of the table in docs/authorization.md that changes a team's work, as a command.
CHANGES = [
    pytest.param("story assign S-1 <@U0MALLORY|me>", "change S-1", id="story-assign"),
    pytest.param("story start S-1", "change S-1", id="story-start"),
    pytest.param('story block S-1 reason="nope"', "change S-1", id="story-block"),
    pytest.param("story done S-1", "change S-1", id="story-done"),
    pytest.param("story archive S-2", "change S-2", id="story-archive"),
    pytest.param("ready S-1 data_available=s3://x", "change S-1", id="ready"),
    pytest.param('dod S-1 data_lineage=n/a reason="nope"', "change S-1", id="dod-waiver"),
    pytest.param("exp add S-1 Mine --metric auc", "add experiments to S-1", id="exp-add"),
    pytest.param("exp status E-1 abandoned", "change E-1", id="exp-status"),
    pytest.param("exp result E-1 auc=0.99", "record results of E-1", id="exp-result"),
    pytest.param("exp review E-1", "ask for its reviews", id="exp-review"),  # see below
]


@pytest.mark.parametrize(("who", "where"), STRANGERS)
@pytest.mark.parametrize(("command", "doing"), CHANGES)
async def test_nobody_outside_the_team_changes_its_work(slack, db, who, where, command, doing):
    await recsys_work(slack)
    before = await snapshot(db)

    response = await slack.command(command, user=who, channel=where)

    body = response.json()
    assert body["response_type"] == "ephemeral", body
    who_may = "members and approvers" if command.startswith("exp review") else "members"
    assert body["text"] == f":warning: Only {who_may} of team recsys can {doing}.", body
    assert await snapshot(db) == before


async def test_the_same_changes_by_a_member_succeed(slack, db):
    await recsys_work(slack)
    await ok(slack, "story assign S-1 <@U03DAVE|dave>", user=BOB)
    await ok(slack, "story start S-1", user=BOB)
    await ok(slack, "ready S-1 data_available=s3://lake/clicks", user=BOB)
    await ok(slack, "exp result E-1 auc=0.86", user=BOB)


@pytest.mark.parametrize(("who", "where"), STRANGERS)
async def test_a_forged_story_form_naming_another_teams_story_changes_nothing(slack, db, who, where):
    await recsys_work(slack)
    await slack.command("story edit S-1", user=ALICE)
    view = slack.last_view()
    assert json.loads(view["private_metadata"])["story"] == "S-1"
    before = await snapshot(db)

    # the form Alice was shown, submitted by someone else: private_metadata names S-1
    response = await slack.submit(view, story_values(title="Renamed by a stranger"), user=who)

    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors", body
    assert "Only members of team recsys can change S-1." in " ".join(body["errors"].values())
    assert await snapshot(db) == before


@pytest.mark.parametrize(("who", "where"), STRANGERS)
async def test_a_forged_checklist_form_changes_nothing(slack, db, who, where):
    await recsys_work(slack)
    await slack.click(ids.OPEN_READY_MODAL, "S-1", user=ALICE)
    view = slack.last_view()
    assert view["callback_id"] == ids.CRITERIA_MODAL
    before = await snapshot(db)

    values = {ids.CRITERION_PREFIX + "data_available": {"type": "plain_text_input", "value": "n/a: forged"}}
    response = await slack.submit(view, values, user=who)

    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors", body
    assert "Only members of team recsys can change S-1." in " ".join(body["errors"].values())
    assert await snapshot(db) == before


@pytest.mark.parametrize("who", [MALLORY, FRANK], ids=["outsider", "other-team-member"])
@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("story add Sneaky story", "Only members of team recsys can add stories to its backlog."),
        (
            "sprint commit S-2 --force reason=x",
            "Only the leads of team recsys can commit stories to a sprint.",
        ),
        ("sprint close", "Only the leads of team recsys can close a sprint."),
        (
            "sprint start Sprint 2 --from 2026-12-21 --to 2027-01-01",
            "Only the leads of team recsys can start a sprint.",
        ),
    ],
    ids=["story-add", "sprint-commit", "sprint-close", "sprint-start"],
)
async def test_typed_in_the_teams_own_channel_a_stranger_is_refused_too(slack, db, who, command, answer):
    await recsys_work(slack)
    before = await snapshot(db)

    response = await slack.command(command, user=who)  # in recsys's channel

    body = response.json()
    assert body["response_type"] == "ephemeral", body
    assert body["text"].startswith(f":warning: {answer}"), body
    assert await snapshot(db) == before


# ── --team: which team a command is for, wherever it is typed ───────────────────────────────


async def test_a_member_names_their_team_from_anywhere(slack, db):
    body = await ok(slack, "story add Label audit --team recsys", user=ALICE, channel=ELSEWHERE)
    assert "Added S-1" in body["text"]
    [story] = await rows(db, Story)
    assert story.team == "recsys"


async def test_reading_another_team_with_team_is_open_to_the_workspace(slack, db):
    await recsys_work(slack)
    body = await ok(slack, "story list --team recsys", user=FRANK, channel=PLATFORM)
    assert "Train the ranker" in json.dumps(body)


async def test_naming_another_team_does_not_let_a_stranger_change_it(slack, db):
    await recsys_work(slack)
    before = await snapshot(db)

    response = await slack.command("story add Sneaky --team recsys", user=FRANK, channel=PLATFORM)

    assert response.json()["text"] == ":warning: Only members of team recsys can add stories to its backlog."
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("story list --team nosuch", "There is no team 'nosuch'; the teams are recsys, platform."),
        ("story list --team", "--team needs a team name, e.g. --team recsys."),
    ],
    ids=["unknown-team", "no-name"],
)
async def test_a_wrong_team_is_named(slack, db, text, answer):
    response = await slack.command(text, user=ALICE, channel=ELSEWHERE)
    assert response.json()["text"].startswith(f":warning: {answer}")


async def test_refusals_are_counted_for_the_operator(slack, db):
    await recsys_work(slack)
    for command in ("story start S-1", "exp status E-1 abandoned"):
        await slack.command(command, user=MALLORY, channel=ELSEWHERE)
    await slack.command("story list", user=MALLORY, channel=ELSEWHERE)  # reading is not a refusal

    metrics = scraped((await slack.http.get("/metrics")).text)

    assert metrics['cadence_refusals_total{door="slack"}'] == 2
    assert metrics['cadence_refusals_total{door="api"}'] == 0


# ── visibility: team ─────────────────────────────────────────────────────────────────────────

READS = [
    ("story list --team recsys", "its stories"),
    ("story show S-1", "its stories"),
    ("sprint plan --team recsys", "its sprints"),
    ("sprint current --team recsys", "its sprints"),
    ("exp list --team recsys", "its experiments"),
    ("exp show E-1", "its experiments"),
    ("audit S-1", "its decision history"),
    ("drift --team recsys", "its drift incidents"),
]


@pytest.mark.parametrize(("command", "what"), READS, ids=[c.split(" --")[0] for c, _ in READS])
async def test_with_visibility_team_only_the_team_reads_its_work(make_app, db, command, what):
    config = make_config(visibility="team")
    async with make_app(config) as slack:
        await recsys_work(slack)

        refused = await slack.command(command, user=FRANK, channel=PLATFORM)
        assert refused.json()["text"] == f":warning: Team recsys shows {what} to its members only."
        for reader in (BOB, CAROL):  # a member, and an approver of the team
            text = (await slack.command(command, user=reader, channel=ELSEWHERE)).json()["text"]
            assert not text.startswith(":warning:"), (reader, text)


async def test_with_visibility_team_the_planning_button_opens_nothing_for_another_team(make_app, db):
    """The App Home's planning button names its team: a click that names a team the person may not read
    (a forged value, or a team whose visibility changed since the tab was drawn) is refused as the
    command is, and no modal opens."""
    config = make_config(visibility="team")
    async with make_app(config) as slack:
        await recsys_work(slack)
        before = await snapshot(db)

        await slack.click(ids.OPEN_PLAN_VIEW, "recsys", user=FRANK, from_home=True)

        assert not slack.fake.of("views.open")
        [dm] = slack.fake.of("chat.postMessage")[-1:]
        assert dm.args["text"] == ":warning: Team recsys shows its sprints to its members only."
        assert await snapshot(db) == before
        await slack.click(ids.OPEN_PLAN_VIEW, "recsys", user=BOB, from_home=True)  # a member: it opens
        assert "*Planning* *Sprint 1* (current)" in str(slack.last_view()["blocks"])


@pytest.mark.parametrize(("who", "where"), STRANGERS)
async def test_the_mark_done_button_is_refused_to_a_stranger(slack, db, who, where):
    await recsys_work(slack)
    await ok(slack, "dod S-2 data_lineage=a model_evaluation=b rollback_plan=c monitoring=d", user=ALICE)
    before = await snapshot(db)

    await slack.click(ids.MARK_DONE, "S-2", user=who, channel=where)

    [answer] = [r for r in slack.fake.of("response_url")][-1:]
    assert answer.args["text"] == ":warning: Only members of team recsys can change S-2."
    assert await snapshot(db) == before
