"""`exp add/list/show/status/result/review`: what the person sees, what is stored, what goes to the
governance channel through the outbox, and every malformed input refused with nothing stored."""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.slack import ids
from bot.store.models import AuditEvent, Experiment, ExperimentResult, OutboxMessage, Review, Story
from tests.conftest import ALICE, BOB, CAROL, DAVE, FRANK, GOV, PLATFORM, make_config
from tests.factories import rows, snapshot
from tests.slack import helpers
from tests.slack.helpers import buttons, deliver, make_ready, ok, posted, shown, texts
from tests.slack_driver import SlackDriver

MLFLOW = "https://mlflow.example/#/experiments/3/runs/abc123"

# a refused command stores nothing and sends nothing to Slack
refused = partial(helpers.refused, sends_nothing=True)


# ── helpers ──────────────────────────────────────────────────────────────────────────────────


async def to_governance(db: AsyncEngine) -> list[OutboxMessage]:
    """The outbox rows for the governance channel (the story owner's assignment DM is not one)."""
    return [m for m in await rows(db, OutboxMessage) if m.channel == GOV]


async def experiment(db: AsyncEngine, number: int = 1) -> Experiment:
    [found] = await rows(db, Experiment, Experiment.number == number)
    return found


async def setup_ranker(slack: SlackDriver, **who: str) -> None:
    """S-1 (owned by Bob, Ready) with E-1: ndcg from 0.30 to 0.35."""
    await ok(slack, "story add Train the ranker --owner <@U02BOB|bob>", **who)
    await make_ready(slack, **who)
    await ok(
        slack,
        'exp add S-1 Two-tower ranker --metric ndcg --baseline 0.30 --target 0.35 --hypothesis "Two towers beat one"',
        **who,
    )


@pytest.fixture
async def ranker(slack: SlackDriver) -> str:
    await setup_ranker(slack)
    return "E-1"


# ── exp add ──────────────────────────────────────────────────────────────────────────────────


async def test_exp_add_with_metric_baseline_target_hypothesis_and_mlflow_link(slack, db):
    await ok(slack, "story add Train the ranker --owner <@U02BOB|bob>")
    queued = await rows(db, OutboxMessage)  # the story owner's assignment DM

    body = await ok(
        slack,
        "exp add S-1 Two-tower ranker --metric ndcg --baseline 0.30 --target 0.35 "
        f'--hypothesis "Two towers beat one on cold users" --mlflow {MLFLOW}',
        ephemeral=True,
    )

    assert body["text"] == "Added E-1"
    assert shown(body).endswith(":test_tube: Added *E-1* Two-tower ranker to *S-1* (proposed).")
    exp = await experiment(db)
    assert (exp.team, exp.name, exp.hypothesis, exp.metric) == (
        "recsys",
        "Two-tower ranker",
        "Two towers beat one on cold users",
        "ndcg",
    )
    assert (exp.baseline, exp.target, exp.higher_is_better) == (0.30, 0.35, True)
    assert (exp.status, exp.stage, exp.owner, exp.created_by) == ("proposed", "none", BOB, ALICE)
    assert json.loads(exp.links) == {"mlflow": MLFLOW}
    # adding it is on the record; nothing is sent
    [added] = await rows(db, AuditEvent)
    assert (added.actor, added.action, added.subject) == (ALICE, "experiment.add", "E-1")
    assert json.loads(added.payload) == {
        "story": "S-1",
        "name": "Two-tower ranker",
        "metric": "ndcg",
        "baseline": 0.30,
        "target": 0.35,
    }
    assert await rows(db, OutboxMessage) == queued


async def test_exp_add_lower_is_better_with_owner_and_dashboard(slack, db):
    await ok(slack, "story add Serve faster")

    await ok(
        slack,
        "exp add S-1 Distilled ranker --metric latency_ms --baseline 120 --target 100 --lower-is-better "
        "--owner <@U03DAVE|dave> --dashboard <https://grafana.example/d/42>",
    )

    exp = await experiment(db)
    assert (exp.metric, exp.baseline, exp.target, exp.higher_is_better) == ("latency_ms", 120, 100, False)
    assert exp.owner == DAVE
    # Slack sends a typed URL as <url>; the URL itself is stored
    assert json.loads(exp.links) == {"dashboard": "https://grafana.example/d/42"}


