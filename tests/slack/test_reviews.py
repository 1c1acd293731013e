"""Governance reviews from the approver's side: the Approve / Request changes / Reject buttons, the
decision form, who may decide, one decision however often or concurrently it is submitted, the
request edited in place, the requester told, and one SLA reminder."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.slack import ids
from bot.store.models import AuditEvent, Experiment, OutboxMessage, Review, ReviewDecision
from tests.conftest import ALICE, BOB, CAROL, DAVE, GOV, make_config
from tests.factories import rows, snapshot
from tests.slack.helpers import buttons, deliver, make_ready, ok, posted, replies, shown, updates
from tests.slack_driver import SlackDriver

ERIN = "U05ERIN"
BUTTONS = {
    "approve": ids.REVIEW_APPROVE,
    "request_changes": ids.REVIEW_REQUEST_CHANGES,
    "reject": ids.REVIEW_REJECT,
}
CLOSED_STATE = {"request_changes": "changes_requested", "reject": "rejected"}
CLOSED_WORDS = {"request_changes": "sent back for changes", "reject": "rejected"}
VERDICT_WORDS = {"request_changes": "requested changes", "reject": "rejected"}
ICONS = {"request_changes": ":leftwards_arrow_with_hook:", "reject": ":no_entry:"}


# ── helpers ──────────────────────────────────────────────────────────────────────────────────


TWO_APPROVERS = {"approvers": [CAROL, ERIN], "required_approvals": 2}


@pytest.fixture
def worker(make_worker):
    return make_worker()


async def open_review(slack: SlackDriver, *, user: str = ALICE) -> str:
    """S-1 with E-1 (ndcg 0.37 against 0.30 → 0.35) and a production review of it, R-1."""
    await ok(slack, "story add Train the ranker", user=user)
    await make_ready(slack, user=user)
    await ok(
        slack,
        'exp add S-1 Two-tower ranker --metric ndcg --baseline 0.30 --target 0.35 --hypothesis "Two towers win"',
        user=user,
    )
    await ok(slack, "exp result E-1 ndcg=0.37 run=abc123", user=user)
    body = await ok(slack, "exp review E-1", user=user)
    assert body["text"] == "Opened R-1", body
    return "R-1"


def rationale(text: str | None) -> dict[str, dict[str, Any]]:
    """The decision form's state as Slack submits it (an empty optional input comes as null)."""
    return {ids.FIELD_RATIONALE: {"type": "plain_text_input", "value": text}}


async def click(slack: SlackDriver, verdict: str, user: str, key: str = "R-1") -> httpx.Response:
    """A click on one of the request's buttons in the governance channel."""
    response = await slack.click(BUTTONS[verdict], key, user=user, channel=GOV)
    assert response.status_code == 200, response.text
    return response


async def decide(
    slack: SlackDriver, verdict: str, user: str, text: str | None = None, key: str = "R-1"
) -> httpx.Response:
    """Click the button, then submit the form it opened."""
    opened = len(slack.fake.of("views.open"))
    await click(slack, verdict, user, key)
    assert len(slack.fake.of("views.open")) == opened + 1, replies(slack)
    return await slack.submit(slack.last_view(), rationale(text), user=user)


def closed_form(response: httpx.Response) -> None:
    """The submission was accepted: Slack closes the form on an empty 200."""
    assert response.status_code == 200
    assert response.text == "", response.text


def form_error(response: httpx.Response, needle: str) -> None:
    """The submission was refused with an error shown under the rationale field."""
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors", body
    assert list(body["errors"]) == [ids.FIELD_RATIONALE], body
    assert needle in body["errors"][ids.FIELD_RATIONALE], body


def refusal(slack: SlackDriver) -> str:
    """The ephemeral answer to the last click, through its response_url."""
    answer = replies(slack)[-1]
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False, answer
    assert answer["text"].startswith(":warning: "), answer
    return answer["text"]


async def review(db: AsyncEngine) -> Review:
    [found] = await rows(db, Review)
    return found


async def experiment(db: AsyncEngine) -> Experiment:
    [found] = await rows(db, Experiment)
    return found


async def decision_events(db: AsyncEngine) -> list[AuditEvent]:
    return [
        e
        for e in await rows(db, AuditEvent)
        if e.action.startswith("review.") and e.action != "review.request"
    ]


def has_actions(message: dict[str, Any]) -> bool:
    return any(b["type"] == "actions" for b in message.get("blocks", []))


