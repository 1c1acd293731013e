"""Prometheus Alertmanager's webhook (payload version 4), read into the alerts Cadence can track.

A team adds Cadence as a receiver in its alertmanager.yml and routes its model-monitoring alerts to it:

    receivers:
      - name: cadence
        webhook_configs:
          - url: https://cadence.example.com/api/v1/alertmanager
            send_resolved: true          # so that Cadence hears when an alert stops firing
            http_config:
              authorization: {type: Bearer, credentials: <Cadence API token>}

Alertmanager posts one JSON body per notification of an alert group (`version` "4"; any other version is
refused with `UnsupportedPayload`). Each alert in it becomes one `ExternalAlert`, read this way:

| ExternalAlert   | where it comes from (names configurable with `LabelNames`)                           |
| --------------- | ------------------------------------------------------------------------------------- |
| fingerprint     | the alert's `fingerprint`: Alertmanager's stable id of its label set                  |
| firing          | the alert's `status` is "firing" (False for "resolved")                               |
| model           | label `model` — required                                                             |
| metric          | label `metric` — required                                                            |
| feature         | label `feature`, if any                                                               |
| value           | annotation `value`, when it reads as a finite number (e.g. `{{ $value }}` in the rule)  |
| severity        | label `severity`: critical or page → "critical"; warning or warn → "warn"; else None  |
| team            | label `team`, if any                                                                  |
| starts_at       | `startsAt`, in UTC                                                                    |
| ends_at         | `endsAt` in UTC for a resolved alert; None while it fires (Alertmanager sends year 1)  |
| alertname       | label `alertname`                                                                     |
| summary         | annotation `summary`, else annotation `description`                                   |
| runbook         | annotation `runbook_url`                                                              |
| generator_url   | `generatorURL` (the Prometheus graph of the rule's expression)                         |
| labels          | all the alert's labels                                                                |

Labels are read from the alert and, failing that, from the group's `commonLabels`; annotations likewise
from the alert, then `commonAnnotations`. A label or annotation that is empty counts as absent, as in
Prometheus.

An alert without a `model` or `metric` label cannot be tracked and is skipped. `alerts_from_webhook`
returns, beside the alerts, one sentence for each thing it left out or could not read, for the sender's
logs and the API's answer: a skipped alert; a `value` annotation that is not a finite number (the alert
is kept, with no value: a value written with `humanize` such as "310m" is not read); and the alerts
Alertmanager itself left out of the notification because of the receiver's `max_alerts`
(`truncatedAlerts`). A body that is not a version-4 payload at all raises (pydantic's ValidationError,
or UnsupportedPayload): Alertmanager will then retry it, which is right for a truncated body and
harmless for anything else.

This module only reads: it has no HTTP and no database, so it can be tested on recorded payloads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SUPPORTED_VERSION = "4"


class UnsupportedPayload(ValueError):
    """The webhook body declares a payload version other than the one Cadence reads."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class WebhookAlert(_Model):
    """One alert of the notification, as Alertmanager sends it."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str


class WebhookPayload(_Model):
    """The body of one webhook notification (Alertmanager's `webhook_config`, payload version 4)."""

    version: str
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[WebhookAlert]


@dataclass(frozen=True)
class LabelNames:
    """Which labels (and, for `value`, which annotation) carry what Cadence needs."""

    model: str = "model"
    metric: str = "metric"
    feature: str = "feature"
    team: str = "team"
    severity: str = "severity"
    value: str = "value"  # an annotation, not a label: values change while an alert fires


DEFAULT_NAMES = LabelNames()


@dataclass(frozen=True)
class ExternalAlert:
    """One alert from a monitoring system, in Cadence's terms (see the module docstring)."""

    fingerprint: str
    firing: bool
    model: str
    metric: str
    feature: str | None
    value: float | None
    severity: str | None  # "warn" | "critical" | None
    team: str | None
    starts_at: datetime
    ends_at: datetime | None
    alertname: str | None
    summary: str | None
    runbook: str | None
    generator_url: str | None
    labels: dict[str, str] = field(hash=False)


_SEVERITIES = {"critical": "critical", "page": "critical", "warning": "warn", "warn": "warn"}


def normalise_severity(label: str | None) -> str | None:
    """ "critical" for critical/page, "warn" for warning/warn (any case), None for anything else."""
    return _SEVERITIES.get((label or "").strip().lower())


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _present(value: str | None) -> str | None:
    """The value, or None when it is missing or blank (Prometheus treats an empty label as absent)."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def _describe(alertname: str | None, fingerprint: str) -> str:
    name = f'alert "{alertname}"' if alertname else "an alert without an alertname"
    return f"{name} (fingerprint {fingerprint.strip() or 'empty'})"


def _check_version(payload: Mapping[str, Any]) -> None:
    if isinstance(payload, Mapping) and "version" in payload:
        received = payload["version"]
        if received != SUPPORTED_VERSION:
            raise UnsupportedPayload(
                f"Alertmanager webhook payload version {received!r} is not supported: "
                f'Cadence reads version "{SUPPORTED_VERSION}"'
            )


def parse_payload(payload: Mapping[str, Any]) -> WebhookPayload:
    """The validated payload; UnsupportedPayload for another version, ValidationError when malformed."""
    _check_version(payload)
    return WebhookPayload.model_validate(payload)


def _parse_value(raw: str | None) -> tuple[float | None, bool]:
    """(the number, whether it read): a missing annotation is no value and no problem."""
    if raw is None:
        return None, True
    try:
        number = float(raw)
    except ValueError:
        return None, False
    return (number, True) if math.isfinite(number) else (None, False)


def alerts_from_webhook(
    payload: Mapping[str, Any], names: LabelNames = DEFAULT_NAMES
) -> tuple[list[ExternalAlert], list[str]]:
    """The alerts of one Alertmanager notification that Cadence can track, and one sentence for each
    alert skipped or annotation not read (see the module docstring)."""
    body = parse_payload(payload)
    alerts: list[ExternalAlert] = []
    notes: list[str] = []
    for raw in body.alerts:
        labels = {**body.common_labels, **raw.labels}
        annotations = {**body.common_annotations, **raw.annotations}
        label = {key: _present(value) for key, value in labels.items()}.get
        note = {key: _present(value) for key, value in annotations.items()}.get
        alertname = label("alertname")
        who = _describe(alertname, raw.fingerprint)

        if not _present(raw.fingerprint):
            notes.append(f"{who} was skipped: it has no fingerprint to follow it by")
            continue
        missing = [name for name in (names.model, names.metric) if not label(name)]
        if missing:
            quoted = " or ".join(f'"{name}"' for name in missing)
            notes.append(f"{who} was skipped: it has no {quoted} label")
            continue

        value_text = note(names.value)
        value, readable = _parse_value(value_text)
        if not readable:
            notes.append(
                f'{who}: its "{names.value}" annotation ({value_text!r}) is not a finite number, '
                "so the alert is kept without a value"
            )

        firing = raw.status == "firing"
        ends_at = None if firing or raw.ends_at is None or raw.ends_at.year <= 1 else _utc(raw.ends_at)
        alerts.append(
            ExternalAlert(
                fingerprint=raw.fingerprint.strip(),
                firing=firing,
                model=label(names.model) or "",
                metric=label(names.metric) or "",
                feature=label(names.feature),
                value=value,
                severity=normalise_severity(label(names.severity)),
                team=label(names.team),
                starts_at=_utc(raw.starts_at),
                ends_at=ends_at,
                alertname=alertname,
                summary=note("summary") or note("description"),
                runbook=note("runbook_url"),
                generator_url=_present(raw.generator_url),
                labels=labels,
            )
        )
    if body.truncated_alerts:
        count = body.truncated_alerts
        notes.append(
            f"Alertmanager left {count} more alert{'s' if count != 1 else ''} of group {body.group_key or '?'} "
            "out of this notification (the receiver's max_alerts); set max_alerts: 0 to send them all"
        )
    return alerts, notes
