"""The ingestion API /api/v1/experiments: bearer tokens, validation that names every bad field,
body limits, and the experiment lifecycle as an ML pipeline drives it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from bot.api import auth
from bot.config import AppConfig, Settings, parse_config
from bot.services import stories
from tests.conftest import ALICE, BOB, CAROL, DAVE, FRANK, PLATFORM, RECSYS, make_config
from tests.factories import audit_rows, outbox_rows, tx

TOKENS = ("pipeline=secret-1", "secret-2")
GOOD = {"Authorization": "Bearer secret-1"}
BARE = {"Authorization": "Bearer secret-2"}
TABLES = ("experiment", "experiment_result", "review", "review_decision", "audit_event", "outbox")
PATHS = (
    "/api/v1/experiments/{external_id}",
    "/api/v1/experiments/{external_id}/status",
    "/api/v1/experiments/{external_id}/metrics",
)

REVIEW_ON_CONFIG = f"""
timezone: Europe/Berlin
teams:
  - name: recsys
    channel: {RECSYS}
    members: [{ALICE}, {BOB}, {DAVE}]
    leads: [{ALICE}]
    governance:
      channel: C0456GOV
      approvers: [{CAROL}]
      review_on: {{succeeded: production}}
  - name: platform
    channel: {PLATFORM}
    members: [{FRANK}]
