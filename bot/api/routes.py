"""/api/v1 routes: validated bodies in, one transaction of service calls, JSON (or a JSON error) out."""

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.api.auth import BearerAuth, parse_tokens
from bot.api.schemas import EvaluationOut, ExperimentIn, ExperimentOut, MetricsIn, ReviewOut, StatusIn
from bot.clock import Clock
from bot.config import AppConfig, Settings
from bot.notify import Notifier
from bot.services import experiments, governance, stories
from bot.services.errors import CadenceError, Conflict, Forbidden, Invalid, NotFound
from bot.store.db import UNREACHABLE, unreachable
from bot.store.models import Experiment

log = logging.getLogger(__name__)

# What the routes depend on is put on app.state by install(): each app has its own (tests build many).


async def get_config(request: Request) -> AppConfig:
    config: AppConfig = request.app.state.config
    return config


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


async def get_caller(request: Request) -> str:
    """The caller's label for the audit log, or 401."""
    auth: BearerAuth = request.app.state.api_auth
    return await auth(request)


ConfigDep = Annotated[AppConfig, Depends(get_config)]
ClockDep = Annotated[Clock, Depends(get_clock)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]
CallerDep = Annotated[str, Depends(get_caller)]


async def get_session(notifier: NotifierDep) -> AsyncIterator[AsyncSession]:
    """The request's one transaction, whose domain events the notifier turns into messages."""
    async with notifier.transaction() as session:
        yield session


# scope="function": the transaction commits (or rolls back) when the route returns, before the response
# is sent, so a failed commit is answered with an error, never hidden behind a 200.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

MALFORMED: dict[str, Any] = {"description": "the body is not valid JSON"}
ExternalId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]*$")]
_STATUS = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
    Forbidden: status.HTTP_403_FORBIDDEN,
}

# Every route needs a token. A router dependency runs before the route's own, so a request without a
# valid token gets its 401 before its body is validated or a transaction is opened.
router = APIRouter(prefix="/api/v1", tags=["experiments"], dependencies=[Depends(get_caller)])


async def _existing(session: AsyncSession, external_id: str) -> Experiment:
    exp = await experiments.find_external(session, external_id)
    if exp is None:
        raise NotFound(f"No experiment has the external id {external_id!r}; create it with PUT first.")
    return exp


async def _out(session: AsyncSession, exp: Experiment) -> ExperimentOut:
    rows = await experiments.results(session, exp)
    story = await experiments.story_of(session, exp)
    reviews = await governance.reviews_for(session, exp)
    return ExperimentOut.model_validate(
        exp,
        update={
            "story": story.key,
            "links": experiments.links_of(exp),
            "latest": {r.metric: r.value for r in rows},
            "evaluation": EvaluationOut.model_validate(experiments.evaluate(exp, rows)),
            "reviews": [ReviewOut.model_validate(r) for r in reviews],
        },
    )


@router.put(
    "/experiments/{external_id}",
    response_model=ExperimentOut,
    responses={
        201: {"model": ExperimentOut},
        401: {},
        404: {},
        409: {},
        400: MALFORMED,
        403: {},
        413: {},
        422: {},
    },
)
async def upsert_experiment(
    external_id: ExternalId,
    body: ExperimentIn,
    who: CallerDep,
    session: SessionDep,
    config: ConfigDep,
    clock: ClockDep,
    response: Response,
) -> ExperimentOut:
    """Create the experiment (201) or update it (200), linked to a story; `status` moves it along."""
    story = await stories.get_story(session, body.story)
    # Only what the caller sent: a field an update leaves out keeps its value.
    reported = body.model_dump(exclude_unset=True, exclude={"story", "status", "links"})
    exp, created = await experiments.upsert_external(
        session,
        config=config,
        external_id=external_id,
        story=story,
        actor=who,
        links=body.links.model_dump(exclude_none=True),
        **reported,
    )
    if body.status is not None:
        await governance.report_status(
            session, config=config, experiment=exp, status=body.status, actor=who, now=clock.now()
        )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return await _out(session, exp)


