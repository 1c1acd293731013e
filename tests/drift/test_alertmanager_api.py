"""POST /api/v1/alertmanager on recorded payloads of a real Alertmanager: the bearer token, what opens,
repeats and resolves, what is skipped and why, and bad payloads refused with nothing stored."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.store.models import AuditEvent, DriftIncident, DriftReading, OutboxMessage
from tests.conftest import PLATFORM, RECSYS
from tests.drift.conftest import AUTH, api_app, drift_config
from tests.factories import rows

FIXTURES = Path(__file__).parents[1] / "integrations" / "fixtures" / "alertmanager"
URL = "/api/v1/alertmanager"
RULES = [
    {"model": "ranker", "metric": "psi", "direction": "above", "warn": 0.1, "critical": 0.5, "team": "recsys"}
]


def recorded(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8")))


@pytest.fixture
async def am(db, settings, clock):
    app = api_app(db, drift_config(RULES), settings, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client


async def counts(db) -> tuple[int, int, int, int]:
    return (
        len(await rows(db, DriftIncident)),
        len(await rows(db, DriftReading)),
        len(await rows(db, OutboxMessage)),
        len(await rows(db, AuditEvent)),
    )


async def test_firing_opens_a_repeat_changes_nothing_and_resolved_resolves(am, db):
    firing = await am.post(URL, json=recorded("firing"), headers=AUTH)
    assert firing.status_code == 200, firing.text
    assert firing.json() == {"received": 1, "opened": ["D-1"], "changed": [], "resolved": [], "skipped": []}
    [incident] = await rows(db, DriftIncident)
    assert (incident.state, incident.severity, incident.value, incident.feature) == (
        "open",
        "warn",
        0.31,
        "user_age",
    )
    assert incident.fingerprint == "487dc0e0dc3c665b" and incident.channel == RECSYS
    assert incident.runbook == "https://runbooks.example.com/drift"
    before = await counts(db)

    repeat = await am.post(URL, json=recorded("firing"), headers=AUTH)  # Alertmanager's repeat_interval
    assert repeat.json()["opened"] == [] and repeat.json()["changed"] == []
    assert await counts(db) == before
    [same] = await rows(db, DriftIncident)
    assert same.breaching_windows == 1

    done = await am.post(URL, json=recorded("resolved"), headers=AUTH)
    assert done.json()["resolved"] == ["D-1"]
    [closed] = await rows(db, DriftIncident)
    assert (closed.state, closed.resolved_by) == ("resolved", "alertmanager")
    again = await am.post(URL, json=recorded("resolved"), headers=AUTH)
    assert again.json()["resolved"] == []


async def test_a_repeat_with_a_higher_value_escalates_by_the_rule(am, db):
    """Alertmanager repeats a firing alert with the value Prometheus last computed: the value moves
    (and crosses the rule's critical), the count of breaching windows does not."""
    body = recorded("firing")
    await am.post(URL, json=body, headers=AUTH)
    worse = copy.deepcopy(body)
    worse["alerts"][0]["annotations"]["value"] = "0.7"
    out = (await am.post(URL, json=worse, headers=AUTH)).json()
    assert out["changed"] == ["D-1"]
    [incident] = await rows(db, DriftIncident)
    assert (incident.severity, incident.value, incident.breaching_windows) == ("critical", 0.7, 1)
    replies = [m for m in await rows(db, OutboxMessage) if m.thread_of == incident.message_id]
    assert len(replies) == 1 and json.loads(replies[0].payload)["reply_broadcast"] is True


async def test_alerts_without_a_rule_use_the_team_label_or_are_skipped_with_the_reason(am, db):
    body = recorded("firing")
    other = copy.deepcopy(body["alerts"][0])
    other["labels"] = {"alertname": "Latency", "model": "search", "metric": "p99", "team": "platform"}
    other["fingerprint"] = "f00"
    nobody = copy.deepcopy(other)
    nobody["labels"] = {"alertname": "Latency", "model": "search", "metric": "p99"}
    nobody["fingerprint"] = "f01"
    unknown = copy.deepcopy(other)
    unknown["labels"] = {**other["labels"], "team": "ghosts"}
    unknown["fingerprint"] = "f02"
    no_model = copy.deepcopy(other)
    no_model["labels"] = {"alertname": "Disk"}
    no_model["fingerprint"] = "f03"
    body["alerts"] = [other, nobody, unknown, no_model]
    body["commonLabels"] = {}
    out = (await am.post(URL, json=body, headers=AUTH)).json()
    assert out["received"] == 4 and out["opened"] == ["D-1"]
    skipped = "\n".join(out["skipped"])
    assert "f01" in skipped and "matches no drift rule and has no team label" in skipped
    assert "f02" in skipped and "'ghosts', which is not configured" in skipped
    assert "Disk" in skipped and "model" in skipped
    [incident] = await rows(db, DriftIncident)
    assert (incident.team, incident.channel, incident.model) == ("platform", PLATFORM, "search")


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        (lambda b: b.update(version="3"), ["body", "version"]),
        (lambda b: b.pop("alerts"), ["body", "alerts"]),
        (lambda b: b["alerts"][0].pop("fingerprint"), ["body", "alerts", 0, "fingerprint"]),
        (lambda b: b["alerts"][0].update(startsAt="yesterday"), ["body", "alerts", 0, "startsAt"]),
        (lambda b: b.update(status="exploding"), ["body", "status"]),
    ],
    ids=["version 3", "no alerts", "no fingerprint", "bad startsAt", "bad status"],
)
async def test_bad_payloads_are_refused_naming_the_field_and_store_nothing(am, db, change, loc):
    body = recorded("firing")
    change(body)
    r = await am.post(URL, json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["detail"]]
    assert await counts(db) == (0, 0, 0, 0)


async def test_version_3_says_which_version_is_read(am):
    body = recorded("firing")
    body["version"] = "3"
    [error] = (await am.post(URL, json=body, headers=AUTH)).json()["detail"]
    assert "'3'" in error["msg"] and '"4"' in error["msg"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}])
async def test_no_or_a_wrong_token_is_401_and_stores_nothing(am, db, headers):
    r = await am.post(URL, json=recorded("firing"), headers=headers)
    assert r.status_code == 401
    assert await counts(db) == (0, 0, 0, 0)


async def test_a_body_that_is_not_an_object_is_422(am):
    r = await am.post(URL, content=b"[1, 2]", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422
