"""Request and response bodies of /api/v1: pydantic validates them and names every bad field.
The experiment bodies build on the table's fields (ExperimentBase) and are stricter only where a
caller's JSON needs it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bot.store.models import ExperimentBase

Status = Literal["proposed", "running", "succeeded", "failed", "abandoned"]
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.:/-]{0,99}$")]
StoryKey = Annotated[str, StringConstraints(pattern=r"^[Ss]-?\d{1,9}$")]
UserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,31}$")]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s<>|]{1,2000}$")]


Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # JSON numbers only: not true, not "1.2"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
