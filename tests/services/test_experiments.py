"""Experiments (E-n): validation, keys, the status machine, results per run and metric, evaluation."""

from __future__ import annotations

import json
import math
from itertools import product

import pytest

from bot.services import experiments, stories
from bot.services.errors import Conflict, Invalid, NotFound
from bot.store.models import Experiment, ExperimentResult
from tests.conftest import ALICE, BOB, make_config
from tests.factories import audit_rows, make_story, refused, rows, snapshot, tx


async def _experiment(db, config, *, status: str | None = None, **kwargs) -> Experiment:
    async with tx(db) as s:
        story = await make_story(s, config, owner=kwargs.pop("story_owner", None))
        exp = await experiments.add_experiment(
            s, config=config, story=story, name=kwargs.pop("name", "Two towers"), actor=ALICE, **kwargs
        )
        if status is not None and status != "proposed":
            await experiments.set_status(s, config=config, experiment=exp, status="running", actor=ALICE)
            if status != "running":
                await experiments.set_status(s, config=config, experiment=exp, status=status, actor=ALICE)
    return exp


async def _get(db, key: str = "E-1") -> Experiment:
    async with tx(db) as s:
        return await experiments.get_experiment(s, key)


# --- add ---------------------------------------------------------------------------------------


async def test_add_experiment_stores_what_was_given(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, owner=BOB)
        exp = await experiments.add_experiment(
            s,
            config=config,
            story=story,
            name="  Two   towers ",
            actor=ALICE,
            hypothesis="  beats GBDT  ",
            metric="auc",
            baseline=0.8,
            target=1,
            higher_is_better=True,
            external_id="ext-1",
            mlflow_run_id="abc",
            links={"mlflow": "https://mlflow/r/1", "doc": "http://wiki/x"},
        )
        story_id = story.id
    assert exp.key == "E-1"
    stored = await _get(db)
    assert stored.story_id == story_id and stored.team == "recsys"
    assert (stored.name, stored.hypothesis) == ("Two towers", "beats GBDT")
    assert (stored.metric, stored.baseline, stored.target) == ("auc", 0.8, 1.0)
    assert isinstance(stored.target, float)
    assert (stored.status, stored.stage, stored.owner, stored.created_by) == ("proposed", "none", BOB, ALICE)
    assert (stored.external_id, stored.mlflow_run_id) == ("ext-1", "abc")
    assert experiments.links_of(stored) == {"mlflow": "https://mlflow/r/1", "doc": "http://wiki/x"}


async def test_numbers_count_up_and_an_explicit_owner_wins(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, owner=BOB)
        first = await experiments.add_experiment(s, config=config, story=story, name="a", actor=ALICE)
        second = await experiments.add_experiment(
            s, config=config, story=story, name="b", actor=ALICE, owner=ALICE
        )
    assert (first.key, second.key) == ("E-1", "E-2")
    assert (first.owner, second.owner) == (BOB, ALICE)
    assert experiments.links_of(first) == {}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "  \t "}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"hypothesis": "h" * 2001}, "hypothesis"),
        ({"metric": "1auc"}, "metric"),
        ({"metric": "auc score"}, "metric"),
        ({"metric": "a" * 101}, "metric"),
        ({"baseline": math.nan}, "baseline"),
        ({"baseline": math.inf}, "baseline"),
        ({"baseline": True}, "baseline"),
        ({"baseline": "0.8"}, "baseline"),
        ({"target": -math.inf}, "target"),
        ({"links": {"wiki": "https://x"}}, "links"),
        ({"links": {"mlflow": "ftp://x"}}, "links"),
        ({"links": {"mlflow": "https://has space"}}, "links"),
    ],
)
async def test_add_experiment_refuses_bad_input_and_stores_nothing(db, config, kwargs, field):
    async with tx(db) as s:
        story = await make_story(s, config)
    before = await snapshot(db)
    args = {"name": "ok", **kwargs}
    error = await refused(
        db,
        Invalid,
        lambda s: experiments.add_experiment(s, config=config, story=story, actor=ALICE, **args),
    )
    assert error.field == field
    assert await snapshot(db) == before


