"""A real Evidently (its own virtualenv, EVIDENTLY_PYTHON) builds data-drift reports in every shape
Cadence reads; they are posted to Cadence's API and become readings and incidents. Also checks that the
committed fixtures are still what this Evidently writes."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.integrations import evidently
from bot.store.models import DriftIncident, DriftReading
from tests.drift.conftest import AUTH
from tests.factories import rows

HERE = Path(__file__).parents[1] / "integrations"
COMMITTED = HERE / "fixtures" / "evidently"
WHEN = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
NO_EVIDENTLY = "EVIDENTLY_PYTHON is not set: no Evidently to build reports with; .ci/run installs one"


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = os.environ.get("EVIDENTLY_PYTHON")
    if not python:
        pytest.skip(NO_EVIDENTLY)
    out = tmp_path_factory.mktemp("evidently")
    done = subprocess.run(
        [python, str(HERE / "make_evidently_report.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, f"Evidently could not build the reports:\n{done.stderr[-3000:]}"
    return out


def load(folder: Path, name: str) -> Any:
    return json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("shape", ["snapshot", "saved", "legacy", "snapshot_psi", "stable"])
def test_what_this_evidently_writes_reads_as_the_committed_fixtures_do(made, shape):
    fresh = evidently.readings_from_report(load(made, shape), window_end=WHEN)
    kept = evidently.readings_from_report(load(COMMITTED, shape), window_end=WHEN)
    assert fresh.shape == kept.shape
    assert {(r.metric, r.feature): pytest.approx(r.value, abs=1e-9) for r in fresh.readings} == {
        (r.metric, r.feature): r.value for r in kept.readings
    }, (
        f"Evidently {(made / 'version.txt').read_text().strip()} no longer writes what fixtures/evidently holds"
    )


@pytest.mark.parametrize("shape", ["snapshot", "saved", "legacy"])
async def test_a_real_report_posted_to_cadence_opens_the_incidents_the_rules_ask_for(made, api, db, shape):
    params = {"model": "recsys-ranker"}
    if shape != "saved":  # a saved snapshot carries its run's timestamp; the others need the window
        params["window_end"] = "2026-12-07T08:00:00Z"
    r = await api.post("/api/v1/drift/evidently", params=params, json=load(made, shape), headers=AUTH)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["shape"] == shape and out["stored"] == 5 and out["skipped"] == []
    opened = {(i.team, i.metric, i.feature, i.severity) for i in await rows(db, DriftIncident)}
    assert opened == {("recsys", "ks_p_value", "age", "warn"), ("platform", "drift_share", "", "warn")}
    assert len(await rows(db, DriftReading)) == 5


async def test_a_report_where_nothing_drifted_opens_nothing(made, api, db):
    r = await api.post(
        "/api/v1/drift/evidently",
        params={"model": "recsys-ranker", "window_end": "2026-12-07T08:00:00Z"},
        json=load(made, "stable"),
        headers=AUTH,
    )
    assert r.status_code == 200 and r.json()["opened"] == []
    assert await rows(db, DriftIncident) == []


def test_the_generator_runs_on_the_evidently_it_pins():
    pinned = (HERE / "requirements-evidently.txt").read_text()
    assert "evidently==" in pinned
    version = pinned.split("evidently==")[1].split()[0]
    assert (COMMITTED / "version.txt").read_text().strip() == version, (
        "the committed fixtures were made by another Evidently: rerun make_evidently_report.py"
    )
