"""Schemathesis against `/api/v1`: `cadence serve` in its own process on a loopback port, on SQLite and (with
TEST_DATABASE_URL) on PostgreSQL, fed cases generated from its own OpenAPI document. Every answer must be
no 5xx, with a status code, content type and body that the document declares."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.conftest import PLATFORM, RECSYS, _backends
from tests.integrations.alertmanager_server import free_port
from tests.integrations.processes import scratch_database

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed: pip install -e '.[test]'"
)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import positive_data_acceptance  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "schemathesis-token-0123456789"
CONFIG = f"""
timezone: Europe/Berlin
teams:
  - name: recsys
    channel: {RECSYS}
    members: [U01ALICE, U02BOB]
    leads: [U01ALICE]
    governance: {{channel: C0456GOV, approvers: [U09CAROL]}}
  - name: platform
    channel: {PLATFORM}
    members: [U04FRANK]
api_requests_per_minute: 1000000  # generated cases come faster than any pipeline's; the limit has its own test
"""


@pytest.fixture(scope="module", params=_backends())
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    config = tmp / "config.yaml"
    config.write_text(CONFIG)
    scratch = ExitStack()
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'cadence.db'}"
    else:
        pg = os.environ["TEST_DATABASE_URL"]
        url = scratch.enter_context(scratch_database(pg, f"cadence_schemathesis_{os.getpid()}"))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": url,
        "SLACK_BOT_TOKEN": "xoxb-schemathesis",
        "SLACK_SIGNING_SECRET": "schemathesis-secret",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "CADENCE_CONFIG": str(config),
        "CADENCE_API_TOKENS": f"ci={TOKEN}",
    }
    env.pop("SLACK_APP_TOKEN", None)
    subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=env, check=True)
    log = open(tmp / "serve.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            process.poll()
            assert process.returncode is None, (tmp / "serve.log").read_text()
            import time

            time.sleep(0.1)
        # a story for experiments to belong to, so generated cases reach past "no such story"
        yield base
    finally:
        process.terminate()
        process.wait(15)
        log.close()
        scratch.close()


def excluded(case) -> list[object]:  # type: ignore[no-untyped-def]
    """An Evidently report and an Alertmanager webhook are any JSON object to the document (their shapes are
    Evidently's and Alertmanager's, not declared in ours), so a generated object that is not one is refused
    with 422 naming what was expected. Every other check still applies to them."""
    foreign = case.path.endswith(("/drift/evidently", "/alertmanager"))
    return [positive_data_acceptance] if foreign else []


def test_the_api_answers_every_generated_case_as_its_document_says(served: str) -> None:
    schema = schemathesis.openapi.from_url(served + "/api/openapi.json").include(path_regex="^/api/v1/")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9, [op.label for op in operations]
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=int(os.environ.get("SCHEMATHESIS_EXAMPLES", "40")),
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(base_url=served, headers=headers, excluded_checks=excluded(case))

        try:
            check()
        except Exception as exc:  # every operation is tried; all failures are reported together
            failures.append(f"{operation.label}: {exc}"[:2000])
    assert not failures, "\n\n".join(failures)
