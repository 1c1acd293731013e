"""The ASGI app: Slack at /slack/events, health at /healthz (the ingestion API joins it later)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.api.routes import install as install_api
from bot.clock import Clock, SystemClock
from bot.config import AppConfig, Settings
from bot.jobs.runner import build_clock
from bot.logs import RequestIds
from bot.metrics import Metrics
from bot.services import audit, readiness
from bot.slack import gate
from bot.slack.answers import Answers
from bot.slack.app import create_app, web_client
from bot.slack.context import Deps
from bot.slack.followups import Followups
from bot.store.db import Reads, session_factory
from bot.store.migrate import current_revision, head_revision, upgrade

log = logging.getLogger(__name__)


def _freeze_heap() -> None:
    """Moves what start-up made (modules, the app, Bolt, SQLAlchemy's metadata: most of the heap) where
    the garbage collector no longer walks it. Without this a full collection walked all of it every few
    thousand requests: 110 ms in which nothing was answered, measured in-process, and the p99 of `sprint
    plan` at 150 requests/s. With it, the rare full collection walks only what requests made since
    (about 12 ms). Python's documentation suggests gc.freeze() after start-up for the same reason."""
    gc.collect()
    gc.freeze()


def create_web_app(
    *,
    settings: Settings,
    config: AppConfig,
    engine: AsyncEngine,
    client: AsyncWebClient | None = None,
    migrate_on_start: bool = False,
    run_scheduler: bool = False,
    clock: Clock | None = None,
    on_start: Callable[[], Awaitable[None]] | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    """The app. `on_start` runs after migrations and before the scheduler starts (the sandbox seeds there).
    `freeze_heap` is for a process that serves this app and nothing else (`cadence serve`): see
    `_freeze_heap`."""
    audit.current_key()  # a CADENCE_AUDIT_KEY too short to be a key stops the start, not the first audit
    sessions = session_factory(engine)
    reads = Reads(engine)
    clock = clock or SystemClock()
    bolt_client = client or web_client(settings)
    figures = Metrics()  # this app's registry: the route below is named metrics
    runner = build_clock(
        config=config, settings=settings, sessions=sessions, clock=clock, slack=bolt_client, metrics=figures
    )
    deps = Deps(
        metrics=figures,
        config=config,
        sessions=sessions,
        followups=Followups(),
        notifier=runner.notifier,
        clock=clock,
        reads=reads,
        answers=Answers(config.answer_cache_entries),
    )
    bolt = create_app(settings=settings, deps=deps, client=bolt_client)
    slack_handler = AsyncSlackRequestHandler(bolt)
    verifier = SignatureVerifier(settings.slack_signing_secret)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate_on_start:
            await upgrade(engine)
        reconciling = None
        if not await readiness.reconcile_on_start(sessions, config):
            reconciling = asyncio.create_task(readiness.reconcile_until_done(sessions, config))
        if on_start is not None:
            await on_start()
        socket = None
        if settings.slack_app_token:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            socket = AsyncSocketModeHandler(bolt, settings.slack_app_token)
            await socket.connect_async()
            log.info("connected to Slack over Socket Mode")
        if run_scheduler:
            await runner.start()
        if freeze_heap:
            _freeze_heap()
        try:
            yield
        finally:
            if reconciling is not None:
                reconciling.cancel()
            if run_scheduler:
                await runner.stop()
            if socket is not None:
                await socket.close_async()
            await deps.followups.drain()
            await reads.dispose()
            await engine.dispose()

    web = FastAPI(
        title="Cadence",
        summary="Scrum ceremonies for teams shipping ML",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    web.add_middleware(RequestIds)
    web.state.deps = deps
    web.state.bolt = bolt
    web.state.runner = runner

    # Slack's route before the ingestion API's routers: the router tries routes in order, and every
    # command, click and event comes this way.
    @web.post("/slack/events", include_in_schema=False, max_body_size=SLACK_MAX_BODY)
    async def slack_events(request: Request) -> Response:
        refused = await gate.refusal(request, verifier)
        return refused or await slack_handler.handle(request)

    install_api(web, settings=settings, config=config, notifier=runner.notifier, clock=clock)

    @web.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # the probe reports any database failure as unhealthy
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "unhealthy", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": engine.dialect.name})

    expected = head_revision()  # read from the migration scripts once, not on the event loop per probe

    @web.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """Ready for traffic: the database answers and its schema is the one this code expects (a web
        replica started before `cadence db upgrade` finished says 503 until it has)."""
        try:
            current = await current_revision(engine)
        except Exception as exc:  # the probe reports any database failure as not ready
            log.warning("readiness check failed: %s", exc)
            return JSONResponse({"status": "not ready", "database": "unreachable"}, status_code=503)
        if current != expected:
            body = {"status": "not ready", "migrations": f"database at {current}, code expects {expected}"}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ready", "database": engine.dialect.name, "revision": current})

    @web.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        """Prometheus text format (prometheus-client): ack latency by command, refusals, the outbox by
        state and its oldest waiting message, this process's deliveries, open drift incidents."""
        async with deps.reads.reading() as session:
            snapshot = await runner.snapshot(session, getattr(web.state, "drift_stats", None))
        return Response(deps.metrics.render(snapshot), media_type=CONTENT_TYPE_LATEST)

    return web


SLACK_MAX_BODY = 1024 * 1024  # Slack's largest payloads (a 100-block view's state) are far below this
