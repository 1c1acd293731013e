"""POST /api/v1/drift's validation table: each bad body is refused with 422 naming the field, and
nothing is stored; the token; the size limits; the incidents and readings listings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.store.models import DriftIncident, DriftReading
from tests.drift.conftest import AUTH, reading, wire
from tests.factories import rows

GOOD = {"model": "recsys-ranker", "metric": "psi", "value": 0.05, "window_end": "2026-12-07T08:00:00Z"}


def one(**changes: Any) -> dict[str, Any]:
    r = {**GOOD, **changes}
    return {"readings": [{k: v for k, v in r.items() if v is not ...}]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "readings"),
        ({"readings": "x"}, "readings"),
        ({"readings": []}, "readings"),
        (one(model=...), "model"),
        (one(model=""), "model"),
        (one(model=7), "model"),
        (one(model="m" * 201), "model"),
        (one(metric=...), "metric"),
        (one(value=...), "value"),
        (one(value="0.5"), "value"),
        (one(value=True), "value"),
        (one(window_end="yesterday"), "window_end"),
        (one(window_end="2026-12-07T08:00:00"), "window_end"),
        (one(window_end=...), "window_end"),
        (one(labels=["a"]), "labels"),
        (one(feature="f" * 201), "feature"),
        (one(colour="red"), "colour"),
    ],
)
async def test_bad_readings_are_refused_naming_the_field(api, db, body, field):
    r = await api.post("/api/v1/drift", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert any(field in [str(p) for p in e["loc"]] for e in r.json()["detail"]), r.json()
    assert await rows(db, DriftReading) == []


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
async def test_a_value_that_is_not_finite_is_refused(api, db, value):
    raw = json.dumps(one()).replace("0.05", value)
    r = await api.post("/api/v1/drift", content=raw, headers=AUTH | {"content-type": "application/json"})
    assert r.status_code == 422 and "value" in json.dumps(r.json())
    assert await rows(db, DriftReading) == []


async def test_without_a_valid_token_nothing_is_stored(api, db):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "secret-1"}):
        assert (await api.post("/api/v1/drift", json=one(), headers=headers)).status_code == 401
    assert await rows(db, DriftReading) == []


async def test_at_most_ten_thousand_readings_a_request(api, db):
    too_many = {"readings": [wire(reading(0.01, window=n)) for n in range(10_001)]}
    r = await api.post("/api/v1/drift", json=too_many, headers=AUTH)
    assert r.status_code == 413 and "at most 10000 readings" in r.json()["detail"][0]["msg"]
    assert await rows(db, DriftReading) == []
    r = await api.post("/api/v1/drift", json={"readings": too_many["readings"][:10_000]}, headers=AUTH)
    assert r.status_code == 200 and r.json()["stored"] == 10_000


async def test_a_body_over_the_byte_limit_is_413(api, db):
    item = json.dumps(one(labels={"n": "x" * 490})["readings"][0]).encode()
    body = b'{"readings": [' + b",".join([item] * 20_000) + b"]}"
    assert len(body) > 8 * 1024 * 1024
    r = await api.post("/api/v1/drift", content=body, headers=AUTH | {"content-type": "application/json"})
    assert r.status_code == 413
    assert await rows(db, DriftReading) == []


async def test_the_same_reading_twice_in_one_request_is_stored_once(api, db):
    r = await api.post("/api/v1/drift", json={"readings": [GOOD, GOOD]}, headers=AUTH)
    assert (r.json()["received"], r.json()["stored"], r.json()["duplicates"]) == (2, 1, 1)


async def test_listing_incidents_and_readings(api, db):
    await api.post("/api/v1/drift", json={"readings": [wire(reading(0.3))]}, headers=AUTH)
    assert [i["key"] for i in (await api.get("/api/v1/drift/incidents?state=open", headers=AUTH)).json()] == [
        "D-1"
    ]
    assert (await api.get("/api/v1/drift/incidents?state=resolved", headers=AUTH)).json() == []
    assert [
        i["key"] for i in (await api.get("/api/v1/drift/incidents?team=recsys", headers=AUTH)).json()
    ] == ["D-1"]
    assert (await api.get("/api/v1/drift/incidents?team=platform", headers=AUTH)).json() == []
    bogus = await api.get("/api/v1/drift/incidents?state=bogus", headers=AUTH)
    assert bogus.status_code == 422 and "state" in json.dumps(bogus.json())
    assert (await api.get("/api/v1/drift/incidents?limit=0", headers=AUTH)).status_code == 422
    one_incident = (await api.get("/api/v1/drift/incidents/D-1", headers=AUTH)).json()
    assert (one_incident["severity"], one_incident["model"]) == ("critical", "recsys-ranker")
    missing = await api.get("/api/v1/drift/incidents/D-99", headers=AUTH)
    assert missing.status_code == 404 and "D-99" in json.dumps(missing.json())
    listed = (await api.get("/api/v1/drift/readings?model=recsys-ranker&metric=psi", headers=AUTH)).json()
    assert [(x["model"], x["value"]) for x in listed] == [("recsys-ranker", 0.3)]
    assert (await api.get("/api/v1/drift/incidents", headers={})).status_code == 401
    assert len(await rows(db, DriftIncident)) == 1