# ── Approve ──────────────────────────────────────────────────────────────────────────────────


async def test_approve_opens_the_decision_form_with_an_optional_rationale(slack, db, worker, clock):
    await open_review(slack)
    await deliver(worker, clock)
    before = await snapshot(db)

    await click(slack, "approve", CAROL)

    [opened] = slack.fake.of("views.open")
    view = opened.args["view"]
    assert opened.args["trigger_id"].startswith("trigger.")
    assert view["callback_id"] == ids.REVIEW_DECISION_MODAL
    assert json.loads(view["private_metadata"]) == {"review": "R-1", "verdict": "approve"}
    assert view["title"]["text"] == "Approve" and view["submit"]["text"] == "Approve"
    assert "*R-1* E-1 Two-tower ranker" in shown(view)
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["block_id"] == ids.FIELD_RATIONALE and field["optional"] is True
    assert field["element"]["type"] == "plain_text_input"
    assert replies(slack) == []  # no refusal
    assert await snapshot(db) == before  # opening the form decides nothing


async def test_approving_closes_the_review_edits_the_request_and_tells_the_requester(
    slack, db, worker, clock
):
    await open_review(slack)
    await deliver(worker, clock)
    [request] = posted(slack, GOV)
    request_ts = next(m for m in await rows(db, OutboxMessage) if m.channel == GOV).slack_ts

    closed_form(await decide(slack, "approve", CAROL, "Solid lift on the holdout"))

    stored = await review(db)
    assert (stored.state, stored.decided_at) == ("approved", clock.now())
    [decision] = await rows(db, ReviewDecision)
    assert (decision.review_id, decision.approver, decision.verdict, decision.rationale) == (
        stored.id,
        CAROL,
        "approve",
        "Solid lift on the holdout",
    )
    [event] = await decision_events(db)
    assert (event.actor, event.action, event.subject) == (CAROL, "review.approve", "R-1")
    assert json.loads(event.payload) == {
        "rationale": "Solid lift on the holdout",
        "state": "approved",
        "approvals": 1,
        "required": 1,
        "purpose": "production",
        "subject": "E-1 Two-tower ranker",
    }
    assert (await experiment(db)).stage == "production"

    # the edit and the DM go through the outbox
    assert updates(slack) == [] and posted(slack, ALICE) == []
    await deliver(worker, clock)

    [update] = updates(slack)
    assert (update["channel"], update["ts"]) == (GOV, request_ts)
    assert not has_actions(update)
    assert has_actions(request)
    text = shown(update)
    assert update["text"] == "R-1 approved"
    assert ":white_check_mark: *R-1 approved*\n<@U09CAROL> approved: “Solid lift on the holdout”" in text
    assert "*R-1* · production · E-1 Two-tower ranker" in text  # the evidence stays
    [dm] = posted(slack, ALICE)
    assert dm["text"] == (
        "Your review *R-1* (E-1 Two-tower ranker) was approved by <@U09CAROL>.\n> Solid lift on the holdout"
    )
    assert "approved for production" in shown(await ok(slack, "exp list"))
    assert "R-1 production: approved" in shown(await ok(slack, "exp show E-1"))


@pytest.mark.parametrize("empty", [None, "", "   "])
async def test_approving_without_a_rationale_is_fine(slack, db, worker, clock, empty):
    await open_review(slack)

    closed_form(await decide(slack, "approve", CAROL, empty))

    assert (await review(db)).state == "approved"
    [decision] = await rows(db, ReviewDecision)
    assert decision.rationale == ""
    await deliver(worker, clock)
    [update] = updates(slack)
    assert ":white_check_mark: *R-1 approved*\n<@U09CAROL> approved" in shown(update)
    assert "“" not in shown(update)
    [dm] = posted(slack, ALICE)
    assert dm["text"] == "Your review *R-1* (E-1 Two-tower ranker) was approved by <@U09CAROL>."


# ── Request changes and Reject ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize("verdict", ["request_changes", "reject"])
async def test_request_changes_and_reject_open_a_form_whose_rationale_is_required(slack, db, verdict):
    await open_review(slack)

    await click(slack, verdict, CAROL)

    view = slack.last_view()
    title = {"request_changes": "Request changes", "reject": "Reject"}[verdict]
    assert view["title"]["text"] == title and view["submit"]["text"] == title
    assert json.loads(view["private_metadata"]) == {"review": "R-1", "verdict": verdict}
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["block_id"] == ids.FIELD_RATIONALE
    assert field.get("optional", False) is False
    assert field["hint"]["text"].startswith("Required")


