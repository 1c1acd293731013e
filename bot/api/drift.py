"""/api/v1 drift routes: readings in (plain, or an Evidently report, or Alertmanager's webhook),
incidents and readings out. Bodies here may be large (10,000 readings), so these routes have their
own body limit; the rest of /api/v1 keeps `api_max_body_bytes`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from bot.api.routes import MALFORMED, CallerDep, ClockDep, ConfigDep, SessionDep, get_caller
from bot.api.schemas import (
    NO_CONTROL,
    AlertsOut,
    DriftIn,
    DriftName,
    DriftOut,
    EvidentlyOut,
    IncidentOut,
    ReadingOut,
    WindowEnd,
)
from bot.integrations import alertmanager, evidently
from bot.services import drift
from bot.store.models import DriftIncident, DriftReading, Story

DRIFT_MAX_BODY = 8 * 1024 * 1024  # 10,000 readings with labels, or an Evidently report of many columns


@dataclass
class DriftStats:
    """This process's ingestion counters, for /metrics."""

    received: int = 0
    stored: int = 0


def stats_of(request: Request) -> DriftStats:
    stats = getattr(request.app.state, "drift_stats", None)
    if stats is None:
        stats = request.app.state.drift_stats = DriftStats()
    return stats


router = APIRouter(prefix="/api/v1", tags=["drift"], dependencies=[Depends(get_caller)])


def too_many(count: int) -> JSONResponse:
    return JSONResponse(
        {
            "detail": [
                {
                    "loc": ["body", "readings"],
                    "msg": f"at most {drift.MAX_READINGS} readings a request; this one has {count}: "
                    "send them in batches",
                    "type": "too_many",
                }
            ]
        },
        status_code=413,
    )


async def _ingest(
    request: Request, session: Any, config: Any, clock: Any, readings: list[drift.Reading]
) -> DriftOut:
    done = await drift.ingest(session, config=config, readings=readings, now=clock.now())
    stats = stats_of(request)
    stats.received += done.received
    stats.stored += done.stored
    return DriftOut(
        received=done.received,
        stored=done.stored,
        duplicates=done.duplicates,
        unmatched=done.unmatched,
        opened=done.opened,
        changed=done.changed,
        resolved=done.resolved,
    )


@router.post(
    "/drift", response_model=DriftOut, responses={401: {}, 400: MALFORMED, 403: {}, 413: {}, 422: {}}
)
async def post_readings(
    request: Request, body: DriftIn, who: CallerDep, session: SessionDep, config: ConfigDep, clock: ClockDep
) -> DriftOut | JSONResponse:
    """Store readings (the same model, metric, feature, source and window twice is stored once) and
    run the new ones through the drift rules; the answer names the incidents that opened, changed or
    resolved."""
    if len(body.readings) > drift.MAX_READINGS:
        return too_many(len(body.readings))
    readings = [
        drift.Reading(
            model=r.model,
            metric=r.metric,
            value=r.value,
            window_end=r.window_end,
            feature=r.feature or "",
            source=r.source or "",
            labels=dict(r.labels or {}),
        )
        for r in body.readings
    ]
    return await _ingest(request, session, config, clock, readings)


def unprocessable(where: str, message: str, kind: str) -> JSONResponse:
    """A 422 in FastAPI's own shape, for `where` such as "body" or "query.window_end"."""
    return JSONResponse(
        {"detail": [{"loc": where.split("."), "msg": message, "type": kind}]}, status_code=422
    )


@router.post(
    "/drift/evidently",
    response_model=EvidentlyOut,
    responses={401: {}, 400: MALFORMED, 403: {}, 413: {}, 422: {}},
)
async def post_evidently(
    request: Request,
    report: Annotated[dict[str, Any], Body()],
    model: Annotated[DriftName, Query(description="the model the report monitors")],
    who: CallerDep,
    session: SessionDep,
    config: ConfigDep,
    clock: ClockDep,
    window_end: Annotated[
        WindowEnd | None, Query(description="RFC 3339 end of the report's window; else its timestamp")
    ] = None,
) -> EvidentlyOut | JSONResponse:
    """An Evidently data-drift report (0.7's snapshot JSON, a saved snapshot, or the legacy
    Report.as_dict()): the share of drifted columns and each column's drift score become readings of
    `model`, run through the drift rules like any others."""
    try:
        read = evidently.readings_from_report(report, window_end=window_end)
    except evidently.UnsupportedReport as exc:
        return unprocessable("body", str(exc), "unsupported")
    except evidently.MissingWindowEnd as exc:
        return unprocessable("query.window_end", str(exc), "missing")
    if len(read.readings) > drift.MAX_READINGS:
        return too_many(len(read.readings))
    readings = [
        drift.Reading(
            model=model,
            metric=r.metric,
            value=r.value,
            window_end=read.window_end,
            feature=r.feature,
            source=evidently.SOURCE,
            labels=r.labels,
        )
        for r in read.readings
    ]
    done = await _ingest(request, session, config, clock, readings)
    return EvidentlyOut(
        **done.model_dump(), shape=read.shape, window_end=read.window_end, skipped=read.skipped
    )