async def test_a_name_of_exactly_200_characters_is_kept(db, config):
    exp = await _experiment(db, config, name="n" * 200, hypothesis="h" * 2000)
    assert len(exp.name) == 200 and len(exp.hypothesis) == 2000


async def test_a_done_story_takes_no_experiment(db, config):
    async with tx(db) as s:
        story = await make_story(s, config)
        story.status = "done"
        s.add(story)
    error = await refused(
        db,
        Conflict,
        lambda s: experiments.add_experiment(s, config=config, story=story, name="x", actor=ALICE),
    )
    assert "S-1" in error.message
    assert await rows(db, Experiment) == []


# --- keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [("E-3", 3), ("e-3", 3), ("E3", 3), (" E-12 ", 12), ("E-007", 7), ("E-999999999", 999999999)],
)
def test_parse_experiment_key(text, number):
    assert experiments.parse_experiment_key(text) == number


@pytest.mark.parametrize("text", ["", "E", "E-", "E-x", "S-1", "R-2", "E--1", "E-1.5", "E-1234567890", "3"])
def test_parse_experiment_key_refuses(text):
    with pytest.raises(Invalid) as info:
        experiments.parse_experiment_key(text)
    assert "E-3" in info.value.message


async def test_get_experiment(db, config):
    await _experiment(db, config)
    assert (await _get(db, "e1")).key == "E-1"
    error = await refused(db, NotFound, lambda s: experiments.get_experiment(s, "E-2"))
    assert "E-2" in error.message
    await refused(db, Invalid, lambda s: experiments.get_experiment(s, "X-1"))


# --- status ------------------------------------------------------------------------------------

ALLOWED = {
    ("proposed", "running"),
    ("proposed", "succeeded"),
    ("proposed", "failed"),
    ("proposed", "abandoned"),
    ("running", "succeeded"),
    ("running", "failed"),
    ("running", "abandoned"),
}
PAIRS = [(a, b) for a, b in product(experiments.STATUSES, repeat=2) if a != b]


def test_the_transition_table_is_what_the_service_enforces():
    assert {(a, b) for a, nexts in experiments.NEXT.items() for b in nexts} == ALLOWED


@pytest.mark.parametrize(("start", "to"), sorted(ALLOWED))
async def test_allowed_moves_write_one_audit_row(db, config, start, to):
    await _experiment(db, config, status=start)
    before = len(await audit_rows(db))
    async with tx(db) as s:
        exp = await experiments.get_experiment(s, "E-1")
        moved = await experiments.set_status(
            s, config=config, experiment=exp, status=to, actor=BOB, reason=" why "
        )
    assert moved is True
    assert (await _get(db)).status == to
    audit = await audit_rows(db)
    assert len(audit) == before + 1
    last = audit[-1]
    assert (last.actor, last.action, last.subject) == (BOB, "experiment.status", "E-1")
    assert json.loads(last.payload) == {"from": start, "to": to, "reason": "why"}


@pytest.mark.parametrize(("start", "to"), sorted(set(PAIRS) - ALLOWED))
async def test_refused_moves_name_both_states_and_change_nothing(db, config, start, to):
    await _experiment(db, config, status=start)
    before = await snapshot(db)

    async def move(s):
        exp = await experiments.get_experiment(s, "E-1")
        await experiments.set_status(s, config=config, experiment=exp, status=to, actor=BOB)

    error = await refused(db, Conflict, move)
    assert start in error.message and to in error.message and "E-1" in error.message
    assert await snapshot(db) == before


@pytest.mark.parametrize("status", experiments.STATUSES)
async def test_the_same_status_again_is_a_no_op(db, config, status):
    await _experiment(db, config, status=status)
    before = await snapshot(db)
    async with tx(db) as s:
        exp = await experiments.get_experiment(s, "E-1")
        moved = await experiments.set_status(s, config=config, experiment=exp, status=status, actor=BOB)
    assert moved is False
    assert await snapshot(db) == before


@pytest.mark.parametrize("status", ["done", "", "Running", "cancelled"])
async def test_an_unknown_status_is_invalid(db, config, status):
    await _experiment(db, config)

    async def move(s):
        exp = await experiments.get_experiment(s, "E-1")
        await experiments.set_status(s, config=config, experiment=exp, status=status, actor=BOB)

    error = await refused(db, Invalid, move)
    assert error.field == "status"


