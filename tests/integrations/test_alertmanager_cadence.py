"""A real Prometheus Alertmanager pointed at Cadence itself: alerts posted to Alertmanager's API reach
`POST /api/v1/alertmanager` through its webhook (bearer token in `http_config.authorization`), open a
drift incident with its message queued for the team channel, and resolve it when the alert resolves."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.store.db import create_engine
from bot.web import create_web_app
from tests.conftest import RECSYS, make_config
from tests.integrations.alertmanager_server import TOKEN, AlertmanagerServer, alert, resolved

WAIT = 15.0
RULES = [
    {"model": "ranker", "metric": "psi", "direction": "above", "warn": 0.1, "critical": 0.2, "team": "recsys"}
]


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        try:
            return list(conn.execute(sql))
        except sqlite3.OperationalError:  # the schema is not there yet: Cadence is still starting
            return []


def _wait(
    path: Path, sql: str, predicate: Callable[[list[tuple[Any, ...]]], bool], server: AlertmanagerServer
):
    deadline = time.monotonic() + WAIT
    while True:
        rows = _rows(path, sql)
        if predicate(rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(
                f"Cadence never got there; rows {rows}; alertmanager's log:\n{server.log_tail()}"
            )
        time.sleep(0.1)


def test_alertmanager_opens_and_resolves_a_cadence_incident(
    tmp_path: Path, serve_asgi: Callable[..., str], alertmanager: Callable[..., AlertmanagerServer]
) -> None:
    db = tmp_path / "cadence.db"
    engine = create_engine(f"sqlite:///{db}")
    settings = Settings(
        slack_bot_token="xoxb-test-token",
        slack_signing_secret="not-used-here",
        slack_api_url="http://127.0.0.1:9/api/",  # nothing is delivered in this test: no clock runs
        api_tokens=(f"alertmanager={TOKEN}",),
    )
    app = create_web_app(
        settings=settings, config=make_config(drift={"rules": RULES}), engine=engine, migrate_on_start=True
    )
    base = serve_asgi(app, lifespan="on")
    server = alertmanager(base + "/api/v1/alertmanager", group_by=["alertname", "model"])

    labels = {
        "alertname": "FeatureDrift",
        "model": "ranker",
        "metric": "psi",
        "feature": "user_age",
        "severity": "warning",
    }
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    firing = alert(labels, {"value": "0.31", "summary": "PSI of user_age is 0.31"}, starts_at=started)
    server.post_alerts([firing])

    incidents = "SELECT number, state, severity, value, fingerprint, feature, message_id FROM drift_incident"
    [(number, state, severity, value, fingerprint, feature, message_id)] = _wait(
        db, incidents, lambda rows: len(rows) == 1, server
    )
    # the value 0.31 is above the rule's critical 0.2: Cadence judges it, whatever the label says
    assert (number, state, severity, value, feature) == (1, "open", "critical", 0.31, "user_age")
    assert fingerprint
    [(channel, payload)] = _rows(db, f"SELECT channel, payload FROM outbox WHERE id = {message_id}")
    assert channel == RECSYS and "D-1" in json.loads(payload)["text"]
    assert _rows(db, "SELECT source, value FROM drift_reading") == [("alertmanager", 0.31)]
    assert _rows(db, "SELECT action, actor FROM audit_event") == [("drift.open", "cadence")]

    server.post_alerts([resolved(firing)])
    _wait(db, "SELECT state FROM drift_incident", lambda rows: rows == [("resolved",)], server)
    [(resolved_by,)] = _rows(db, "SELECT resolved_by FROM drift_incident")
    assert resolved_by == "alertmanager"
    assert _rows(db, "SELECT action, actor FROM audit_event ORDER BY seq") == [
        ("drift.open", "cadence"),
        ("drift.resolve", "alertmanager"),
    ]
    replies = _rows(db, f"SELECT payload FROM outbox WHERE thread_of = {message_id}")
    assert len(replies) == 1 and "resolved by Alertmanager" in json.loads(replies[0][0])["text"]
    asyncio.run(engine.dispose())


def test_an_alert_sent_while_cadences_database_is_down_arrives_once_it_is_back(
    tmp_path: Path, serve_asgi: Callable[..., str], alertmanager: Callable[..., AlertmanagerServer]
) -> None:
    """Cadence answers 503 while it cannot reach its database (here: the database's directory is not
    there yet); Alertmanager keeps retrying, and the incident opens once the database is back."""
    from bot.store.migrate import upgrade

    where = tmp_path / "later"
    db = where / "cadence.db"
    engine = create_engine(f"sqlite:///{db}")
    settings = Settings(
        slack_bot_token="xoxb-test-token",
        slack_signing_secret="not-used-here",
        slack_api_url="http://127.0.0.1:9/api/",
        api_tokens=(f"alertmanager={TOKEN}",),
    )
    app = create_web_app(settings=settings, config=make_config(drift={"rules": RULES}), engine=engine)
    base = serve_asgi(app)
    server = alertmanager(base + "/api/v1/alertmanager", group_by=["alertname", "model"])
    labels = {"alertname": "FeatureDrift", "model": "ranker", "metric": "psi", "feature": "age"}
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    server.post_alerts([alert(labels, {"value": "0.25"}, starts_at=started)])

    deadline = time.monotonic() + WAIT
    while "503" not in server.log_tail(200):  # Alertmanager has tried and been told to come back
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.2)

    where.mkdir()
    asyncio.run(upgrade(create_engine(f"sqlite:///{db}")))
    [(number, state)] = _wait(
        db, "SELECT number, state FROM drift_incident", lambda rows: len(rows) == 1, server
    )
    assert (number, state) == (1, "open")
    assert _rows(db, "SELECT value FROM drift_reading") == [(0.25,)]
    asyncio.run(engine.dispose())