async def test_exp_add_with_only_a_name_defaults_to_the_story_owner_and_no_metric(slack, db):
    await ok(slack, "story add Train the ranker --owner <@U02BOB|bob>")
    await ok(slack, "exp add S-1 Quick try")
    exp = await experiment(db)
    assert (exp.metric, exp.baseline, exp.target, exp.hypothesis) == (None, None, None, "")
    assert exp.owner == BOB and json.loads(exp.links) == {}


async def test_exp_numbers_count_up_across_stories(slack, db):
    await ok(slack, "story add One")
    await ok(slack, "story add Two")
    assert (await ok(slack, "exp add S-1 A"))["text"] == "Added E-1"
    assert (await ok(slack, "exp add S-2 B"))["text"] == "Added E-2"
    assert (await ok(slack, "exp add S-1 C"))["text"] == "Added E-3"
    story_numbers = {s.id: s.number for s in await rows(db, Story)}
    experiments = sorted(await rows(db, Experiment), key=lambda e: e.number)
    assert [story_numbers[e.story_id] for e in experiments] == [1, 2, 1]


async def test_exp_add_to_a_done_story_is_refused(slack, db):
    await ok(slack, "story add Ship it")
    await ok(slack, "dod S-1 data_lineage=a model_evaluation=b rollback_plan=c monitoring=d")
    await ok(slack, "story done S-1")

    await refused(slack, db, "exp add S-1 Too late", "S-1 is done; add the experiment to an open story")


# ── exp list ─────────────────────────────────────────────────────────────────────────────────


def listed(body: dict[str, Any]) -> list[str]:
    return re.findall(r"^\*(E-\d+)\* ", shown(body), flags=re.MULTILINE)


async def test_exp_list_shows_the_team_s_experiments_and_filters_by_story_and_status(slack, db):
    await ok(slack, "story add One")
    await ok(slack, "story add Two")
    await ok(slack, "exp add S-1 Two-tower --metric ndcg")
    await ok(slack, "exp add S-1 Distilled")
    await ok(slack, "exp add S-2 Features v2 --metric auc")
    await ok(slack, "exp status E-2 running")

    everything = await ok(slack, "exp list", ephemeral=True)
    assert everything["text"] == "3 experiments"
    assert "*Experiments · team recsys* — 3 experiments" in shown(everything)
    assert listed(everything) == ["E-1", "E-2", "E-3"]
    assert "*E-1* Two-tower · proposed · ndcg" in shown(everything)
    assert "*E-2* Distilled · running" in shown(everything)

    assert listed(await ok(slack, "exp list --story S-1")) == ["E-1", "E-2"]
    assert listed(await ok(slack, "exp list --status running")) == ["E-2"]
    assert listed(await ok(slack, "exp list --story S-1 --status proposed")) == ["E-1"]
    none = await ok(slack, "exp list --story S-2 --status running")
    assert none["text"] == "No experiments"
    assert "Team recsys has no experiments that match." in shown(none)


async def test_exp_list_in_another_team_s_channel_shows_only_that_team(slack, db):
    await ok(slack, "story add One")
    await ok(slack, "exp add S-1 Two-tower")
    await ok(slack, "story add Platform work", user=FRANK, channel=PLATFORM)
    await ok(slack, "exp add S-2 Autoscaler", user=FRANK, channel=PLATFORM)

    assert listed(await ok(slack, "exp list", user=FRANK, channel=PLATFORM)) == ["E-2"]
    assert listed(await ok(slack, "exp list")) == ["E-1"]


async def test_one_experiment_is_counted_as_one(slack, db):
    await ok(slack, "story add One")
    await ok(slack, "exp add S-1 Two-tower")
    body = await ok(slack, "exp list")
    assert body["text"] == "1 experiment"
    assert "*Experiments · team recsys* — 1 experiment" in shown(body)
    assert "1 experiments" not in shown(body)


# ── exp show ─────────────────────────────────────────────────────────────────────────────────


