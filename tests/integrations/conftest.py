"""A real MLflow tracking server for the integration tests, seeded with the mlflow client library, and
the recorded answers of one such server for the tests that run without it.

The server and the mlflow library live in their own virtualenv so they do not disturb the project's
packages: MLFLOW_SERVER_BIN names its `mlflow` executable and MLFLOW_PYTHON its Python (default: the
`python` next to MLFLOW_SERVER_BIN). Without them the real-server tests skip; .ci/run installs one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import AppConfig
from bot.integrations.mlflow import MlflowClient
from tests.conftest import make_config
from tests.integrations.alertmanager_server import AlertmanagerServer, alertmanager_binary, serving_asgi

FIXTURES = Path(__file__).parent / "fixtures"
START_TIMEOUT = 90.0  # seconds; a cold start of MLflow 3 (creating its SQLite schema) takes ~15-20 s
SEED_TIMEOUT = 180.0
NO_SERVER = "MLFLOW_SERVER_BIN is not set: no MLflow server to test against; .ci/run installs one"
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONIOENCODING": "utf-8"}


# ------------------------------------------------------------------------------------- configuration


def mlflow_config(
    tracking_uri: str,
    *,
    experiments: list[str] | None = None,
    models: list[dict[str, Any]] | None = None,
    review_on: dict[str, str] | None = None,
    poll_minutes: float = 5,
) -> AppConfig:
    """The test configuration with an `mlflow:` section (and the recsys governance policy `review_on`)."""
    mlflow = {
        "tracking_uri": tracking_uri,
        "poll_minutes": poll_minutes,
        "experiments": experiments or [],
        "models": models or [],
    }
    return make_config(mlflow=mlflow, governance={"review_on": review_on} if review_on else None)


# ------------------------------------------------------------------------------------ recorded answers


def load_fixture(name: str) -> dict[str, Any]:
    """One recorded exchange: {"recorded": how, "request": what was asked, "status": …, "body": …}."""
    return dict(json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8")))


def replay(name: str) -> httpx.Response:
    recorded = load_fixture(name)
    return httpx.Response(recorded["status"], json=recorded["body"])


RECORDED_EXPERIMENT = "cadence-recorded"  # the MLflow experiment the fixtures were recorded from
RECORDED_MODEL = "cadence-ranker"  # and the registered model


def recorded_runs() -> dict[str, str]:
    """Run name → run id of the recorded runs."""
    out = {}
    for name in ("runs_search_experiment_tag", "runs_search_story_tag"):
        for run in load_fixture(name)["body"]["runs"]:
            out[run["info"]["run_name"]] = run["info"]["run_id"]
    return out


class RecordedMlflow:
    """The handler of an httpx.MockTransport that answers MlflowClient with the recorded answers of a
    real server, after checking that each request is the one recorded. `down` makes every request fail
    with that exception (or answer with that response) instead; `requests` is what was asked."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.down: Exception | httpx.Response | None = None
        self.experiment_id = load_fixture("experiments_get_by_name")["body"]["experiment"]["experiment_id"]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.down, Exception):
            raise self.down
        if isinstance(self.down, httpx.Response):
            return self.down
        prefix = "/api/2.0/mlflow/"
        assert request.url.path.startswith(prefix), request.url
        path, params = request.url.path.removeprefix(prefix), dict(request.url.params)
        body = json.loads(request.content) if request.content else None
        key = (request.method, path)
        if key == ("GET", "experiments/get-by-name"):
            found = params["experiment_name"] == RECORDED_EXPERIMENT
            return (
                self._answer("experiments_get_by_name", params)
                if found
                else replay("experiments_get_by_name_404")
            )
        if key == ("POST", "experiments/search"):
            return self._answer("experiments_search", body=body)
        if key == ("POST", "runs/search"):
            assert body is not None and body["experiment_ids"] == [self.experiment_id], body
            for name in ("runs_search_experiment_tag", "runs_search_story_tag"):
                if body["filter"] == load_fixture(name)["request"]["json"]["filter"]:
                    return self._answer(name, body=body)
            return replay("runs_search_bad_filter_400")
        if key == ("GET", "registered-models/get"):
            found = params["name"] == RECORDED_MODEL
            return (
                self._answer("registered_models_get", params)
                if found
                else replay("registered_models_get_404")
            )
        if key == ("GET", "model-versions/search"):
            return self._answer("model_versions_search", params)
        raise AssertionError(f"nothing recorded for {request.method} {request.url}")

    @staticmethod
    def _answer(name: str, params: dict[str, str] | None = None, body: Any = None) -> httpx.Response:
        asked = load_fixture(name)["request"]
        if params is not None:  # query strings arrive as text
            assert params == {k: str(v) for k, v in asked.get("params", {}).items()}, (name, params)
        if body is not None:
            assert body == asked["json"], (name, body)
        return replay(name)


# ---------------------------------------------------------------------------------------- the server


def _executable(path: str | None) -> bool:
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)  # type: ignore[arg-type]