@pytest.mark.parametrize("verdict", ["request_changes", "reject"])
@pytest.mark.parametrize("empty", [None, "", "  \n  "])
async def test_request_changes_or_reject_without_a_rationale_is_refused_on_the_form(
    slack, db, worker, clock, verdict, empty
):
    await open_review(slack)
    await deliver(worker, clock)
    await click(slack, verdict, CAROL)
    before = await snapshot(db)

    response = await slack.submit(slack.last_view(), rationale(empty), user=CAROL)

    form_error(response, "Say why: a rationale is required to reject or to request changes.")
    assert await snapshot(db) == before
    assert (await review(db)).state == "pending"
    await deliver(worker, clock)
    assert updates(slack) == [] and posted(slack, ALICE) == []


@pytest.mark.parametrize("verdict", ["request_changes", "reject"])
async def test_request_changes_or_reject_with_a_rationale_closes_the_review(
    slack, db, worker, clock, verdict
):
    await open_review(slack)
    await deliver(worker, clock)

    closed_form(await decide(slack, verdict, CAROL, "  No rollback plan <yet> & no monitoring  "))

    stored = await review(db)
    assert stored.state == CLOSED_STATE[verdict]
    [decision] = await rows(db, ReviewDecision)
    assert (decision.approver, decision.verdict, decision.rationale) == (
        CAROL,
        verdict,
        "No rollback plan <yet> & no monitoring",
    )
    [event] = await decision_events(db)
    assert (event.actor, event.action, event.subject) == (CAROL, f"review.{verdict}", "R-1")
    payload = json.loads(event.payload)
    assert payload["rationale"] == "No rollback plan <yet> & no monitoring"
    assert payload["state"] == CLOSED_STATE[verdict]
    assert (await experiment(db)).stage == "none"  # nothing promoted

    await deliver(worker, clock)
    [update] = updates(slack)
    assert not has_actions(update)
    assert update["text"] == f"R-1 {CLOSED_WORDS[verdict]}"
    escaped = "No rollback plan &lt;yet&gt; &amp; no monitoring"
    assert (
        f"{ICONS[verdict]} *R-1 {CLOSED_WORDS[verdict]}*\n<@U09CAROL> {VERDICT_WORDS[verdict]}: “{escaped}”"
        in shown(update)
    )
    [dm] = posted(slack, ALICE)
    assert dm["text"] == (
        f"Your review *R-1* (E-1 Two-tower ranker) was {CLOSED_WORDS[verdict]} by <@U09CAROL>.\n> {escaped}"
    )


# ── who may decide ───────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("verdict", ["approve", "request_changes", "reject"])
@pytest.mark.parametrize("who", [BOB, ALICE])
async def test_a_non_approver_click_is_refused_privately_and_opens_no_form(
    slack, db, worker, clock, verdict, who
):
    await open_review(slack)
    await deliver(worker, clock)
    before = await snapshot(db)

    await click(slack, verdict, who)

    assert refusal(slack) == ":warning: Only the approvers of team recsys can decide R-1."
    assert slack.fake.of("views.open") == []
    assert await snapshot(db) == before
    await deliver(worker, clock)
    assert updates(slack) == []


async def test_a_submission_by_a_non_approver_is_refused_on_the_form(slack, db):
    await open_review(slack)
    await click(slack, "approve", CAROL)
    before = await snapshot(db)

    # Bob submits a form he could never have been shown (say, a replayed payload)
    response = await slack.submit(slack.last_view(), rationale("lgtm"), user=BOB)

    form_error(response, "Only the approvers of team recsys can decide R-1.")
    assert await snapshot(db) == before


