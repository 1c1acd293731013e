"""MlflowSync on the test database: tagged runs become experiment results and statuses, promoted model
versions open one governance review each; against a real MLflow server and against recorded answers.
tick() never raises: it logs and backs off while MLflow is unreachable."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col

from bot.config import AppConfig
from bot.integrations.mlflow import MlflowClient
from bot.jobs.mlflow_sync import MAX_BACKOFF, MlflowSync, SyncReport
from bot.notify import Notifier
from bot.notify.templates import Renderer
from bot.services import experiments, governance
from bot.store.db import session_factory
from bot.store.models import Experiment, ExperimentResult, Review
from tests.conftest import ALICE, CAROL, GOV
from tests.factories import make_story, outbox_rows, rows, tx
from tests.integrations.conftest import (
    FIXTURES,
    RECORDED_EXPERIMENT,
    RECORDED_MODEL,
    RecordedMlflow,
    mlflow_config,
    recorded_runs,
)

RECORDED_URL = "http://mlflow.test"
NO_RUNS = ["no-such-experiment"]  # an experiment MLflow does not know: no runs to scan, only models


# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture
async def make_sync(db, clock) -> AsyncIterator[Callable[..., MlflowSync]]:
    """MlflowSync for a configuration on the test database and clock; its client talks to
    config.mlflow.tracking_uri, or through `transport` when one is given."""
    clients: list[MlflowClient] = []

    def build(config: AppConfig, transport: httpx.AsyncBaseTransport | None = None) -> MlflowSync:
        assert config.mlflow is not None
        client = MlflowClient(config.mlflow.tracking_uri, timeout=30, transport=transport)
        clients.append(client)
        sessions = session_factory(db)
        notifier = Notifier(config, sessions, Renderer(config.templates_dir), clock)
        return MlflowSync(config=config, notifier=notifier, client=client, clock=clock)

    yield build
    for client in clients:
        await client.aclose()


async def add_story_and_experiments(db, config: AppConfig, count: int = 1) -> None:
    """S-1 on recsys with E-1 … E-count: metric auc, baseline 0.80, target 0.83."""
    async with tx(db) as s:
        story = await make_story(s, config)
        for n in range(1, count + 1):
            await experiments.add_experiment(
                s,
                config=config,
                story=story,
                name=f"Ranker idea {n}",
                actor=ALICE,
                metric="auc",
                baseline=0.80,
                target=0.83,
            )


async def add_story(db, config: AppConfig) -> None:
    async with tx(db) as s:
        await make_story(s, config)


async def experiment(db, number: int) -> Experiment:
    [found] = await rows(db, Experiment, Experiment.number == number)
    return found


async def results(db, number: int) -> list[tuple[str, float, str, str]]:
    """(metric, value, source, run id) of E-number, by metric."""
    exp = await experiment(db, number)
    found = await rows(db, ExperimentResult, ExperimentResult.experiment_id == exp.id)
    return sorted((r.metric, r.value, r.source, r.run_id) for r in found)


async def reviews(db) -> list[Review]:
    return sorted(await rows(db, Review), key=lambda r: r.number)


async def all_experiments(db) -> list[Experiment]:
    return sorted(await rows(db, Experiment), key=lambda e: e.number)


def model(name: str, **kwargs: Any) -> dict[str, Any]:
    return {"name": name, "team": "recsys", **kwargs}


# ================================================================================ the real MLflow server


@pytest.fixture
def live_config(mlflow_server: str) -> Callable[..., AppConfig]:
    def build(**kwargs: Any) -> AppConfig:
        return mlflow_config(mlflow_server, **kwargs)

    return build


async def test_a_finished_run_tagged_with_an_experiment_records_its_metric_and_success(
    db, seeded, live_config, make_sync
):
    config = live_config(experiments=["it-finished"])
    await add_story_and_experiments(db, config)
    run_id = seeded["runs"]["finished"]

    report = await make_sync(config).sync_once()

    assert (report.runs, report.experiments_changed, report.skipped) == (1, ["E-1"], [])
    assert await results(db, 1) == [("auc", 0.842, "mlflow", run_id)]
    e1 = await experiment(db, 1)
    assert (e1.status, e1.mlflow_run_id) == ("succeeded", run_id)
    assert report.reviews_opened == [] and await reviews(db) == []  # no review_on policy here

    again = await make_sync(config).sync_once()
    assert (again.runs, again.experiments_changed, again.reviews_opened) == (1, [], [])
    assert await results(db, 1) == [("auc", 0.842, "mlflow", run_id)]


async def test_success_opens_the_policy_review_and_posts_it_to_the_governance_channel(
    db, seeded, live_config, make_sync, make_worker, fake_slack
):
    config = live_config(experiments=["it-finished"], review_on={"succeeded": "production"})
    await add_story_and_experiments(db, config)

    report = await make_sync(config).sync_once()

    assert report.reviews_opened == ["R-1"]
    [review] = await reviews(db)
    e1 = await experiment(db, 1)
    assert (review.team, review.purpose, review.source, review.experiment_id, review.state) == (
        "recsys",
        "production",
        "policy",
        e1.id,
        "pending",
    )
    [queued] = await outbox_rows(db)
    assert (queued.channel, queued.dedupe_key, queued.id) == (GOV, "review:R-1:request", review.message_id)

    assert (await make_sync(config).sync_once()).reviews_opened == []  # once
    assert len(await reviews(db)) == 1

    fake_slack.reset()
    assert await make_worker().run_once() == 1
    [posted] = fake_slack.delivered()
    assert posted.args["channel"] == GOV
    assert posted.args["text"].startswith("Governance review R-1 for <@U09CAROL>: production")


async def test_a_run_tagged_with_a_story_creates_one_experiment(
    db, seeded, live_config, make_sync, mlflow_server
):
    config = live_config(experiments=["it-story"])
    await add_story(db, config)
    run_id, exp_id = seeded["runs"]["story"], seeded["experiments"]["it-story"]

    report = await make_sync(config).sync_once()

    assert (report.experiments_changed, report.skipped) == (["E-1"], [])
    [e1] = await all_experiments(db)
    assert (e1.name, e1.team, e1.external_id, e1.mlflow_run_id, e1.created_by) == (
        "ranker from story",
        "recsys",
        f"mlflow:{run_id}",
        run_id,
        "mlflow",
    )
    assert (e1.metric, e1.baseline, e1.target, e1.higher_is_better) == ("auc", 0.80, 0.83, True)
    assert experiments.links_of(e1) == {"mlflow": f"{mlflow_server}/#/experiments/{exp_id}/runs/{run_id}"}
    assert e1.status == "succeeded"  # 0.85 ≥ 0.83
    assert await results(db, 1) == [("auc", 0.85, "mlflow", run_id), ("loss", 0.31, "mlflow", run_id)]

    again = await make_sync(config).sync_once()
    assert (again.runs, again.experiments_changed, again.skipped) == (1, [], [])
    assert [e.key for e in await all_experiments(db)] == ["E-1"]
    assert len(await results(db, 1)) == 2


async def test_a_story_run_can_say_lower_is_better(db, seeded, live_config, make_sync):
    config = live_config(experiments=["it-direction"])
    await add_story(db, config)

    await make_sync(config).sync_once()

    [e1] = await all_experiments(db)
    assert (e1.metric, e1.baseline, e1.target, e1.higher_is_better) == ("rmse", 0.30, 0.25, False)
    assert e1.status == "succeeded"  # 0.21 ≤ 0.25


@pytest.mark.parametrize(
    ("scenario", "status", "values"),
    [
        ("running", "running", [("auc", 0.81)]),
        ("failed", "failed", [("auc", 0.79)]),
        ("killed", "abandoned", []),
    ],
)
async def test_the_runs_state_becomes_the_experiments_status(
    db, seeded, live_config, make_sync, scenario, status, values
):
    config = live_config(experiments=[f"it-{scenario}"])
    await add_story_and_experiments(db, config)
    run_id = seeded["runs"][scenario]

    report = await make_sync(config).sync_once()

    assert (report.experiments_changed, report.skipped) == (["E-1"], [])
    e1 = await experiment(db, 1)
    assert (e1.status, e1.mlflow_run_id) == (status, run_id)
    assert await results(db, 1) == [(m, v, "mlflow", run_id) for m, v in values]


async def test_a_champion_alias_opens_exactly_one_review_linked_to_the_runs_experiment(
    db, seeded, live_config, make_sync
):
    config = live_config(experiments=["it-models"], models=[model("it-ranker")])
    await add_story_and_experiments(db, config)

    report = await make_sync(config).sync_once()

    [review] = await reviews(db)
    e1 = await experiment(db, 1)
    assert e1.mlflow_run_id == seeded["runs"]["model_v1"]
    assert report.reviews_opened == [review.key]
    assert (review.team, review.subject, review.experiment_id, review.source, review.purpose) == (
        "recsys",
        "it-ranker v1 → champion",
        e1.id,
        "mlflow",
        "production",
    )
    assert review.source_key == "mlflow:it-ranker:champion:v1"
    assert [(m.channel, m.dedupe_key) for m in await outbox_rows(db)] == [
        (GOV, f"review:{review.key}:request")
    ]

    again = await make_sync(config).sync_once()
    assert again.reviews_opened == []
    assert len(await reviews(db)) == 1
    assert len(await outbox_rows(db)) == 1


async def test_a_version_tagged_cadence_propose_opens_one_review(db, seeded, live_config, make_sync):
    config = live_config(experiments=NO_RUNS, models=[model("it-proposed")])

    report = await make_sync(config).sync_once()

    [review] = await reviews(db)
    assert report.reviews_opened == [review.key] == ["R-1"]
    assert (review.subject, review.experiment_id, review.source_key) == (
        "it-proposed v1 → champion",
        None,  # its run belongs to no Cadence experiment
        "mlflow:it-proposed:champion:v1",
    )
    assert (await make_sync(config).sync_once()).reviews_opened == []
    assert len(await reviews(db)) == 1


async def test_a_configured_stage_opens_one_review(db, seeded, live_config, make_sync):
    config = live_config(
        experiments=NO_RUNS, models=[model("it-staged", aliases=[], stages=["Production"], purpose="canary")]
    )

    await make_sync(config).sync_once()
    await make_sync(config).sync_once()

    [review] = await reviews(db)
    assert (review.subject, review.purpose) == ("it-staged v1 → Production", "canary")


async def test_aliases_and_stages_not_configured_open_nothing(db, seeded, live_config, make_sync):
    config = live_config(
        experiments=NO_RUNS,
        models=[model("it-ranker", aliases=["challenger"]), model("it-staged", stages=[])],
    )

    report = await make_sync(config).sync_once()

    assert report.reviews_opened == [] and await reviews(db) == []


async def test_runs_for_unknown_stories_or_experiments_are_skipped_and_the_rest_synced(
    db, seeded, live_config, make_sync
):
    config = live_config(experiments=["it-unknown"])
    await add_story_and_experiments(db, config)
    runs = seeded["runs"]

    report = await make_sync(config).sync_once()

    assert report.runs == 3  # the untagged run is not asked for
    assert sorted(report.skipped) == sorted(
        [
            f"run {runs['unknown_experiment']}: There is no experiment E-99.",
            f"run {runs['unknown_story']}: There is no story S-99.",
        ]
    )
    assert report.experiments_changed == ["E-1"]
    assert (await experiment(db, 1)).status == "succeeded"
    assert await results(db, 1) == [("auc", 0.842, "mlflow", runs["known"])]
    assert [e.key for e in await all_experiments(db)] == ["E-1"]


async def test_a_nan_metric_does_not_keep_the_rest_of_the_run_out(db, seeded, live_config, make_sync):
    config = live_config(experiments=["it-nan"])
    await add_story_and_experiments(db, config)

    report = await make_sync(config).sync_once()

    assert report.skipped == []
    assert (await experiment(db, 1)).status == "succeeded"
    assert ("auc", 0.842, "mlflow", seeded["runs"]["nan"]) in await results(db, 1)


# ========================================================== recorded answers of a real server (no server)


@pytest.fixture
def recorded() -> RecordedMlflow:
    return RecordedMlflow()


def recorded_config(**kwargs: Any) -> AppConfig:
    kwargs.setdefault("experiments", [RECORDED_EXPERIMENT])
    return mlflow_config(RECORDED_URL, **kwargs)


async def test_recorded_runs_set_status_and_results(db, recorded, make_sync):
    config = recorded_config()
    await add_story_and_experiments(db, config, count=3)
    ids = recorded_runs()

    report = await make_sync(config, recorded.transport()).sync_once()

    assert report.runs == 6
    assert sorted(report.experiments_changed) == ["E-1", "E-2", "E-3", "E-4"]  # E-4 from the story run
    expected = {
        1: ("succeeded", "ranker-finished", [("auc", 0.842), ("loss", 0.29)]),
        2: ("running", "still training", [("auc", 0.81)]),
        3: ("failed", "crashed", [("auc", 0.79)]),
    }
    for number, (status, run_name, values) in expected.items():
        exp = await experiment(db, number)
        run_id = ids[run_name]
        assert (exp.status, exp.mlflow_run_id) == (status, run_id), exp.key
        assert await results(db, number) == [(m, v, "mlflow", run_id) for m, v in values]


async def test_recorded_story_run_creates_one_experiment(db, recorded, make_sync):
    config = recorded_config()
    await add_story(db, config)
    run_id = recorded_runs()["ranker from story"]

    await make_sync(config, recorded.transport()).sync_once()
    again = await make_sync(config, recorded.transport()).sync_once()

    [e1] = [e for e in await all_experiments(db) if e.external_id == f"mlflow:{run_id}"]
    assert (e1.name, e1.metric, e1.baseline, e1.target, e1.status) == (
        "ranker from story",
        "auc",
        0.80,
        0.83,
        "succeeded",
    )
    assert experiments.links_of(e1) == {
        "mlflow": f"{RECORDED_URL}/#/experiments/{recorded.experiment_id}/runs/{run_id}"
    }
    assert again.experiments_changed == []
    assert len(await all_experiments(db)) == 1  # E-1, E-2, E-3 were never created: their runs skipped


async def test_recorded_unknown_tags_are_skipped(db, recorded, make_sync):
    config = recorded_config()
    await add_story_and_experiments(db, config, count=3)
    ids = recorded_runs()

    report = await make_sync(config, recorded.transport()).sync_once()

    assert sorted(report.skipped) == sorted(
        [
            f"run {ids['for E-99']}: There is no experiment E-99.",
            f"run {ids['for S-99']}: There is no story S-99.",
        ]
    )


async def test_recorded_success_opens_the_policy_review(db, recorded, make_sync):
    config = recorded_config(review_on={"succeeded": "production"})
    await add_story_and_experiments(db, config, count=3)

    report = await make_sync(config, recorded.transport()).sync_once()

    e1, e4 = await experiment(db, 1), await experiment(db, 4)
    opened = {r.experiment_id: r for r in await reviews(db)}
    assert set(opened) == {e1.id, e4.id}  # both succeeded; E-2 runs, E-3 failed
    assert sorted(report.reviews_opened) == sorted(r.key for r in opened.values())
    assert {m.dedupe_key for m in await outbox_rows(db)} == {
        f"review:{r.key}:request" for r in opened.values()
    }
    assert {m.channel for m in await outbox_rows(db)} == {GOV}


async def test_recorded_model_versions_open_one_review_each(db, recorded, make_sync):
    config = recorded_config(models=[model(RECORDED_MODEL), model("no-such-model")])
    await add_story_and_experiments(db, config, count=3)

    report = await make_sync(config, recorded.transport()).sync_once()

    by_number = {n: (await experiment(db, n)).id for n in (1, 2, 4)}
    opened = {r.subject: (r.experiment_id, r.source_key, r.source) for r in await reviews(db)}
    assert opened == {
        "cadence-ranker v1 → champion": (by_number[1], "mlflow:cadence-ranker:champion:v1", "mlflow"),
        "cadence-ranker v2 → champion": (by_number[4], "mlflow:cadence-ranker:champion:v2", "mlflow"),
        "cadence-ranker v3 → Production": (by_number[2], "mlflow:cadence-ranker:Production:v3", "mlflow"),
    }
    assert len(report.reviews_opened) == 3
    assert len(await outbox_rows(db)) == 3

    again = await make_sync(config, recorded.transport()).sync_once()
    assert again.reviews_opened == []
    assert len(await reviews(db)) == 3
    assert len(await outbox_rows(db)) == 3


async def test_an_unknown_registered_model_yields_no_versions(db, recorded, make_sync):
    config = recorded_config(experiments=NO_RUNS, models=[model("no-such-model")])

    report = await make_sync(config, recorded.transport()).sync_once()

    assert report == SyncReport()
    paths = [r.url.path.rsplit("/mlflow/", 1)[1] for r in recorded.requests]
    assert paths == ["experiments/get-by-name", "registered-models/get"]  # 404, so no version search


async def test_a_model_of_a_team_without_governance_is_skipped_not_fatal(db, recorded, make_sync):
    config = recorded_config(experiments=NO_RUNS, models=[model(RECORDED_MODEL, team="platform")])

    report = await make_sync(config, recorded.transport()).sync_once()

    assert report.reviews_opened == [] and await reviews(db) == []
    assert sorted(report.skipped) == [
        f"mlflow:{RECORDED_MODEL}:{target}:v{v}: Team platform has no governance channel and approvers configured."
        for target, v in (("Production", 3), ("champion", 1), ("champion", 2))
    ]


async def test_a_review_for_a_decided_promotion_is_not_opened_again(db, recorded, make_sync):
    config = recorded_config(models=[model(RECORDED_MODEL)])
    await add_story_and_experiments(db, config, count=3)
    await make_sync(config, recorded.transport()).sync_once()
    async with tx(db) as s:
        for review in await reviews(db):
            await governance.decide(
                s, config=config, review_key=review.key, approver=CAROL, verdict="approve"
            )

    again = await make_sync(config, recorded.transport()).sync_once()

    assert again.reviews_opened == []
    assert [r.state for r in await reviews(db)] == ["approved"] * 3


# ------------------------------------------------------------------------------------- tick and backoff


@pytest.fixture
def down(recorded: RecordedMlflow) -> RecordedMlflow:
    """The recorded server, unreachable until `down.down = None`."""
    recorded.down = httpx.ConnectError("[Errno 111] Connection refused")
    return recorded


async def test_tick_logs_and_backs_off_instead_of_raising(db, clock, down, make_sync, caplog):
    sync = make_sync(recorded_config(), down.transport())
    start = clock.now()

    with caplog.at_level(logging.WARNING, logger="bot.jobs.mlflow_sync"):
        assert await sync.tick() is None
    assert sync.retry_at == start + timedelta(minutes=5)  # poll_minutes
    [record] = caplog.records
    assert "MLflow sync failed" in record.getMessage() and "ConnectError" in record.getMessage()

    clock.advance(minutes=4, seconds=59)
    assert await sync.tick() is None
    assert len(down.requests) == 1  # not asked again before retry_at

    clock.advance(seconds=1)
    assert await sync.tick() is None
    assert len(down.requests) == 2
    assert sync.retry_at == clock.now() + timedelta(minutes=10)


async def test_failures_double_the_wait_up_to_an_hour(db, clock, down, make_sync):
    sync = make_sync(recorded_config(), down.transport())
    waits = []
    for _ in range(8):
        assert await sync.tick() is None
        assert sync.retry_at is not None
        waits.append(sync.retry_at - clock.now())
        clock.set(sync.retry_at)
    assert waits == [timedelta(minutes=m) for m in (5, 10, 20, 40, 60, 60, 60, 60)]
    assert MAX_BACKOFF == timedelta(hours=1)


async def test_http_500_backs_off_too(db, clock, recorded, make_sync):
    recorded.down = httpx.Response(500, text="Internal Server Error")
    sync = make_sync(recorded_config(), recorded.transport())

    assert await sync.tick() is None
    assert sync.retry_at == clock.now() + timedelta(minutes=5)


async def test_a_success_resets_the_backoff(db, clock, down, make_sync):
    config = recorded_config()
    await add_story_and_experiments(db, config, count=3)
    sync = make_sync(config, down.transport())
    for _ in range(3):
        await sync.tick()
        clock.set(sync.retry_at)  # type: ignore[arg-type]

    down.down = None
    report = await sync.tick()

    assert report is not None and "E-1" in report.experiments_changed
    assert (sync.failures, sync.retry_at) == (0, None)
    asked = len(down.requests)
    assert await sync.tick() is not None  # the next poll goes straight out again
    assert len(down.requests) > asked

    down.down = httpx.ConnectError("[Errno 111] Connection refused")
    await sync.tick()
    assert sync.retry_at == clock.now() + timedelta(minutes=5)  # the first failure again


async def test_tick_never_raises_however_long_mlflow_stays_down(db, clock, down, make_sync):
    sync = make_sync(recorded_config(), down.transport())
    for _ in range(60):
        assert await sync.tick() is None
        assert sync.retry_at is not None and sync.retry_at - clock.now() <= MAX_BACKOFF
        clock.set(sync.retry_at)


async def test_a_down_sync_changes_nothing_in_the_database(db, clock, down, make_sync):
    config = recorded_config(models=[model(RECORDED_MODEL)])
    await add_story_and_experiments(db, config, count=3)
    sync = make_sync(config, down.transport())

    await sync.tick()

    assert [e.status for e in await all_experiments(db)] == ["proposed"] * 3
    assert await reviews(db) == [] and await outbox_rows(db) == []
    assert await rows(db, ExperimentResult, col(ExperimentResult.source) == "mlflow") == []


def test_recorded_fixtures_are_real_mlflow_answers():
    """The fixtures say where they came from; re-record them with a real server if MLflow changes."""
    for path in sorted(FIXTURES.glob("*.json")):
        recorded = json.loads(path.read_text(encoding="utf-8"))
        assert recorded["recorded"]["server"].startswith("MLflow "), path.name
        assert {"request", "status", "body"} <= set(recorded), path.name