@router.get("/experiments/{external_id}", response_model=ExperimentOut, responses={401: {}, 404: {}})
async def get_experiment(external_id: ExternalId, session: SessionDep) -> ExperimentOut:
    return await _out(session, await _existing(session, external_id))


@router.post(
    "/experiments/{external_id}/status",
    response_model=ExperimentOut,
    responses={401: {}, 404: {}, 409: {}, 400: MALFORMED, 403: {}, 413: {}, 422: {}},
)
async def report_status(
    external_id: ExternalId,
    body: StatusIn,
    who: CallerDep,
    session: SessionDep,
    config: ConfigDep,
    clock: ClockDep,
) -> ExperimentOut:
    """Move the experiment along proposed → running → succeeded | failed | abandoned."""
    exp = await _existing(session, external_id)
    await governance.report_status(
        session,
        config=config,
        experiment=exp,
        status=body.status,
        actor=who,
        reason=body.reason,
        now=clock.now(),
    )
    return await _out(session, exp)


@router.post(
    "/experiments/{external_id}/metrics",
    response_model=ExperimentOut,
    responses={401: {}, 404: {}, 400: MALFORMED, 403: {}, 413: {}, 422: {}},
)
async def report_metrics(
    external_id: ExternalId, body: MetricsIn, who: CallerDep, session: SessionDep, config: ConfigDep
) -> ExperimentOut:
    """Record metric values from a run; the same run and metric again replaces the value."""
    exp = await _existing(session, external_id)
    await experiments.record_results(
        session,
        config=config,
        experiment=exp,
        metrics=body.metrics,
        actor=who,
        source="api",
        run_id=body.run_id,
    )
    return await _out(session, exp)


def install(
    app: FastAPI,
    *,
    settings: Settings,
    config: AppConfig,
    notifier: Notifier,
    clock: Clock,
) -> None:
    """Serve /api/v1 on `app`: what the routes depend on, the router with the configured body limit
    (413 above it), and the JSON error handlers."""
    app.state.config = config
    app.state.clock = clock
    app.state.notifier = notifier
    app.state.api_auth = BearerAuth(
        parse_tokens(settings.api_tokens), per_minute=config.api_requests_per_minute
    )
    # The limit comes from the config, known only here: FastAPI applies it per inclusion of the router.
    app.include_router(router, max_body_size=config.api_max_body_bytes)
    from bot.api import drift  # its routes import this module's dependencies

    app.include_router(drift.router, max_body_size=max(drift.DRIFT_MAX_BODY, config.api_max_body_bytes))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """400 for a body that is not JSON at all; else 422 naming each bad field. The offending input is
        not echoed: it may not be JSON (NaN)."""
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            body = {
                "detail": [{"loc": ["body"], "msg": "the body is not valid JSON", "type": "json_invalid"}]
            }
            return JSONResponse(body, status_code=status.HTTP_400_BAD_REQUEST)
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        """503 with Retry-After while the database cannot be reached: a sender that retries on 5xx (as
        Alertmanager does) delivers again later, and nothing is lost."""
        if not unreachable(exc):
            log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
            return JSONResponse({"detail": "internal error"}, status_code=500)
        log.warning("database unavailable for %s: %s", request.url.path, type(exc).__name__)
        return JSONResponse(
            {"detail": "the database is unavailable; nothing was stored, try again"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "30"},
        )

    for kind in UNREACHABLE:
        app.add_exception_handler(kind, database_down)

    @app.exception_handler(CadenceError)
    async def domain_error(request: Request, exc: CadenceError) -> JSONResponse:
        if isinstance(exc, Forbidden):
            request.app.state.deps.metrics.refusals.labels("api").inc()
        if isinstance(exc, Invalid):
            loc = ["body", exc.field] if exc.field else ["body"]
            return JSONResponse(
                {"detail": [{"loc": loc, "msg": exc.message, "type": "value_error"}]}, status_code=422
            )
        return JSONResponse(
            {"detail": exc.message}, status_code=_STATUS.get(type(exc), status.HTTP_409_CONFLICT)
        )