async def test_the_requester_cannot_decide_their_own_review(make_app, db, worker, clock):
    # Carol is an approver and a member of the team here: members open stories, experiments and reviews
    config = make_config(
        governance={"approvers": [CAROL, ERIN], "required_approvals": 1},
        recsys={"members": [ALICE, BOB, DAVE, CAROL]},
    )
    async with make_app(config) as slack:
        await open_review(slack, user=CAROL)
        assert (await review(db)).requested_by == CAROL
        before = await snapshot(db)

        await click(slack, "approve", CAROL)

        assert refusal(slack) == ":warning: You requested R-1, so another approver has to decide it."
        assert slack.fake.of("views.open") == []
        assert await snapshot(db) == before

        # not by submitting a form either (one opened for Erin, replayed by Carol)
        await click(slack, "approve", ERIN)
        form_error(
            await slack.submit(slack.last_view(), rationale("mine, lgtm"), user=CAROL),
            "You requested R-1, so another approver has to decide it.",
        )
        assert await snapshot(db) == before

        # the other approver can
        closed_form(await slack.submit(slack.last_view(), rationale("lgtm"), user=ERIN))
        assert (await review(db)).state == "approved"
        [decision] = await rows(db, ReviewDecision)
        assert decision.approver == ERIN
        await deliver(worker, clock)
        [dm] = posted(slack, CAROL)
        assert "was approved by <@U05ERIN>" in dm["text"]


# ── one decision, however often it is submitted ──────────────────────────────────────────────


async def test_a_double_click_and_double_submit_record_one_decision(slack, db, worker, clock):
    await open_review(slack)
    await deliver(worker, clock)
    await click(slack, "approve", CAROL)
    first = slack.last_view()
    await click(slack, "approve", CAROL)  # the second click, before the first form is sent
    second = slack.last_view()
    assert len(slack.fake.of("views.open")) == 2

    closed_form(await slack.submit(first, rationale("lgtm"), user=CAROL))
    before = await snapshot(db)
    response = await slack.submit(second, rationale("lgtm again"), user=CAROL)

    form_error(response, "R-1 is closed: it was approved.")
    assert await snapshot(db) == before
    [decision] = await rows(db, ReviewDecision)
    assert decision.rationale == "lgtm"
    assert len(await decision_events(db)) == 1
    await deliver(worker, clock)
    assert len(updates(slack)) == 1 and len(posted(slack, ALICE)) == 1


async def test_a_second_submission_by_the_same_approver_says_already_decided(make_app, db, worker, clock):
    async with make_app(make_config(governance=TWO_APPROVERS)) as slack:
        await open_review(slack)
        await click(slack, "approve", CAROL)
        view = slack.last_view()
        closed_form(await slack.submit(view, rationale("lgtm"), user=CAROL))
        before = await snapshot(db)

        response = await slack.submit(view, rationale("lgtm!"), user=CAROL)

        form_error(response, "You have already decided R-1.")
        assert await snapshot(db) == before
        assert (await review(db)).state == "pending"
        assert len(await rows(db, ReviewDecision)) == 1


async def test_an_approver_who_already_decided_gets_no_second_form(make_app, db):
    async with make_app(make_config(governance=TWO_APPROVERS)) as slack:
        await open_review(slack)
        closed_form(await decide(slack, "approve", CAROL, "lgtm"))
        forms = len(slack.fake.of("views.open"))

        await click(slack, "reject", CAROL)

        assert len(slack.fake.of("views.open")) == forms
        assert refusal(slack) == ":warning: You have already decided R-1."


async def test_twenty_concurrent_submissions_by_one_approver_record_one_decision(slack, db, worker, clock):
    await open_review(slack)
    await deliver(worker, clock)
    await click(slack, "approve", CAROL)
    view = slack.last_view()

    responses = await asyncio.gather(
        *(slack.submit(view, rationale(f"lgtm #{n}"), user=CAROL) for n in range(20))
    )

    accepted = [r for r in responses if r.text == ""]
    refused = [r for r in responses if r.text != ""]
    assert len(accepted) == 1 and len(refused) == 19
    for response in refused:
        form_error(response, "R-1 is closed: it was approved.")
    assert (await review(db)).state == "approved"
    [decision] = await rows(db, ReviewDecision)
    assert decision.approver == CAROL
    [event] = await decision_events(db)
    assert event.action == "review.approve"
    assert json.loads(event.payload)["rationale"] == decision.rationale
    assert (await experiment(db)).stage == "production"
    await deliver(worker, clock)
    assert len(updates(slack)) == 1 and len(posted(slack, ALICE)) == 1


# ── several approvals ────────────────────────────────────────────────────────────────────────


