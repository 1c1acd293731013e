"""Request and response bodies of /api/v1: pydantic validates them and names every bad field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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


class ExperimentIn(_In):
    """Create or update the experiment known to the caller by its external id."""

    story: StoryKey
    name: str = Field(min_length=1, max_length=200)
    hypothesis: str = Field(default="", max_length=2000)
    metric: MetricName | None = None
    baseline: Number | None = None
    target: Number | None = None
    higher_is_better: bool = True
    owner: UserId | None = None
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
    metric: str | None
    value: float | None
    baseline: float | None
    target: float | None
    delta: float | None
    meets_target: bool | None


class ReviewOut(BaseModel):
    key: str
    purpose: str
    state: str


class ExperimentOut(BaseModel):
    key: str
    external_id: str | None
    story: str
    team: str
    name: str
    hypothesis: str
    status: Status
    stage: Literal["none", "canary", "production"]
    metric: str | None
    baseline: float | None
    target: float | None
    higher_is_better: bool
    owner: str | None
    links: dict[str, str]
    latest: dict[str, float]
    evaluation: EvaluationOut
    reviews: list[ReviewOut]
    updated_at: datetime
