"""What the governance channel reads when a review is asked for: who may decide (mentioned, never the
requester), by when (each reader in their own time zone, the team's as the fallback), and — for a review
the team's policy opened by itself — that the story is not Ready. A person cannot ask for a review of a
story that is not Ready."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.slack import ids
from bot.store.models import Review
from tests.conftest import ALICE, BOB, CAROL, GOV, make_config
from tests.factories import rows
from tests.slack.helpers import ML_READY, deliver, make_ready, ok, posted, refused, shown, updates
from tests.slack_driver import SlackDriver

ERIN = "U05ERIN"


@pytest.fixture
def worker(make_worker):
    return make_worker()


async def experiment_on_a_story(slack: SlackDriver, *, ready: bool = True) -> None:
    """S-1 (owned by Bob) with E-1."""
    await ok(slack, "story add Train the ranker --owner <@U02BOB|bob>")
    if ready:
        await make_ready(slack)
    await ok(slack, "exp add S-1 Two-tower ranker --metric ndcg --baseline 0.30 --target 0.35")


def due_token(when: datetime, fallback: str) -> str:
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


# ── who may decide, and by when ──────────────────────────────────────────────────────────────


async def test_the_request_mentions_the_approvers_who_may_decide_and_the_deadline(
    make_app, db, worker, clock
):
    # Alice is an approver too, but she asks, so only Carol and Erin may decide
    config = make_config(governance={"approvers": [ALICE, CAROL, ERIN], "review_sla_hours": 30})
    async with make_app(config) as slack:
        await experiment_on_a_story(slack)
        await ok(slack, "exp review E-1")
        await deliver(worker, clock)

    [request] = posted(slack, GOV)
    text = shown(request)
    # asked Monday 7 Dec 06:00 UTC; 30 hours later is Tuesday 12:00 UTC, 13:00 in Berlin
    due = due_token(datetime(2026, 12, 8, 12, 0, tzinfo=UTC), "Tue 8 Dec, 13:00 (Europe/Berlin)")
    assert f":hourglass_flowing_sand: Waiting on <@{CAROL}> <@{ERIN}> · decision due {due}" in text
    assert f"Requested by <@{ALICE}>" in text
    assert f"Waiting on <@{ALICE}>" not in text and f"<@{ALICE}> <@" not in text
    # the notification names them too, with the deadline as the team reads it
    assert request["text"] == (
        f"Governance review R-1 for <@{CAROL}> <@{ERIN}>: production · E-1 Two-tower ranker · "
        "decision due Tue 8 Dec, 13:00 (Europe/Berlin)"
    )


async def test_the_deadline_falls_back_to_the_team_time_zone(make_app, db, worker, clock):
    config = make_config(recsys={"timezone": "America/New_York"}, governance={"review_sla_hours": 4})
    async with make_app(config) as slack:
        await experiment_on_a_story(slack)
        await ok(slack, "exp review E-1 --for canary")
        await deliver(worker, clock)

    [request] = posted(slack, GOV)
    # 06:00 UTC + 4 hours = 10:00 UTC, 05:00 in New York (EST)
    due = due_token(datetime(2026, 12, 7, 10, 0, tzinfo=UTC), "Mon 7 Dec, 05:00 (America/New_York)")
    assert f"Waiting on <@{CAROL}> · decision due {due}" in shown(request)
    assert request["text"].endswith("decision due Mon 7 Dec, 05:00 (America/New_York)")


async def test_after_one_of_two_approvals_the_request_waits_only_on_the_other(make_app, db, worker, clock):
    config = make_config(governance={"approvers": [CAROL, ERIN], "required_approvals": 2})
    async with make_app(config) as slack:
        await experiment_on_a_story(slack)
        await ok(slack, "exp review E-1")
        await deliver(worker, clock)
        await slack.click(ids.REVIEW_APPROVE, "R-1", user=CAROL, channel=GOV)
        await slack.submit(slack.last_view(), {ids.FIELD_RATIONALE: {"value": None}}, user=CAROL)
        await deliver(worker, clock)

    [update] = updates(slack)
    text = shown(update)
    assert f"1 of 2 approvals: <@{CAROL}>" in text
    assert f"Waiting on <@{ERIN}> · decision due <!date^" in text
    assert f"Waiting on <@{CAROL}>" not in text


async def test_a_closed_review_shows_no_deadline(slack, db, worker, clock):
    await experiment_on_a_story(slack)
    await ok(slack, "exp review E-1")
    await deliver(worker, clock)
    await slack.click(ids.REVIEW_APPROVE, "R-1", user=CAROL, channel=GOV)
    await slack.submit(slack.last_view(), {ids.FIELD_RATIONALE: {"value": "fine"}}, user=CAROL)
    await deliver(worker, clock)

    [update] = updates(slack)
    assert ":white_check_mark: *R-1 approved*" in shown(update)
    assert "decision due" not in shown(update) and "Waiting on" not in shown(update)


# ── a person asks: only for a Ready story ────────────────────────────────────────────────────


async def test_exp_review_is_refused_while_the_story_is_not_ready(slack, db, worker, clock):
    await experiment_on_a_story(slack, ready=False)
    await ok(slack, 'ready S-1 data_available=s3://clicks validation_dataset=n/a reason="no PII"')

    text = await refused(
        slack,
        db,
        "exp review E-1",
        "E-1 cannot go to review yet: its story S-1 is not Ready. Its Definition of Ready lacks "
        "Feature stability, Reproducible environment, Measurable evaluation criteria, Data contract. "
        "Fill it with `ready S-1`",
        usage=False,
        sends_nothing=True,
    )
    assert "Data availability" not in text and "Validation data" not in text  # answered and waived
    await deliver(worker, clock)
    assert posted(slack, GOV) == []

    # once it is Ready, the same request opens the review
    await make_ready(slack)
    body = await ok(slack, "exp review E-1")
    assert body["text"] == "Opened R-1"


async def test_exp_review_of_a_story_with_no_readiness_at_all_is_refused(slack, db):
    await experiment_on_a_story(slack, ready=False)
    text = await refused(slack, db, "exp review E-1 --for canary", "its story S-1 is not Ready", usage=False)
    for label in ML_READY:
        assert text.count(label) == 1, text
    assert await rows(db, Review) == []


# ── the team's policy opens one by itself: it opens, and says the story is not Ready ─────────


async def test_a_policy_review_of_a_story_that_is_not_ready_opens_and_shows_the_gap(
    make_app, db, worker, clock
):
    config = make_config(governance={"review_on": {"succeeded": "production"}})
    async with make_app(config) as slack:
        await experiment_on_a_story(slack, ready=False)
        await ok(slack, "exp status E-1 running")
        body = await ok(slack, "exp status E-1 succeeded")
        assert "Team policy opened governance review *R-1* (production)." in shown(body)
        await deliver(worker, clock)

        [request] = posted(slack, GOV)
        text = shown(request)
        assert (
            ":warning: *S-1 is not Ready.* Its Definition of Ready lacks Data availability, Feature stability, "
            "Reproducible environment, Measurable evaluation criteria, Data contract, Validation data. "
            f"This review was opened without it; <@{BOB}> can fill it with `ready S-1`."
        ) in text
        for label in ML_READY:
            assert text.count(label) == 1, text
        assert "Ready: 0/6 · Done: 0/4" in text

        # filled before the decision: the edited request no longer warns
        await make_ready(slack, user=BOB)
        await slack.click(ids.REVIEW_APPROVE, "R-1", user=CAROL, channel=GOV)
        await slack.submit(slack.last_view(), {ids.FIELD_RATIONALE: {"value": None}}, user=CAROL)
        await deliver(worker, clock)

    [update] = updates(slack)
    assert "is not Ready" not in shown(update)
    assert "Ready: 6/6 · Done: 0/4" in shown(update)


async def test_a_policy_review_of_a_ready_story_shows_no_warning(make_app, db, worker, clock):
    config = make_config(governance={"review_on": {"running": "canary"}})
    async with make_app(config) as slack:
        await experiment_on_a_story(slack)
        await ok(slack, "exp status E-1 running")
        await deliver(worker, clock)

    [request] = posted(slack, GOV)
    assert ":warning:" not in shown(request)
    assert "Ready: 6/6" in shown(request)