async def test_exp_show_evaluates_the_latest_result_against_baseline_and_target(slack, db, ranker):
    await slack.command(f"exp add S-1 Placeholder --mlflow {MLFLOW}")  # E-2, only for its link below
    await ok(slack, "exp result E-1 ndcg=0.33 run=run-1")
    await ok(slack, "exp result E-1 ndcg=0.37 recall=0.5 run=run-2")

    body = await ok(slack, "exp show E-1", ephemeral=True)

    text = shown(body)
    assert body["text"] == "E-1 Two-tower ranker"
    assert "*E-1* Two-tower ranker · proposed\nStory *S-1* Train the ranker · owner <@U02BOB>" in text
    assert "_Hypothesis:_ Two towers beat one" in text
    assert (
        "*ndcg* 0.37 · baseline 0.3 · target 0.35 (higher is better) · Δ +0.07 · "
        ":white_check_mark: meets target · run `run-2`"
    ) in text
    assert "Results: ndcg=0.33 (run-1), ndcg=0.37 (run-2), recall=0.5 (run-2)" in text
    assert "Reviews: none" in text and "no links" in text

    with_link = shown(await ok(slack, "exp show E-2"))
    assert f"<{MLFLOW}|mlflow>" in with_link
    assert "_No primary metric set._" in with_link and "Results: none yet" in with_link


async def test_exp_show_lower_is_better_missing_the_target(slack, db):
    await ok(slack, "story add Serve faster")
    await ok(slack, "exp add S-1 Distilled --metric latency_ms --baseline 120 --target 100 --lower-is-better")
    before = shown(await ok(slack, "exp show E-1"))
    assert "*latency_ms* – · baseline 120 · target 100 (lower is better)" in before
    assert "Results: none yet" in before

    await ok(slack, "exp result E-1 latency_ms=110")

    text = shown(await ok(slack, "exp show E-1"))
    assert (
        "*latency_ms* 110 · baseline 120 · target 100 (lower is better) · Δ -10 · :x: misses target" in text
    )
    assert "Results: latency_ms=110 ·" in text  # no run id given, none shown


async def test_exp_show_lists_its_reviews_and_their_state(slack, db, ranker):
    await ok(slack, "exp review E-1")
    await ok(slack, "exp review E-1 --for canary")
    text = shown(await ok(slack, "exp show E-1"))
    assert "Reviews: R-1 production: pending, R-2 canary: pending" in text


async def test_exp_show_says_where_an_approved_review_cleared_it_to_go(slack, db, ranker):
    await ok(slack, "exp review E-1")
    before = shown(await ok(slack, "exp show E-1"))
    assert "*E-1* Two-tower ranker · proposed\n" in before and "approved for" not in before

    await slack.click(ids.REVIEW_APPROVE, "R-1", user=CAROL, channel=GOV)
    await slack.submit(slack.last_view(), {ids.FIELD_RATIONALE: {"value": None}}, user=CAROL)

    text = shown(await ok(slack, "exp show E-1"))
    assert "*E-1* Two-tower ranker · proposed · approved for production\nStory *S-1* Train the ranker" in text
    assert "Reviews: R-1 production: approved" in text
    # the list said so already; both agree
    assert "*E-1* Two-tower ranker · proposed · approved for production" in shown(await ok(slack, "exp list"))


# ── exp status ───────────────────────────────────────────────────────────────────────────────


async def test_exp_status_moves_proposed_running_succeeded_each_audited(slack, db, ranker):
    running = await ok(slack, 'exp status E-1 running reason="training started"', ephemeral=True)
    assert running["text"] == "E-1 running"
    assert ":arrows_counterclockwise: *E-1* is now running." in shown(running)
    assert (await experiment(db)).status == "running"

    done = await ok(slack, "exp status E-1 SUCCEEDED", user=BOB)
    assert ":arrows_counterclockwise: *E-1* is now succeeded." in shown(done)
    assert "governance review" not in shown(done)  # recsys has no review_on policy

    exp = await experiment(db)
    assert (exp.status, exp.stage) == ("succeeded", "none")
    events = await rows(db, AuditEvent, AuditEvent.action == "experiment.status")
    assert [(e.actor, e.action, e.subject) for e in events] == [
        (ALICE, "experiment.status", "E-1"),
        (BOB, "experiment.status", "E-1"),
    ]
    assert [json.loads(e.payload) for e in events] == [
        {"from": "proposed", "to": "running", "reason": "training started"},
        {"from": "running", "to": "succeeded", "reason": ""},
    ]
    assert await rows(db, Review) == []


