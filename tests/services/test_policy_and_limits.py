"""A team policy opens reviews in its own name; long names fit their columns on PostgreSQL too."""

import json
from datetime import date

from bot.config import parse_config
from bot.services import audit, experiments, governance, sprints
from bot.store.models import AuditEvent, Review
from tests.conftest import ALICE, CAROL, make_config
from tests.factories import make_story, rows, tx

# Carol, the only approver, is also a member of recsys
ONLY_CAROL = {"recsys": {"members": [ALICE, CAROL]}, "governance": {"review_on": {"succeeded": "production"}}}


async def test_an_approver_can_move_an_experiment_that_the_policy_then_sends_for_review(db):
    config = make_config(**ONLY_CAROL)
    async with tx(db) as s:
        story = await make_story(s, config)
        exp = await experiments.add_experiment(s, config=config, story=story, name="Ranker", actor=CAROL)
        _, review = await governance.report_status(
            s, config=config, experiment=exp, status="succeeded", actor=CAROL
        )
    assert review is not None and review.requested_by == "policy"
    request = [e for e in await rows(db, AuditEvent) if e.action == "review.request"]
    assert [(e.actor, json.loads(e.payload)["triggered_by"]) for e in request] == [("policy", CAROL)]
    async with tx(db) as s:  # the only approver may decide what the policy asked
        result = await governance.decide(
            s, config=config, review_key=review.key, approver=CAROL, verdict="approve"
        )
    assert result.review.state == "approved"
    assert [r.state for r in await rows(db, Review)] == ["approved"]


async def test_a_long_team_and_sprint_name_close_and_stay_in_the_audit_log(db):
    team_name = "t" + "x" * 39
    config = parse_config(f"teams: [{{name: {team_name}, channel: C0001, members: [{ALICE}]}}]")
    team = config.teams[0]
    sprint_name = "Sprint " + "n" * 73
    async with tx(db) as s:
        await sprints.start_sprint(
            s, team=team, name=sprint_name, starts_on=date(2027, 1, 4), ends_on=date(2027, 1, 15), actor=ALICE
        )
    async with tx(db) as s:
        report = await sprints.close_sprint(s, team=team, actor=ALICE)
    assert report.closed.name == sprint_name
    async with tx(db) as s:
        assert (await audit.verify(s)).ok
    [closed] = [e for e in await rows(db, AuditEvent) if e.action == "sprint.close"]
    assert closed.subject == f"sprint:{team_name}:{sprint_name}"