async def test_an_overlong_reason_is_refused(db, config):
    await _experiment(db, config)
    before = await snapshot(db)

    async def move(s):
        exp = await experiments.get_experiment(s, "E-1")
        await experiments.set_status(
            s, config=config, experiment=exp, status="running", actor=BOB, reason="r" * 2001
        )

    error = await refused(db, Invalid, move)
    assert error.field == "reason"
    assert await snapshot(db) == before


# --- results -----------------------------------------------------------------------------------


async def _record(db, metrics, *, run_id="", actor=ALICE, source="api"):
    async with tx(db) as s:
        exp = await experiments.get_experiment(s, "E-1")
        return await experiments.record_results(
            s,
            config=make_config(),
            experiment=exp,
            metrics=metrics,
            actor=actor,
            source=source,
            run_id=run_id,
        )


async def _results(db):
    async with tx(db) as s:
        exp = await experiments.get_experiment(s, "E-1")
        return await experiments.results(s, exp)


async def test_record_results_replaces_per_metric_and_run(db, config):
    await _experiment(db, config, metric="auc")
    await _record(db, {"auc": 0.81, "logloss": 0.4}, run_id="a")
    await _record(db, {"auc": 0.83}, run_id="a", actor=BOB, source="slack")
    await _record(db, {"auc": 0.79}, run_id="b")
    await _record(db, {"auc": 0.5})  # no run id is a run of its own
    stored = {(r.metric, r.run_id): r for r in await rows(db, ExperimentResult)}
    assert {k: r.value for k, r in stored.items()} == {
        ("auc", "a"): 0.83,
        ("logloss", "a"): 0.4,
        ("auc", "b"): 0.79,
        ("auc", ""): 0.5,
    }
    assert (stored[("auc", "a")].recorded_by, stored[("auc", "a")].source) == (BOB, "slack")
    assert (stored[("logloss", "a")].recorded_by, stored[("logloss", "a")].source) == (ALICE, "api")


async def test_integers_are_stored_as_floats(db, config):
    await _experiment(db, config)
    (row,) = await _record(db, {"count": 3})
    assert row.value == 3.0 and isinstance(row.value, float)


@pytest.mark.parametrize(
    ("metrics", "field"),
    [
        ({}, "metrics"),
        ({"auc": math.nan}, "metrics.auc"),
        ({"auc": math.inf}, "metrics.auc"),
        ({"auc": -math.inf}, "metrics.auc"),
        ({"auc": True}, "metrics.auc"),
        ({"auc": "0.9"}, "metrics.auc"),
        ({"auc": None}, "metrics.auc"),
        ({"1auc": 0.9}, "metrics.1auc"),
        ({"": 0.9}, "metrics."),
        ({"a b": 0.9}, "metrics.a b"),
        ({"a" * 101: 0.9}, "metrics." + "a" * 101),
        ({"auc": 0.9, "bad": math.nan}, "metrics.bad"),  # nothing of a half-good report is kept
    ],
)
async def test_record_results_refuses_and_keeps_nothing(db, config, metrics, field):
    await _experiment(db, config)
    await _record(db, {"auc": 0.7})
    before = await snapshot(db)
    with pytest.raises(Invalid) as info:
        await _record(db, metrics)
    assert info.value.field == field
    assert await snapshot(db) == before


async def test_an_overlong_run_id_is_refused(db, config):
    await _experiment(db, config)
    with pytest.raises(Invalid) as info:
        await _record(db, {"auc": 0.9}, run_id="r" * 65)
    assert info.value.field == "run_id"
    assert await rows(db, ExperimentResult) == []


async def test_recording_results_touches_updated_at(db, config):
    exp = await _experiment(db, config)
    await _record(db, {"auc": 0.9})
    assert (await _get(db)).updated_at >= exp.updated_at


