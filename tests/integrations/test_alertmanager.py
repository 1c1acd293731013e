"""Reading Alertmanager's webhook (version 4) into ExternalAlerts: on payloads a real Alertmanager sent
(fixtures/alertmanager/) and on hand-made ones for the cases it would not produce on its own."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.integrations.alertmanager import (
    ExternalAlert,
    LabelNames,
    UnsupportedPayload,
    alerts_from_webhook,
    normalise_severity,
)

FIXTURES = Path(__file__).parent / "fixtures" / "alertmanager"


def recorded(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8")))


def payload(*alerts: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A version-4 body around `alerts`, with Alertmanager's other fields (overridable with `top`)."""
    return {
        "version": "4",
        "groupKey": '{}:{model="ranker"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "cadence",
        "groupLabels": {"model": "ranker"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": list(alerts),
        **top,
    }


def raw_alert(
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    *,
    status: str = "firing",
    fingerprint: str = "a1b2c3d4e5f60718",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "FeatureDrift", "model": "ranker", "metric": "psi"}
        if labels is None
        else labels,
        "annotations": annotations or {},
        "startsAt": "2025-03-04T10:00:00.123456789+01:00",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=psi+%3E+0.2",
        "fingerprint": fingerprint,
        **extra,
    }


def one(body: dict[str, Any], names: LabelNames | None = None) -> tuple[ExternalAlert, list[str]]:
    alerts, notes = alerts_from_webhook(body, names) if names else alerts_from_webhook(body)
    assert len(alerts) == 1, (alerts, notes)
    return alerts[0], notes


# ------------------------------------------------------------------------------ the recorded payloads


def test_the_recorded_firing_payload():
    got, notes = one(recorded("firing"))
    assert notes == []
    assert got.firing is True and got.ends_at is None
    assert (got.model, got.metric, got.feature) == ("ranker", "psi", "user_age")
    assert (got.value, got.severity, got.team) == (0.31, "warn", "recsys")
    assert got.alertname == "FeatureDrift"
    assert got.summary == "PSI of user_age is 0.31"
    assert got.runbook == "https://runbooks.example.com/drift"
    assert got.generator_url == "http://prometheus.example.com:9090/graph"
    assert got.fingerprint == recorded("firing")["alerts"][0]["fingerprint"]
    assert got.starts_at.tzinfo is UTC
    assert got.labels["severity"] == "warning"  # the raw labels stay as they were sent


def test_the_recorded_resolved_payload_is_the_same_alert_ended():
    firing, _ = one(recorded("firing"))
    done, notes = one(recorded("resolved"))
    assert notes == []
    assert done.firing is False
    assert done.fingerprint == firing.fingerprint
    assert done.starts_at == firing.starts_at
    assert done.ends_at is not None and done.ends_at > done.starts_at and done.ends_at.tzinfo is UTC


def test_unknown_fields_are_allowed_at_every_level():
    body = recorded("firing")
    body["_note"] = "added by hand"
    body["alerts"][0]["silenceURL"] = "http://alertmanager.example.com/#/silences/new"
    got, notes = one(body)
    assert notes == [] and got.model == "ranker"


# ------------------------------------------------------------------------------------------ mapping


def test_times_are_read_in_utc_and_a_firing_alert_has_no_end():
    got, _ = one(payload(raw_alert()))
    assert got.starts_at == datetime(2025, 3, 4, 9, 0, 0, 123456, tzinfo=UTC)  # nanoseconds cut to µs
    assert got.ends_at is None


def test_a_resolved_alert_keeps_its_end():
    body = payload(
        raw_alert(status="resolved", endsAt="2025-03-04T11:30:00Z", fingerprint="f00d"), status="resolved"
    )
    got, _ = one(body)
    assert got.firing is False
    assert got.ends_at == datetime(2025, 3, 4, 11, 30, tzinfo=UTC)


def test_optional_fields_are_none_when_absent_or_blank():
    alert = raw_alert(
        {"model": "ranker", "metric": "psi", "feature": "", "team": "  "}, generatorURL="", endsAt=None
    )
    got, notes = one(payload(alert))
    assert notes == []
    assert got.feature is None and got.team is None and got.severity is None and got.alertname is None
    assert got.value is None and got.summary is None and got.runbook is None
    assert got.generator_url is None and got.ends_at is None


