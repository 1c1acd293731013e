from __future__ import annotations

from tests.drift.conftest import AUTH, reading, wire
from tests.factories import outbox_rows


async def test_readings_open_an_incident_and_post_one_message(api, db, clock):
    clock.set(reading(0).window_end)
    body = {
        "readings": [
            wire(reading(0.05, window=0)),
            wire(reading(0.15, window=1)),
            wire(reading(0.25, window=2)),
        ]
    }
    r = await api.post("/api/v1/drift", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["stored"] == 3 and out["opened"] == ["D-1"], out
    again = await api.post("/api/v1/drift", json=body, headers=AUTH)
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == 3
    incidents = (await api.get("/api/v1/drift/incidents", headers=AUTH)).json()
    assert [i["key"] for i in incidents] == ["D-1"]
    assert incidents[0]["severity"] == "critical"
    rows = await outbox_rows(db)
    assert len(rows) == 1 and rows[0].channel == "C0123RECSYS"


async def test_metrics_count_readings_and_open_incidents(api, clock):
    clock.set(reading(0).window_end)
    body = {"readings": [wire(reading(0.25, window=0)), wire(reading(0.5, metric="unwatched", window=0))]}
    assert (await api.post("/api/v1/drift", json=body, headers=AUTH)).status_code == 200
    from tests.factories import scraped

    metrics = scraped((await api.get("/metrics")).text)
    assert metrics['cadence_drift_open_incidents{severity="critical"}'] == 1
    assert metrics['cadence_drift_open_incidents{severity="warn"}'] == 0
    assert metrics['cadence_drift_readings_total{what="received"}'] == 2
    assert metrics['cadence_drift_readings_total{what="stored"}'] == 2