async def test_exp_status_the_same_status_again_changes_nothing(slack, db, ranker):
    await ok(slack, "exp status E-1 running")
    before = await snapshot(db)

    body = await ok(slack, "exp status E-1 running")

    assert "*E-1* is already running." in shown(body)
    assert await snapshot(db) == before


FINISHED_MOVES = [
    (final, then)
    for final in ("succeeded", "failed", "abandoned")
    for then in ("proposed", "running", "succeeded", "failed", "abandoned")
    if then != final
]


@pytest.mark.parametrize(("final", "then"), FINISHED_MOVES)
async def test_exp_status_a_finished_experiment_refuses_to_move(slack, db, ranker, final, then):
    await ok(slack, f"exp status E-1 {final}")
    await refused(
        slack,
        db,
        f"exp status E-1 {then}",
        f"E-1 is {final}; it cannot become {then} (it is finished).",
        usage=False,  # a refused move is not a typo: no usage line
    )
    assert (await experiment(db)).status == final


async def test_exp_status_cannot_go_back_to_proposed(slack, db, ranker):
    await ok(slack, "exp status E-1 running")
    text = await refused(slack, db, "exp status E-1 proposed", "E-1 is running; it cannot become proposed.")
    assert "finished" not in text


async def test_exp_status_an_unknown_status_is_refused(slack, db, ranker):
    await refused(
        slack,
        db,
        "exp status E-1 done",
        "'done' is not a status; use one of proposed, running, succeeded, failed, abandoned.",
        usage="exp status E-n",
    )
    assert (await experiment(db)).status == "proposed"


# ── exp result ───────────────────────────────────────────────────────────────────────────────


async def test_exp_result_records_metrics_for_a_run(slack, db, ranker):
    body = await ok(slack, "exp result E-1 ndcg=0.37 recall=0.52 run=abc123", ephemeral=True, user=DAVE)

    assert body["text"] == "Recorded 2 results for E-1"
    text = shown(body)
    assert ":bar_chart: Recorded 2 results for *E-1*." in text
    assert "*ndcg* 0.37 · baseline 0.3 · target 0.35 (higher is better) · Δ +0.07" in text
    stored = sorted(await rows(db, ExperimentResult), key=lambda r: r.metric)
    assert [(r.metric, r.value, r.run_id, r.source, r.recorded_by) for r in stored] == [
        ("ndcg", 0.37, "abc123", "slack", DAVE),
        ("recall", 0.52, "abc123", "slack", DAVE),
    ]


async def test_exp_result_for_the_same_run_and_metric_replaces_the_value(slack, db, ranker):
    one = await ok(slack, "exp result E-1 ndcg=0.31 run=abc123")
    assert one["text"] == "Recorded 1 result for E-1"
    assert ":bar_chart: Recorded 1 result for *E-1*." in shown(one)
    await ok(slack, "exp result E-1 ndcg=0.36 run=abc123")
    await ok(slack, "exp result E-1 ndcg=0.34 run=def456")

    stored = sorted(await rows(db, ExperimentResult), key=lambda r: r.run_id)
    assert [(r.run_id, r.value) for r in stored] == [("abc123", 0.36), ("def456", 0.34)]


async def test_exp_result_accepts_negative_and_exponent_notation(slack, db, ranker):
    await ok(slack, "exp result E-1 ndcg=3.5e-1 delta_loss=-0.02")
    stored = {r.metric: r.value for r in await rows(db, ExperimentResult)}
    assert stored == {"ndcg": 0.35, "delta_loss": -0.02}


@pytest.mark.parametrize(
    ("typed", "needle"),
    [
        ("ndcg=high", "ndcg must be a number, not 'high'."),
        ("ndcg=0.3,5", "ndcg must be a number, not '0.3,5'."),
        ("ndcg=", "ndcg must be a number, not ''."),
        ("ndcg=nan", "ndcg must be a finite number."),
        ("ndcg=NaN", "ndcg must be a finite number."),
        ("ndcg=inf", "ndcg must be a finite number."),
        ("ndcg=-inf", "ndcg must be a finite number."),
        ("ndcg=Infinity", "ndcg must be a finite number."),
        ("ndcg=1e999", "ndcg must be a finite number."),
        ("ndcg=0.3 recall=nan", "recall must be a finite number."),
    ],
)
async def test_exp_result_non_numeric_and_non_finite_values_are_refused(slack, db, ranker, typed, needle):
    await refused(slack, db, f"exp result E-1 {typed} run=r1", needle, usage="exp result E-n")
    assert await rows(db, ExperimentResult) == []


