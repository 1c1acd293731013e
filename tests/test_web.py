"""Health check and the published API description."""

import httpx
import pytest


async def test_healthz_reports_the_database(slack):
    response = await slack.http.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_openapi_is_published_without_the_slack_endpoint(slack):
    spec = (await slack.http.get("/api/openapi.json")).json()
    assert "/healthz" in spec["paths"] and "/slack/events" not in spec["paths"]


async def test_metrics_count_the_outbox_by_state(slack, db):
    from bot.store import outbox
    from bot.store.db import session_factory, unit_of_work

    async with unit_of_work(session_factory(db)) as session:
        await outbox.enqueue(session, dedupe_key="a", channel="C1", payload={"text": "x"})
        await outbox.enqueue(session, dedupe_key="b", channel="C1", payload={"text": "y"})
    from tests.factories import scraped

    page = await slack.http.get("/metrics")
    assert page.headers["content-type"].startswith("text/plain; version=")
    metrics = scraped(page.text)
    assert metrics['cadence_outbox_messages{state="pending"}'] == 2
    assert metrics['cadence_outbox_messages{state="dead"}'] == 0
    assert metrics['cadence_outbox_deliveries_total{outcome="sent"}'] == 0
    assert metrics["cadence_outbox_oldest_pending_seconds"] >= 0


async def test_metrics_time_each_slash_command_by_subcommand(slack, db):
    from tests.factories import scraped

    await slack.command("story add Train the ranker")
    await slack.command("story list")
    await slack.command("story list")

    await slack.command("story show S-99")  # refused: no such story; timed all the same
    metrics = scraped((await slack.http.get("/metrics")).text)
    assert metrics['cadence_ack_seconds_count{command="story show"}'] == 1
    assert metrics['cadence_ack_seconds_count{command="story list"}'] == 2
    assert metrics['cadence_ack_seconds_count{command="story add"}'] == 1
    assert metrics['cadence_ack_seconds_bucket{command="story list",le="+Inf"}'] == 2
    assert 0 < metrics['cadence_ack_seconds_sum{command="story list"}'] < 5


async def test_metrics_time_each_delivery_from_when_it_fell_due(slack, db, clock):
    from tests.factories import scraped
    from tests.slack.helpers import deliver

    await slack.command("story add Train the ranker --owner <@U02BOB|bob>")
    clock.advance(seconds=2)  # the worker's first round comes two seconds after the message was queued
    await deliver(slack.app.state.runner.worker, clock)

    metrics = scraped((await slack.http.get("/metrics")).text)
    assert metrics["cadence_outbox_delivery_seconds_count"] == 1
    assert metrics['cadence_outbox_delivery_seconds_bucket{le="1.0"}'] == 0
    assert metrics['cadence_outbox_delivery_seconds_bucket{le="2.5"}'] == 1
    assert metrics['cadence_outbox_deliveries_total{outcome="sent"}'] == 1
    assert metrics['cadence_outbox_deliveries_total{outcome="recovered"}'] == 0


async def test_an_oversized_body_to_the_slack_endpoint_is_refused_before_anything_reads_it(slack, db):
    from tests.slack_driver import signed_headers

    body = "payload=" + "x" * (2 * 1024 * 1024)
    response = await slack.http.post("/slack/events", content=body.encode(), headers=signed_headers(body))
    assert response.status_code == 413


async def test_readyz_is_ready_on_a_database_at_the_codes_revision(slack):
    from bot.store.migrate import head_revision

    response = await slack.http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert response.json()["revision"] == head_revision()


async def test_readyz_is_503_until_the_migrations_have_run(config, settings, tmp_path):
    from bot.store.db import create_engine
    from bot.store.migrate import head_revision, upgrade
    from bot.web import create_web_app

    engine = create_engine(f"sqlite:///{tmp_path}/cadence.db")
    app = create_web_app(settings=settings, config=config, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        before = await client.get("/readyz")
        await upgrade(engine, "0006")
        behind = await client.get("/readyz")
        await upgrade(engine)
        after = await client.get("/readyz")
    await engine.dispose()
    assert before.status_code == 503
    assert behind.status_code == 503
    assert behind.json()["migrations"] == f"database at 0006, code expects {head_revision()}"
    assert after.status_code == 200


@pytest.mark.parametrize(("path", "says"), [("/healthz", "unhealthy"), ("/readyz", "not ready")])
async def test_the_probes_are_503_when_the_database_is_gone(config, settings, tmp_path, path, says):
    from bot.store.db import create_engine
    from bot.web import create_web_app

    engine = create_engine(f"sqlite:///{tmp_path}/missing-dir/nothing.db")
    app = create_web_app(settings=settings, config=config, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get(path)
    assert response.status_code == 503 and response.json()["status"] == says


async def test_cadence_serve_moves_what_start_up_made_out_of_the_collectors_reach(config, settings, tmp_path):
    """A full garbage collection then walks only what requests made, not the whole heap (the 110 ms
    pauses bench/ack_latency.py showed at the p99)."""
    import gc

    from bot.store.db import create_engine
    from bot.web import create_web_app

    engine = create_engine(f"sqlite:///{tmp_path}/cadence.db")
    ordinary = create_web_app(settings=settings, config=config, engine=engine, migrate_on_start=True)
    served = create_web_app(
        settings=settings, config=config, engine=engine, migrate_on_start=True, freeze_heap=True
    )
    try:
        async with ordinary.router.lifespan_context(ordinary):
            assert gc.get_freeze_count() == 0  # tests and the sandbox build many apps in one process
        async with served.router.lifespan_context(served):
            assert gc.get_freeze_count() > 10_000  # the modules, the app, Bolt, SQLAlchemy's metadata
    finally:
        gc.unfreeze()
        await engine.dispose()
