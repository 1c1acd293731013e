"""Drift tests: a configuration with rules, readings made easy, and the app's API client."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.config import AppConfig, Settings
from bot.services import drift
from tests.conftest import make_config

TOKENS = ("monitor=secret-1",)
AUTH = {"Authorization": "Bearer secret-1"}
T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # Monday 7 December 2026, 09:00 in Berlin

RULES: list[dict[str, Any]] = [
    {
        "model": "recsys-*",
        "metric": "psi",
        "direction": "above",
        "warn": 0.1,
        "critical": 0.2,
        "team": "recsys",
    },
    {"model": "recsys-*", "metric": "ks_p_value", "direction": "below", "warn": 0.05, "team": "recsys"},
    {
        "model": "recsys-ranker",
        "metric": "auc",
        "direction": "below",
        "warn": 0.8,
        "critical": 0.75,
        "for": 2,
        "resolve_after": 2,
        "team": "recsys",
        "runbook": "https://wiki.example.com/runbooks/auc",
    },
    {"model": "*", "metric": "drift_share", "direction": "above", "warn": 0.5, "team": "platform"},
]


def drift_config(rules: list[dict[str, Any]] | None = None, **drift_options: Any) -> AppConfig:
    return make_config(drift={"rules": RULES if rules is None else rules, **drift_options})


@pytest.fixture(scope="session")
def dconfig() -> AppConfig:
    return drift_config()


def reading(
    value: float,
    *,
    window: int = 0,
    model: str = "recsys-ranker",
    metric: str = "psi",
    feature: str = "",
    source: str = "",
    step: timedelta = timedelta(hours=1),
) -> drift.Reading:
    return drift.Reading(model, metric, value, T0 + window * step, feature, source)


def wire(r: drift.Reading) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": r.model,
        "metric": r.metric,
        "value": r.value,
        "window_end": r.window_end.isoformat().replace("+00:00", "Z"),
    }
    if r.feature:
        out["feature"] = r.feature
    if r.source:
        out["source"] = r.source
    return out


def api_app(db, config: AppConfig, settings: Settings, clock):
    from bot.web import create_web_app

    return create_web_app(
        settings=dataclasses.replace(settings, api_tokens=TOKENS), config=config, engine=db, clock=clock
    )


@pytest.fixture
async def api(db, dconfig, settings, clock) -> AsyncIterator[httpx.AsyncClient]:
    app = api_app(db, dconfig, settings, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client
