"""/api/v1 routes: validated bodies in, one transaction of service calls, JSON (or a JSON error) out."""

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Request, status
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
from bot.store.models import Experiment

ExternalId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]*$")]
_STATUS = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
    Forbidden: status.HTTP_403_FORBIDDEN,
}


async def _out(session: AsyncSession, exp: Experiment) -> ExperimentOut:
    rows = await experiments.results(session, exp)
    ev = experiments.evaluate(exp, rows)
    story = await experiments.story_of(session, exp)
    return ExperimentOut(
        key=exp.key,
        external_id=exp.external_id,
        story=story.key,
        team=exp.team,
        name=exp.name,
        hypothesis=exp.hypothesis,
        status=exp.status,
        stage=exp.stage,
        metric=exp.metric,  # type: ignore[arg-type]
        baseline=exp.baseline,
        target=exp.target,
        higher_is_better=exp.higher_is_better,
        owner=exp.owner,
        links=experiments.links_of(exp),
        latest={r.metric: r.value for r in rows},
        evaluation=EvaluationOut(
            metric=ev.metric,
            value=ev.value,
            baseline=ev.baseline,
            target=ev.target,
            delta=ev.delta,
            meets_target=ev.meets_target,
        ),
        reviews=[
            ReviewOut(key=r.key, purpose=r.purpose, state=r.state)
            for r in await governance.reviews_for(session, exp)
        ],
        updated_at=exp.updated_at,
    )


def build_router(*, settings: Settings, config: AppConfig, notifier: Notifier, clock: Clock) -> APIRouter:
    caller = BearerAuth(parse_tokens(settings.api_tokens))
    router = APIRouter(prefix="/api/v1", tags=["experiments"], max_body_size=config.api_max_body_bytes)
    Caller = Annotated[str, Depends(caller)]

    async def _existing(session: AsyncSession, external_id: str) -> Experiment:
        exp = await experiments.find_external(session, external_id)
        if exp is None:
            raise NotFound(f"No experiment has the external id {external_id!r}; create it with PUT first.")
        return exp

    @router.put(
        "/experiments/{external_id}",
        response_model=ExperimentOut,
        responses={201: {"model": ExperimentOut}, 401: {}, 404: {}, 409: {}, 413: {}, 422: {}},
    )
    async def upsert_experiment(external_id: ExternalId, body: ExperimentIn, who: Caller) -> JSONResponse:
        """Create the experiment (201) or update it (200), linked to a story; `status` moves it along."""
        async with notifier.transaction() as session:
            story = await stories.get_story(session, body.story)
            exp = await experiments.find_external(session, external_id)
            created = exp is None
            links = body.links.model_dump(exclude_none=True)
            if exp is None:
                exp = await experiments.add_experiment(
                    session,
                    config=config,
                    story=story,
                    name=body.name,
                    actor=who,
                    hypothesis=body.hypothesis,
                    metric=body.metric,
                    baseline=body.baseline,
                    target=body.target,
                    higher_is_better=body.higher_is_better,
                    owner=body.owner,
                    external_id=external_id,
                    mlflow_run_id=body.mlflow_run_id,
                    links=links,
                )
            else:
                if exp.story_id != story.id:
                    raise Conflict(
                        f"{exp.key} belongs to another story; an experiment cannot move between stories."
                    )
                reported = body.model_dump(exclude_unset=True, exclude={"story", "status", "links"})
                experiments.update_fields(exp, reported, links=links)
            if body.status is not None:
                await governance.report_status(
                    session, config=config, experiment=exp, status=body.status, actor=who, now=clock.now()
                )
            out = await _out(session, exp)
        return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)

    @router.get("/experiments/{external_id}", response_model=ExperimentOut, responses={401: {}, 404: {}})
    async def get_experiment(external_id: ExternalId, who: Caller) -> ExperimentOut:
        async with notifier.transaction() as session:
            return await _out(session, await _existing(session, external_id))

    @router.post(
        "/experiments/{external_id}/status",
        response_model=ExperimentOut,
        responses={401: {}, 404: {}, 409: {}, 413: {}, 422: {}},
    )
    async def report_status(external_id: ExternalId, body: StatusIn, who: Caller) -> ExperimentOut:
        """Move the experiment along proposed → running → succeeded | failed | abandoned."""
        async with notifier.transaction() as session:
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
        responses={401: {}, 404: {}, 413: {}, 422: {}},
    )
    async def report_metrics(external_id: ExternalId, body: MetricsIn, who: Caller) -> ExperimentOut:
        """Record metric values from a run; the same run and metric again replaces the value."""
        async with notifier.transaction() as session:
            exp = await _existing(session, external_id)
            await experiments.record_results(
                session, experiment=exp, metrics=body.metrics, actor=who, source="api", run_id=body.run_id
            )
            return await _out(session, exp)

    return router


def install(
    app: FastAPI,
    *,
    settings: Settings,
    config: AppConfig,
    notifier: Notifier,
    clock: Clock,
) -> None:
    app.include_router(build_router(settings=settings, config=config, notifier=notifier, clock=clock))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each bad field. The offending input is not echoed: it may not be JSON (NaN)."""
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(CadenceError)
    async def domain_error(request: Request, exc: CadenceError) -> JSONResponse:
        if isinstance(exc, Invalid):
            loc = ["body", exc.field] if exc.field else ["body"]
            return JSONResponse(
                {"detail": [{"loc": loc, "msg": exc.message, "type": "value_error"}]}, status_code=422
            )
        return JSONResponse(
            {"detail": exc.message}, status_code=_STATUS.get(type(exc), status.HTTP_409_CONFLICT)
        )