# ── exp review ───────────────────────────────────────────────────────────────────────────────


async def test_exp_review_opens_a_review_and_posts_it_to_the_governance_channel(
    slack, db, ranker, make_worker, clock
):
    await ok(slack, "exp result E-1 ndcg=0.37 run=abc123")

    body = await ok(slack, "exp review E-1", ephemeral=True)

    assert body["text"] == "Opened R-1"
    assert (
        ":scales: Opened governance review *R-1* for *E-1* (production); the approvers are asked in their channel."
        in shown(body)
    )
    [review] = await rows(db, Review)
    assert (review.key, review.team, review.purpose, review.state) == (
        "R-1",
        "recsys",
        "production",
        "pending",
    )
    assert (review.requested_by, review.source, review.required_approvals) == (ALICE, "slack", 1)
    assert review.experiment_id == (await experiment(db)).id
    assert review.subject == "E-1 Two-tower ranker"
    [event] = await rows(db, AuditEvent, AuditEvent.subject == "R-1")
    assert (event.actor, event.action, event.subject) == (ALICE, "review.request", "R-1")
    assert json.loads(event.payload) == {
        "purpose": "production",
        "subject": "E-1 Two-tower ranker",
        "source": "slack",
        "experiment": "E-1",
    }

    # the request is a row in the outbox first; nothing goes to Slack before the worker runs
    [queued] = await to_governance(db)
    assert (queued.channel, queued.state, queued.method) == (GOV, "pending", "chat.postMessage")
    assert review.message_id == queued.id
    assert posted(slack) == []

    await deliver(make_worker(), clock)

    [request] = posted(slack, GOV)
    text = shown(request)
    assert "*R-1* · production · E-1 Two-tower ranker\nRequested by <@U01ALICE>" in text
    assert "*E-1* Two-tower ranker (proposed) · story *S-1* Train the ranker" in text
    assert "_Hypothesis:_ Two towers beat one" in text
    assert "*ndcg* 0.37 · baseline 0.3 · target 0.35" in text and "meets target" in text
    assert "Ready: 6/6 · Done: 0/4" in text
    assert [(b["action_id"], b["text"]["text"], b["value"], b.get("style")) for b in buttons(request)] == [
        ("review_approve", "Approve", "R-1", "primary"),
        ("review_request_changes", "Request changes", "R-1", None),
        ("review_reject", "Reject", "R-1", "danger"),
    ]
    [sent] = await to_governance(db)
    assert sent.state == "sent" and sent.slack_ts


async def test_a_second_request_for_the_same_purpose_says_it_is_already_pending(slack, db, ranker):
    await ok(slack, "exp review E-1")
    before = await snapshot(db)

    body = await ok(slack, "exp review E-1 --for production", user=BOB)

    assert body["text"] == "*R-1* for E-1 (production) is already waiting for a decision."
    assert await snapshot(db) == before


async def test_a_request_for_another_purpose_opens_its_own_review(slack, db, ranker):
    await ok(slack, "exp review E-1")
    body = await ok(slack, "exp review E-1 --for Canary")
    assert "Opened governance review *R-2* for *E-1* (canary)" in shown(body)
    assert sorted((r.key, r.purpose) for r in await rows(db, Review)) == [
        ("R-1", "production"),
        ("R-2", "canary"),
    ]
    assert len(await to_governance(db)) == 2


@pytest.mark.parametrize("final", ["failed", "abandoned"])
async def test_exp_review_of_a_failed_or_abandoned_experiment_is_refused(slack, db, ranker, final):
    await ok(slack, f"exp status E-1 {final}")
    await refused(slack, db, "exp review E-1", f"E-1 {final}; there is nothing to promote.", usage=False)


async def test_exp_review_for_a_team_without_governance_is_refused(slack, db):
    await ok(slack, "story add Autoscaler", user=FRANK, channel=PLATFORM)
    await ok(slack, "exp add S-1 Predictive scaling", user=FRANK, channel=PLATFORM)

    await refused(
        slack,
        db,
        "exp review E-1",
        "Team platform has no governance channel and approvers configured.",
        user=FRANK,
        channel=PLATFORM,
    )


