"""Request and response bodies of /api/v1: pydantic validates them and names every bad field.
The experiment bodies build on the table's fields (ExperimentBase) and are stricter only where a
caller's JSON needs it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from bot.store.models import ExperimentBase
from bot.text import has_control

Status = Literal["proposed", "running", "succeeded", "failed", "abandoned"]
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.:/-]{0,99}$")]
StoryKey = Annotated[str, StringConstraints(pattern=r"^[Ss]-?\d{1,9}$")]
UserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,31}$")]
# no spaces, controls or <>| (they would break the Slack link); ASCII ranges only, which JSON Schema's
# regex dialect and Python's read the same way (\s does not mean the same in both)
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^<>|\x00-\x20\x7f-\x9f]{1,2000}$")]


Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # JSON numbers only: not true, not "1.2"


_C = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f"  # control characters (tab, newline and return allowed)
NO_CONTROL = f"^[^{_C}]*$"  # the rule of _In, as the OpenAPI document states it
# what Python's str.strip() removes, spelled out: JSON Schema's \\s and Python's differ (U+0085, U+FEFF)
_SPACE = "\\t\\n\\r\\x0b\\x0c\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
SOME_TEXT = f"^[^{_C}]*[^{_SPACE}{_C}][^{_C}]*$"  # the same, for a required field: not blank once trimmed


def _declare_no_control(schema: dict[str, Any]) -> None:
    """Say in the document what the models enforce, so the document is as strict as the code: every
    free-text field of an input model takes no control characters (a field with a pattern of its own
    already excludes them), and a map whose keys have a pattern takes no other keys."""
    for prop in schema.get("properties", {}).values():
        for option in [prop, *prop.get("anyOf", [])]:
            if option.get("type") == "string" and "pattern" not in option and "enum" not in option:
                option["pattern"] = SOME_TEXT if option.get("minLength") else NO_CONTROL
            if "patternProperties" in option:
                option.setdefault("additionalProperties", False)


class _In(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=_declare_no_control
    )

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL, and other control characters hide text; refused on both databases
        if isinstance(value, str) and has_control(value):
            raise ValueError("must not contain control characters (such as NUL)")
        return value


class Links(_In):
    mlflow: Url | None = None
    dashboard: Url | None = None
    notebook: Url | None = None
    doc: Url | None = None


# SQLModel types model_config as its own ConfigDict (with table keys), so mypy sees two kinds of config
# below; pydantic merges them at runtime (ExperimentIn forbids extra fields and trims strings).
class ExperimentIn(ExperimentBase, _In):  # type: ignore[misc]
    """Create or update the experiment known to the caller by its external id."""

    # name, hypothesis and higher_is_better are as the table declares them; these are stricter:
    # a caller's JSON must name a metric and a Slack user properly and send real numbers.
    metric: MetricName | None = None
    baseline: Number | None = None
    target: Number | None = None
    owner: UserId | None = None
    story: StoryKey
    status: Status | None = None
    mlflow_run_id: str | None = Field(default=None, max_length=64)
    links: Links = Field(default_factory=Links)


class StatusIn(_In):
    status: Status
    reason: str = Field(default="", max_length=2000)


class MetricsIn(_In):
    metrics: dict[MetricName, Number] = Field(min_length=1, max_length=100)
    run_id: str = Field(default="", max_length=64)


class EvaluationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    metric: str | None
    value: float | None
    baseline: float | None
    target: float | None
    delta: float | None
    meets_target: bool | None


class ReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    purpose: str
    state: str


class ExperimentOut(ExperimentBase):
    # Built from the table row: ExperimentOut.model_validate(experiment, update={what the row lacks}).
    # Every field is always sent, so the schema lists the defaulted ones as required too.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)  # type: ignore[assignment]

    key: str
    external_id: str | None
    story: str
    team: str
    status: Status
    stage: Literal["none", "canary", "production"]
    links: dict[str, str]
    latest: dict[str, float]
    evaluation: EvaluationOut
    reviews: list[ReviewOut]
    updated_at: datetime


# ── drift ──────────────────────────────────────────────────────────────────────────────────────


def _rfc3339(value: object) -> object:
    """window_end is written as RFC 3339 text with a zone: not a number of seconds, not a bare date."""
    if not isinstance(value, str):
        raise ValueError("write window_end as RFC 3339 text, e.g. 2026-12-03T10:00:00Z")
    if "T" not in value.upper() and " " not in value:
        raise ValueError("window_end needs a time and a zone, e.g. 2026-12-03T10:00:00Z")
    return value


DriftName = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
WindowEnd = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


class ReadingIn(_In):
    """One value of a monitored metric for one window (a PSI of a feature, an AUC, a drift share)."""

    model: DriftName
    metric: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    value: Number
    window_end: WindowEnd
    feature: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] | None = None
    source: Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)] | None = None
    labels: (
        dict[
            Annotated[str, StringConstraints(max_length=100)],
            Annotated[str, StringConstraints(max_length=500)],
        ]
        | None
    ) = Field(default=None, max_length=32)


class DriftIn(_In):
    readings: list[ReadingIn] = Field(min_length=1)


class DriftOut(BaseModel):
    received: int
    stored: int
    duplicates: int  # sent before: stored once
    unmatched: int  # stored, but no rule watches them (visible under /drift/readings)
    opened: list[str]
    changed: list[str]
    resolved: list[str]


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    team: str
    model: str
    metric: str
    feature: str | None
    state: str
    severity: str
    peak_severity: str
    value: float | None
    threshold: float | None
    direction: str
    breaching_windows: int
    first_seen: datetime | None
    last_seen: datetime | None
    opened_at: datetime | None
    acked_by: str | None
    acked_at: datetime | None
    snoozed_until: datetime | None
    snoozed_until_resolved: bool
    resolved_at: datetime | None
    resolved_by: str | None
    resolve_reason: str | None
    story: str | None
    source: str | None


class ReadingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    model: str
    metric: str
    feature: str | None
    source: str | None
    value: float
    window_end: datetime
    labels: dict[str, str]
    received_at: datetime


class AlertsOut(BaseModel):
    received: int
    opened: list[str]
    changed: list[str]
    resolved: list[str]
    skipped: list[str]  # alerts Cadence could not use, each with the reason


class EvidentlyOut(DriftOut):
    shape: str  # which of the report shapes it was read as (snapshot, saved, legacy)
    window_end: datetime  # the window its readings were stored under
    skipped: list[str]  # scores left out (not finite numbers), each with the reason