async def test_two_required_approvals_one_keeps_it_pending_the_second_approves(make_app, db, worker, clock):
    async with make_app(make_config(governance=TWO_APPROVERS)) as slack:
        await open_review(slack)
        await deliver(worker, clock)

        closed_form(await decide(slack, "approve", CAROL, "Looks right"))

        stored = await review(db)
        assert (stored.state, stored.required_approvals, stored.decided_at) == ("pending", 2, None)
        assert (await experiment(db)).stage == "none"
        [event] = await decision_events(db)
        payload = json.loads(event.payload)
        assert (payload["state"], payload["approvals"], payload["required"]) == ("pending", 1, 2)
        await deliver(worker, clock)
        [update] = updates(slack)
        assert has_actions(update)  # still open: the buttons stay
        assert [b["value"] for b in buttons(update)] == ["R-1", "R-1", "R-1"]
        assert "1 of 2 approvals: <@U09CAROL>" in shown(update)
        assert posted(slack, ALICE) == []  # nothing decided yet

        closed_form(await decide(slack, "approve", ERIN, "Agreed"))

        stored = await review(db)
        assert stored.state == "approved" and stored.decided_at == clock.now()
        assert (await experiment(db)).stage == "production"
        assert sorted(d.approver for d in await rows(db, ReviewDecision)) == sorted([CAROL, ERIN])
        assert [json.loads(e.payload)["state"] for e in await decision_events(db)] == ["pending", "approved"]
        await deliver(worker, clock)
        first, last = updates(slack)
        assert first["ts"] == last["ts"]
        assert not has_actions(last)
        text = shown(last)
        assert ":white_check_mark: *R-1 approved*" in text
        assert "<@U09CAROL> approved: “Looks right”" in text and "<@U05ERIN> approved: “Agreed”" in text
        [dm] = posted(slack, ALICE)
        assert "was approved by <@U05ERIN>" in dm["text"]


async def test_a_reject_after_one_approval_closes_the_review_as_rejected(make_app, db, worker, clock):
    async with make_app(make_config(governance=TWO_APPROVERS)) as slack:
        await open_review(slack)
        closed_form(await decide(slack, "approve", CAROL))
        closed_form(await decide(slack, "reject", ERIN, "Bias audit missing"))

        assert (await review(db)).state == "rejected"
        assert (await experiment(db)).stage == "none"
        await deliver(worker, clock)
        last = updates(slack)[-1]
        assert not has_actions(last)
        assert ":no_entry: *R-1 rejected*" in shown(last)
        assert "<@U05ERIN> rejected: “Bias audit missing”" in shown(last)


async def test_concurrent_approvals_by_both_approvers_approve_once(make_app, db, worker, clock):
    async with make_app(make_config(governance=TWO_APPROVERS)) as slack:
        await open_review(slack)
        await deliver(worker, clock)
        await click(slack, "approve", CAROL)
        carol_form = slack.last_view()
        await click(slack, "approve", ERIN)
        erin_form = slack.last_view()

        responses = await asyncio.gather(
            slack.submit(carol_form, rationale("ok"), user=CAROL),
            slack.submit(erin_form, rationale("ok"), user=ERIN),
        )

        for response in responses:
            closed_form(response)
        stored = await review(db)
        assert stored.state == "approved"
        assert sorted(d.approver for d in await rows(db, ReviewDecision)) == sorted([CAROL, ERIN])
        states = [json.loads(e.payload)["state"] for e in await decision_events(db)]
        assert states == ["pending", "approved"]  # it was approved exactly once
        assert (await experiment(db)).stage == "production"
        await deliver(worker, clock)
        assert not has_actions(updates(slack)[-1])
        assert len(posted(slack, ALICE)) == 1


async def test_concurrent_decisions_when_one_approval_suffices_record_only_the_first(
    make_app, db, worker, clock
):
    async with make_app(
        make_config(governance={"approvers": [CAROL, ERIN], "required_approvals": 1})
    ) as slack:
        await open_review(slack)
        await click(slack, "approve", CAROL)
        carol_form = slack.last_view()
        await click(slack, "reject", ERIN)
        erin_form = slack.last_view()

        responses = await asyncio.gather(
            slack.submit(carol_form, rationale("ok"), user=CAROL),
            slack.submit(erin_form, rationale("not yet"), user=ERIN),
        )

        assert sum(r.text == "" for r in responses) == 1  # one accepted
        [late] = [r for r in responses if r.text != ""]
        [decision] = await rows(db, ReviewDecision)
        stored = await review(db)
        assert stored.state == {"approve": "approved", "reject": "rejected"}[decision.verdict]
        form_error(late, f"R-1 is closed: it was {stored.state}.")
        assert len(await decision_events(db)) == 1
        await deliver(worker, clock)
        assert len(posted(slack, ALICE)) == 1


