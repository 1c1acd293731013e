"""Experiments (E-n): hypothesis, primary metric against baseline and target, status and results."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig
from bot.services import audit
from bot.services.errors import Conflict, Invalid, NotFound
from bot.services.teams import require_member
from bot.store.models import Experiment, ExperimentResult, Story
from bot.store.queries import insert_ignore, lock_name, next_number
from bot.store.types import utcnow

STATUSES = ("proposed", "running", "succeeded", "failed", "abandoned")
FINAL = ("succeeded", "failed", "abandoned")
NEXT: dict[str, tuple[str, ...]] = {
    "proposed": ("running", "succeeded", "failed", "abandoned"),
    "running": ("succeeded", "failed", "abandoned"),
}
MAX_NAME = 200
MAX_TEXT = 2000
_KEY = re.compile(r"^[Ee]-?(\d{1,9})$")
_METRIC = re.compile(r"^[A-Za-z][A-Za-z0-9_.:/-]{0,99}$")
LINK_KINDS = ("mlflow", "dashboard", "notebook", "doc")


def parse_experiment_key(text: str) -> int:
    match = _KEY.match(text.strip())
    if not match:
        raise Invalid(f"{text!r} is not an experiment id; experiment ids look like E-3.")
    return int(match.group(1))


def is_metric_name(name: str) -> bool:
    return bool(_METRIC.match(name))


def check_metric_name(name: str, *, field: str = "metric") -> str:
    if not _METRIC.match(name):
        raise Invalid(
            f"{name!r} is not a metric name (letters, digits and _ . : / -, up to 100).", field=field
        )
    return name


def check_number(value: float, *, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(f"{field} must be a finite number.", field=field)
    return float(value)


def check_links(links: dict[str, str]) -> dict[str, str]:
    for kind, url in links.items():
        if kind not in LINK_KINDS:
            raise Invalid(f"Unknown link {kind!r}; use one of {', '.join(LINK_KINDS)}.", field="links")
        if not re.match(r"^https?://[^\s<>|]{1,2000}$", url):
            raise Invalid(f"The {kind} link must be an http(s) URL (no spaces, <, > or |).", field="links")
    return links


async def add_experiment(
    session: AsyncSession,
    *,
    config: AppConfig,
    story: Story,
    name: str,
    actor: str,
    hypothesis: str = "",
    metric: str | None = None,
    baseline: float | None = None,
    target: float | None = None,
    higher_is_better: bool = True,
    owner: str | None = None,
    external_id: str | None = None,
    mlflow_run_id: str | None = None,
    links: dict[str, str] | None = None,
) -> Experiment:
    name = " ".join(name.split())
    if not name:
        raise Invalid("An experiment needs a name.", field="name")
    if len(name) > MAX_NAME:
        raise Invalid(f"The name is {len(name)} characters long; keep it to {MAX_NAME}.", field="name")
    if len(hypothesis) > MAX_TEXT:
        raise Invalid(f"Keep the hypothesis to {MAX_TEXT} characters.", field="hypothesis")
    require_member(config, story.team, actor, doing=f"add experiments to {story.key}")
    if story.status == "done":
        raise Conflict(f"{story.key} is done; add the experiment to an open story.")
    experiment = Experiment(
        number=await next_number(session, "E"),
        story_id=story.id,  # type: ignore[arg-type]
        team=story.team,
        name=name,
        hypothesis=hypothesis.strip(),
        metric=check_metric_name(metric) if metric else None,
        higher_is_better=higher_is_better,
        baseline=check_number(baseline, field="baseline") if baseline is not None else None,
        target=check_number(target, field="target") if target is not None else None,
        owner=owner or story.owner,
        external_id=external_id,
        mlflow_run_id=mlflow_run_id,
        links=json.dumps(check_links(links or {}), sort_keys=True),
        created_by=actor,
    )
    session.add(experiment)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="experiment.add",
        subject=experiment.key,
        payload={
            "story": story.key,
            "name": experiment.name,
            "metric": experiment.metric,
            "baseline": experiment.baseline,
            "target": experiment.target,
        },
    )
    return experiment


async def get_experiment(session: AsyncSession, key: str) -> Experiment:
    number = parse_experiment_key(key)
    found = (await session.exec(select(Experiment).where(Experiment.number == number))).first()
    if found is None:
        raise NotFound(f"There is no experiment E-{number}.")
    return found


async def story_of(session: AsyncSession, experiment: Experiment) -> Story:
    story = await session.get(Story, experiment.story_id)
    if story is None:  # the foreign key makes this impossible; say so plainly if it ever happens
        raise NotFound(f"The story of {experiment.key} no longer exists.")
    return story


async def find_by_run(session: AsyncSession, run_id: str) -> Experiment | None:
    """The experiment an MLflow run belongs to: its own run, or a run it has results from."""
    found = (await session.exec(select(Experiment).where(Experiment.mlflow_run_id == run_id))).first()
    if found is None:
        found = (
            await session.exec(
                select(Experiment)
                .join(ExperimentResult, col(ExperimentResult.experiment_id) == col(Experiment.id))
                .where(ExperimentResult.run_id == run_id)
            )
        ).first()
    return found


async def find_external(session: AsyncSession, external_id: str) -> Experiment | None:
    return (await session.exec(select(Experiment).where(Experiment.external_id == external_id))).first()


async def upsert_external(
    session: AsyncSession,
    *,
    config: AppConfig,
    external_id: str,
    story: Story,
    name: str,
    actor: str,
    hypothesis: str | None = None,
    metric: str | None = None,
    baseline: float | None = None,
    target: float | None = None,
    higher_is_better: bool | None = None,
    owner: str | None = None,
    mlflow_run_id: str | None = None,
    links: dict[str, str] | None = None,
) -> tuple[Experiment, bool]:
    """The experiment a pipeline knows by `external_id`, and whether this created it: a new id adds
    it to `story`; a known one gets the reported fields. None means "not reported", so an update
    keeps what it leaves out. An experiment cannot move between stories. Two reports of a new id at once
    (two replicas) are serialised: the second finds what the first created."""
    await lock_name(session, f"experiment:{external_id}")
    experiment = await find_external(session, external_id)
    if experiment is None:
        experiment = await add_experiment(
            session,
            config=config,
            story=story,
            name=name,
            actor=actor,
            hypothesis=hypothesis or "",
            metric=metric,
            baseline=baseline,
            target=target,
            higher_is_better=True if higher_is_better is None else higher_is_better,
            owner=owner,
            external_id=external_id,
            mlflow_run_id=mlflow_run_id,
            links=links,
        )
        return experiment, True
    if experiment.story_id != story.id:
        raise Conflict(
            f"{experiment.key} belongs to another story; an experiment cannot move between stories."
        )
    reported = {
        "name": name,
        "hypothesis": hypothesis,
        "metric": metric,
        "baseline": baseline,
        "target": target,
        "higher_is_better": higher_is_better,
        "owner": owner,
        "mlflow_run_id": mlflow_run_id,
    }
    update_fields(experiment, {k: v for k, v in reported.items() if v is not None}, links=links or {})
    return experiment, False


async def list_experiments(
    session: AsyncSession, *, team: str, story: Story | None = None, status: str | None = None
) -> list[Experiment]:
    stmt = select(Experiment).where(Experiment.team == team).order_by(col(Experiment.number))
    if story is not None:
        stmt = stmt.where(Experiment.story_id == story.id)
    if status is not None:
        if status not in STATUSES:
            raise Invalid(f"{status!r} is not a status; use one of {', '.join(STATUSES)}.", field="status")
        stmt = stmt.where(Experiment.status == status)
    return list((await session.exec(stmt)).all())


def check_transition(experiment: Experiment, status: str) -> None:
    if status not in STATUSES:
        raise Invalid(f"{status!r} is not a status; use one of {', '.join(STATUSES)}.", field="status")
    if status != experiment.status and status not in NEXT.get(experiment.status, ()):
        raise Conflict(
            f"{experiment.key} is {experiment.status}; it cannot become {status}"
            + (" (it is finished)." if experiment.status in FINAL else ".")
        )


async def set_status(
    session: AsyncSession,
    *,
    config: AppConfig,
    experiment: Experiment,
    status: str,
    actor: str,
    reason: str | None = None,
) -> bool:
    """Move an experiment along proposed → running → succeeded | failed | abandoned; True if it moved.
    The same status again changes nothing (reports from pipelines repeat)."""
    require_member(config, experiment.team, actor, doing=f"change {experiment.key}")
    check_transition(experiment, status)
    if status == experiment.status:
        return False
    if reason is not None and len(reason) > MAX_TEXT:
        raise Invalid(f"Keep the reason to {MAX_TEXT} characters.", field="reason")
    previous = experiment.status
    # Compare-and-set: a pipeline and MLflow reporting the same change at once move it (and audit it) once.
    moved = await session.exec(
        update(Experiment)
        .where(col(Experiment.id) == experiment.id, col(Experiment.status) == previous)
        .values(status=status, updated_at=utcnow())
    )
    await session.refresh(experiment)
    if moved.rowcount != 1:
        if experiment.status == status:
            return False
        raise Conflict(
            f"{experiment.key} changed to {experiment.status} a moment ago; it cannot become {status}."
        )
    await audit.record(
        session,
        actor=actor,
        action="experiment.status",
        subject=experiment.key,
        payload={"from": previous, "to": status, "reason": (reason or "").strip()},
    )
    await session.flush()
    return True


async def record_results(
    session: AsyncSession,
    *,
    config: AppConfig,
    experiment: Experiment,
    metrics: dict[str, float],
    actor: str,
    source: str,
    run_id: str = "",
) -> list[ExperimentResult]:
    """Store metric values from a run; a value reported again for the same run and metric replaces it.
    The values that are new or changed are audited (a report repeated as it was adds no row)."""
    require_member(config, experiment.team, actor, doing=f"record results of {experiment.key}")
    if not metrics:
        raise Invalid("Give at least one metric, e.g. auc=0.84.", field="metrics")
    if len(run_id) > 64:
        raise Invalid("A run id is at most 64 characters.", field="run_id")
    checked = {
        check_metric_name(k, field=f"metrics.{k}"): check_number(v, field=f"metrics.{k}")
        for k, v in metrics.items()
    }
    now = utcnow()
    this_run = (col(ExperimentResult.experiment_id) == experiment.id, col(ExperimentResult.run_id) == run_id)
    before = dict(
        (
            await session.exec(
                select(ExperimentResult.metric, ExperimentResult.value).where(
                    *this_run, col(ExperimentResult.metric).in_(list(checked))
                )
            )
        ).all()
    )
    for metric, value in checked.items():
        # Insert, or replace the value that is there: a pipeline retrying a report never fails on it.
        fields = {"value": value, "source": source, "recorded_by": actor, "recorded_at": now}
        keys = {"experiment_id": experiment.id, "metric": metric, "run_id": run_id}
        if not await insert_ignore(session, ExperimentResult, {**keys, **fields}):
            await session.exec(
                update(ExperimentResult)
                .where(*this_run, col(ExperimentResult.metric) == metric)
                .values(**fields)
            )
    experiment.updated_at = now
    session.add(experiment)
    await session.flush()
    changed = {m: v for m, v in checked.items() if before.get(m) != v}
    if changed:
        await audit.record(
            session,
            actor=actor,
            action="experiment.results",
            subject=experiment.key,
            payload={"metrics": changed, "run": run_id, "source": source},
            at=now,
        )
    rows = await session.exec(
        select(ExperimentResult)
        .where(*this_run, col(ExperimentResult.metric).in_(list(checked)))
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def results(session: AsyncSession, experiment: Experiment) -> list[ExperimentResult]:
    rows = await session.exec(
        select(ExperimentResult)
        .where(ExperimentResult.experiment_id == experiment.id)
        .order_by(col(ExperimentResult.recorded_at), col(ExperimentResult.id))
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


@dataclass(frozen=True)
class Evaluation:
    """The primary metric's latest value against the baseline and the target."""

    metric: str | None
    value: float | None
    baseline: float | None
    target: float | None
    higher_is_better: bool
    run_id: str = ""

    @property
    def delta(self) -> float | None:
        if self.value is None or self.baseline is None:
            return None
        return self.value - self.baseline

    @property
    def meets_target(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


def evaluate(experiment: Experiment, rows: list[ExperimentResult]) -> Evaluation:
    latest = next((r for r in reversed(rows) if r.metric == experiment.metric), None)
    return Evaluation(
        experiment.metric,
        latest.value if latest else None,
        experiment.baseline,
        experiment.target,
        experiment.higher_is_better,
        latest.run_id if latest else "",
    )


def links_of(experiment: Experiment) -> dict[str, Any]:
    return dict(json.loads(experiment.links or "{}"))


def update_fields(experiment: Experiment, fields: dict[str, Any], *, links: dict[str, str]) -> None:
    """Apply reported fields (name, hypothesis, metric, baseline, target, …) to an existing experiment."""
    if "name" in fields:
        name = " ".join(str(fields["name"]).split())
        if not name or len(name) > MAX_NAME:
            raise Invalid(f"An experiment name has 1 to {MAX_NAME} characters.", field="name")
        experiment.name = name
    if fields.get("metric") is not None:
        experiment.metric = check_metric_name(fields["metric"])
    for name in ("baseline", "target"):
        if fields.get(name) is not None:
            setattr(experiment, name, check_number(fields[name], field=name))
    for name in ("hypothesis", "higher_is_better", "owner", "mlflow_run_id"):
        if name in fields and fields[name] is not None:
            setattr(experiment, name, fields[name])
    if links:
        experiment.links = json.dumps({**links_of(experiment), **check_links(links)}, sort_keys=True)
    experiment.updated_at = utcnow()
