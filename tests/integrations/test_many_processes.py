"""Two `cadence serve --no-scheduler` replicas and two `cadence clock` processes on one PostgreSQL, as the
Procfile scales them: reminders and nudge rounds (claimed per occurrence), a governance review request
and a drift alert (the same report sent to both replicas at once), each reaches Slack exactly once, and
the two clocks share delivery through the outbox's SKIP LOCKED claims."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.fake_slack import FakeSlack
from tests.integrations.alertmanager_server import free_port
from tests.integrations.processes import Processes, scratch_database, sql
from tests.slack_driver import SECRET, signed_headers

ROOT = Path(__file__).resolve().parents[2]
PG = os.environ.get("TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not PG, reason="TEST_DATABASE_URL is not set: no PostgreSQL to test against")

TOKEN = "many-processes-token"
CONFIG = """\
timezone: UTC
teams:
  - name: recsys
    channel: C0123RECSYS
    members: [U01ALICE, U02BOB]
    leads: [U01ALICE]
    governance: {channel: C0456GOV, approvers: [U09CAROL], review_on: {succeeded: production}}
    ceremonies:
      standup: {cron: "* * * * *"}
      planning: {cron: "* * * * *", nudge_hours_before: [1]}
readiness: {eng: []}
drift:
  rules:
    - {model: ranker, metric: psi, direction: above, warn: 0.1, critical: 0.2, team: recsys}
"""


@pytest.fixture
def database() -> Iterator[str]:
    assert PG is not None
    with scratch_database(PG, f"cadence_many_{os.getpid()}") as url:
        yield url


def _wait_healthy(url: str, processes: Processes) -> None:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became healthy\n{processes.logs()}")


async def _both(requests: list[tuple[str, str, str, dict]]) -> list[httpx.Response]:
    """The same reports sent to both replicas at the same moment."""
    headers = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(timeout=30) as client:
        return list(
            await asyncio.gather(
                *(
                    client.request(m, base + path, json=body, headers=headers)
                    for base, m, path, body in requests
                )
            )
        )


def test_replicas_and_clocks_on_one_database_send_everything_exactly_once(database, tmp_path):
    fake = FakeSlack().start()
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database,
        "SLACK_BOT_TOKEN": "xoxb-many-processes",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "CADENCE_CONFIG": str(config),
        "CADENCE_API_TOKENS": f"ci={TOKEN}",
    }
    env.pop("SLACK_APP_TOKEN", None)
    processes = Processes(env, tmp_path)
    try:
        subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=env, check=True)
        web = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
        for i, base in enumerate(web):
            processes.start(
                f"web{i}", "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", base.rsplit(":", 1)[1]
            )
        processes.start("clock0", "clock")
        processes.start("clock1", "clock")
        for base in web:
            _wait_healthy(base, processes)
        started = datetime.now(UTC)

        body = urlencode(
            {
                "command": "/scrum",
                "text": "story add Ship the ranker --type eng",
                "user_id": "U01ALICE",
                "channel_id": "C0123RECSYS",
                "team_id": "T0001",
                "response_url": fake.response_url("add"),
                "trigger_id": "t.1",
            }
        )
        added = httpx.post(web[0] + "/slack/events", content=body, headers=signed_headers(body), timeout=30)
        assert added.status_code == 200 and "S-1" in added.text, added.text

        experiment = {"story": "S-1", "name": "ranker-v2", "status": "succeeded"}
        reported = asyncio.run(_both([(b, "PUT", "/api/v1/experiments/ranker-v2", experiment) for b in web]))
        assert sorted(r.status_code for r in reported) in ([200, 201], [201, 409], [201, 201]), [
            r.text for r in reported
        ]
        readings = {
            "readings": [
                {
                    "model": "ranker",
                    "metric": "psi",
                    "feature": "age",
                    "value": 0.3,
                    "window_end": "2026-12-01T10:00:00Z",
                }
            ]
        }
        alerted = asyncio.run(_both([(b, "POST", "/api/v1/drift", readings) for b in web]))
        assert [r.status_code for r in alerted] == [200, 200], [r.text for r in alerted]
        assert sorted(len(r.json()["opened"]) for r in alerted) == [0, 1], [r.json() for r in alerted]

        # Let one minute's standup, planning and nudge round fall due, then the outbox drain.
        boundary = (started.replace(second=0, microsecond=0).timestamp() // 60 + 1) * 60
        time.sleep(max(0.0, boundary - time.time()) + 8)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            pending = sql(database, ["SELECT count(*) FROM outbox WHERE state <> 'sent'"])[0][0]
            if not pending:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"the outbox never drained\n{processes.logs()}")

        runs = sql(
            database,
            ["SELECT ceremony, count(*), count(DISTINCT scheduled_for) FROM ceremony_run GROUP BY ceremony"],
        )
        by_kind = {kind: (n, distinct) for kind, n, distinct in runs}
        for kind in ("standup", "planning", "planning_nudge_1h"):
            assert kind in by_kind, (runs, processes.logs())
            n, distinct = by_kind[kind]
            assert n == distinct, f"{kind} ran twice for one time: {runs}"
        claimed = sql(database, ["SELECT count(DISTINCT claimed_by) FROM ceremony_run"])[0][0]

        posted = fake.delivered("chat.postMessage")
        sent = sql(
            database, ["SELECT count(*) FROM outbox WHERE method = 'chat.postMessage' AND state = 'sent'"]
        )[0][0]
        assert len(posted) == sent, "a message reached Slack twice (or one never did)"
        texts = [str(c.args.get("text") or "") for c in posted]
        standups = [t for t in texts if "Standup" in t]
        assert len(standups) == by_kind["standup"][0], texts
        review = [
            c for c in posted if c.args.get("channel") == "C0456GOV" and "R-1" in str(c.args.get("text"))
        ]
        assert len(review) == 1, texts
        assert len([t for t in texts if "D-1" in t]) == 1, texts
        reviews = sql(database, ["SELECT count(*) FROM review"])[0][0]
        incidents = sql(database, ["SELECT count(*) FROM drift_incident"])[0][0]
        assert (reviews, incidents) == (1, 1)
        assert claimed >= 1
    finally:
        processes.stop()
        fake.stop()
