"""A real Prometheus Alertmanager for the integration tests, and a way to serve any ASGI app to it.

`AlertmanagerServer` writes an alertmanager.yml whose only receiver is a webhook (bearer token, resolved
notifications on, no truncation), starts Debian's `prometheus-alertmanager` on a free loopback port with
clustering off and its storage in a temporary directory, and stops it (the whole process group) when
done. `post_alerts` puts alerts into it through its v2 API, as Prometheus would. `serving_asgi` runs an
ASGI app with uvicorn in a background thread on a free loopback port, so Alertmanager has somewhere to
deliver to.

The binary is $ALERTMANAGER_BIN, else /usr/bin/prometheus-alertmanager, else whichever
`prometheus-alertmanager` (or `alertmanager`) is on the PATH; without one the tests skip. .ci/run
installs Debian's package."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

DEFAULT_BIN = "/usr/bin/prometheus-alertmanager"
NOT_INSTALLED = "prometheus-alertmanager is not installed: .ci/run installs Debian's package"
START_TIMEOUT = 30.0  # seconds; it is ready in well under one on this machine
TOKEN = "cadence-test-token"


def alertmanager_binary() -> str:
    """The Alertmanager executable to test against, or skip the test saying why there is none."""
    configured = os.environ.get("ALERTMANAGER_BIN", "").strip()
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        pytest.skip(
            f"ALERTMANAGER_BIN={configured} is not an executable file: no Alertmanager to test against"
        )
    if os.path.isfile(DEFAULT_BIN) and os.access(DEFAULT_BIN, os.X_OK):
        return DEFAULT_BIN
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not found:
        pytest.skip(NOT_INSTALLED)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def version(binary: str) -> str:
    """The first line of `--version`, e.g. "alertmanager, version 0.25.0 (branch: …)"."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "unknown"


def write_config(
    directory: Path,
    webhook_url: str,
    *,
    token: str = TOKEN,
    group_by: list[str] | None = None,
    group_wait: str = "1s",
    group_interval: str = "1s",
    repeat_interval: str = "4h",
    max_alerts: int = 0,
) -> Path:
    """An alertmanager.yml that routes every alert to one webhook receiver; its path. JSON is YAML."""
    route: dict[str, Any] = {
        "receiver": "cadence",
        "group_wait": group_wait,
        "group_interval": group_interval,
        "repeat_interval": repeat_interval,
    }
    if group_by is not None:
        route["group_by"] = group_by
    config = {
        "route": route,
        "receivers": [
            {
                "name": "cadence",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": token}},
                        "max_alerts": max_alerts,
                    }
                ],
            }
        ],
    }
    path = directory / "alertmanager.yml"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM to the process group, SIGKILL if it lingers; reaped either way."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


class AlertmanagerServer:
    """One Alertmanager process delivering to `webhook_url`; use it as a context manager."""

    def __init__(self, binary: str, workdir: Path, webhook_url: str, **config: Any) -> None:
        self.binary = binary
        self.workdir = workdir
        self.config_path = write_config(workdir, webhook_url, **config)
        self.port = 0
        self.url = ""
        self.log = workdir / "alertmanager.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AlertmanagerServer:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        storage = self.workdir / "data"
        storage.mkdir(exist_ok=True)
        args = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={storage}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # empty: no gossip, no peers, no extra port
            f"--web.external-url={self.url}",
            "--log.level=debug",
        ]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                args,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"alertmanager exited with {self.proc.returncode}:\n{_log_tail(self.log)}"
                    )
                try:
                    if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"alertmanager not ready after {START_TIMEOUT:.0f} s:\n{_log_tail(self.log)}"
                    )
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def __enter__(self) -> AlertmanagerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        post_alerts(self.url, alerts)

    def log_tail(self, lines: int = 30) -> str:
        return _log_tail(self.log, lines)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert(
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
    *,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    generator_url: str = "",
) -> dict[str, Any]:
    """One alert in the shape of Alertmanager's v2 API (what Prometheus posts). An `ends_at` in the past
    resolves the alert; none leaves it firing until Alertmanager's resolve_timeout (5 min by default)."""
    body: dict[str, Any] = {"labels": dict(labels), "annotations": dict(annotations or {})}
    if starts_at is not None:
        body["startsAt"] = _rfc3339(starts_at)
    if ends_at is not None:
        body["endsAt"] = _rfc3339(ends_at)
    if generator_url:
        body["generatorURL"] = generator_url
    return body


def post_alerts(base_url: str, alerts: list[dict[str, Any]]) -> None:
    """POST /api/v2/alerts; raises with Alertmanager's answer if it refuses them."""
    response = httpx.post(f"{base_url}/api/v2/alerts", json=alerts, timeout=10)
    if response.status_code != 200:
        raise RuntimeError(f"alertmanager refused the alerts: HTTP {response.status_code}: {response.text}")


def resolved(alert_body: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """The same alert ended at `at` (default: a second ago): an end in the past resolves it."""
    return {**alert_body, "endsAt": _rfc3339(at or datetime.now(UTC) - timedelta(seconds=1))}


# ----------------------------------------------------------------------------------- an ASGI app live


@contextmanager
def serving_asgi(app: Any, *, lifespan: str = "auto", timeout: float = 15.0) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a background thread; yields its base URL and
    stops the server (should_exit) when the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound here, so no one else can take the port before uvicorn listens
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if failure or not thread.is_alive():
            sock.close()
            raise RuntimeError(f"uvicorn did not start: {failure[0] if failure else 'it stopped'}")
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout)
            sock.close()
            raise RuntimeError(f"uvicorn did not start in {timeout:.0f} s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