def test_the_summary_falls_back_to_the_description():
    got, _ = one(payload(raw_alert(annotations={"description": "PSI above 0.2 for 1h"})))
    assert got.summary == "PSI above 0.2 for 1h"
    got, _ = one(payload(raw_alert(annotations={"description": "long", "summary": "short"})))
    assert got.summary == "short"


def test_labels_fall_back_to_the_common_labels_and_annotations():
    body = payload(
        raw_alert({"alertname": "FeatureDrift", "feature": "country"}, {"summary": "drift on country"}),
        commonLabels={"model": "ranker", "metric": "psi", "team": "recsys", "severity": "critical"},
        commonAnnotations={"value": "0.5", "summary": "drift", "runbook_url": "https://runbooks/x"},
    )
    got, notes = one(body)
    assert notes == []
    assert (got.model, got.metric, got.feature, got.team) == ("ranker", "psi", "country", "recsys")
    assert got.severity == "critical" and got.value == 0.5 and got.runbook == "https://runbooks/x"
    assert got.summary == "drift on country"  # the alert's own annotation wins
    assert got.labels == {
        "alertname": "FeatureDrift",
        "feature": "country",
        "model": "ranker",
        "metric": "psi",
        "team": "recsys",
        "severity": "critical",
    }


def test_the_alert_label_wins_over_the_common_one():
    body = payload(raw_alert(), commonLabels={"model": "other", "metric": "psi"})
    got, _ = one(body)
    assert got.model == "ranker"


def test_label_names_are_configurable():
    names = LabelNames(
        model="service",
        metric="drift_metric",
        feature="column",
        team="owner",
        severity="level",
        value="score",
    )
    alert = raw_alert(
        {"service": "ranker", "drift_metric": "kl", "column": "age", "owner": "ml", "level": "page"},
        {"score": "1.5e-1", "value": "9"},
    )
    got, notes = one(payload(alert), names)
    assert notes == []
    assert (got.model, got.metric, got.feature, got.team) == ("ranker", "kl", "age", "ml")
    assert got.severity == "critical" and got.value == 0.15

    _, notes = alerts_from_webhook(payload(raw_alert()), names)  # the default names no longer count
    assert notes == [
        'alert "FeatureDrift" (fingerprint a1b2c3d4e5f60718) was skipped: it has no "service" or "drift_metric" label'
    ]


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("critical", "critical"),
        ("CRITICAL", "critical"),
        ("page", "critical"),
        ("warning", "warn"),
        ("Warn", "warn"),
        (" warning ", "warn"),
        ("info", None),
        ("error", None),
        ("", None),
        (None, None),
    ],
)
def test_severity_normalisation(label: str | None, expected: str | None):
    assert normalise_severity(label) == expected
    labels = {"model": "ranker", "metric": "psi"} | ({"severity": label} if label is not None else {})
    got, _ = one(payload(raw_alert(labels)))
    assert got.severity == expected


# ------------------------------------------------------------------------------------ the value


@pytest.mark.parametrize(
    ("text", "expected"), [("0.31", 0.31), (" 2 ", 2.0), ("-1e-3", -0.001), ("0", 0.0), ("7", 7.0)]
)
def test_the_value_annotation_is_read_as_a_number(text: str, expected: float):
    got, notes = one(payload(raw_alert(annotations={"value": text})))
    assert got.value == expected and notes == []


@pytest.mark.parametrize("text", ["NaN", "nan", "+Inf", "-Inf", "inf", "high", "310m", "0.3,1", "1e999"])
def test_a_value_that_is_not_a_finite_number_keeps_the_alert_without_a_value(text: str):
    got, notes = one(payload(raw_alert(annotations={"value": text})))
    assert got.value is None and got.model == "ranker"
    assert notes == [
        f'alert "FeatureDrift" (fingerprint a1b2c3d4e5f60718): its "value" annotation ({text!r}) is not a '
        "finite number, so the alert is kept without a value"
    ]