async def test_policy_opens_a_review_when_the_experiment_succeeds(make_app, db, make_worker, clock):
    config = make_config(governance={"review_on": {"succeeded": "production"}})
    async with make_app(config) as slack:
        await setup_ranker(slack)
        running = await ok(slack, "exp status E-1 running")
        assert "governance review" not in shown(running)
        assert await rows(db, Review) == []

        body = await ok(slack, "exp status E-1 succeeded", user=DAVE)

        assert (
            ":arrows_counterclockwise: *E-1* is now succeeded.\n"
            "Team policy opened governance review *R-1* (production)."
        ) in shown(body)
        [review] = await rows(db, Review)
        assert (review.purpose, review.source, review.requested_by, review.state) == (
            "production",
            "policy",
            "policy",  # the team's policy asks; Dave, who moved the status, is named in the audit row
            "pending",
        )
        assert review.source_key == "policy:E-1:succeeded:production"
        actions = [(e.action, e.subject) for e in await rows(db, AuditEvent)]
        assert actions == [
            ("experiment.add", "E-1"),
            ("experiment.status", "E-1"),
            ("experiment.status", "E-1"),
            ("review.request", "R-1"),
        ]

        # asking again by hand finds the one the policy opened
        again = await ok(slack, "exp review E-1")
        assert "*R-1* for E-1 (production) is already waiting for a decision." in again["text"]

        await deliver(make_worker(), clock)
        [request] = posted(slack, GOV)
        assert "*R-1* · production · E-1 Two-tower ranker\nRequested by the team's review policy" in shown(
            request
        )
        assert [b["value"] for b in buttons(request)] == ["R-1", "R-1", "R-1"]


async def test_policy_opens_no_review_for_other_statuses(make_app, db):
    async with make_app(make_config(governance={"review_on": {"succeeded": "production"}})) as slack:
        await setup_ranker(slack)
        await ok(slack, "exp status E-1 running")
        await ok(slack, "exp status E-1 failed")
        assert await rows(db, Review) == []
        assert await to_governance(db) == []


# ── malformed input: a warning, and nothing stored or sent ───────────────────────────────────