"""


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "story": "S-1",
        "name": "Two-tower ranker",
        "hypothesis": "Two towers beat the GBDT on AUC",
        "metric": "auc",
        "baseline": 0.80,
        "target": 0.83,
    }
    base.update(overrides)
    return base


async def add_stories(db, config: AppConfig, n: int = 1) -> None:
    team = config.team("recsys")
    assert team is not None
    async with tx(db) as s:
        for i in range(n):
            await stories.add_story(s, config=config, team=team, title=f"Ranker {i + 1}", actor=ALICE)


async def counts(db) -> dict[str, int]:
    async with db.connect() as conn:
        out = {t: int((await conn.execute(text(f"SELECT COUNT(*) FROM {t}"))).scalar_one()) for t in TABLES}
        await conn.rollback()
    return out


def client_for(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def build_app(db, config: AppConfig, settings: Settings, clock, tokens: tuple[str, ...] = TOKENS):
    from bot.web import create_web_app

    return create_web_app(
        settings=dataclasses.replace(settings, api_tokens=tokens), config=config, engine=db, clock=clock
    )


@pytest.fixture
async def api(db, config, settings, clock) -> AsyncIterator[httpx.AsyncClient]:
    await add_stories(db, config, 2)
    async with client_for(build_app(db, config, settings, clock)) as client:
        yield client


def locs(response: httpx.Response) -> list[tuple[Any, ...]]:
    return [tuple(e["loc"]) for e in response.json()["detail"]]


def types(response: httpx.Response) -> list[str]:
    return [e["type"] for e in response.json()["detail"]]


# --- lifecycle -----------------------------------------------------------------------------------


async def test_put_creates_then_updates(api, db):
    created = await api.put("/api/v1/experiments/mlflow:run-1", json=body(), headers=GOOD)
    assert created.status_code == 201, created.text
    out = created.json()
    assert out["key"] == "E-1"
    assert out["external_id"] == "mlflow:run-1"
    assert (out["story"], out["team"], out["status"], out["stage"]) == ("S-1", "recsys", "proposed", "none")
    assert (out["metric"], out["baseline"], out["target"], out["higher_is_better"]) == (
        "auc",
        0.8,
        0.83,
        True,
    )
    assert out["reviews"] == [] and out["latest"] == {}

    updated = await api.put(
        "/api/v1/experiments/mlflow:run-1",
        json=body(
            name="Two-tower ranker v2",
            target=0.85,
            links={"mlflow": "https://mlflow.example.com/r/1"},
        ),
        headers=GOOD,
    )
    assert updated.status_code == 200, updated.text
    out = updated.json()
    assert out["key"] == "E-1"
    assert (out["name"], out["target"]) == ("Two-tower ranker v2", 0.85)
    assert out["links"] == {"mlflow": "https://mlflow.example.com/r/1"}
    assert (await counts(db))["experiment"] == 1

    fetched = await api.get("/api/v1/experiments/mlflow:run-1", headers=BARE)
    assert fetched.status_code == 200
    assert fetched.json() == out


async def test_put_with_a_status_moves_the_new_experiment(api, db):
    response = await api.put("/api/v1/experiments/x1", json=body(status="running"), headers=GOOD)
    assert response.status_code == 201
    assert response.json()["status"] == "running"
    added, row = await audit_rows(db)
    assert (added.action, added.subject, added.actor) == ("experiment.add", "E-1", "api:pipeline")
    assert (row.action, row.subject, json.loads(row.payload)["to"]) == ("experiment.status", "E-1", "running")


async def test_put_cannot_move_an_experiment_to_another_story(api, db):
    assert (await api.put("/api/v1/experiments/x1", json=body(), headers=GOOD)).status_code == 201
    before = await counts(db)
    moved = await api.put("/api/v1/experiments/x1", json=body(story="S-2"), headers=GOOD)
    assert moved.status_code == 409
    assert "E-1" in moved.json()["detail"]
    assert await counts(db) == before


async def test_put_keeps_numbers_and_owner_that_an_update_leaves_out(api):
    await api.put("/api/v1/experiments/x1", json=body(owner=BOB), headers=GOOD)
    r = await api.put(
        "/api/v1/experiments/x1", json={"story": "S-1", "name": "Two-tower ranker"}, headers=GOOD
    )
    assert r.status_code == 200
    out = r.json()
    assert (out["metric"], out["baseline"], out["target"], out["owner"]) == ("auc", 0.8, 0.83, BOB)


async def test_put_keeps_hypothesis_and_direction_that_an_update_leaves_out(api):
    await api.put(
        "/api/v1/experiments/x1",
        json=body(metric="rmse", baseline=1.0, target=0.9, higher_is_better=False, hypothesis="keep me"),
        headers=GOOD,
    )
    await api.post("/api/v1/experiments/x1/metrics", json={"metrics": {"rmse": 0.85}}, headers=GOOD)
    r = await api.put(
        "/api/v1/experiments/x1",
        json={"story": "S-1", "name": "Two-tower ranker", "status": "running"},
        headers=GOOD,
    )
    assert r.status_code == 200
    out = r.json()
    assert out["status"] == "running"
    assert (out["hypothesis"], out["higher_is_better"]) == ("keep me", False)
    assert out["evaluation"]["meets_target"] is True


async def test_a_put_refused_for_its_status_keeps_the_old_fields(api, db):
    await api.put("/api/v1/experiments/x1", json=body(status="failed"), headers=GOOD)
    before = await counts(db)
    r = await api.put("/api/v1/experiments/x1", json=body(name="Renamed", status="running"), headers=GOOD)
    assert r.status_code == 409
    assert "failed" in r.json()["detail"] and "running" in r.json()["detail"]
    got = (await api.get("/api/v1/experiments/x1", headers=GOOD)).json()
    assert (got["name"], got["status"]) == ("Two-tower ranker", "failed")
    assert await counts(db) == before


async def test_status_moves_it_and_refuses_an_invalid_transition(api, db):
    await api.put("/api/v1/experiments/x1", json=body(), headers=GOOD)
    running = await api.post("/api/v1/experiments/x1/status", json={"status": "running"}, headers=GOOD)
    assert running.status_code == 200 and running.json()["status"] == "running"
    done = await api.post(
        "/api/v1/experiments/x1/status", json={"status": "succeeded", "reason": "beat it"}, headers=GOOD
    )
    assert done.status_code == 200 and done.json()["status"] == "succeeded"
    last = (await audit_rows(db))[-1]
    assert json.loads(last.payload) == {"from": "running", "to": "succeeded", "reason": "beat it"}

    before = await counts(db)
    back = await api.post("/api/v1/experiments/x1/status", json={"status": "running"}, headers=GOOD)
    assert back.status_code == 409
    detail = back.json()["detail"]
    assert "succeeded" in detail and "running" in detail
    assert await counts(db) == before


async def test_the_same_status_again_changes_nothing(api, db):
    await api.put("/api/v1/experiments/x1", json=body(status="running"), headers=GOOD)
    before = await counts(db)
    again = await api.post("/api/v1/experiments/x1/status", json={"status": "running"}, headers=GOOD)
    assert again.status_code == 200 and again.json()["status"] == "running"
    assert await counts(db) == before


async def test_metrics_are_recorded_and_the_same_run_and_metric_replaces(api, db):
    await api.put("/api/v1/experiments/x1", json=body(), headers=GOOD)
    first = await api.post(
        "/api/v1/experiments/x1/metrics",
        json={"metrics": {"auc": 0.81, "logloss": 0.4}, "run_id": "run-a"},
        headers=GOOD,
    )
    assert first.status_code == 200, first.text
    assert first.json()["latest"] == {"auc": 0.81, "logloss": 0.4}
    ev = first.json()["evaluation"]
    assert ev["metric"] == "auc" and ev["value"] == 0.81
    assert ev["delta"] == pytest.approx(0.01)
    assert ev["meets_target"] is False

    again = await api.post(
        "/api/v1/experiments/x1/metrics", json={"metrics": {"auc": 0.84}, "run_id": "run-a"}, headers=GOOD
    )
    assert again.status_code == 200
    assert (await counts(db))["experiment_result"] == 2  # replaced, not added
    ev = again.json()["evaluation"]
    assert ev["value"] == 0.84 and ev["delta"] == pytest.approx(0.04) and ev["meets_target"] is True
    assert again.json()["latest"]["auc"] == 0.84

    other_run = await api.post(
        "/api/v1/experiments/x1/metrics", json={"metrics": {"auc": 0.79}, "run_id": "run-b"}, headers=GOOD
    )
    assert other_run.status_code == 200
    assert (await counts(db))["experiment_result"] == 3
    assert other_run.json()["evaluation"]["value"] == 0.79
    assert other_run.json()["evaluation"]["meets_target"] is False


async def test_lower_is_better_evaluation(api):
    await api.put(
        "/api/v1/experiments/x1",
        json=body(metric="rmse", baseline=1.0, target=0.9, higher_is_better=False),
        headers=GOOD,
    )
    r = await api.post("/api/v1/experiments/x1/metrics", json={"metrics": {"rmse": 0.85}}, headers=GOOD)
    ev = r.json()["evaluation"]
    assert ev["delta"] == pytest.approx(-0.15) and ev["meets_target"] is True


async def test_a_review_on_policy_opens_a_review_and_queues_the_request(db, settings, clock):
    config = parse_config(REVIEW_ON_CONFIG)
    await add_stories(db, config)
    async with client_for(build_app(db, config, settings, clock)) as api:
        await api.put("/api/v1/experiments/x1", json=body(status="running"), headers=GOOD)
        assert (await counts(db))["review"] == 0
        done = await api.post("/api/v1/experiments/x1/status", json={"status": "succeeded"}, headers=GOOD)
    assert done.status_code == 200, done.text
    assert done.json()["reviews"] == [{"key": "R-1", "purpose": "production", "state": "pending"}]
    queued = await outbox_rows(db)
    assert len(queued) == 1
    assert queued[0].channel == "C0456GOV" and queued[0].dedupe_key == "review:R-1:request"
    requests = [r for r in await audit_rows(db) if r.action == "review.request"]
    assert [(r.actor, json.loads(r.payload)["triggered_by"]) for r in requests] == [
        ("policy", "api:pipeline")
    ]


async def test_a_failed_commit_is_an_error_not_a_success(db, config, settings, clock):
    """The request's transaction ends before its response is sent: a commit that fails is a 500."""
    await add_stories(db, config)

    def refuse(session: Session) -> None:
        raise RuntimeError("the database refused the commit")

    transport = httpx.ASGITransport(app=build_app(db, config, settings, clock), raise_app_exceptions=False)
    event.listen(Session, "before_commit", refuse)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
            response = await api.put("/api/v1/experiments/x1", json=body(status="running"), headers=GOOD)
    finally:
        event.remove(Session, "before_commit", refuse)
    assert response.status_code == 500
    assert (await counts(db))["experiment"] == 0


