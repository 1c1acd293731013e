"""Rule evaluation through the readings API: direction and thresholds, `for`, `resolve_after`,
escalation by severity, reopening as the same D-n, snooze expiry, reminders and retention."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.services import drift
from bot.services.errors import Forbidden, Invalid
from bot.store.models import AuditEvent, DriftIncident, DriftReading
from tests.drift.conftest import AUTH, T0, reading, wire
from tests.factories import rows, snapshot, tx


async def send(api, *readings: drift.Reading) -> dict:
    r = await api.post("/api/v1/drift", json={"readings": [wire(x) for x in readings]}, headers=AUTH)
    assert r.status_code == 200, r.text
    return dict(r.json())


def rule(dconfig, model: str, metric: str):
    [found] = drift.rules_for(dconfig, model, metric, "")
    return found


@pytest.mark.parametrize(
    ("metric", "value", "severity"),
    [
        ("psi", 0.09, None),
        ("psi", 0.1, "warn"),  # above: at the threshold breaches
        ("psi", 0.19, "warn"),
        ("psi", 0.2, "critical"),
        ("ks_p_value", 0.05, None),  # below: at the threshold does not
        ("ks_p_value", 0.049, "warn"),
        ("ks_p_value", 0.0, "warn"),  # a warn-only rule never goes critical
        ("auc", 0.81, None),
        ("auc", 0.79, "warn"),
        ("auc", 0.7, "critical"),
    ],
)
def test_direction_and_thresholds(dconfig, metric, value, severity):
    assert drift.severity_of(rule(dconfig, "recsys-ranker", metric), value) == severity


def test_globs_pick_the_rules_and_a_reading_no_rule_watches_matches_none(dconfig):
    assert [r.team for r in drift.rules_for(dconfig, "recsys-ranker", "psi", "user_age")] == ["recsys"]
    assert [r.team for r in drift.rules_for(dconfig, "anything", "drift_share", "")] == ["platform"]
    assert drift.rules_for(dconfig, "search-ranker", "psi", "") == []
    assert drift.rules_for(dconfig, "recsys-other", "auc", "") == []  # the AUC rule names one model


async def test_an_unwatched_reading_is_stored_and_alerts_nobody(api, db):
    out = await send(api, reading(0.9, model="search-ranker"))
    assert (out["stored"], out["unmatched"], out["opened"]) == (1, 1, [])
    assert len(await rows(db, DriftReading)) == 1 and await rows(db, DriftIncident) == []


async def test_for_two_windows_opens_on_the_second_breach_and_a_healthy_window_resets(api, db):
    assert (await send(api, reading(0.79, metric="auc", window=0)))["opened"] == []
    [pending] = await rows(db, DriftIncident)
    assert (pending.state, pending.number) == ("pending", None)  # no D-number, no message yet
    assert (await send(api, reading(0.9, metric="auc", window=1)))["opened"] == []
    assert await rows(db, DriftIncident) == []  # back in range: the pending one is gone
    await send(api, reading(0.79, metric="auc", window=2))
    out = await send(api, reading(0.78, metric="auc", window=3))
    assert out["opened"] == ["D-1"]
    [incident] = await rows(db, DriftIncident)
    assert (incident.state, incident.breaching_windows) == ("open", 2)


async def test_escalation_and_de_escalation_keep_the_peak(api, db):
    await send(api, reading(0.15))
    out = await send(api, reading(0.3, window=1))
    assert out["changed"] == ["D-1"]
    await send(api, reading(0.12, window=2))
    [incident] = await rows(db, DriftIncident)
    assert (incident.severity, incident.peak_severity, incident.breaching_windows) == ("warn", "critical", 3)


async def test_resolve_after_two_healthy_windows_and_reopen_as_the_same_number(api, db, clock):
    await send(api, reading(0.79, metric="auc", window=0), reading(0.78, metric="auc", window=1))
    assert (await send(api, reading(0.9, metric="auc", window=2)))["resolved"] == []
    assert (await send(api, reading(0.9, metric="auc", window=3)))["resolved"] == ["D-1"]
    [incident] = await rows(db, DriftIncident)
    assert (incident.state, incident.resolved_by) == ("resolved", "cadence")

    clock.set(T0 + timedelta(hours=5))  # within the 24 h reopen window
    await send(api, reading(0.7, metric="auc", window=4), reading(0.7, metric="auc", window=5))
    [again] = await rows(db, DriftIncident)
    assert (again.key, again.state, again.reopened, again.severity) == ("D-1", "open", 1, "critical")
    actions = [a.action for a in await rows(db, AuditEvent)]
    assert actions == ["drift.open", "drift.resolve", "drift.reopen"]


async def test_after_the_reopen_window_a_breach_is_a_new_incident(api, db, clock):
    await send(api, reading(0.15, window=0))
    await send(api, reading(0.01, window=1))  # psi's rule resolves after one healthy window
    clock.set(T0 + timedelta(hours=30))
    out = await send(api, reading(0.15, window=30))
    assert out["opened"] == ["D-2"]
    assert sorted(i.state for i in await rows(db, DriftIncident)) == ["open", "resolved"]


async def test_out_of_order_and_repeated_readings_change_nothing(api, db):
    await send(api, reading(0.15, window=5))
    before = [(i.value, i.breaching_windows) for i in await rows(db, DriftIncident)]
    out = await send(api, reading(0.3, window=2), reading(0.15, window=5))
    assert out["duplicates"] == 1 and out["changed"] == []
    assert [(i.value, i.breaching_windows) for i in await rows(db, DriftIncident)] == before


async def test_a_snooze_stops_reminders_until_it_expires(api, db, dconfig, clock):
    await send(api, reading(0.15))
    async with tx(db, dconfig) as session:
        [incident] = await rows(db, DriftIncident)
        due = incident.ack_due_at
        assert due is not None
        incident = await drift.get_incident(session, "D-1")
        await drift.snooze(session, config=dconfig, incident=incident, actor="U01ALICE", choice="1h", now=T0)
        assert await drift.overdue(session, now=T0 + timedelta(minutes=30)) == []
        later = max(due, T0 + timedelta(hours=1)) + timedelta(minutes=1)
        assert [i.key for i in await drift.overdue(session, now=later)] == ["D-1"]
        with pytest.raises(Invalid, match=r"Snooze for 1h, 24h or until resolved"):
            await drift.snooze(
                session, config=dconfig, incident=incident, actor="U01ALICE", choice="3w", now=T0
            )


async def test_readings_older_than_the_retention_are_pruned_and_incidents_kept(api, db, dconfig):
    await send(api, reading(0.15, window=0), reading(0.01, window=1))
    async with tx(db, dconfig) as session:
        assert await drift.prune(session, config=dconfig, now=T0 + timedelta(days=89)) == 0
        assert await drift.prune(session, config=dconfig, now=T0 + timedelta(days=91)) == 2
    assert await rows(db, DriftReading) == [] and len(await rows(db, DriftIncident)) == 1


async def test_a_token_scoped_to_a_team_reports_only_what_that_team_watches(db, dconfig, settings, clock):
    import dataclasses

    import httpx

    from bot.web import create_web_app

    app = create_web_app(
        settings=dataclasses.replace(settings, api_tokens=("ranker@recsys=secret-recsys-1",)),
        config=dconfig,
        engine=db,
        clock=clock,
    )
    scoped = {"Authorization": "Bearer secret-recsys-1"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        ok = await api.post(
            "/api/v1/drift", json={"readings": [wire(reading(metric="psi", value=0.05))]}, headers=scoped
        )
        refused = await api.post(
            "/api/v1/drift",
            json={
                "readings": [wire(reading(metric="drift_share", value=0.9, window=1))]
            },  # platform watches it
            headers=scoped,
        )

    assert ok.status_code == 200, ok.text
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == "This API token may not report what team platform watches."
    assert len(await rows(db, DriftReading)) == 1


async def test_only_the_watching_team_acts_on_its_incident(api, db, dconfig, clock):
    await send(api, reading(metric="psi", value=0.3))  # recsys watches psi of recsys-*: D-1
    before = await snapshot(db)
    for outsider in ("U04FRANK", "U0MALLORY"):
        with pytest.raises(Forbidden) as refused:
            async with tx(db, dconfig) as s:
                incident = await drift.get_incident(s, "D-1")
                await drift.acknowledge(s, config=dconfig, incident=incident, actor=outsider, now=clock.now())
        assert refused.value.message == "Only members and leads of team recsys can act on D-1."
    assert await snapshot(db) == before


async def test_a_query_with_a_control_character_is_a_422_not_a_database_error(api, db):
    """Schemathesis found this one: a NUL in a query parameter reached PostgreSQL as a 500."""
    for params in ({"feature": "a\x00b"}, {"model": "\x1b[31m"}, {"metric": "auc\x00"}):
        response = await api.get("/api/v1/drift/readings", params=params, headers=AUTH)
        assert response.status_code == 422, (params, response.text)
    response = await api.get("/api/v1/drift/incidents", params={"team": "rec\x00sys"}, headers=AUTH)
    assert response.status_code == 422, response.text
