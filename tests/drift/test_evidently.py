"""Evidently reports in: the reader on reports a real Evidently 0.7.23 wrote (committed, made by
tests/integrations/make_evidently_report.py), and POST /api/v1/drift/evidently end to end."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.integrations import evidently
from bot.store.models import DriftIncident, DriftReading
from tests.drift.conftest import AUTH
from tests.factories import rows

FIXTURES = Path(__file__).parents[1] / "integrations" / "fixtures" / "evidently"
URL = "/api/v1/drift/evidently"
WINDOW = "2026-12-07T08:00:00Z"


def report(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8")))


def scores(read: evidently.ReadReport) -> dict[tuple[str, str], float]:
    return {(r.metric, r.feature): r.value for r in read.readings}


# ── the reader ───────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("shape", ["snapshot", "saved", "legacy"])
def test_every_shape_gives_the_drift_share_and_each_columns_score(shape):
    read = evidently.readings_from_report(report(shape), window_end=datetime(2026, 12, 7, tzinfo=UTC))
    assert read.shape == shape
    got = scores(read)
    assert set(got) == {
        ("drift_share", ""),
        ("ks_p_value", "age"),
        ("ks_p_value", "income"),
        ("ks_p_value", "clicks"),
        ("chi_square_p_value", "country"),
    }
    assert got["drift_share", ""] == 0.5  # age and country drifted, by construction
    assert got["ks_p_value", "age"] < 0.001 and got["chi_square_p_value", "country"] < 0.001
    assert got["ks_p_value", "income"] > 0.05 and got["ks_p_value", "clicks"] > 0.05
    age = next(r for r in read.readings if r.feature == "age")
    assert age.labels == {"shape": shape, "method": "K-S p_value", "threshold": "0.05"}
    assert read.skipped == []


def test_the_three_shapes_of_one_run_agree():
    when = datetime(2026, 12, 7, tzinfo=UTC)
    snapshot, saved, legacy = (
        scores(evidently.readings_from_report(report(n), window_end=when))
        for n in ("snapshot", "saved", "legacy")
    )
    assert snapshot == saved
    assert snapshot.keys() == legacy.keys()
    assert snapshot["ks_p_value", "income"] == pytest.approx(legacy["ks_p_value", "income"])


def test_a_chosen_method_names_the_metric():
    read = evidently.readings_from_report(
        report("snapshot_psi"), window_end=datetime(2026, 12, 7, tzinfo=UTC)
    )
    got = scores(read)
    assert {metric for metric, _ in got} == {"drift_share", "psi"}
    assert got["psi", "age"] > 0.2 and got["psi", "clicks"] < 0.1
    share = next(r for r in read.readings if r.metric == "drift_share")
    assert share.labels["method"] == "psi" and share.labels["threshold"] == "0.5"


@pytest.mark.parametrize(
    ("method", "metric"),
    [
        ("K-S p_value", "ks_p_value"),
        ("ks", "ks_p_value"),
        ("chi-square p_value", "chi_square_p_value"),
        ("Z-test p_value", "z_p_value"),
        ("PSI", "psi"),
        ("Wasserstein distance (normed)", "wasserstein"),
        ("wasserstein", "wasserstein"),
        ("Jensen-Shannon distance", "jensen_shannon"),
        ("jensenshannon", "jensen_shannon"),
        ("Kullback-Leibler divergence", "kl_div"),
        ("Hellinger distance (normed)", "hellinger"),
        ("Anderson-Darling p_value", "anderson_darling_p_value"),
        ("Total-Variation-Distance", "tvd"),
        ("custom function 'my_test'", "custom_function_my_test"),
        ("", "drift_score"),
    ],
)
def test_method_names_become_metric_names(method, metric):
    assert evidently.metric_of(method) == metric


def test_the_window_is_the_callers_else_the_reports_timestamp_read_as_utc():
    saved = evidently.readings_from_report(report("saved"))
    assert saved.window_end == datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    given = datetime.fromisoformat("2026-12-07T09:30:00+01:00")
    assert evidently.readings_from_report(report("saved"), window_end=given).window_end == datetime(
        2026, 12, 7, 8, 30, tzinfo=UTC
    )
    with pytest.raises(evidently.MissingWindowEnd, match="pass window_end"):
        evidently.readings_from_report(report("snapshot"))


def test_a_score_that_is_not_a_number_is_left_out_and_said():
    body = report("snapshot")
    body["metrics"][1]["value"] = "NaN"
    read = evidently.readings_from_report(body, window_end=datetime(2026, 12, 7, tzinfo=UTC))
    assert ("ks_p_value", "age") not in scores(read)
    assert read.skipped == ["ks_p_value of column 'age': 'NaN' is not a finite number, left out"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        "a report",
        {},
        {"metrics": []},
        {"metrics": [{"something": 1}]},
        {
            "version": "0.4.0",
            "metrics": [{"metric": "ClassificationQualityMetric", "result": {"accuracy": 0.9}}],
        },
        {"metrics": [{"config": {"type": "evidently:metric_v2:Accuracy"}, "value": 0.9}]},
    ],
)
def test_what_is_not_a_drift_report_is_refused_naming_the_shapes_read(body):
    with pytest.raises(evidently.UnsupportedReport, match=r"Evidently 0\.7's Report snapshot"):
        evidently.readings_from_report(body, window_end=datetime(2026, 12, 7, tzinfo=UTC))


# ── POST /api/v1/drift/evidently ─────────────────────────────────────────────────────────────


async def test_a_report_becomes_readings_and_opens_what_the_rules_say(api, db):
    r = await api.post(
        URL, params={"model": "recsys-ranker", "window_end": WINDOW}, json=report("snapshot"), headers=AUTH
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["received"], out["stored"], out["shape"], out["skipped"]) == (5, 5, "snapshot", [])
    assert out["window_end"] == "2026-12-07T08:00:00Z"
    # ks_p_value on age is below 0.05 (recsys); the drift share 0.5 reaches platform's 0.5; country's
    # chi-square p-value is watched by no rule: stored, unmatched
    assert out["opened"] == ["D-1", "D-2"] and out["unmatched"] == 1
    incidents = {(i.team, i.metric, i.feature): i for i in await rows(db, DriftIncident)}
    assert set(incidents) == {("recsys", "ks_p_value", "age"), ("platform", "drift_share", "")}
    stored = await rows(db, DriftReading)
    assert {r.source for r in stored} == {"evidently"} and {r.model for r in stored} == {"recsys-ranker"}
    age = next(r for r in stored if r.feature == "age")
    assert json.loads(age.labels) == {"shape": "snapshot", "method": "K-S p_value", "threshold": "0.05"}

    again = await api.post(
        URL, params={"model": "recsys-ranker", "window_end": WINDOW}, json=report("snapshot"), headers=AUTH
    )
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == 5
    assert again.json()["opened"] == again.json()["changed"] == []


async def test_a_saved_snapshot_carries_its_own_window(api, db):
    r = await api.post(URL, params={"model": "recsys-ranker"}, json=report("saved"), headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["shape"] == "saved" and r.json()["window_end"] == "2026-12-07T06:00:00Z"


async def test_a_stable_report_stores_readings_and_opens_nothing(api, db):
    r = await api.post(
        URL, params={"model": "recsys-ranker", "window_end": WINDOW}, json=report("stable"), headers=AUTH
    )
    assert r.json()["stored"] == 5 and r.json()["opened"] == []
    assert await rows(db, DriftIncident) == []


@pytest.mark.parametrize(
    ("params", "body", "loc", "says"),
    [
        ({"window_end": WINDOW}, "snapshot", ["query", "model"], "Field required"),
        ({"model": "", "window_end": WINDOW}, "snapshot", ["query", "model"], "at least 1 character"),
        ({"model": "m" * 201, "window_end": WINDOW}, "snapshot", ["query", "model"], "at most 200"),
        ({"model": "recsys-ranker", "window_end": "yesterday"}, "snapshot", ["query", "window_end"], ""),
        (
            {"model": "recsys-ranker", "window_end": "2026-12-07T08:00:00"},
            "snapshot",
            ["query", "window_end"],
            "",
        ),
        ({"model": "recsys-ranker"}, "snapshot", ["query", "window_end"], "pass window_end"),
        ({"model": "recsys-ranker", "window_end": WINDOW}, {"metrics": []}, ["body"], "Evidently 0.7"),
        ({"model": "recsys-ranker", "window_end": WINDOW}, [1, 2], ["body"], "valid dictionary"),
    ],
)
async def test_bad_requests_are_refused_naming_the_field_and_store_nothing(api, db, params, body, loc, says):
    payload = report(body) if isinstance(body, str) else body
    r = await api.post(URL, params=params, json=payload, headers=AUTH)
    assert r.status_code == 422, r.text
    [error] = [e for e in r.json()["detail"] if e["loc"][: len(loc)] == loc]
    assert says in error["msg"], error
    assert await rows(db, DriftReading) == []


async def test_a_body_that_is_not_json_is_refused(api, db):
    r = await api.post(
        URL,
        params={"model": "m", "window_end": WINDOW},
        content=b"{not json",
        headers=AUTH | {"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["detail"][0]["type"] == "json_invalid"
    assert await rows(db, DriftReading) == []


async def test_without_the_token_nothing_is_read(api, db):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = await api.post(
            URL, params={"model": "m", "window_end": WINDOW}, json=report("snapshot"), headers=headers
        )
        assert r.status_code == 401
    assert await rows(db, DriftReading) == []


async def test_a_report_with_a_nan_score_stores_the_rest_and_says_what_it_left_out(api, db):
    body = copy.deepcopy(report("snapshot"))
    body["metrics"][1]["value"] = float("nan")  # json.dumps writes NaN, as Evidently's encoder can
    r = await api.post(
        URL,
        params={"model": "recsys-ranker", "window_end": WINDOW},
        content=json.dumps(body).encode(),
        headers=AUTH | {"content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 4
    assert r.json()["skipped"] == ["ks_p_value of column 'age': 'nan' is not a finite number, left out"]
