"""MlflowClient against a real MLflow server (seeded with the mlflow library) and, without one, against
the answers recorded from such a server: experiments, tagged runs, model versions, errors."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bot.integrations.mlflow import MAX_PAGES, MlflowClient, MlflowError
from bot.jobs.mlflow_sync import EXPERIMENT_TAG, STORY_TAG
from tests.integrations.conftest import (
    RECORDED_EXPERIMENT,
    RECORDED_MODEL,
    RecordedMlflow,
    load_fixture,
    recorded_runs,
    replay,
)

# the filters MlflowSync searches with
BY_EXPERIMENT = f"tags.`{EXPERIMENT_TAG}` LIKE 'E-%'"
BY_STORY = f"tags.`{STORY_TAG}` LIKE 'S-%'"
URL = "http://mlflow.test"


# ================================================================================ the real MLflow server


async def test_experiment_ids_by_name_skip_names_mlflow_does_not_know(live_client, seeded):
    ids = seeded["experiments"]
    found = await live_client.experiment_ids(["it-finished", "no such experiment", "it-story"])
    assert found == [ids["it-finished"], ids["it-story"]]


async def test_experiment_ids_without_names_are_every_active_experiment(live_client, seeded):
    found = await live_client.experiment_ids([])
    assert set(seeded["experiments"].values()) | {"0"} <= set(found)  # "0" is MLflow's Default
    assert len(found) == len(set(found))


async def test_search_runs_by_experiment_tag_finds_only_those_runs_newest_first(live_client, seeded):
    runs = seeded["runs"]
    found = await live_client.search_runs([seeded["experiments"]["it-unknown"]], BY_EXPERIMENT)
    assert [r.run_id for r in found] == [runs["known"], runs["unknown_experiment"]]
    assert [r.tags[EXPERIMENT_TAG] for r in found] == ["E-1", "E-99"]


async def test_search_runs_by_story_tag_finds_only_those_runs(live_client, seeded):
    found = await live_client.search_runs([seeded["experiments"]["it-unknown"]], BY_STORY)
    assert [(r.run_id, r.tags[STORY_TAG]) for r in found] == [(seeded["runs"]["unknown_story"], "S-99")]


async def test_a_run_comes_back_with_its_name_status_metrics_and_tags(live_client, seeded):
    exp_id = seeded["experiments"]["it-story"]
    [run] = await live_client.search_runs([exp_id], BY_STORY)
    assert run.run_id == seeded["runs"]["story"]
    assert run.experiment_id == exp_id
    assert run.name == "ranker from story"
    assert run.status == "FINISHED"
    assert run.metrics == {"auc": 0.85, "loss": 0.31}
    assert {k: v for k, v in run.tags.items() if k.startswith("cadence.")} == {
        "cadence.story": "S-1",
        "cadence.metric": "auc",
        "cadence.baseline": "0.80",
        "cadence.target": "0.83",
    }


async def test_search_runs_over_several_experiments_reports_each_status(live_client, seeded):
    names = ["it-finished", "it-running", "it-failed", "it-killed"]
    found = await live_client.search_runs([seeded["experiments"][n] for n in names], BY_EXPERIMENT)
    runs = seeded["runs"]
    assert {r.run_id: r.status for r in found} == {
        runs["finished"]: "FINISHED",
        runs["running"]: "RUNNING",
        runs["failed"]: "FAILED",
        runs["killed"]: "KILLED",
    }
    by_id = {r.run_id: r for r in found}
    assert by_id[runs["running"]].metrics == {"auc": 0.81}
    assert by_id[runs["killed"]].metrics == {}


async def test_a_nan_metric_comes_back_as_nan(live_client, seeded):
    [run] = await live_client.search_runs([seeded["experiments"]["it-nan"]], BY_EXPERIMENT)
    assert run.metrics["auc"] == 0.842
    assert math.isnan(run.metrics["loss"])


async def test_model_versions_carry_run_stage_and_the_aliases_pointing_at_them(live_client, seeded):
    versions = sorted(await live_client.model_versions("it-ranker"), key=lambda v: int(v.version))
    assert [(v.name, v.version, v.run_id, v.stage, v.aliases, v.tags) for v in versions] == [
        ("it-ranker", "1", seeded["runs"]["model_v1"], "None", ["champion"], {}),
        ("it-ranker", "2", seeded["runs"]["model_v2"], "None", [], {}),
    ]


async def test_model_versions_carry_a_stage_transition(live_client, seeded):
    [version] = await live_client.model_versions("it-staged")
    assert (version.version, version.stage, version.aliases) == ("1", "Production", [])


async def test_model_versions_carry_their_tags(live_client, seeded):
    [version] = await live_client.model_versions("it-proposed")
    assert version.tags == {"cadence.propose": "champion"}
    assert version.run_id == seeded["runs"]["model_v2"]


async def test_an_unknown_registered_model_has_no_versions(live_client, seeded):
    assert await live_client.model_versions("no-such-model") == []


async def test_a_model_name_with_a_quote_still_finds_its_versions(live_client, seeded):
    [version] = await live_client.model_versions("it-o'brien")
    assert (version.name, version.version, version.aliases) == ("it-o'brien", "1", ["champion"])


# ========================================================== recorded answers of a real server (no server)


@pytest.fixture
def recorded() -> RecordedMlflow:
    return RecordedMlflow()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., MlflowClient]]:
    clients: list[MlflowClient] = []

    def build(handler: Any, **kwargs: Any) -> MlflowClient:
        client = MlflowClient(kwargs.pop("base_url", URL), transport=httpx.MockTransport(handler), **kwargs)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


async def test_recorded_experiment_ids_by_name_and_all(make_client, recorded):
    client = make_client(recorded)
    assert await client.experiment_ids([RECORDED_EXPERIMENT, "no-such-experiment"]) == [
        recorded.experiment_id
    ]
    listed = [e["experiment_id"] for e in load_fixture("experiments_search")["body"]["experiments"]]
    assert await client.experiment_ids([]) == listed
    assert set(listed) == {"0", "1", "2"}


async def test_recorded_experiment_names_mlflow_does_not_know_give_no_ids(make_client, recorded):
    assert await make_client(recorded).experiment_ids(["no-such-experiment"]) == []


async def test_recorded_runs_by_experiment_tag(make_client, recorded):
    found = await make_client(recorded).search_runs([recorded.experiment_id], BY_EXPERIMENT)
    ids = recorded_runs()
    assert [(r.name, r.status, r.tags[EXPERIMENT_TAG]) for r in found] == [
        ("crashed", "FAILED", "E-3"),
        ("still training", "RUNNING", "E-2"),
        ("ranker-finished", "FINISHED", "E-1"),
        ("for E-99", "FINISHED", "E-99"),
    ]
    finished = found[2]
    assert finished.run_id == ids["ranker-finished"]
    assert finished.experiment_id == recorded.experiment_id
    assert finished.metrics == {"auc": 0.842, "loss": 0.29}
    assert finished.tags["mlflow.runName"] == "ranker-finished"
    assert len(recorded.requests) == 1


async def test_recorded_runs_by_story_tag(make_client, recorded):
    found = await make_client(recorded).search_runs([recorded.experiment_id], BY_STORY)
    assert [(r.name, r.tags[STORY_TAG]) for r in found] == [
        ("for S-99", "S-99"),
        ("ranker from story", "S-1"),
    ]
    assert found[1].tags["cadence.target"] == "0.83"
    assert found[1].metrics == {"auc": 0.85, "loss": 0.31}


async def test_search_runs_follows_the_page_token_to_the_last_page(make_client):
    pages = {None: "runs_search_experiment_tag_page1"}
    token = load_fixture("runs_search_experiment_tag_page1")["body"]["next_page_token"]
    pages[token] = "runs_search_experiment_tag_page2"
    asked: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        asked.append(body)
        return replay(pages[body.get("page_token")])

    found = await make_client(handler).search_runs(["1"], BY_EXPERIMENT)
    one_page = [r["info"]["run_id"] for r in load_fixture("runs_search_experiment_tag")["body"]["runs"]]
    assert [r.run_id for r in found] == one_page
    assert [b.get("page_token") for b in asked] == [None, token]
    assert all(b["filter"] == BY_EXPERIMENT and b["experiment_ids"] == ["1"] for b in asked)


async def test_search_runs_stops_after_max_pages(make_client):
    asked = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return replay("runs_search_experiment_tag_page1")  # always says there is more

    found = await make_client(handler).search_runs(["1"], BY_EXPERIMENT)
    assert len(asked) == MAX_PAGES
    assert len(found) == 2 * MAX_PAGES


async def test_recorded_model_versions(make_client, recorded):
    versions = sorted(await make_client(recorded).model_versions(RECORDED_MODEL), key=lambda v: v.version)
    ids = recorded_runs()
    assert [(v.version, v.run_id, v.stage, v.aliases, v.tags) for v in versions] == [
        ("1", ids["ranker-finished"], "None", ["champion"], {}),
        ("2", ids["ranker from story"], "None", [], {"cadence.propose": "champion"}),
        ("3", ids["still training"], "Production", [], {}),
    ]


async def test_recorded_404_for_an_unknown_model_gives_no_versions_and_no_search(make_client, recorded):
    assert await make_client(recorded).model_versions("no-such-model") == []
    assert [r.url.path for r in recorded.requests] == ["/api/2.0/mlflow/registered-models/get"]


def _connect_error(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


CALLS = {
    "experiment_ids by name": lambda c: c.experiment_ids([RECORDED_EXPERIMENT]),
    "experiment_ids all": lambda c: c.experiment_ids([]),
    "search_runs": lambda c: c.search_runs(["1"], BY_EXPERIMENT),
    "model_versions": lambda c: c.model_versions(RECORDED_MODEL),
}


@pytest.mark.parametrize("call", list(CALLS.values()), ids=list(CALLS))
@pytest.mark.parametrize(
    ("failure", "error"),
    [(_connect_error, "ConnectError"), (_timeout, "ReadTimeout")],
    ids=["connect-error", "timeout"],
)
async def test_network_errors_raise_mlflow_error(make_client, call, failure, error):
    with pytest.raises(MlflowError, match=error):
        await call(make_client(failure))


async def test_a_closed_port_raises_mlflow_error():
    client = MlflowClient("http://127.0.0.1:1", timeout=5)  # a real connection, refused
    try:
        with pytest.raises(MlflowError, match="ConnectError"):
            await client.experiment_ids([])
    finally:
        await client.aclose()


@pytest.mark.parametrize("call", list(CALLS.values()), ids=list(CALLS))
async def test_http_500_raises_mlflow_error(make_client, call):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="Internal Server Error")

    with pytest.raises(MlflowError, match="HTTP 500: Internal Server Error"):
        await call(make_client(handler))


async def test_a_recorded_400_raises_mlflow_error_with_mlflows_message(make_client):
    client = make_client(lambda request: replay("runs_search_bad_filter_400"))
    with pytest.raises(MlflowError, match=r"HTTP 400.*INVALID_PARAMETER_VALUE"):
        await client.search_runs(["1"], "tags.`cadence.experiment` LIKE")


async def test_an_answer_that_is_not_json_raises_mlflow_error(make_client):
    client = make_client(lambda request: httpx.Response(200, text="<html>Sign in</html>"))
    with pytest.raises(MlflowError, match="not JSON"):
        await client.experiment_ids([])


@pytest.mark.parametrize("body", [None, [1, 2]], ids=["null", "list"])
async def test_json_that_is_not_an_object_raises_mlflow_error(make_client, body):
    raw = json.dumps(body).encode()
    client = make_client(
        lambda r: httpx.Response(200, content=raw, headers={"content-type": "application/json"})
    )
    with pytest.raises(MlflowError):
        await client.experiment_ids([])


async def test_a_token_is_sent_as_a_bearer_header_and_paths_sit_under_the_rest_api(make_client, recorded):
    client = make_client(recorded, base_url=URL + "/", token="s3cret")
    await client.experiment_ids([RECORDED_EXPERIMENT])
    [request] = recorded.requests
    assert request.headers["authorization"] == "Bearer s3cret"
    assert str(request.url).startswith(f"{URL}/api/2.0/mlflow/experiments/get-by-name?")


async def test_no_token_no_authorization_header(make_client, recorded):
    await make_client(recorded).experiment_ids([RECORDED_EXPERIMENT])
    assert "authorization" not in recorded.requests[0].headers