def test_a_missing_or_blank_value_is_no_value_and_no_note():
    for given in ({}, {"value": ""}, {"value": "   "}):
        got, notes = one(payload(raw_alert(annotations=given)))
        assert got.value is None and notes == []


# ----------------------------------------------------------------------------------- skipped alerts


def test_alerts_without_a_model_or_metric_are_skipped_with_a_reason():
    body = payload(
        raw_alert({"alertname": "HighLatency", "metric": "p99"}, fingerprint="abc"),
        raw_alert({"alertname": "FeatureDrift", "model": "ranker"}, fingerprint="def"),
        raw_alert({"model": "ranker", "metric": ""}, fingerprint="123"),
        raw_alert({"alertname": "Watchdog"}, fingerprint="456"),
        raw_alert(fingerprint="789"),
    )
    alerts, notes = alerts_from_webhook(body)
    assert [a.fingerprint for a in alerts] == ["789"]
    assert notes == [
        'alert "HighLatency" (fingerprint abc) was skipped: it has no "model" label',
        'alert "FeatureDrift" (fingerprint def) was skipped: it has no "metric" label',
        'an alert without an alertname (fingerprint 123) was skipped: it has no "metric" label',
        'alert "Watchdog" (fingerprint 456) was skipped: it has no "model" or "metric" label',
    ]


def test_an_alert_with_an_empty_fingerprint_is_skipped():
    alerts, notes = alerts_from_webhook(payload(raw_alert(fingerprint=" ")))
    assert alerts == []
    assert notes == [
        'alert "FeatureDrift" (fingerprint empty) was skipped: it has no fingerprint to follow it by'
    ]


def test_an_empty_notification_is_valid():
    assert alerts_from_webhook(payload()) == ([], [])


def test_truncated_alerts_are_reported():
    alerts, notes = alerts_from_webhook(payload(raw_alert(), truncatedAlerts=3))
    assert len(alerts) == 1
    assert notes == [
        'Alertmanager left 3 more alerts of group {}:{model="ranker"} out of this notification '
        "(the receiver's max_alerts); set max_alerts: 0 to send them all"
    ]
    _, notes = alerts_from_webhook(payload(raw_alert(), truncatedAlerts=1))
    assert "left 1 more alert of group" in notes[0]


# --------------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize("version", ["3", "5", 4, "", None])
def test_another_version_is_unsupported(version: Any):
    body = payload(raw_alert(), version=version)
    with pytest.raises(UnsupportedPayload) as caught:
        alerts_from_webhook(body)
    assert repr(version) in str(caught.value) and 'reads version "4"' in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_version_3_is_refused_before_its_shape_is_checked():
    with pytest.raises(UnsupportedPayload, match="version '3' is not supported"):
        alerts_from_webhook({"version": "3", "alerts": "whatever"})


@pytest.mark.parametrize(
    "broken",
    [
        lambda b: b.pop("alerts"),
        lambda b: b.pop("version"),
        lambda b: b.pop("status"),
        lambda b: b.update(status="pending"),
        lambda b: b.update(alerts={"not": "a list"}),
        lambda b: b.update(truncatedAlerts=-1),
        lambda b: b["alerts"][0].pop("fingerprint"),
        lambda b: b["alerts"][0].pop("labels"),
        lambda b: b["alerts"][0].pop("startsAt"),
        lambda b: b["alerts"][0].update(startsAt="yesterday"),
        lambda b: b["alerts"][0].update(status="pending"),
        lambda b: b["alerts"][0].update(labels={"model": 1}),
    ],
)
def test_malformed_payloads_raise_a_validation_error(broken: Any):
    body = copy.deepcopy(recorded("firing"))
    broken(body)
    with pytest.raises(ValidationError):
        alerts_from_webhook(body)


def test_a_body_that_is_not_an_object_raises_a_validation_error():
    with pytest.raises(ValidationError):
        alerts_from_webhook([recorded("firing")])  # type: ignore[arg-type]


def test_external_alerts_are_frozen_and_hashable():
    got, _ = one(recorded("firing"))
    with pytest.raises(AttributeError):
        got.model = "other"  # type: ignore[misc]
    assert len({got, one(recorded("firing"))[0]}) == 1
