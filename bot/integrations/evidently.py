"""An Evidently data-drift report, read into drift readings.

A team that already runs Evidently posts the report it builds with the data-drift preset to
`POST /api/v1/drift/evidently?model=NAME`; each report becomes a handful of readings for the model:

| reading                          | where it comes from                                                   |
| -------------------------------- | --------------------------------------------------------------------- |
| `drift_share`, no feature        | the share of drifted columns (`DriftedColumnsCount`'s `share`, or the   |
|                                  | legacy `share_of_drifted_columns`)                                    |
| `<method>`, feature = the column | each column's drift score, under the method Evidently chose for it    |
|                                  | (`ks_p_value`, `psi`, `wasserstein`, `jensen_shannon`, …; `METHODS`)  |

Every reading gets the source `evidently` and the labels `method` (as Evidently names it), `threshold`
(the one Evidently applied, when given) and `shape` (which of the shapes below it came from). A rule in
`drift.rules` then decides what is a breach: `metric: ks_p_value, direction: below, warn: 0.05`, or
`metric: drift_share, direction: above, warn: 0.3`. A score that is not a finite number (a constant
column gives NaN) is left out with a sentence saying so.

Three shapes are understood, the ones Evidently 0.7 writes:

- `snapshot`: what `Report.run(...)` returns, as `.json()` or `.dict()`: `{"metrics": [{"config":
  {"type": "evidently:metric_v2:ValueDrift", "column", "method", "threshold"}, "value": 0.01}, …]}`;
- `saved`: a snapshot in its full serialization, `dumps()` / `dump_dict()` (what a workspace stores
  and `Snapshot.load` reads):
  `{"timestamp", "metric_results": {id: {"metric_value_location": {"metric": {"params": {…}}},
  "value"}}}`;
- `legacy`: `evidently.legacy`'s `Report.as_dict()` / `.json()` (the API of Evidently 0.4 to 0.6):
  `{"metrics": [{"metric": "DataDriftTable", "result": {"drift_by_columns": {col: {"stattest_name",
  "drift_score", "stattest_threshold"}}}}, …]}`, with `DatasetDriftMetric` and `ColumnDriftMetric`.

Anything else raises `UnsupportedReport`, whose message names these shapes. The window a reading
belongs to is the caller's `window_end`, else the report's own `timestamp` (Evidently writes it
without a zone; it is read as UTC), else `MissingWindowEnd`: a reading without a window could not be
told apart from the same report sent again.

This module only reads: no HTTP and no database, so it is tested on recorded reports and on reports a
real Evidently makes in CI (tests/integrations/make_evidently_report.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SOURCE = "evidently"
SHAPES = (
    "Evidently 0.7's Report snapshot (snapshot.json() or .dict()), a snapshot's full serialization "
    "(snapshot.dumps() or .dump_dict()) or the legacy Report.as_dict() / .json() of Evidently 0.4 to 0.7, built with the "
    "data-drift preset"
)

# Evidently's stat-test names and display names (squeezed: lower case, letters and digits only, without
# "(normed)") → the metric name a reading gets. A p-value keeps the suffix: its rules look *below*.
METHODS: dict[str, str] = {}
for _slug, _names in {
    "ks_p_value": ("ks", "K-S p_value"),
    "chi_square_p_value": ("chisquare", "chi-square p_value"),
    "z_p_value": ("z", "Z-test p_value"),
    "psi": ("psi", "PSI"),
    "wasserstein": ("wasserstein", "Wasserstein distance (normed)"),
    "jensen_shannon": ("jensenshannon", "Jensen-Shannon distance"),
    "kl_div": ("kl_div", "Kullback-Leibler divergence"),
    "hellinger": ("hellinger", "Hellinger distance (normed)"),
    "anderson_darling_p_value": ("anderson", "Anderson-Darling", "Anderson-Darling p_value"),
    "cramer_von_mises_p_value": ("cramer_von_mises", "Cramer-von Mises", "Cramer-von Mises p_value"),
    "epps_singleton_p_value": ("es", "Epps-Singleton", "Epps-Singleton p_value"),
    "fisher_exact_p_value": ("fisher_exact", "Fisher's Exact test", "Fisher's Exact test p_value"),
    "g_test_p_value": ("g_test", "g_test p_value"),
    "mann_whitney_p_value": ("mannw", "Mann-Whitney U-rank test", "Mann-Whitney U-rank test p_value"),
    "t_test_p_value": ("t_test", "t_test p_value"),
    "energy_distance": ("ed", "Energy-distance"),
    "empirical_mmd": ("empirical_mmd", "empirical_mmd p_value"),
    "tvd": ("TVD", "Total-Variation-Distance"),
    "text_content_drift": ("perc_text_content_drift", "Percentile text content drift"),
    "abs_text_content_drift": ("abs_text_content_drift", "Absolute text content drift"),
}.items():
    for _name in _names:
        METHODS[re.sub(r"[^a-z0-9]", "", _name.lower().replace("(normed)", ""))] = _slug

DRIFT_SHARE = "drift_share"
MAX_NAME = 100  # the readings API's limit on a metric name


class UnsupportedReport(ValueError):
    """The body is not an Evidently data-drift report in a shape this module reads."""


class MissingWindowEnd(ValueError):
    """Neither the caller nor the report says which window the report covers."""


@dataclass(frozen=True)
class EvidentlyReading:
    metric: str
    value: float
    feature: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ReadReport:
    shape: str
    window_end: datetime
    readings: list[EvidentlyReading]
    skipped: list[str]


def metric_of(method: str) -> str:
    """The reading's metric for Evidently's method name: `K-S p_value` and `ks` → `ks_p_value`."""
    known = METHODS.get(re.sub(r"[^a-z0-9]", "", method.lower().replace("(normed)", "")))
    if known:
        return known
    slug = re.sub(r"[^a-z0-9]+", "_", method.lower()).strip("_")
    return (slug or "drift_score")[:MAX_NAME]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _labels(shape: str, method: str | None, threshold: Any) -> dict[str, str]:
    labels = {"shape": shape}
    if method:
        labels["method"] = str(method)[:500]
    if _number(threshold) is not None:
        labels["threshold"] = str(threshold)[:500]
    return labels


# ── the three shapes, each yielding (metric, feature, raw value, labels) ─────────────────────────────


Found = tuple[str, str, Any, dict[str, str]]


def _v2_metric(params: Mapping[str, Any], value: Any, shape: str) -> Iterator[Found]:
    """One metric of the 0.7 API: `params` is its config, `value` its value (or its result object)."""
    kind = str(params.get("type") or "")
    if kind.endswith(":ValueDrift"):
        method = str(params.get("method") or "")
        column = params.get("column")
        if isinstance(column, str) and column:
            yield metric_of(method), column, value, _labels(shape, method, params.get("threshold"))
    elif kind.endswith(":DriftedColumnsCount"):
        share = value.get("share") if isinstance(value, Mapping) else None
        if isinstance(share, Mapping):  # a saved snapshot: the share is itself a result with a value
            share = share.get("value")
        chosen = params.get("method")
        yield (
            DRIFT_SHARE,
            "",
            share,
            _labels(shape, str(chosen) if chosen else None, params.get("drift_share")),
        )


def _snapshot(report: Mapping[str, Any]) -> Iterator[Found]:
    for item in report["metrics"]:
        if isinstance(item, Mapping) and isinstance(item.get("config"), Mapping):
            yield from _v2_metric(item["config"], item.get("value"), "snapshot")


def _saved(report: Mapping[str, Any]) -> Iterator[Found]:
    for result in report["metric_results"].values():
        if not isinstance(result, Mapping):
            continue
        location = result.get("metric_value_location")
        metric = location.get("metric") if isinstance(location, Mapping) else None
        params = metric.get("params") if isinstance(metric, Mapping) else None
        if isinstance(params, Mapping):
            yield from _v2_metric(params, result if "share" in result else result.get("value"), "saved")


def _column(result: Mapping[str, Any], name: Any) -> Iterator[Found]:
    method = str(result.get("stattest_name") or "")
    if isinstance(name, str) and name:
        labels = _labels("legacy", method, result.get("stattest_threshold"))
        yield metric_of(method), name, result.get("drift_score"), labels


def _legacy(report: Mapping[str, Any]) -> Iterator[Found]:
    for item in report["metrics"]:
        if not isinstance(item, Mapping) or not isinstance(item.get("result"), Mapping):
            continue
        name, result = item.get("metric"), item["result"]
        if name in ("DatasetDriftMetric", "DataDriftTable") and "share_of_drifted_columns" in result:
            labels = _labels("legacy", None, result.get("drift_share"))
            yield DRIFT_SHARE, "", result["share_of_drifted_columns"], labels
        if name == "DataDriftTable" and isinstance(result.get("drift_by_columns"), Mapping):
            for column, detail in result["drift_by_columns"].items():
                if isinstance(detail, Mapping):
                    yield from _column(detail, detail.get("column_name") or column)
        elif name == "ColumnDriftMetric":
            yield from _column(result, result.get("column_name"))


def _shape(report: Any) -> str:
    if not isinstance(report, Mapping):
        raise UnsupportedReport(f"the body is not a JSON object; send {SHAPES}")
    if isinstance(report.get("metric_results"), Mapping):
        return "saved"
    metrics = report.get("metrics")
    if isinstance(metrics, list) and metrics:
        first = next((m for m in metrics if isinstance(m, Mapping)), {})
        if "config" in first:
            return "snapshot"
        if "metric" in first and "result" in first:
            return "legacy"
    raise UnsupportedReport(f"this is not an Evidently report this version of Cadence reads; send {SHAPES}")


def _window(report: Mapping[str, Any], given: datetime | None) -> datetime:
    if given is not None:
        return given.astimezone(UTC) if given.tzinfo else given.replace(tzinfo=UTC)
    stamp = report.get("timestamp")
    if isinstance(stamp, str) and stamp:
        try:
            when = datetime.fromisoformat(stamp)
        except ValueError as exc:
            raise MissingWindowEnd(
                f"the report's timestamp {stamp[:40]!r} is not a date and time; pass window_end"
            ) from exc
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    raise MissingWindowEnd(
        "this report carries no timestamp: pass window_end (RFC 3339, the end of the window the "
        "report's current data covers), so that the same report sent twice is stored once"
    )


def readings_from_report(report: Any, *, window_end: datetime | None = None) -> ReadReport:
    """The readings in an Evidently data-drift report (see the module's docstring)."""
    shape = _shape(report)
    found = {"snapshot": _snapshot, "saved": _saved, "legacy": _legacy}[shape](report)
    readings: list[EvidentlyReading] = []
    skipped: list[str] = []
    seen: set[tuple[str, str]] = set()
    for metric, feature, raw, labels in found:
        if (metric, feature) in seen:  # a preset and an explicit metric may both measure a column
            continue
        seen.add((metric, feature))
        value = _number(raw)
        where = f"{metric} of column {feature!r}" if feature else metric
        if value is None:
            skipped.append(f"{where}: {str(raw)[:40]!r} is not a finite number, left out")
            continue
        readings.append(EvidentlyReading(metric=metric, value=value, feature=feature[:200], labels=labels))
    if not readings and not skipped:
        raise UnsupportedReport(
            f"the report holds no data-drift metrics (ValueDrift, DriftedColumnsCount, DataDriftTable, "
            f"DatasetDriftMetric or ColumnDriftMetric); send {SHAPES}"
        )
    return ReadReport(shape=shape, window_end=_window(report, window_end), readings=readings, skipped=skipped)