# ── closed reviews ───────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("first", "state_words"), [("approve", "approved"), ("reject", "rejected")])
@pytest.mark.parametrize("verdict", ["approve", "request_changes", "reject"])
async def test_a_click_on_a_closed_review_says_it_is_closed_and_opens_no_form(
    slack, db, worker, clock, first, state_words, verdict
):
    await open_review(slack)
    closed_form(await decide(slack, first, CAROL, "decided"))
    forms = len(slack.fake.of("views.open"))
    before = await snapshot(db)

    await click(slack, verdict, CAROL)

    assert refusal(slack) == f":warning: R-1 is closed: it was {state_words}."
    assert len(slack.fake.of("views.open")) == forms
    assert await snapshot(db) == before


async def test_a_submission_after_the_review_closed_is_refused_on_the_form(slack, db, worker, clock):
    await open_review(slack)
    await click(slack, "approve", CAROL)
    approve_form = slack.last_view()
    closed_form(await decide(slack, "reject", CAROL, "Data leak in features"))
    before = await snapshot(db)

    response = await slack.submit(approve_form, rationale("lgtm"), user=CAROL)

    form_error(response, "R-1 is closed: it was rejected.")
    assert await snapshot(db) == before
    [decision] = await rows(db, ReviewDecision)
    assert decision.verdict == "reject"


async def test_a_submission_after_another_approver_closed_it_is_refused(make_app, db):
    async with make_app(
        make_config(governance={"approvers": [CAROL, ERIN], "required_approvals": 1})
    ) as slack:
        await open_review(slack)
        await click(slack, "reject", CAROL)
        carol_form = slack.last_view()
        closed_form(await decide(slack, "approve", ERIN, "ship it"))
        before = await snapshot(db)

        response = await slack.submit(carol_form, rationale("wait, no"), user=CAROL)

        form_error(response, "R-1 is closed: it was approved.")
        assert await snapshot(db) == before


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("R-99", "There is no review R-99."),
        ("", "'' is not a review id"),
        ("E-1", "'E-1' is not a review id"),
    ],
)
async def test_a_click_naming_no_review_says_so(slack, db, value, needle):
    await open_review(slack)
    before = await snapshot(db)
    await slack.click(ids.REVIEW_APPROVE, value, user=CAROL, channel=GOV)
    assert needle in refusal(slack)
    assert slack.fake.of("views.open") == []
    assert await snapshot(db) == before


async def test_a_form_with_a_tampered_verdict_is_refused(slack, db):
    await open_review(slack)
    await click(slack, "approve", CAROL)
    view = {**slack.last_view(), "private_metadata": json.dumps({"review": "R-1", "verdict": "approve_all"})}
    before = await snapshot(db)

    response = await slack.submit(view, rationale("x"), user=CAROL)

    form_error(response, "'approve_all' is not a verdict")
    assert await snapshot(db) == before


# ── SLA reminders ────────────────────────────────────────────────────────────────────────────


async def requested_at(db: AsyncEngine) -> datetime:
    return (await review(db)).created_at


async def reminders(db: AsyncEngine) -> list[OutboxMessage]:
    return [m for m in await rows(db, OutboxMessage) if m.dedupe_key.endswith(":reminder")]


async def test_a_review_pending_past_its_sla_gets_one_reminder_in_its_thread(make_app, db, worker, clock):
    async with make_app(make_config(governance={"approvers": [CAROL, ERIN], "review_sla_hours": 4})) as slack:
        jobs = slack.app.state.runner.governance
        await open_review(slack)
        await deliver(worker, clock)
        request_ts = next(m for m in await rows(db, OutboxMessage) if m.channel == GOV).slack_ts
        asked = await requested_at(db)

        assert await jobs.remind_overdue(asked + timedelta(hours=3, minutes=59)) == []
        assert await reminders(db) == []

        due = asked + timedelta(hours=4, minutes=1)
        assert [r.key for r in await jobs.remind_overdue(due)] == ["R-1"]
        assert await jobs.remind_overdue(due + timedelta(minutes=5)) == []
        assert await jobs.remind_overdue(due + timedelta(days=3)) == []

        assert (await review(db)).reminded_at == due
        [queued] = await reminders(db)
        assert queued.channel == GOV
        await deliver(worker, clock)
        [reminder] = [m for m in posted(slack, GOV) if "thread_ts" in m]
        assert reminder["thread_ts"] == request_ts
        assert reminder["reply_broadcast"] is True
        assert reminder["text"] == (
            ":hourglass: <@U09CAROL> <@U05ERIN> *R-1* (E-1 Two-tower ranker) is still waiting for a decision."
        )
        assert len(posted(slack, GOV)) == 2  # the request and its one reminder