async def incident_out(session: Any, incident: DriftIncident) -> IncidentOut:
    story = await session.get(Story, incident.story_id) if incident.story_id else None
    fields: dict[str, Any] = {name: getattr(incident, name, None) for name in IncidentOut.model_fields}
    fields |= {
        "key": incident.key,
        "feature": incident.feature or None,
        "source": incident.source or None,
        "story": story.key if story else None,
        "snoozed_until_resolved": incident.snooze_until_resolved,
    }
    return IncidentOut(**fields)


@router.get("/drift/incidents", response_model=list[IncidentOut], responses={401: {}, 422: {}})
async def get_incidents(
    session: SessionDep,
    state: Literal["open", "acknowledged", "resolved", "all"] = "open",
    team: Annotated[str | None, Query(max_length=40, pattern=NO_CONTROL)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[IncidentOut]:
    """Incidents, newest first; `open` means open or acknowledged."""
    found = await drift.list_incidents(session, team=team, state=state, limit=limit)
    return [await incident_out(session, i) for i in found]


@router.get("/drift/incidents/{key}", response_model=IncidentOut, responses={401: {}, 404: {}, 422: {}})
async def get_incident(
    key: Annotated[str, Path(pattern=r"^[Dd]-?\d{1,9}$", description="the incident, as D-12")],
    session: SessionDep,
) -> IncidentOut:
    return await incident_out(session, await drift.get_incident(session, key))


def reading_out(r: DriftReading) -> ReadingOut:
    fields: dict[str, Any] = {name: getattr(r, name) for name in ReadingOut.model_fields}
    fields |= {"feature": r.feature or None, "source": r.source or None, "labels": json.loads(r.labels)}
    return ReadingOut(**fields)


@router.get("/drift/readings", response_model=list[ReadingOut], responses={401: {}, 422: {}})
async def get_readings(
    session: SessionDep,
    model: Annotated[str | None, Query(max_length=200, pattern=NO_CONTROL)] = None,
    metric: Annotated[str | None, Query(max_length=100, pattern=NO_CONTROL)] = None,
    feature: Annotated[str | None, Query(max_length=200, pattern=NO_CONTROL)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ReadingOut]:
    """Stored readings, newest window first, including those no rule watches."""
    rows = await drift.readings_of(session, model=model, metric=metric, feature=feature, limit=limit)
    return [reading_out(r) for r in rows]


@router.post(
    "/alertmanager", response_model=AlertsOut, responses={401: {}, 400: MALFORMED, 403: {}, 413: {}, 422: {}}
)
async def alertmanager_webhook(
    payload: Annotated[dict[str, Any], Body()],
    who: CallerDep,
    session: SessionDep,
    config: ConfigDep,
    clock: ClockDep,
) -> AlertsOut | JSONResponse:
    """Prometheus Alertmanager's webhook (version 4): firing alerts with model and metric labels open
    or update incidents, resolved ones resolve them; what could not be used is listed in `skipped`."""
    names = config.drift.alertmanager
    try:
        found, skipped = alertmanager.alerts_from_webhook(
            payload,
            alertmanager.LabelNames(
                model=names.model,
                metric=names.metric,
                feature=names.feature,
                team=names.team,
                severity=names.severity,
                value=names.value,
            ),
        )
    except ValidationError as exc:
        detail = [
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        return JSONResponse({"detail": detail}, status_code=422)
    except alertmanager.UnsupportedPayload as exc:
        return unprocessable("body.version", str(exc), "unsupported")
    alerts = [
        drift.Alert(
            fingerprint=a.fingerprint,
            firing=a.firing,
            model=a.model,
            metric=a.metric,
            starts_at=a.starts_at,
            feature=a.feature or "",
            value=a.value,
            severity=a.severity,
            team=a.team,
            summary=a.summary,
            runbook=a.runbook,
        )
        for a in found
    ]
    done = await drift.apply_alerts(session, config=config, alerts=alerts, now=clock.now())
    return AlertsOut(
        received=len(payload.get("alerts") or []),
        opened=done.opened,
        changed=done.changed,
        resolved=done.resolved,
        skipped=[*skipped, *done.skipped],
    )
