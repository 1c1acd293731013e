"""SIGKILL during a burst of deliveries, then a restart, on SQLite and on PostgreSQL: every message
reaches Slack, none twice, although some were in Slack when their process died."""

from __future__ import annotations

import os

import pytest

from tests.integrations.crash_scenario import run
from tests.integrations.processes import scratch_database

PG = os.environ.get("TEST_DATABASE_URL")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_clock_killed_mid_burst_delivers_everything_once_after_a_restart(backend, tmp_path):
    if backend == "postgresql":
        if not PG:
            pytest.skip("TEST_DATABASE_URL is not set: no PostgreSQL to test against")
        with scratch_database(PG, f"cadence_crash_{os.getpid()}") as url:
            outcome = run(url, tmp_path, check_history=True)
    else:
        outcome = run(f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}", tmp_path, check_history=True)
    # the kill must have caught messages Slack had but the database did not know were sent
    assert outcome.in_doubt_at_kill >= 1, outcome.logs
    assert (outcome.lost, outcome.doubles) == (0, 0), outcome
    assert "not sent again" in outcome.logs