# --- authentication ------------------------------------------------------------------------------


UNAUTHORIZED = [
    pytest.param({}, id="no-header"),
    pytest.param({"Authorization": "Bearer wrong"}, id="wrong-token"),
    pytest.param({"Authorization": "Basic c2VjcmV0LTE6"}, id="basic"),
    pytest.param({"Authorization": "Basic secret-1"}, id="basic-with-the-secret"),
    pytest.param({"Authorization": "Bearer "}, id="empty-bearer"),
    pytest.param({"Authorization": "Bearer"}, id="bearer-alone"),
    pytest.param({"Authorization": "secret-1"}, id="no-scheme"),
    pytest.param({"Authorization": "Bearer secret-1x"}, id="longer-token"),
    pytest.param({"Authorization": "Bearer pipeline=secret-1"}, id="label-and-token"),
]


@pytest.mark.parametrize("headers", UNAUTHORIZED)
@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("PUT", "/api/v1/experiments/x1", body()),
        ("POST", "/api/v1/experiments/x1/status", {"status": "running"}),
        ("POST", "/api/v1/experiments/x1/metrics", {"metrics": {"auc": 0.9}}),
        ("GET", "/api/v1/experiments/x1", None),
    ],
    ids=["put", "status", "metrics", "get"],
)
async def test_401_without_a_valid_bearer_token(api, db, headers, method, path, payload):
    if method != "PUT":
        await api.put("/api/v1/experiments/x1", json=body(), headers=GOOD)
    before = await counts(db)
    response = await api.request(method, path, json=payload, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert isinstance(response.json()["detail"], str)
    assert await counts(db) == before


async def test_401_comes_before_validating_the_body(api, db):
    response = await api.put("/api/v1/experiments/x1", json={"story": "X-1", "bogus": 1})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert (await counts(db))["experiment"] == 0


async def test_no_configured_tokens_means_no_access(db, config, settings, clock):
    from bot.web import create_web_app

    await add_stories(db, config)
    app = create_web_app(
        settings=dataclasses.replace(settings, api_tokens=("label=", " ")),
        config=config,
        engine=db,
        clock=clock,
    )
    async with client_for(app) as api:
        for headers in ({"Authorization": "Bearer "}, {"Authorization": "Bearer label"}, GOOD):
            response = await api.put("/api/v1/experiments/x1", json=body(), headers=headers)
            assert response.status_code == 401
    assert (await counts(db))["experiment"] == 0


async def test_the_scheme_is_case_insensitive(api):
    response = await api.put(
        "/api/v1/experiments/x1", json=body(), headers={"Authorization": "bearer secret-1"}
    )
    assert response.status_code == 201


async def test_a_bare_token_with_base64_padding_does_not_become_a_one_character_secret(
    db, config, settings, clock
):
    from bot.web import create_web_app

    await add_stories(db, config)
    app = create_web_app(
        settings=dataclasses.replace(settings, api_tokens=("c2VjcmV0LTM==",)),
        config=config,
        engine=db,
        clock=clock,
    )
    async with client_for(app) as api:
        response = await api.put("/api/v1/experiments/x1", json=body(), headers={"Authorization": "Bearer ="})
    assert response.status_code == 401
    assert (await counts(db))["experiment"] == 0


async def test_the_audit_actor_names_the_token(api, db):
    await api.put("/api/v1/experiments/a", json=body(status="running"), headers=GOOD)
    await api.put("/api/v1/experiments/b", json=body(status="running"), headers=BARE)
    assert [(r.subject, r.action, r.actor) for r in await audit_rows(db)] == [
        ("E-1", "experiment.add", "api:pipeline"),
        ("E-1", "experiment.status", "api:pipeline"),
        ("E-2", "experiment.add", "api:token2"),
        ("E-2", "experiment.status", "api:token2"),
    ]
    await api.post("/api/v1/experiments/a/metrics", json={"metrics": {"auc": 0.9}}, headers=BARE)
    *_, results = await audit_rows(db)
    assert (results.subject, results.action, results.actor) == ("E-1", "experiment.results", "api:token2")
    async with db.connect() as conn:
        created_by = (await conn.execute(text("SELECT created_by FROM experiment ORDER BY number"))).all()
        recorded_by = (await conn.execute(text("SELECT recorded_by FROM experiment_result"))).scalar_one()
    assert [r[0] for r in created_by] == ["api:pipeline", "api:token2"]
    assert recorded_by == "api:token2"


@pytest.mark.parametrize(
    ("headers", "ok"),
    [(GOOD, True), (BARE, True), ({"Authorization": "Bearer nope"}, False)],
    ids=["first-matches", "second-matches", "none-matches"],
)
async def test_every_token_is_compared_in_constant_time(api, monkeypatch, headers, ok):
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def counting(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    response = await api.put("/api/v1/experiments/x1", json=body(), headers=headers)
    assert (response.status_code == 201) is ok
    assert sorted(b for _, b in calls) == [b"secret-1", b"secret-2"]


# --- body size -----------------------------------------------------------------------------------


async def test_413_for_a_body_over_the_limit(api, db, config):
    payload = json.dumps(body(hypothesis="x" * (70 * 1024))).encode()
    assert len(payload) > config.api_max_body_bytes
    before = await counts(db)
    response = await api.put(
        "/api/v1/experiments/x1",
        content=payload,
        headers={**GOOD, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert await counts(db) == before


async def test_413_for_a_chunked_body_without_content_length(api, db, config):
    await api.put("/api/v1/experiments/x1", json=body(), headers=GOOD)
    chunk = b" " * 8192

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"metrics": {"auc": 0.9}, "run_id": "r"'
        for _ in range(config.api_max_body_bytes // len(chunk) + 2):
            yield chunk
        yield b"}"

    before = await counts(db)
    request = api.build_request(
        "POST",
        "/api/v1/experiments/x1/metrics",
        content=stream(),
        headers={**GOOD, "Content-Type": "application/json"},
    )
    assert "content-length" not in request.headers
    response = await api.send(request)
    assert response.status_code == 413
    assert await counts(db) == before


async def test_a_body_just_under_the_limit_is_accepted(api, config):
    small = body(hypothesis="x" * 1500)
    response = await api.put("/api/v1/experiments/x1", json=small, headers=GOOD)
    assert response.status_code == 201
    assert len(json.dumps(small)) < config.api_max_body_bytes


async def test_each_app_has_the_body_limit_of_its_own_config(db, config, settings, clock):
    """The routes are shared; the limit is set where an app includes them, from that app's config."""
    await add_stories(db, config)
    payload = body(hypothesis="x" * 1500)
    small = config.model_copy(update={"api_max_body_bytes": 1024})
    async with client_for(build_app(db, small, settings, clock)) as tight:
        async with client_for(build_app(db, config, settings, clock)) as roomy:
            assert (await tight.put("/api/v1/experiments/x1", json=payload, headers=GOOD)).status_code == 413
            assert (await roomy.put("/api/v1/experiments/x1", json=payload, headers=GOOD)).status_code == 201
    assert (await counts(db))["experiment"] == 1


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "loc", "kind"),
    [
        (body(colour="red"), ("body", "colour"), "extra_forbidden"),
        (body(story="X-1"), ("body", "story"), "string_pattern_mismatch"),
        (body(name=""), ("body", "name"), "string_too_short"),
        (body(name="   "), ("body", "name"), "string_too_short"),
        (body(name="n" * 201), ("body", "name"), "string_too_long"),
        (body(baseline="abc"), ("body", "baseline"), "float_type"),
        (body(target="abc"), ("body", "target"), "float_type"),
        (body(metric="1auc"), ("body", "metric"), "string_pattern_mismatch"),
        (body(owner="alice"), ("body", "owner"), "string_pattern_mismatch"),
        (body(status="done"), ("body", "status"), "literal_error"),
        (body(hypothesis="h" * 2001), ("body", "hypothesis"), "string_too_long"),
        (body(links={"wiki": "https://x"}), ("body", "links", "wiki"), "extra_forbidden"),
        (body(links={"mlflow": "ftp://x"}), ("body", "links", "mlflow"), "string_pattern_mismatch"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_422_names_the_bad_field_of_a_put(api, db, payload, loc, kind):
    before = await counts(db)
    response = await api.put("/api/v1/experiments/x1", json=payload, headers=GOOD)
    assert response.status_code == 422, response.text
    assert (loc, kind) in list(zip(locs(response), types(response), strict=True))
    assert await counts(db) == before


async def test_422_names_every_bad_field_at_once(api, db):
    response = await api.put(
        "/api/v1/experiments/x1",
        json={"story": "X-1", "name": "", "baseline": "abc", "extra": 1},
        headers=GOOD,
    )
    assert response.status_code == 422
    assert {("body", "story"), ("body", "name"), ("body", "baseline"), ("body", "extra")} <= set(
        locs(response)
    )
    assert (await counts(db))["experiment"] == 0


async def test_422_for_a_missing_required_field(api, db):
    response = await api.put("/api/v1/experiments/x1", json={"name": "x"}, headers=GOOD)
    assert response.status_code == 422
    assert (("body", "story"), "missing") in list(zip(locs(response), types(response), strict=True))


@pytest.mark.parametrize(
    ("payload", "loc", "kind"),
    [
        ({"metrics": {}}, ("body", "metrics"), "too_short"),
        ({"metrics": {"auc": "high"}}, ("body", "metrics", "auc"), "float_type"),
        ({"metrics": {"1bad": 0.5}}, ("body", "metrics", "1bad", "[key]"), "string_pattern_mismatch"),
        ({"metrics": {"auc": 0.5}, "run_id": "r" * 65}, ("body", "run_id"), "string_too_long"),
        ({"metrics": {"auc": 0.5}, "extra": 1}, ("body", "extra"), "extra_forbidden"),
        ({}, ("body", "metrics"), "missing"),
    ],
    ids=["empty", "string-value", "bad-name", "long-run", "extra", "missing"],
)
async def test_422_for_bad_metrics(api, db, payload, loc, kind):
    await api.put("/api/v1/experiments/x1", json=body(), headers=GOOD)
    before = await counts(db)
    response = await api.post("/api/v1/experiments/x1/metrics", json=payload, headers=GOOD)
    assert response.status_code == 422, response.text
    assert (loc, kind) in list(zip(locs(response), types(response), strict=True))
    assert await counts(db) == before


async def test_422_for_a_boolean_given_as_a_number(api, db):
    await api.put("/api/v1/experiments/x1", json=body(), headers=GOOD)
    before = await counts(db)
    metrics = await api.post("/api/v1/experiments/x1/metrics", json={"metrics": {"auc": True}}, headers=GOOD)
    put = await api.put("/api/v1/experiments/x2", json=body(baseline=True), headers=GOOD)
    assert (metrics.status_code, put.status_code) == (422, 422)
    assert ("body", "metrics", "auc") in locs(metrics) and ("body", "baseline") in locs(put)
    assert await counts(db) == before


NON_FINITE = ["NaN", "Infinity", "-Infinity"]


async def _send_non_finite(db, config, settings, clock, literal):
    """A PUT with a non-finite baseline and a metrics POST with a non-finite value, as raw JSON;
    a server error comes back as a 500 response here instead of being raised into the test."""
    headers = {**GOOD, "Content-Type": "application/json"}
    transport = httpx.ASGITransport(app=build_app(db, config, settings, clock), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        await api.put("/api/v1/experiments/x1", json=body(), headers=GOOD)
        before = await counts(db)
        put = await api.put(
            "/api/v1/experiments/x2",
            content=json.dumps(body()).replace('"baseline": 0.8', f'"baseline": {literal}'),
            headers=headers,
        )
        metrics = await api.post(
            "/api/v1/experiments/x1/metrics",
            content='{"metrics": {"auc": ' + literal + "}}",
            headers=headers,
        )
    return before, put, metrics


@pytest.mark.parametrize("literal", NON_FINITE)
async def test_nan_and_infinity_in_json_store_nothing(db, config, settings, clock, literal):
    await add_stories(db, config)
    before, put, metrics = await _send_non_finite(db, config, settings, clock, literal)
    assert put.status_code >= 400 and metrics.status_code >= 400
    assert await counts(db) == before


@pytest.mark.parametrize("literal", NON_FINITE)
async def test_422_for_nan_and_infinity_in_json(db, config, settings, clock, literal):
    await add_stories(db, config)
    before, put, metrics = await _send_non_finite(db, config, settings, clock, literal)
    assert put.status_code == 422, put.text
    assert ("body", "baseline") in locs(put)
    assert metrics.status_code == 422, metrics.text
    assert ("body", "metrics", "auc") in locs(metrics)
    assert await counts(db) == before


async def test_422_for_a_bad_status_body(api, db):
    await api.put("/api/v1/experiments/x1", json=body(), headers=GOOD)
    before = await counts(db)
    for payload, loc in (
        ({"status": "finished"}, ("body", "status")),
        ({}, ("body", "status")),
        ({"status": "running", "reason": "r" * 2001}, ("body", "reason")),
        ({"status": "running", "why": "x"}, ("body", "why")),
    ):
        response = await api.post("/api/v1/experiments/x1/status", json=payload, headers=GOOD)
        assert response.status_code == 422, payload
        assert loc in locs(response), payload
    assert await counts(db) == before


async def test_a_bad_external_id_in_the_path_is_refused(api, db):
    before = await counts(db)
    response = await api.put("/api/v1/experiments/-leading-dash", json=body(), headers=GOOD)
    assert response.status_code == 422
    assert ("path", "external_id") in locs(response)
    assert await counts(db) == before


# --- not found -----------------------------------------------------------------------------------


async def test_404_for_an_unknown_story(api, db):
    before = await counts(db)
    response = await api.put("/api/v1/experiments/x1", json=body(story="S-99"), headers=GOOD)
    assert response.status_code == 404
    assert "S-99" in response.json()["detail"]
    assert await counts(db) == before


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", "/api/v1/experiments/nope", None),
        ("POST", "/api/v1/experiments/nope/status", {"status": "running"}),
        ("POST", "/api/v1/experiments/nope/metrics", {"metrics": {"auc": 0.9}}),
    ],
    ids=["get", "status", "metrics"],
)
async def test_404_for_an_unknown_external_id(api, db, method, path, payload):
    await api.put("/api/v1/experiments/x1", json=body(), headers=GOOD)
    before = await counts(db)
    response = await api.request(method, path, json=payload, headers=GOOD)
    assert response.status_code == 404
    assert "'nope'" in response.json()["detail"]
    assert await counts(db) == before


async def test_a_done_story_refuses_a_new_experiment(api, db):
    async with tx(db) as s:
        story = await stories.get_story(s, "S-2")
        story.status = "done"
        s.add(story)
    before = await counts(db)
    response = await api.put("/api/v1/experiments/x1", json=body(story="S-2"), headers=GOOD)
    assert response.status_code == 409
    assert "S-2" in response.json()["detail"]
    assert await counts(db) == before


# --- documentation -------------------------------------------------------------------------------


async def test_openapi_lists_the_experiment_paths_and_docs_answer(api):
    spec = await api.get("/api/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in PATHS:
        assert path in paths
    assert set(paths[PATHS[0]]) >= {"put", "get"}
    assert "post" in paths[PATHS[1]] and "post" in paths[PATHS[2]]
    docs = await api.get("/api/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "ranker\x00v2"}, "name"),
        ({"hypothesis": "better\x00"}, "hypothesis"),
        ({"mlflow_run_id": "run\x00"}, "mlflow_run_id"),
        ({"name": "bell\x07"}, "name"),
    ],
    ids=["nul-name", "nul-hypothesis", "nul-run-id", "bel-name"],
)
async def test_control_characters_are_refused_naming_the_field_on_both_databases(api, db, overrides, field):
    before = await counts(db)

    response = await api.put("/api/v1/experiments/exp-1", json=body(**overrides), headers=GOOD)

    assert response.status_code == 422, response.text
    assert ("body", field) in locs(response), response.text
    assert "control characters" in response.text
    assert await counts(db) == before


@pytest.mark.parametrize(
    "raw", [b"{not json", b'{"name": "x",', b"\xff\xfe"], ids=["brace", "truncated", "bytes"]
)
async def test_a_body_that_is_not_json_is_a_400_as_the_document_says(api, db, raw):
    before = await counts(db)

    response = await api.put(
        "/api/v1/experiments/exp-1", content=raw, headers={**GOOD, "content-type": "application/json"}
    )

    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert await counts(db) == before
    spec = (await api.get("/api/openapi.json")).json()
    assert "400" in spec["paths"]["/api/v1/experiments/{external_id}"]["put"]["responses"]


async def test_a_read_only_token_reads_and_is_refused_every_write(db, config, settings, clock):
    await add_stories(db, config, 1)
    app = build_app(db, config, settings, clock, ("pipeline=secret-1", "dash:read=secret-read-1"))
    reader = {"Authorization": "Bearer secret-read-1"}
    async with client_for(app) as api:
        assert (await api.put("/api/v1/experiments/exp-1", json=body(), headers=GOOD)).status_code == 201
        before = await counts(db)

        assert (await api.get("/api/v1/experiments/exp-1", headers=reader)).status_code == 200
        refused = [
            await api.put("/api/v1/experiments/exp-1", json=body(name="renamed"), headers=reader),
            await api.post("/api/v1/experiments/exp-1/status", json={"status": "running"}, headers=reader),
            await api.post(
                "/api/v1/experiments/exp-1/metrics", json={"metrics": {"auc": 0.9}}, headers=reader
            ),
        ]

    assert [r.status_code for r in refused] == [403, 403, 403]
    assert refused[0].json()["detail"] == "The token dash may only read (it is labelled :read)."
    assert await counts(db) == before


async def test_a_token_scoped_to_a_team_changes_only_that_teams_experiments(db, config, settings, clock):
    await add_stories(db, config, 1)  # S-1, recsys
    async with tx(db) as s:
        platform = config.team("platform")
        assert platform is not None
        await stories.add_story(s, config=config, team=platform, title="Feature store", actor=FRANK)  # S-2
    scoped = {"Authorization": "Bearer secret-recsys-1"}
    app = build_app(db, config, settings, clock, ("pipeline=secret-1", "ranker@recsys=secret-recsys-1"))
    async with client_for(app) as api:
        assert (await api.put("/api/v1/experiments/r-1", json=body(), headers=scoped)).status_code == 201
        assert (
            await api.put("/api/v1/experiments/p-1", json=body(story="S-2"), headers=GOOD)
        ).status_code == 201
        before = await counts(db)

        refused = [
            await api.put("/api/v1/experiments/p-2", json=body(story="S-2"), headers=scoped),
            await api.post("/api/v1/experiments/p-1/status", json={"status": "running"}, headers=scoped),
            await api.post("/api/v1/experiments/p-1/metrics", json={"metrics": {"auc": 0.9}}, headers=scoped),
        ]
        allowed = await api.post("/api/v1/experiments/r-1/status", json={"status": "running"}, headers=scoped)

    assert [r.status_code for r in refused] == [403, 403, 403], [r.text for r in refused]
    assert refused[0].json()["detail"] == "Only members of team platform can add experiments to S-2."
    assert allowed.status_code == 200, allowed.text
    after = await counts(db)
    assert after["experiment"] == before["experiment"]
    assert after["experiment_result"] == before["experiment_result"]


async def test_a_token_past_its_requests_per_minute_gets_429_with_retry_after(db, settings, clock):
    """Three a minute: the fourth request of a token is refused and says when to come back; another
    token is counted apart, and a refused request changes nothing."""
    config = make_config(api_requests_per_minute=3)
    await add_stories(db, config, 1)
    async with client_for(build_app(db, config, settings, clock)) as client:
        answers = [(await client.get("/api/v1/experiments/none", headers=GOOD)).status_code for _ in range(3)]
        assert answers == [404, 404, 404]
        refused = await client.put("/api/v1/experiments/ranker-v9", json=body(), headers=GOOD)
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "pipeline made more than 3 requests in a minute" in refused.json()["detail"]
        assert (await client.get("/api/v1/experiments/ranker-v9", headers=BARE)).status_code == 404
        # an unknown token is a 401 however often it is tried: the limit counts only real tokens
        assert (
            await client.get("/api/v1/experiments/none", headers={"Authorization": "Bearer nope"})
        ).status_code == 401