MALFORMED = [
    # what is typed, what the warning must say, the usage line it must show
    (
        "exp",
        ["'exp' is not a command", "exp add, exp list, exp show, exp status, exp result, exp review"],
        "help",
    ),
    ("exp frob E-1", ["'exp frob' is not a command"], "help"),
    # exp add
    ("exp add", ["Name the story and the experiment"], "exp add S-n NAME"),
    ("exp add S-1", ["Name the story and the experiment"], "exp add S-n NAME"),
    ("exp add S-1 --metric auc", ["Name the story and the experiment"], "exp add S-n NAME"),
    ("exp add X-1 Foo", ["'X-1' is not a story id"], "exp add S-n NAME"),
    ("exp add E-1 Foo", ["'E-1' is not a story id"], "exp add S-n NAME"),
    ("exp add S-99 Foo", ["There is no story S-99."], "exp add S-n NAME"),
    ("exp add S-1 Foo --bogus 1", ["Unknown option --bogus", "--metric, --baseline"], "exp add S-n NAME"),
    ("exp add S-1 Foo --metric", ["--metric needs a value."], "exp add S-n NAME"),
    ('exp add S-1 Foo --metric "auc score"', ["'auc score' is not a metric name"], "exp add S-n NAME"),
    ("exp add S-1 Foo --metric 1auc", ["'1auc' is not a metric name"], "exp add S-n NAME"),
    ("exp add S-1 Foo --metric auc --metric ndcg", ["--metric is given twice."], "exp add S-n NAME"),
    ("exp add S-1 Foo --baseline abc", ["--baseline must be a number, not 'abc'."], "exp add S-n NAME"),
    ("exp add S-1 Foo --baseline nan", ["--baseline must be a finite number."], "exp add S-n NAME"),
    ("exp add S-1 Foo --target inf", ["--target must be a finite number."], "exp add S-n NAME"),
    ("exp add S-1 Foo --target -Infinity", ["--target must be a finite number."], "exp add S-n NAME"),
    ("exp add S-1 Foo --lower-is-better=yes", ["--lower-is-better takes no value."], "exp add S-n NAME"),
    ("exp add S-1 Foo --owner @nobody", ["I don't know a Slack user '@nobody'"], "exp add S-n NAME"),
    (
        "exp add S-1 Foo --mlflow ftp://mlflow.example/1",
        ["The mlflow link must be an http(s) URL"],
        "exp add",
    ),
    ("exp add S-1 Foo --dashboard grafana", ["The dashboard link must be an http(s) URL"], "exp add"),
    ("exp add S-1 " + "x" * 201, ["The name is 201 characters long; keep it to 200."], "exp add S-n NAME"),
    ('exp add S-1 Foo --hypothesis "' + "h" * 2001 + '"', ["Keep the hypothesis to 2000"], "exp add"),
    ('exp add S-1 "Foo', ["A quote is not closed"], "help"),
    # exp list
    ("exp list extra", ["Unexpected 'extra'; exp list takes only options."], "exp list"),
    ("exp list --status done", ["'done' is not a status; use one of proposed, running"], "exp list"),
    ("exp list --status", ["--status needs a value."], "exp list"),
    ("exp list --story S-99", ["There is no story S-99."], "exp list"),
    ("exp list --story E-1", ["'E-1' is not a story id"], "exp list"),
    ("exp list --mine", ["Unknown option --mine", "(options here: --story, --status)"], "exp list"),
    # exp show
    ("exp show", ["Name one experiment, e.g. `exp show E-3`."], "exp show E-n"),
    ("exp show E-1 E-2", ["Name one experiment"], "exp show E-n"),
    ("exp show E-x", ["'E-x' is not an experiment id; experiment ids look like E-3."], "exp show E-n"),
    ("exp show S-1", ["'S-1' is not an experiment id"], "exp show E-n"),
    ("exp show E-99", ["There is no experiment E-99."], "exp show E-n"),
    ("exp show E-1 --verbose", ["Unknown option --verbose (options here: none)"], "exp show E-n"),
    # exp status
    ("exp status", ["Name an experiment and a status", "e.g. `exp status E-3 running`"], "exp status E-n"),
    ("exp status E-1", ["Name an experiment and a status"], "exp status E-n"),
    ("exp status E-1 running succeeded", ["Name an experiment and a status"], "exp status E-n"),
    ("exp status E-x running", ["'E-x' is not an experiment id"], "exp status E-n"),
    ("exp status E-99 running", ["There is no experiment E-99."], "exp status E-n"),
    ("exp status E-1 finished", ["'finished' is not a status"], "exp status E-n"),
    (
        "exp status E-1 running owner=bob",
        ['Unexpected owner=…; only reason="…" goes with a status.'],
        "exp status",
    ),
    ("exp status E-1 running --force", ["Unknown option --force"], "exp status E-n"),
    ('exp status E-1 running reason="a" reason="b"', ["reason is given twice."], "exp status E-n"),
    # exp result
    ("exp result", ["Name one experiment and its metrics"], "exp result E-n"),
    ("exp result ndcg=0.3", ["Name one experiment and its metrics"], "exp result E-n"),
    ("exp result E-1", ["Give at least one metric, e.g. auc=0.84."], "exp result E-n"),
    ("exp result E-1 run=abc", ["Give at least one metric"], "exp result E-n"),
    ("exp result E-1 NDCG=0.3", ["Name one experiment and its metrics"], "exp result E-n"),
    ("exp result E-x ndcg=0.3", ["'E-x' is not an experiment id"], "exp result E-n"),
    ("exp result E-99 ndcg=0.3", ["There is no experiment E-99."], "exp result E-n"),
    ("exp result E-1 ndcg=0.3 ndcg=0.4", ["ndcg is given twice."], "exp result E-n"),
    ("exp result E-1 ndcg=0.3 --run abc", ["Unknown option --run"], "exp result E-n"),
    ("exp result E-1 ndcg=0.3 run=" + "r" * 65, ["A run id is at most 64 characters."], "exp result E-n"),
    # exp review
    ("exp review", ["Name one experiment, e.g. `exp review E-3 --for production`."], "exp review E-n"),
    ("exp review E-1 E-2", ["Name one experiment"], "exp review E-n"),
    ("exp review E-x", ["'E-x' is not an experiment id"], "exp review E-n"),
    ("exp review E-99", ["There is no experiment E-99."], "exp review E-n"),
    (
        "exp review E-1 --for staging",
        ["'staging' is not a review purpose; use canary or production."],
        "exp review",
    ),
    ("exp review E-1 --for", ["--for needs a value."], "exp review E-n"),
    ("exp review E-1 --urgent", ["Unknown option --urgent (options here: --for)"], "exp review E-n"),
]


