"""Build real Evidently data-drift reports and write them as JSON, in every shape Cadence reads.

Run with the Python of the virtualenv that has Evidently (tests/integrations/requirements-evidently.txt),
never the project's own: `.evidently-venv/bin/python tests/integrations/make_evidently_report.py OUT_DIR`.
The tests call it that way (EVIDENTLY_PYTHON); the committed fixtures in fixtures/evidently/ were made
by it too.

The data is seeded, so the same Evidently gives the same scores. Columns, by construction:
- `age` (numeric): the current mean moves from 40 to 48 → drifts;
- `country` (categorical): the current mix moves from even to 60% "de" → drifts;
- `income` and `clicks` (numeric): drawn from the same distribution → do not drift.
The stable report compares the reference with itself: nothing drifts.

Files written:
- snapshot.json       Report([DataDriftPreset()]).run(current, reference).json()
- snapshot_psi.json   the same with DataDriftPreset(method="psi")
- saved.json          the first snapshot in its full serialization, snapshot.dumps() (what a workspace
                      stores and Snapshot.load reads; it has the run's timestamp, WINDOW_END)
- legacy.json         evidently.legacy's Report(metrics=[DataDriftPreset()]).json()
- stable.json         a snapshot of the reference against itself
- version.txt         the Evidently version that made them
"""

from __future__ import annotations

import json
import sys
import warnings
from datetime import datetime
from pathlib import Path

import evidently
import numpy as np
import pandas as pd
from evidently import Report
from evidently.legacy.metric_preset import DataDriftPreset as LegacyDataDriftPreset
from evidently.legacy.report import Report as LegacyReport
from evidently.presets import DataDriftPreset

ROWS = 600
WINDOW_END = datetime(2026, 12, 7, 6, 0)  # Evidently writes its timestamps without a zone


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(20261203)

    def draw(mean_age: float, mix: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": rng.normal(mean_age, 10, ROWS),
                "income": rng.lognormal(10, 0.5, ROWS),
                "country": rng.choice(["de", "fr", "it"], ROWS, p=mix),
                "clicks": rng.exponential(3.0, ROWS),
            }
        )

    reference = draw(40, [1 / 3, 1 / 3, 1 / 3])
    return draw(48, [0.6, 0.2, 0.2]), reference


def main(out: Path) -> None:
    warnings.simplefilter("ignore")
    out.mkdir(parents=True, exist_ok=True)
    current, reference = frames()

    snapshot = Report([DataDriftPreset()]).run(current, reference, timestamp=WINDOW_END)
    (out / "snapshot.json").write_text(snapshot.json())
    (out / "saved.json").write_text(snapshot.dumps())
    psi = Report([DataDriftPreset(method="psi")]).run(current, reference)
    (out / "snapshot_psi.json").write_text(psi.json())

    legacy = LegacyReport(metrics=[LegacyDataDriftPreset()])
    legacy.run(reference_data=reference, current_data=current)
    (out / "legacy.json").write_text(legacy.json())

    stable = Report([DataDriftPreset()]).run(reference, reference)
    (out / "stable.json").write_text(stable.json())

    (out / "version.txt").write_text(evidently.__version__ + "\n")
    print(json.dumps(sorted(p.name for p in out.iterdir())))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