# --- evaluation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("higher", "baseline", "target", "value", "delta", "meets"),
    [
        (True, 0.80, 0.83, 0.85, 0.05, True),
        (True, 0.80, 0.83, 0.83, 0.03, True),  # reaching the target meets it
        (True, 0.80, 0.83, 0.82, 0.02, False),
        (True, 0.80, 0.83, 0.75, -0.05, False),
        (False, 1.00, 0.90, 0.85, -0.15, True),
        (False, 1.00, 0.90, 0.90, -0.10, True),
        (False, 1.00, 0.90, 0.95, -0.05, False),
        (False, 1.00, 0.90, 1.20, 0.20, False),
    ],
)
async def test_evaluate_against_baseline_and_target(
    db, config, higher, baseline, target, value, delta, meets
):
    await _experiment(db, config, metric="m", baseline=baseline, target=target, higher_is_better=higher)
    await _record(db, {"m": value, "other": 123.0}, run_id="r1")
    exp = await _get(db)
    ev = experiments.evaluate(exp, await _results(db))
    assert (ev.metric, ev.value, ev.baseline, ev.target, ev.higher_is_better) == (
        "m",
        value,
        baseline,
        target,
        higher,
    )
    assert ev.delta == pytest.approx(delta)
    assert ev.meets_target is meets
    assert ev.run_id == "r1"


async def test_evaluate_uses_the_latest_value_of_the_primary_metric(db, config):
    await _experiment(db, config, metric="auc", baseline=0.8, target=0.83)
    await _record(db, {"auc": 0.9}, run_id="a")
    await _record(db, {"auc": 0.81}, run_id="b")
    await _record(db, {"loss": 0.2}, run_id="c")
    ev = experiments.evaluate(await _get(db), await _results(db))
    assert (ev.value, ev.run_id, ev.meets_target) == (0.81, "b", False)


async def test_evaluate_without_enough_to_compare(db, config):
    await _experiment(db, config)  # no metric at all
    ev = experiments.evaluate(await _get(db), [])
    assert (ev.metric, ev.value, ev.delta, ev.meets_target, ev.run_id) == (None, None, None, None, "")

    await _experiment(db, config, metric="auc")  # E-2: no baseline or target
    async with tx(db) as s:
        e2 = await experiments.get_experiment(s, "E-2")
        await experiments.record_results(
            s, config=config, experiment=e2, metrics={"auc": 0.9}, actor=ALICE, source="api"
        )
        ev = experiments.evaluate(e2, await experiments.results(s, e2))
    assert ev.value == 0.9 and ev.delta is None and ev.meets_target is None

    await _experiment(db, config, metric="auc", baseline=0.8, target=0.85)  # E-3: no results yet
    ev = experiments.evaluate(await _get(db, "E-3"), [])
    assert ev.value is None and ev.delta is None and ev.meets_target is None


# --- update_fields -----------------------------------------------------------------------------


async def test_update_fields_applies_what_was_reported(db, config):
    await _experiment(db, config, metric="auc", baseline=0.8, links={"mlflow": "https://m/1"})
    async with tx(db) as s:
        exp = await experiments.get_experiment(s, "E-1")
        before = exp.updated_at
        experiments.update_fields(
            exp,
            {
                "name": "  New   name ",
                "metric": "ndcg",
                "baseline": 1,
                "target": 0.5,
                "hypothesis": "h2",
                "higher_is_better": False,
                "owner": BOB,
                "mlflow_run_id": "run-9",
            },
            links={"doc": "https://wiki/e1"},
        )
        s.add(exp)
    stored = await _get(db)
    assert (stored.name, stored.metric, stored.baseline, stored.target) == ("New name", "ndcg", 1.0, 0.5)
    assert (stored.hypothesis, stored.higher_is_better, stored.owner, stored.mlflow_run_id) == (
        "h2",
        False,
        BOB,
        "run-9",
    )
    assert experiments.links_of(stored) == {"mlflow": "https://m/1", "doc": "https://wiki/e1"}
    assert stored.updated_at >= before


async def test_update_fields_leaves_out_what_is_none_or_missing(db, config):
    await _experiment(db, config, metric="auc", baseline=0.8, target=0.9, hypothesis="h")
    async with tx(db) as s:
        exp = await experiments.get_experiment(s, "E-1")
        experiments.update_fields(
            exp, {"metric": None, "baseline": None, "target": None, "owner": None}, links={}
        )
        s.add(exp)
    stored = await _get(db)
    assert (stored.name, stored.metric, stored.baseline, stored.target, stored.hypothesis) == (
        "Two towers",
        "auc",
        0.8,
        0.9,
        "h",
    )