def server_binary() -> str:
    """$MLFLOW_SERVER_BIN, or skip the test with the reason."""
    path = os.environ.get("MLFLOW_SERVER_BIN", "").strip()
    if not path:
        pytest.skip(NO_SERVER)
    if not _executable(path):
        pytest.skip(f"MLFLOW_SERVER_BIN={path} is not an executable file: no MLflow server to test against")
    return path


def mlflow_python(server_bin: str) -> str:
    """$MLFLOW_PYTHON, else the Python of the virtualenv the server comes from; or skip."""
    path = os.environ.get("MLFLOW_PYTHON", "").strip() or str(Path(server_bin).parent / "python")
    if not _executable(path):
        pytest.skip(f"MLFLOW_PYTHON={path} is not an executable file: cannot seed the MLflow server")
    return path


def _clean_env() -> dict[str, str]:
    """Our environment without anything that would point the other virtualenv or MLflow elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MLFLOW_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    return {**env, **QUIET_ENV}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM to the server's process group (uvicorn and the job consumers it spawns), then SIGKILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)  # anyone left in the group?
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def start_server(server_bin: str, workdir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start `mlflow server` on a free port with its own SQLite store; its URL once /health answers."""
    port = _free_port()
    artifacts = workdir / "artifacts"
    log = workdir / "server.log"
    args = [
        server_bin,
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--default-artifact-root",
        str(artifacts),
        "--workers",
        "1",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            cwd=workdir,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the whole tree stops with it
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{_log_tail(log)}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server not healthy after {START_TIMEOUT:.0f} s:\n{_log_tail(log)}"
                )
            time.sleep(0.25)
        # Someone else's server could hold the port; ours keeps its artifacts under our directory.
        default = httpx.get(
            f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "Default"}, timeout=10
        ).json()
        location = default.get("experiment", {}).get("artifact_location", "")
        ours = (str(artifacts), os.path.realpath(artifacts))
        if not any(root in location for root in ours) or proc.poll() is not None:
            raise RuntimeError(f"port {port} answers, but not from the server we started:\n{_log_tail(log)}")
    except BaseException:
        _stop(proc)
        raise
    return url, proc


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a real MLflow tracking server, one per test session."""
    server_bin = server_binary()
    url, proc = start_server(server_bin, tmp_path_factory.mktemp("mlflow"))
    try:
        yield url
    finally:
        _stop(proc)


# -------------------------------------------------------------------------------------------- seeding

PRELUDE = r'''
import json, logging, sys, warnings

warnings.simplefilter("ignore")
logging.disable(logging.WARNING)
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

params = json.load(sys.stdin)
client = MlflowClient()
result = None


_experiment_ids = {}


def experiment_id(name):
    """The id of the named experiment, created (and made the active one) on first use."""
    if name not in _experiment_ids:
        _experiment_ids[name] = mlflow.set_experiment(name).experiment_id
    return _experiment_ids[name]


def make_run(experiment, name, *, tags=None, metrics=None, status="FINISHED"):
    """A run with tags and metrics, ended with `status`; RUNNING leaves it running."""
    exp_id = experiment_id(experiment)
    if status == "RUNNING":  # the fluent API would end it at exit
        run = client.create_run(exp_id, run_name=name, tags=tags or {})
        for key, value in (metrics or {}).items():
            client.log_metric(run.info.run_id, key, value)
        return run.info.run_id
    with mlflow.start_run(experiment_id=exp_id, run_name=name, tags=tags or {}) as run:
        for key, value in (metrics or {}).items():
            mlflow.log_metric(key, value)
        if status != "FINISHED":
            mlflow.end_run(status)
    return run.info.run_id


def make_version(model, run_id, *, alias=None, stage=None, tags=None):
    """A new version of `model` (registered on first use) from the run, with alias, stage and tags."""
    try:
        client.create_registered_model(model)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(model, source=f"runs:/{run_id}/model", run_id=run_id).version
    if alias:
        client.set_registered_model_alias(model, alias, version)
    if stage:
        client.transition_model_version_stage(model, version, stage)  # deprecated in MLflow 3, still served
    for key, value in (tags or {}).items():
        client.set_model_version_tag(model, version, key, value)
    return str(version)
'''

EPILOGUE = r"""
print("\nSEED-RESULT " + json.dumps(result))
"""


def run_seed(python: str, tracking_uri: str, script: str, **params: Any) -> Any:
    """Run `script` with the real mlflow library against `tracking_uri`; the value it puts in `result`.
    The script sees `params`, `client` (mlflow.MlflowClient), `make_run`, `make_version` and `experiment_id`."""
    proc = subprocess.run(
        [python, "-c", PRELUDE + script + EPILOGUE],
        input=json.dumps(params),
        capture_output=True,
        text=True,
        env={**_clean_env(), "MLFLOW_TRACKING_URI": tracking_uri},
        timeout=SEED_TIMEOUT,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SEED-RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"seeding failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads(lines[-1].removeprefix("SEED-RESULT "))


@pytest.fixture(scope="session")
def mlflow_seed(mlflow_server: str) -> Callable[..., Any]:
    """seed(script, **params): run a seeding script with $MLFLOW_PYTHON against the test server."""
    python = mlflow_python(server_binary())

    def seed(script: str, **params: Any) -> Any:
        return run_seed(python, mlflow_server, script, **params)

    return seed


# Every scenario in its own MLflow experiment (or registered model), so that a test syncs only its own.
# Tests only read what is seeded here: the server lives for the whole session.
SCENARIOS = r"""
runs = {}
runs["finished"] = make_run("it-finished", "ranker-finished", tags={"cadence.experiment": "E-1"},
                            metrics={"auc": 0.842})
