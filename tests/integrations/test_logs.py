"""`cadence --log-format json serve`: every line it writes is a JSON object, and the lines of one
request carry its id, which the response returns in X-Request-Id (the caller's own, when it sent one)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

from bot.cli import main
from tests.fake_slack import FakeSlack
from tests.integrations.alertmanager_server import free_port
from tests.integrations.crash_scenario import CONFIG
from tests.integrations.processes import Processes, cadence_env


def test_json_logs_carry_the_request_id_the_response_names(tmp_path: Path):
    fake = FakeSlack().start()
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(lease=30, check="true"))
    port = free_port()
    env = cadence_env(f"sqlite:///{tmp_path / 'logs.db'}", fake.api_url, config, CADENCE_LOG_FORMAT="json")
    processes = Processes(env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        processes.start("serve", "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(port))
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, processes.logs()
            time.sleep(0.2)
        given = httpx.get(base + "/readyz", headers={"X-Request-Id": "trace-42"})
        made = httpx.get(base + "/readyz")
        hostile = httpx.get(base + "/readyz", headers={"X-Request-Id": 'a b"{}'})
    finally:
        processes.stop()
        fake.stop()
    assert given.headers["x-request-id"] == "trace-42"
    assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{16}", hostile.headers["x-request-id"])  # not an id: replaced

    lines = [line for line in (tmp_path / "serve.log").read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message", "request_id"} <= set(r) for r in records), records
    readyz = [r for r in records if "/readyz" in r["message"]]
    assert {r["request_id"] for r in readyz} >= {"trace-42", made.headers["x-request-id"]}, readyz
    assert any(r["request_id"] == "-" for r in records)  # lines outside a request (the start) say so


def test_an_unknown_log_format_in_the_environment_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("CADENCE_LOG_FORMAT", "xml")
    assert main(["db", "current"]) == 2
    assert "CADENCE_LOG_FORMAT must be text or json, not 'xml'." in capsys.readouterr().err
