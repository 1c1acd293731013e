"""`cadence clock --metrics-port`: the clock process, which delivers the outbox, serves its own figures
for Prometheus (delivery latency is only known where delivery happens)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.factories import scraped
from tests.fake_slack import FakeSlack
from tests.integrations.alertmanager_server import free_port
from tests.integrations.crash_scenario import CONFIG, queue
from tests.integrations.processes import Processes, cadence_env


def test_the_clock_serves_delivery_latency_and_the_outbox_on_its_metrics_port(tmp_path: Path):
    fake = FakeSlack().start()
    url = f"sqlite+aiosqlite:///{tmp_path / 'clock.db'}"
    config = tmp_path / "clock.yaml"
    config.write_text(CONFIG.format(lease=30, check="true"))
    port = free_port()
    env = cadence_env(url, fake.api_url, config)
    processes = Processes(env, tmp_path)
    try:
        asyncio.run(queue(url, 5))
        processes.start("clock", "clock", "--metrics-port", str(port))
        figures: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while figures.get("cadence_outbox_delivery_seconds_count") != 5:
            assert time.monotonic() < deadline, (figures, processes.logs())
            try:
                figures = scraped(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert figures['cadence_outbox_deliveries_total{outcome="sent"}'] == 5
        assert 'cadence_outbox_messages{state="pending"}' in figures  # read from the database on start
        assert "cadence_scheduler_lag_seconds_count" in figures
        assert f"metrics at http://127.0.0.1:{port}/metrics" in processes.logs()
        assert len(fake.delivered()) == 5
    finally:
        processes.stop()
        fake.stop()
