"""Governance reviews (R-n): requesting, who may decide, how decisions close a review — also when
approvers click at the same moment — and the SLA reminder."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from bot.services import experiments, governance
from bot.services.errors import CadenceError, Conflict, Forbidden, Invalid, NotFound
from bot.store.models import Experiment, Review, ReviewDecision
from tests.conftest import ALICE, BOB, CAROL, FRANK, make_config
from tests.factories import answer_all, audit_rows, make_story, refused, rows, snapshot, tx

ERIN = "U08ERIN"

TWO_APPROVERS = {
    "approvers": [CAROL, ERIN],
    "required_approvals": 2,
    "review_sla_hours": 2,
    "review_on": {"succeeded": "production", "running": "canary"},
}


@pytest.fixture(scope="module")
def two() -> object:
    return make_config(governance=TWO_APPROVERS)


async def _experiment(
    db, config, *, status: str = "proposed", name: str = "Two towers", ready: bool = True
) -> Experiment:
    """E-1 on a new story S-1, Ready unless `ready` is False."""
    async with tx(db) as s:
        story = await make_story(s, config)
        if ready:
            await answer_all(s, config, story, "ready")
        exp = await experiments.add_experiment(s, config=config, story=story, name=name, actor=ALICE)
        if status != "proposed":
            await experiments.set_status(s, config=config, experiment=exp, status="running", actor=ALICE)
            if status != "running":
                await experiments.set_status(s, config=config, experiment=exp, status=status, actor=ALICE)
    return exp


async def _request(db, config, *, experiment=None, purpose="canary", actor=ALICE, **kwargs):
    async with tx(db) as s:
        return await governance.request_review(
            s,
            config=config,
            team=kwargs.pop("team", "recsys"),
            purpose=purpose,
            actor=actor,
            source=kwargs.pop("source", "slack"),
            experiment=experiment,
            **kwargs,
        )


async def _decide(db, config, approver, verdict="approve", rationale="", key="R-1"):
    async with tx(db) as s:
        return await governance.decide(
            s, config=config, review_key=key, approver=approver, verdict=verdict, rationale=rationale
        )


async def _review(db, key="R-1") -> Review:
    async with tx(db) as s:
        return await governance.get_review(s, key)


# --- request -----------------------------------------------------------------------------------


async def test_request_review_opens_one_and_audits_it(db, config):
    exp = await _experiment(db, config)
    review, created = await _request(db, config, experiment=exp, purpose="production")
    assert created is True
    assert review.key == "R-1"
    stored = await _review(db)
    assert (stored.team, stored.purpose, stored.state, stored.requested_by, stored.source) == (
        "recsys",
        "production",
        "pending",
        ALICE,
        "slack",
    )
    assert stored.experiment_id == exp.id and stored.subject == "E-1 Two towers"
    assert stored.required_approvals == 1
    (row,) = [r for r in await audit_rows(db) if r.subject == "R-1"]
    assert (row.actor, row.action, row.subject) == (ALICE, "review.request", "R-1")
    assert json.loads(row.payload) == {
        "purpose": "production",
        "subject": "E-1 Two towers",
        "source": "slack",
        "experiment": "E-1",
    }


async def test_a_person_cannot_request_a_review_of_a_story_that_is_not_ready(db, config):
    exp = await _experiment(db, config, ready=False)
    before = await snapshot(db)
    with pytest.raises(Conflict) as info:
        await _request(db, config, experiment=exp, purpose="production")
    assert info.value.message.startswith(
        "E-1 cannot go to review yet: its story S-1 is not Ready. Its Definition of Ready lacks Data "
        "availability, Feature stability, Reproducible environment, Measurable evaluation criteria, "
        "Data contract, Validation data. Fill it with `ready S-1`"
    )
    assert await snapshot(db) == before


@pytest.mark.parametrize("source", ["policy", "mlflow"])
async def test_automatic_reviews_open_even_when_the_story_is_not_ready(db, config, source):
    exp = await _experiment(db, config, ready=False)
    review, created = await _request(db, config, experiment=exp, source=source, actor=governance.POLICY)
    assert created and review.key == "R-1" and review.source == source
    async with tx(db) as s:
        ev = await governance.evidence(s, config=config, review=await governance.get_review(s, "R-1"))
    assert ev.ready is not None and not ev.ready.complete  # what the request shows as the gap


async def test_a_request_without_an_experiment(db, config, two):
    review, created = await _request(db, two, subject="ranker v7 " + "x" * 400, source="mlflow")
    assert created and review.experiment_id is None
    assert len(review.subject) == 300 and review.subject.startswith("ranker v7")
    assert review.required_approvals == 2
    plain, _ = await _request(db, config)
    assert plain.subject == "a promotion" and plain.key == "R-2"


@pytest.mark.parametrize("purpose", ["prod", "", "Canary", "staging"])
async def test_request_review_refuses_an_unknown_purpose(db, config, purpose):
    before = await snapshot(db)
    error = await refused(
        db,
        Invalid,
        lambda s: governance.request_review(
            s, config=config, team="recsys", purpose=purpose, actor=ALICE, source="slack"
        ),
    )
    assert error.field == "purpose"
    assert await snapshot(db) == before


@pytest.mark.parametrize("team", ["platform", "nosuchteam"])
async def test_a_team_without_governance_cannot_request(db, config, team):
    before = await snapshot(db)
    error = await refused(
        db,
        Invalid,
        lambda s: governance.request_review(
            s, config=config, team=team, purpose="canary", actor=FRANK, source="slack"
        ),
    )
    assert team in error.message
    assert await snapshot(db) == before


async def test_a_pending_same_purpose_request_is_returned(db, config):
    exp = await _experiment(db, config)
    first, created = await _request(db, config, experiment=exp, purpose="canary")
    before = await snapshot(db)
    again, created_again = await _request(db, config, experiment=exp, purpose="canary", actor=BOB)
    assert created and not created_again
    assert again.id == first.id
    assert await snapshot(db) == before  # no new review, no audit row

    other, created_other = await _request(db, config, experiment=exp, purpose="production")
    assert created_other and other.key == "R-2"


async def test_after_a_review_closes_the_same_purpose_can_be_requested_again(db, config):
    exp = await _experiment(db, config)
    await _request(db, config, experiment=exp)
    await _decide(db, config, CAROL, "request_changes", "more data")
    again, created = await _request(db, config, experiment=exp)
    assert created and again.key == "R-2"


async def test_source_key_dedupes_even_a_closed_review(db, config):
    first, _ = await _request(db, config, source="mlflow", source_key="mlflow:ranker:7", actor="mlflow")
    await _decide(db, config, CAROL)
    before = await snapshot(db)
    again, created = await _request(db, config, source="mlflow", source_key="mlflow:ranker:7")
    assert not created and again.id == first.id and again.state == "approved"
    assert await snapshot(db) == before
    other, created = await _request(db, config, source="mlflow", source_key="mlflow:ranker:8")
    assert created and other.key == "R-2"


@pytest.mark.parametrize("status", ["failed", "abandoned"])
async def test_a_failed_or_abandoned_experiment_is_refused(db, config, status):
    exp = await _experiment(db, config, status=status)
    before = await snapshot(db)
    error = await refused(
        db,
        Conflict,
        lambda s: governance.request_review(
            s, config=config, team="recsys", purpose="canary", actor=ALICE, source="slack", experiment=exp
        ),
    )
    assert "E-1" in error.message and status in error.message
    assert await snapshot(db) == before


@pytest.mark.parametrize("status", ["proposed", "running", "succeeded"])
async def test_live_or_succeeded_experiments_may_be_reviewed(db, config, status):
    exp = await _experiment(db, config, status=status)
    _, created = await _request(db, config, experiment=exp)
    assert created


async def test_get_review_parses_and_reports_unknown_keys(db, config):
    await _request(db, config)
    assert (await _review(db, "r1")).key == "R-1"
    error = await refused(db, NotFound, lambda s: governance.get_review(s, "R-2"))
    assert "R-2" in error.message
    await refused(db, Invalid, lambda s: governance.get_review(s, "E-1"))


# --- who may decide ----------------------------------------------------------------------------


async def _check(db, config, review, user):
    async with tx(db) as s:
        await governance.check_can_decide(s, config, review, user)


async def test_check_can_decide(db, config):
    await _request(db, config)
    review = await _review(db)
    await _check(db, config, review, CAROL)  # the approver may
    with pytest.raises(Forbidden) as info:
        await _check(db, config, review, BOB)
    assert "approvers" in info.value.message and "R-1" in info.value.message
    await _decide(db, config, CAROL)
    closed = await _review(db)
    with pytest.raises(Conflict) as info:
        await _check(db, config, closed, CAROL)
    assert "closed" in info.value.message and "approved" in info.value.message


async def test_an_approver_who_decided_is_refused_before_a_second_form(db, two):
    await _request(db, two)
    await _decide(db, two, CAROL)
    with pytest.raises(Conflict) as info:
        await _check(db, two, await _review(db), CAROL)
    assert info.value.message == "You have already decided R-1."


async def test_nobody_can_request_a_review_that_no_one_else_could_approve(db, two):
    before = await snapshot(db)
    with pytest.raises(Conflict) as info:
        await _request(db, two, actor=CAROL)  # two approvals needed, only Erin is left
    assert info.value.message == (
        "This review needs 2 approvals from someone other than the requester, and team recsys has "
        "1 other approver; add approvers to its governance config."
    )
    assert await snapshot(db) == before


async def test_the_requester_cannot_decide_their_own_review(db, config):
    one_of_two = make_config(governance={**TWO_APPROVERS, "required_approvals": 1})
    await _request(db, one_of_two, actor=CAROL)
    review = await _review(db)
    with pytest.raises(Forbidden) as info:
        await _check(db, one_of_two, review, CAROL)
    assert "another approver" in info.value.message
    before = await snapshot(db)
    await refused(
        db,
        Forbidden,
        lambda s: governance.decide(
            s, config=one_of_two, review_key="R-1", approver=CAROL, verdict="approve"
        ),
    )
    assert await snapshot(db) == before


async def test_a_non_approver_cannot_decide(db, config):
    await _request(db, config)
    before = await snapshot(db)
    await refused(
        db,
        Forbidden,
        lambda s: governance.decide(s, config=config, review_key="R-1", approver=BOB, verdict="approve"),
    )
    assert await snapshot(db) == before


async def test_deciding_an_unknown_review(db, config):
    await refused(
        db,
        NotFound,
        lambda s: governance.decide(s, config=config, review_key="R-9", approver=CAROL, verdict="approve"),
    )


# --- decide ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "rationale", "field"),
    [
        ("reject", "", "rationale"),
        ("reject", "   \n ", "rationale"),
        ("request_changes", "", "rationale"),
        ("approve", "x" * 3001, "rationale"),
        ("maybe", "because", "verdict"),
        ("", "because", "verdict"),
        ("Approve", "", "verdict"),
    ],
)
async def test_decide_validates_verdict_and_rationale(db, config, verdict, rationale, field):
    await _request(db, config)
    before = await snapshot(db)
    error = await refused(
        db,
        Invalid,
        lambda s: governance.decide(
            s, config=config, review_key="R-1", approver=CAROL, verdict=verdict, rationale=rationale
        ),
    )
    assert error.field == field
    assert await snapshot(db) == before


async def test_one_approval_approves_and_sets_the_stage(db, config):
    exp = await _experiment(db, config, status="succeeded")
    await _request(db, config, experiment=exp, purpose="canary")
    result = await _decide(db, config, CAROL, rationale="  fine  ")
    assert result.closed_now and result.approvals == 1
    assert result.review.state == "approved" and result.review.decided_at is not None
    assert (result.decision.approver, result.decision.verdict, result.decision.rationale) == (
        CAROL,
        "approve",
        "fine",
    )
    (stored,) = await rows(db, Experiment)
    assert stored.stage == "canary"
    last = (await audit_rows(db))[-1]
    assert (last.actor, last.action, last.subject) == (CAROL, "review.approve", "R-1")
    payload = json.loads(last.payload)
    assert (payload["state"], payload["approvals"], payload["required"], payload["rationale"]) == (
        "approved",
        1,
        1,
        "fine",
    )


@pytest.mark.parametrize(
    ("verdict", "state"), [("reject", "rejected"), ("request_changes", "changes_requested")]
)
async def test_reject_and_request_changes_close_without_a_stage(db, config, verdict, state):
    exp = await _experiment(db, config)
    await _request(db, config, experiment=exp, purpose="production")
    result = await _decide(db, config, CAROL, verdict, "not yet")
    assert result.closed_now and result.review.state == state and result.approvals == 0
    (stored,) = await rows(db, Experiment)
    assert stored.stage == "none"
    last = (await audit_rows(db))[-1]
    assert (last.action, json.loads(last.payload)["state"]) == (f"review.{verdict}", state)


async def test_a_second_decision_by_the_same_approver_is_a_conflict(db, two):
    await _request(db, two)
    first = await _decide(db, two, CAROL)
    assert not first.closed_now and first.review.state == "pending" and first.approvals == 1
    before = await snapshot(db)
    for verdict in ("approve", "reject"):
        error = await refused(
            db,
            Conflict,
            lambda s, v=verdict: governance.decide(
                s, config=two, review_key="R-1", approver=CAROL, verdict=v, rationale="again"
            ),
        )
        assert "already decided" in error.message
    assert await snapshot(db) == before


async def test_n_approvals_are_needed_and_the_stage_waits_for_them(db, two):
    exp = await _experiment(db, two, status="succeeded")
    async with tx(db) as s:
        await governance.request_review(
            s, config=two, team="recsys", purpose="production", actor=ALICE, source="slack", experiment=exp
        )
    first = await _decide(db, two, CAROL)
    assert (first.approvals, first.closed_now, first.review.state) == (1, False, "pending")
    assert (await rows(db, Experiment))[0].stage == "none"
    second = await _decide(db, two, ERIN)
    assert (second.approvals, second.closed_now, second.review.state) == (2, True, "approved")
    assert (await rows(db, Experiment))[0].stage == "production"
    decisions = [
        (r.action, json.loads(r.payload)["approvals"], json.loads(r.payload)["state"])
        for r in await audit_rows(db)
        if r.action.startswith("review.") and r.action != "review.request"
    ]
    assert decisions == [("review.approve", 1, "pending"), ("review.approve", 2, "approved")]


async def test_a_reject_closes_even_after_one_approval(db, two):
    exp = await _experiment(db, two)
    await _request(db, two, experiment=exp)
    await _decide(db, two, CAROL)
    result = await _decide(db, two, ERIN, "reject", "bias in segment B")
    assert result.closed_now and result.review.state == "rejected" and result.approvals == 1
    assert (await rows(db, Experiment))[0].stage == "none"
    async with tx(db) as s:
        review = await governance.get_review(s, "R-1")
        decided = await governance.decisions(s, review)
    assert [(d.approver, d.verdict) for d in decided] == [(CAROL, "approve"), (ERIN, "reject")]


async def test_a_closed_review_takes_no_more_decisions(db, two):
    await _request(db, two)
    await _decide(db, two, CAROL, "request_changes", "add a holdout")
    before = await snapshot(db)
    error = await refused(
        db,
        Conflict,
        lambda s: governance.decide(s, config=two, review_key="R-1", approver=ERIN, verdict="approve"),
    )
    assert "closed" in error.message and "sent back for changes" in error.message
    assert await snapshot(db) == before


async def test_reviews_for_an_experiment(db, config):
    exp = await _experiment(db, config)
    await _request(db, config, experiment=exp, purpose="canary")
    await _request(db, config)  # not about the experiment
    await _request(db, config, experiment=exp, purpose="production")
    async with tx(db) as s:
        found = await governance.reviews_for(s, exp)
    assert [(r.key, r.purpose) for r in found] == [("R-1", "canary"), ("R-3", "production")]


# --- concurrency -------------------------------------------------------------------------------


async def _race(db, config, calls):
    async def one(approver, verdict, rationale):
        async with tx(db) as s:
            return await governance.decide(
                s, config=config, review_key="R-1", approver=approver, verdict=verdict, rationale=rationale
            )

    return await asyncio.gather(*(one(*c) for c in calls), return_exceptions=True)


@pytest.mark.parametrize("use_two", [False, True], ids=["required-1", "required-2"])
async def test_twenty_concurrent_clicks_by_one_approver_make_one_decision(db, config, two, use_two):
    cfg = two if use_two else config
    await _request(db, cfg)
    results = await _race(db, cfg, [(CAROL, "approve", "")] * 20)
    unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, Conflict)]
    assert unexpected == []
    done = [r for r in results if isinstance(r, governance.Decision)]
    assert len(done) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 19
    assert len(await rows(db, ReviewDecision)) == 1
    assert [r.action for r in await audit_rows(db)].count("review.approve") == 1
    assert (await _review(db)).state == ("pending" if use_two else "approved")


async def test_mixed_concurrent_verdicts_by_one_approver_make_one_decision(db, config):
    await _request(db, config)
    calls = [(CAROL, ("approve", "reject", "request_changes")[i % 3], "why") for i in range(21)]
    results = await _race(db, config, calls)
    assert sum(isinstance(r, governance.Decision) for r in results) == 1
    assert all(isinstance(r, (governance.Decision, Conflict)) for r in results)
    (decision,) = await rows(db, ReviewDecision)
    state = {"approve": "approved", "reject": "rejected", "request_changes": "changes_requested"}
    assert (await _review(db)).state == state[decision.verdict]


async def test_two_approvers_at_once_approve_exactly_once(db, two):
    for n in range(1, 6):
        await _request(db, two, subject=f"model v{n}")
        results = await _race_key(db, two, f"R-{n}", [(CAROL, "approve", ""), (ERIN, "approve", "")])
        assert all(isinstance(r, governance.Decision) for r in results), results
        assert sorted(r.approvals for r in results) == [1, 2]
        assert [r.closed_now for r in results].count(True) == 1
        assert (await _review(db, f"R-{n}")).state == "approved"
    approvals = [json.loads(r.payload) for r in await audit_rows(db) if r.action == "review.approve"]
    assert len(approvals) == 10
    assert sum(p["state"] == "approved" for p in approvals) == 5


async def test_approve_and_reject_at_once_close_the_review_once(db, two):
    await _request(db, two)
    results = await _race_key(db, two, "R-1", [(CAROL, "approve", ""), (ERIN, "reject", "no")])
    decisions = [r for r in results if isinstance(r, governance.Decision)]
    assert all(isinstance(r, (governance.Decision, CadenceError)) for r in results)
    assert sum(d.closed_now for d in decisions) == 1
    assert (await _review(db)).state == "rejected"


async def _race_key(db, config, key, calls):
    async def one(approver, verdict, rationale):
        async with tx(db) as s:
            return await governance.decide(
                s, config=config, review_key=key, approver=approver, verdict=verdict, rationale=rationale
            )

    return await asyncio.gather(*(one(*c) for c in calls), return_exceptions=True)


# --- SLA reminders -----------------------------------------------------------------------------


async def test_overdue_respects_the_team_sla(db, config, two):
    await _request(db, config)
    created = (await _review(db)).created_at
    async with tx(db) as s:
        assert await governance.overdue(s, config=config, now=created + timedelta(hours=23, minutes=59)) == []
        late = await governance.overdue(s, config=config, now=created + timedelta(hours=24))
        assert [r.key for r in late] == ["R-1"]
        # the same review under a team whose SLA is 2 hours
        assert await governance.overdue(s, config=two, now=created + timedelta(hours=1, minutes=59)) == []
        assert [r.key for r in await governance.overdue(s, config=two, now=created + timedelta(hours=2))] == [
            "R-1"
        ]


async def test_overdue_skips_closed_and_reminded_reviews(db, config):
    await _request(db, config, subject="a")
    await _request(db, config, subject="b")
    await _request(db, config, subject="c")
    await _decide(db, config, CAROL, key="R-2")
    created = (await _review(db, "R-3")).created_at
    later = created + timedelta(days=2)
    async with tx(db) as s:
        r1 = await governance.get_review(s, "R-1")
        assert await governance.mark_reminded(s, r1, later) is True
    async with tx(db) as s:
        assert [r.key for r in await governance.overdue(s, config=config, now=later)] == ["R-3"]


async def test_mark_reminded_is_claimed_once(db, config):
    await _request(db, config)
    now = (await _review(db)).created_at + timedelta(days=1)
    async with tx(db) as s:
        review = await governance.get_review(s, "R-1")
        assert await governance.mark_reminded(s, review, now) is True
    async with tx(db) as s:
        review = await governance.get_review(s, "R-1")
        assert await governance.mark_reminded(s, review, now + timedelta(hours=1)) is False
    assert (await _review(db)).reminded_at == now


async def test_concurrent_reminder_claims_succeed_once(db, config):
    await _request(db, config)
    now = (await _review(db)).created_at + timedelta(days=1)

    async def claim():
        async with tx(db) as s:
            review = await governance.get_review(s, "R-1")
            return await governance.mark_reminded(s, review, now)

    results = await asyncio.gather(*(claim() for _ in range(10)))
    assert results.count(True) == 1


async def test_a_closed_review_is_not_claimed_for_a_reminder(db, config):
    await _request(db, config)
    await _decide(db, config, CAROL)
    async with tx(db) as s:
        review = await governance.get_review(s, "R-1")
        assert await governance.mark_reminded(s, review, review.created_at + timedelta(days=3)) is False


# --- policy ------------------------------------------------------------------------------------


async def test_review_for_status_follows_the_team_policy(db, config, two):
    exp = await _experiment(db, two, status="succeeded")
    async with tx(db) as s:
        opened = await governance.review_for_status(s, config=two, experiment=exp, actor="api:pipeline")
        again = await governance.review_for_status(s, config=two, experiment=exp, actor="api:pipeline")
        without_policy = await governance.review_for_status(s, config=config, experiment=exp, actor=ALICE)
    assert opened is not None and again is None and without_policy is None
    assert (opened.purpose, opened.source, opened.source_key) == (
        "production",
        "policy",
        "policy:E-1:succeeded:production",
    )
    assert opened.requested_by == "policy"  # the policy asks; the pipeline is named in the audit row