@pytest.mark.parametrize(("command", "needles", "usage"), MALFORMED, ids=[m[0][:60] for m in MALFORMED])
async def test_malformed_exp_commands_are_refused_and_store_nothing(
    slack, db, ranker, command, needles, usage
):
    await refused(slack, db, command, *needles, usage=usage)


# ── escaping ─────────────────────────────────────────────────────────────────────────────────

# typed: <!channel> & co — Slack sends &, < and > in command text as entities
TYPED_NAME = "&lt;!channel&gt; &amp; co"
SHOWN_NAME = "&lt;!channel&gt; &amp; co"


def assert_no_raw_markup(payload: Any) -> None:
    """No text a person reads may contain a live mention or an unescaped & < >."""
    for text in texts(payload):
        assert "<!channel>" not in text and "<!here>" not in text, text
        assert " & " not in text and "<b>" not in text, text


async def test_names_and_hypotheses_are_stored_plain_and_shown_escaped(slack, db, make_worker, clock):
    await ok(slack, "story add Ranker &amp; friends")
    await make_ready(slack)
    added = await ok(
        slack,
        f'exp add S-1 {TYPED_NAME} --metric ndcg --hypothesis "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;!here&gt;"',
    )
    exp = await experiment(db)
    assert exp.name == "<!channel> & co"
    assert exp.hypothesis == "<b>bold</b> & <!here>"
    assert f"*E-1* {SHOWN_NAME} to *S-1*" in shown(added)

    await ok(slack, "exp result E-1 ndcg=0.4 run=&lt;!here&gt;")
    replies = [
        added,
        await ok(slack, "exp list"),
        await ok(slack, "exp show E-1"),
        await ok(slack, "exp status E-1 running"),
        await ok(slack, "exp review E-1"),
    ]
    for body in replies:
        assert_no_raw_markup(body)
    assert f"*E-1* {SHOWN_NAME} · proposed" in shown(replies[1])
    show = shown(replies[2])
    assert f"*E-1* {SHOWN_NAME} · proposed" in show
    assert "Story *S-1* Ranker &amp; friends" in show
    assert "_Hypothesis:_ &lt;b&gt;bold&lt;/b&gt; &amp; &lt;!here&gt;" in show
    assert "(&lt;!here&gt;)" in show  # the run id
    assert replies[2]["text"] == f"E-1 {SHOWN_NAME}"

    # the review request's blocks, as posted to the governance channel
    await deliver(make_worker(), clock)
    [request] = posted(slack, GOV)
    assert_no_raw_markup(request["blocks"])
    assert f"E-1 {SHOWN_NAME}" in shown({"blocks": request["blocks"]})


async def test_the_review_request_fallback_text_is_escaped_too(slack, db, make_worker, clock):
    await ok(slack, "story add Ranker")
    await make_ready(slack)
    await ok(slack, f"exp add S-1 {TYPED_NAME}")
    await ok(slack, "exp review E-1")
    await deliver(make_worker(), clock)

    [request] = posted(slack, GOV)
    assert request["text"] == (
        f"Governance review R-1 for <@{CAROL}>: production · E-1 {SHOWN_NAME} · "
        "decision due Tue 8 Dec, 07:00 (Europe/Berlin)"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://mlflow.example/r/1&gt;&lt;!channel&gt;",  # typed: https://mlflow.example/r/1><!channel>
        "https://evil.example/|mlflow.example",  # a disguised link
    ],
)
async def test_a_link_cannot_inject_markup_into_exp_show(slack, db, url):
    await ok(slack, "story add Ranker")
    answer = await slack.command(f"exp add S-1 Two-tower --mlflow {url}")
    bodies = [answer.json()]
    if await rows(db, Experiment):  # accepted: then exp show must keep it harmless
        bodies.append((await slack.command("exp show E-1")).json())
    for body in bodies:
        for text in texts(body):
            assert "<!channel>" not in text, text
            assert not re.search(r"<https?://[^>]*\|[^>]*\|", text), text  # no second label hiding in a link