async def test_concurrent_reminder_rounds_send_one_reminder(slack, db, worker, clock):
    jobs = slack.app.state.runner.governance
    await open_review(slack)
    due = await requested_at(db) + timedelta(hours=24, minutes=1)  # the default SLA

    rounds = await asyncio.gather(*(jobs.remind_overdue(due) for _ in range(5)))

    assert sorted(len(r) for r in rounds) == [0, 0, 0, 0, 1]
    assert len(await reminders(db)) == 1
    await deliver(worker, clock)
    reminders_sent = [m for m in posted(slack, GOV) if "thread_ts" in m]
    assert len(reminders_sent) == 1
    assert "<@U09CAROL>" in reminders_sent[0]["text"]


async def test_the_reminder_does_not_mention_the_requester(make_app, db):
    config = make_config(
        governance={"approvers": [CAROL, ERIN]}, recsys={"members": [ALICE, BOB, DAVE, CAROL]}
    )
    async with make_app(config) as slack:
        await open_review(slack, user=CAROL)
        jobs = slack.app.state.runner.governance
        await jobs.remind_overdue(await requested_at(db) + timedelta(hours=25))
        [queued] = await reminders(db)
        text = json.loads(queued.payload)["text"]
        assert "<@U05ERIN>" in text and "<@U09CAROL>" not in text


@pytest.mark.parametrize("verdict", ["approve", "request_changes", "reject"])
async def test_a_decided_review_gets_no_reminder(slack, db, worker, clock, verdict):
    jobs = slack.app.state.runner.governance
    await open_review(slack)
    closed_form(await decide(slack, verdict, CAROL, "decided"))

    assert await jobs.remind_overdue(await requested_at(db) + timedelta(days=5)) == []

    assert await reminders(db) == []
    assert (await review(db)).reminded_at is None
    await deliver(worker, clock)
    assert [m for m in posted(slack, GOV) if "thread_ts" in m] == []


# ── the experiment ends first ─────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("status", ["abandoned", "failed"])
async def test_a_review_is_withdrawn_when_its_experiment_ends_without_a_result_to_promote(
    slack, db, worker, clock, status
):
    await open_review(slack)
    await deliver(worker, clock)
    request_ts = next(m for m in await rows(db, OutboxMessage) if m.channel == GOV).slack_ts

    await ok(slack, f'exp status E-1 {status} reason="the offline gain did not hold"')

    stored = await review(db)
    assert (stored.state, stored.decided_at) == ("withdrawn", clock.now())
    [event] = await decision_events(db)
    assert (event.actor, event.action, event.subject) == (ALICE, "review.withdraw", "R-1")
    assert json.loads(event.payload) == {"experiment": "E-1", "status": status}

    await deliver(worker, clock)
    [update] = updates(slack)
    assert (update["channel"], update["ts"]) == (GOV, request_ts)
    assert not has_actions(update) and update["text"] == "R-1 withdrawn"
    assert f"E-1 {status}: there is nothing left to promote." in shown(update)
    [dm] = posted(slack, ALICE)
    assert dm["text"] == (
        f"Your review *R-1* (E-1 Two-tower ranker) was withdrawn: E-1 {status}, so there is nothing to promote."
    )

    # an approver who still clicks is told it is closed, and nothing changes
    before = await snapshot(db)
    await click(slack, "approve", CAROL)
    assert refusal(slack) == ":warning: R-1 is closed: it was withdrawn."
    assert await snapshot(db) == before
    assert (await experiment(db)).stage != "production"


async def test_a_decided_review_is_not_withdrawn_when_its_experiment_is_abandoned_later(
    slack, db, worker, clock
):
    await open_review(slack)
    closed_form(await decide(slack, "reject", CAROL, "Not enough traffic"))
    await ok(slack, "exp status E-1 abandoned")
    assert (await review(db)).state == "rejected"
    assert [e.action for e in await decision_events(db)] == ["review.reject"]
