"""A real Prometheus Alertmanager (Debian's package) delivering its webhook to a small receiver served
with uvicorn; what arrives must parse into the alerts Cadence tracks.

Set RECORD_ALERTMANAGER_FIXTURES=1 to (re)write the recorded payloads in fixtures/alertmanager/ from
this run (see the README there)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.integrations.alertmanager import ExternalAlert, alerts_from_webhook
from tests.integrations.alertmanager_server import TOKEN, AlertmanagerServer, alert, resolved, version

FIXTURES = Path(__file__).parent / "fixtures" / "alertmanager"
WEBHOOK_PATH = "/api/v1/alertmanager"
WAIT = 10.0  # seconds for a notification to arrive; group_wait and group_interval are 1 s


class Receiver:
    """An ASGI app that records every webhook it is sent: (headers, JSON body)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], Any]] = []
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route(WEBHOOK_PATH, self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> JSONResponse:
        body = await request.json()
        with self._lock:
            self.received.append((dict(request.headers), body))
        return JSONResponse({"ok": True})

    def wait_for(
        self, predicate: Callable[[Any], bool], server: AlertmanagerServer, timeout: float = WAIT
    ) -> tuple[dict[str, str], Any]:
        """The first recorded request whose body satisfies `predicate`, polling until `timeout`; the
        failure shows what did arrive and the end of Alertmanager's log."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                for headers, body in self.received:
                    if predicate(body):
                        return headers, body
                seen = [b.get("status") for _, b in self.received]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no matching webhook in {timeout:.0f} s; got statuses {seen}; alertmanager's log:\n"
                    + server.log_tail()
                )
            time.sleep(0.05)


def _record(name: str, body: dict[str, Any], server: AlertmanagerServer) -> None:
    if os.environ.get("RECORD_ALERTMANAGER_FIXTURES") != "1":
        return
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / f"{name}.json").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    (FIXTURES / "VERSION").write_text(version(server.binary) + "\n", encoding="utf-8")


def _same_shape(live: dict[str, Any], name: str) -> None:
    """The recorded fixture has the keys a live payload has, at both levels, so it is still a fair sample."""
    recorded = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    assert set(recorded) == set(live), name
    assert set(recorded["alerts"][0]) == set(live["alerts"][0]), name


def test_a_firing_then_resolved_alert_reaches_cadence_and_parses(
    serve_asgi: Callable[..., str], alertmanager: Callable[..., AlertmanagerServer]
) -> None:
    receiver = Receiver()
    base = serve_asgi(receiver.app)
    server = alertmanager(base + WEBHOOK_PATH, group_by=["alertname", "model"])
    labels = {
        "alertname": "FeatureDrift",
        "model": "ranker",
        "metric": "psi",
        "feature": "user_age",
        "severity": "warning",
        "team": "recsys",
    }
    annotations = {
        "value": "0.31",
        "summary": "PSI of user_age is 0.31",
        "runbook_url": "https://runbooks.example.com/drift",
    }
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    firing = alert(
        labels, annotations, starts_at=started, generator_url="http://prometheus.example.com:9090/graph"
    )
    server.post_alerts([firing])

    headers, body = receiver.wait_for(lambda b: b["status"] == "firing", server)
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["content-type"].startswith("application/json")
    assert body["version"] == "4" and body["truncatedAlerts"] == 0
    assert body["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"  # Go's zero time while it fires
    _record("firing", body, server)

    alerts, notes = alerts_from_webhook(body)
    assert notes == []
    [got] = alerts
    assert got.fingerprint
    assert got == ExternalAlert(
        fingerprint=got.fingerprint,
        firing=True,
        model="ranker",
        metric="psi",
        feature="user_age",
        value=0.31,
        severity="warn",
        team="recsys",
        starts_at=started,
        ends_at=None,
        alertname="FeatureDrift",
        summary="PSI of user_age is 0.31",
        runbook="https://runbooks.example.com/drift",
        generator_url="http://prometheus.example.com:9090/graph",
        labels=labels,
    )

    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    server.post_alerts([resolved(firing, at=ended)])
    _, done = receiver.wait_for(lambda b: b["status"] == "resolved", server)
    _record("resolved", done, server)
    [back], notes = alerts_from_webhook(done)
    assert notes == []
    assert back.firing is False
    assert back.fingerprint == got.fingerprint
    assert back.ends_at is not None and back.ends_at == ended
    assert back.starts_at == started and back.value == 0.31

    _same_shape(body, "firing")
    _same_shape(done, "resolved")


def test_one_group_carries_several_alerts_and_says_what_it_truncated(
    serve_asgi: Callable[..., str], alertmanager: Callable[..., AlertmanagerServer]
) -> None:
    """A second Alertmanager in the same session: grouped by model, at most two alerts a notification."""
    receiver = Receiver()
    base = serve_asgi(receiver.app)
    server = alertmanager(base + WEBHOOK_PATH, group_by=["model"], max_alerts=2)
    common = {"alertname": "FeatureDrift", "model": "ranker", "metric": "psi", "team": "recsys"}
    server.post_alerts(
        [
            alert({**common, "feature": "user_age"}, {"value": "0.4"}),
            alert({**common, "feature": "country"}, {"value": "NaN"}),
            alert({"alertname": "FeatureDrift", "model": "ranker", "feature": "device"}),
        ]
    )
    _, body = receiver.wait_for(lambda b: b["status"] == "firing", server)
    assert body["truncatedAlerts"] == 1 and len(body["alerts"]) == 2
    assert body["commonLabels"]["model"] == "ranker"

    alerts, notes = alerts_from_webhook(body)
    assert any("left 1 more alert of group" in n for n in notes), notes
    assert len({a.fingerprint for a in alerts}) == len(alerts)
    assert all(a.model == "ranker" and a.firing for a in alerts)


@pytest.mark.parametrize("name", ["firing", "resolved"])
def test_recorded_payloads_name_their_alertmanager(name: str) -> None:
    recorded = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    assert recorded["version"] == "4" and recorded["status"] == name
    assert "alertmanager, version" in (FIXTURES / "VERSION").read_text(encoding="utf-8")