@pytest.mark.parametrize(
    ("fields", "links", "field"),
    [
        ({"name": ""}, {}, "name"),
        ({"name": "   "}, {}, "name"),
        ({"name": "n" * 201}, {}, "name"),
        ({"metric": "bad name"}, {}, "metric"),
        ({"baseline": math.nan}, {}, "baseline"),
        ({"target": math.inf}, {}, "target"),
        ({"target": True}, {}, "target"),
        ({}, {"wiki": "https://x"}, "links"),
        ({}, {"mlflow": "not a url"}, "links"),
    ],
)
async def test_update_fields_refuses_bad_values(db, config, fields, links, field):
    await _experiment(db, config)
    exp = await _get(db)
    with pytest.raises(Invalid) as info:
        experiments.update_fields(exp, fields, links=links)
    assert info.value.field == field


# --- upsert_external ---------------------------------------------------------------------------


async def test_upsert_external_creates_then_updates_only_what_was_reported(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, owner=BOB)
        exp, created = await experiments.upsert_external(
            s,
            config=config,
            external_id="pipe:1",
            story=story,
            name="Two towers",
            actor=ALICE,
            metric="auc",
            baseline=0.8,
            links={"mlflow": "https://m/1"},
        )
    assert created and exp.key == "E-1"
    stored = await _get(db)
    assert (stored.external_id, stored.owner, stored.hypothesis, stored.higher_is_better) == (
        "pipe:1",
        BOB,
        "",
        True,
    )

    async with tx(db) as s:
        story = await experiments.story_of(s, await experiments.get_experiment(s, "E-1"))
        exp, created = await experiments.upsert_external(
            s, config=config, external_id="pipe:1", story=story, name="Two towers v2", actor=ALICE, target=0.9
        )
    assert not created and exp.key == "E-1"
    stored = await _get(db)
    assert (stored.name, stored.metric, stored.baseline, stored.target, stored.owner) == (
        "Two towers v2",
        "auc",
        0.8,
        0.9,
        BOB,
    )
    assert experiments.links_of(stored) == {"mlflow": "https://m/1"}
    assert len(await rows(db, Experiment)) == 1


async def test_upsert_external_cannot_move_an_experiment_to_another_story(db, config):
    async with tx(db) as s:
        first = await make_story(s, config)
        await make_story(s, config, title="Another")
        await experiments.upsert_external(
            s, config=config, external_id="pipe:1", story=first, name="Two towers", actor=ALICE
        )
    before = await snapshot(db)

    async def move(s):
        other = await stories.get_story(s, "S-2")
        await experiments.upsert_external(
            s, config=config, external_id="pipe:1", story=other, name="Renamed", actor=ALICE
        )

    error = await refused(db, Conflict, move)
    assert "E-1" in error.message and "another story" in error.message
    assert await snapshot(db) == before


# --- listing -----------------------------------------------------------------------------------


async def test_list_experiments_by_team_story_and_status(db, config):
    await _experiment(db, config)
    await _experiment(db, config, status="running")
    async with tx(db) as s:
        all_ = await experiments.list_experiments(s, team="recsys")
        running = await experiments.list_experiments(s, team="recsys", status="running")
        story = await experiments.story_of(s, all_[0])
        of_story = await experiments.list_experiments(s, team="recsys", story=story)
        other = await experiments.list_experiments(s, team="platform")
        with pytest.raises(Invalid):
            await experiments.list_experiments(s, team="recsys", status="nope")
    assert [e.key for e in all_] == ["E-1", "E-2"]
    assert [e.key for e in running] == ["E-2"]
    assert [e.key for e in of_story] == ["E-1"] and story.key == "S-1"
    assert other == []


async def test_find_external(db, config):
    await _experiment(db, config, external_id="pipe:1")
    async with tx(db) as s:
        assert (await experiments.find_external(s, "pipe:1")).key == "E-1"
        assert await experiments.find_external(s, "pipe:2") is None