runs["story"] = make_run("it-story", "ranker from story", metrics={"auc": 0.85, "loss": 0.31}, tags={
    "cadence.story": "S-1", "cadence.metric": "auc", "cadence.baseline": "0.80", "cadence.target": "0.83"})
runs["lower"] = make_run("it-direction", "rmse run", metrics={"rmse": 0.21, "mae": 0.1}, tags={
    "cadence.story": "S-1", "cadence.metric": "rmse", "cadence.baseline": "0.30", "cadence.target": "0.25",
    "cadence.direction": "lower"})
runs["running"] = make_run("it-running", "still training", tags={"cadence.experiment": "E-1"},
                           metrics={"auc": 0.81}, status="RUNNING")
runs["failed"] = make_run("it-failed", "crashed", tags={"cadence.experiment": "E-1"},
                          metrics={"auc": 0.79}, status="FAILED")
runs["killed"] = make_run("it-killed", "stopped", tags={"cadence.experiment": "E-1"}, status="KILLED")
runs["unknown_experiment"] = make_run("it-unknown", "for E-99", tags={"cadence.experiment": "E-99"},
                                      metrics={"auc": 0.7})
runs["unknown_story"] = make_run("it-unknown", "for S-99", tags={"cadence.story": "S-99"},
                                 metrics={"auc": 0.7})
runs["known"] = make_run("it-unknown", "for E-1", tags={"cadence.experiment": "E-1"}, metrics={"auc": 0.842})
runs["untagged"] = make_run("it-unknown", "not for Cadence", metrics={"auc": 0.9})
runs["nan"] = make_run("it-nan", "diverged loss", tags={"cadence.experiment": "E-1"},
                       metrics={"auc": 0.842, "loss": float("nan")})
runs["model_v1"] = make_run("it-models", "ranker v1", tags={"cadence.experiment": "E-1"},
                            metrics={"auc": 0.842})
runs["model_v2"] = make_run("it-models", "ranker v2", metrics={"auc": 0.85})

versions = {
    "it-ranker": [make_version("it-ranker", runs["model_v1"], alias="champion"),
                  make_version("it-ranker", runs["model_v2"])],
    "it-proposed": [make_version("it-proposed", runs["model_v2"], tags={"cadence.propose": "champion"})],
    "it-staged": [make_version("it-staged", runs["model_v1"], stage="Production")],
    "it-o'brien": [make_version("it-o'brien", runs["model_v1"], alias="champion")],
}
experiments = {
    name: experiment_id(name)
    for name in ["it-finished", "it-story", "it-direction", "it-running", "it-failed", "it-killed",
                 "it-unknown", "it-nan", "it-models"]
}
result = {"runs": runs, "experiments": experiments, "versions": versions}
"""


@pytest.fixture(scope="session")
def seeded(mlflow_seed: Callable[..., Any]) -> dict[str, Any]:
    """What SCENARIOS put on the server: {"runs": {scenario: run id}, "experiments": {name: id},
    "versions": {model: [version, …]}}."""
    return dict(mlflow_seed(SCENARIOS))


@pytest.fixture
async def live_client(mlflow_server: str) -> AsyncIterator[MlflowClient]:
    """An MlflowClient talking to the real server."""
    client = MlflowClient(mlflow_server, timeout=30)
    yield client
    await client.aclose()


# ------------------------------------------------------------------------------ Prometheus Alertmanager


@pytest.fixture
def serve_asgi() -> Iterator[Callable[..., str]]:
    """serve_asgi(app) -> base URL: the app served by uvicorn on a free loopback port until the test ends."""
    with ExitStack() as stack:
        yield lambda app, **kwargs: stack.enter_context(serving_asgi(app, **kwargs))


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """alertmanager(webhook_url, **config) -> a started AlertmanagerServer (stopped when the test ends);
    config as for alertmanager_server.write_config. Skips when the binary is not installed."""
    binary = alertmanager_binary()
    count = 0

    def start(webhook_url: str, **config: Any) -> AlertmanagerServer:
        nonlocal count
        count += 1
        workdir = tmp_path / f"alertmanager-{count}"
        workdir.mkdir()
        return stack.enter_context(AlertmanagerServer(binary, workdir, webhook_url, **config))

    with ExitStack() as stack:
        yield start
