"""MLflow sync: tagged runs flow into experiments (status and metrics), model promotions open reviews.

Runs are matched by tag: `cadence.experiment = E-3` updates E-3; `cadence.story = S-4` alone creates
(once) an experiment for that run on S-4, named after the run, with its primary metric from
`cadence.metric` (else the first metric logged) and `cadence.baseline` / `cadence.target` if given.
A model version that holds a configured alias or stage, or is tagged `cadence.propose = <alias>`,
opens a governance review for the model's team, once per model, version and alias or stage."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import AppConfig, MlflowModel
from bot.integrations.mlflow import MlflowClient, MlflowError, ModelVersion, Run
from bot.notify import Notifier
from bot.services import experiments, governance, stories
from bot.services.errors import CadenceError
from bot.store.models import Experiment

log = logging.getLogger(__name__)
ACTOR = "mlflow"
EXPERIMENT_TAG, STORY_TAG, PROPOSE_TAG = "cadence.experiment", "cadence.story", "cadence.propose"
MAX_BACKOFF = timedelta(hours=1)


@dataclass
class SyncReport:
    runs: int = 0
    experiments_changed: list[str] = field(default_factory=list)
    reviews_opened: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _status_for(run: Run, exp: Experiment) -> str | None:
    """What a run's state says about the experiment; None when it says nothing yet."""
    if run.status in ("RUNNING", "SCHEDULED"):
        return "running"
    if run.status == "FAILED":
        return "failed"
    if run.status == "KILLED":
        return "abandoned"
    if run.status == "FINISHED" and exp.metric in run.metrics and exp.target is not None:
        value = run.metrics[exp.metric]
        meets = value >= exp.target if exp.higher_is_better else value <= exp.target
        return "succeeded" if meets else "failed"
    return "running" if run.status == "FINISHED" else None


def _float_tag(run: Run, key: str) -> float | None:
    try:
        return float(run.tags[key]) if key in run.tags else None
    except ValueError:
        return None


class MlflowSync:
    def __init__(
        self,
        *,
        config: AppConfig,
        notifier: Notifier,
        client: MlflowClient,
        clock: Clock,
    ) -> None:
        assert config.mlflow is not None
        self.config = config
        self.mlflow = config.mlflow
        self.notifier = notifier
        self.client = client
        self.clock = clock
        self.failures = 0
        self.retry_at: datetime | None = None

    async def tick(self) -> SyncReport | None:
        """One poll for the scheduler: errors are logged and backed off, never raised."""
        now = self.clock.now()
        if self.retry_at is not None and now < self.retry_at:
            return None
        try:
            report = await self.sync_once()
        except Exception as exc:  # MLflow or a database blip: back off and log, never kill the scheduler
            if not isinstance(exc, MlflowError):
                log.exception("MLflow sync failed unexpectedly")
            self.failures += 1
            doublings = min(self.failures - 1, 16)  # enough to reach the cap; more would overflow timedelta
            wait = min(MAX_BACKOFF, timedelta(minutes=self.mlflow.poll_minutes) * 2**doublings)
            self.retry_at = now + wait
            log.warning("MLflow sync failed (%s); next try in %s", exc, wait)
            return None
        self.failures, self.retry_at = 0, None
        if report.experiments_changed or report.reviews_opened:
            log.info("MLflow sync: %s", report)
        return report

    async def sync_once(self) -> SyncReport:
        report = SyncReport()
        ids = await self.client.experiment_ids(self.mlflow.experiments)
        if ids:
            runs = await self.client.search_runs(ids, f"tags.`{EXPERIMENT_TAG}` LIKE 'E-%'")
            runs += await self.client.search_runs(ids, f"tags.`{STORY_TAG}` LIKE 'S-%'")
            seen: set[str] = set()
            for run in reversed(runs):  # oldest first, so the newest run has the last word
                if run.run_id in seen:
                    continue
                seen.add(run.run_id)
                report.runs += 1
                await self._apply_run(run, report)
        for model in self.mlflow.models:
            for version in await self.client.model_versions(model.name):
                await self._apply_version(model, version, report)
        return report

    async def _apply_run(self, run: Run, report: SyncReport) -> None:
        try:
            async with self.notifier.transaction() as session:
                exp = await self._experiment_for(session, run)
                if exp is None:
                    return
                changed = False
                if exp.mlflow_run_id is None:
                    exp.mlflow_run_id = run.run_id
                    changed = True
                latest = {
                    r.metric: r.value
                    for r in await experiments.results(session, exp)
                    if r.run_id == run.run_id
                }
                # A diverged run logs NaN; keep the metrics that are numbers rather than refuse them all.
                fresh = {
                    k: v
                    for k, v in run.metrics.items()
                    if math.isfinite(v) and experiments.is_metric_name(k) and latest.get(k) != v
                }
                if fresh:
                    await experiments.record_results(
                        session,
                        config=self.config,
                        experiment=exp,
                        metrics=fresh,
                        actor=ACTOR,
                        source="mlflow",
                        run_id=run.run_id,
                    )
                    changed = True
                status = _status_for(run, exp)
                if status and status != exp.status and status in experiments.NEXT.get(exp.status, ()):
                    _, review = await governance.report_status(
                        session,
                        config=self.config,
                        experiment=exp,
                        status=status,
                        actor=ACTOR,
                        reason=f"MLflow run {run.run_id} {run.status}",
                        now=self.clock.now(),
                    )
                    if review is not None:
                        report.reviews_opened.append(review.key)
                    changed = True
                if changed:
                    session.add(exp)
                    report.experiments_changed.append(exp.key)
        except CadenceError as exc:  # a run pointing at a missing story or experiment: report it, go on
            report.skipped.append(f"run {run.run_id}: {exc.message}")
            log.warning("MLflow run %s skipped: %s", run.run_id, exc.message)

    async def _experiment_for(self, session: AsyncSession, run: Run) -> Experiment | None:
        if EXPERIMENT_TAG in run.tags:
            return await experiments.get_experiment(session, run.tags[EXPERIMENT_TAG])
        external_id = f"mlflow:{run.run_id}"
        existing = await experiments.find_external(session, external_id)
        if existing is not None:
            return existing
        story = await stories.get_story(session, run.tags[STORY_TAG])
        metric = run.tags.get("cadence.metric") or next(iter(sorted(run.metrics)), None)
        url = f"{self.mlflow.tracking_uri.rstrip('/')}/#/experiments/{run.experiment_id}/runs/{run.run_id}"
        return await experiments.add_experiment(
            session,
            config=self.config,
            story=story,
            name=run.name or f"MLflow run {run.run_id[:8]}",
            actor=ACTOR,
            metric=metric,
            baseline=_float_tag(run, "cadence.baseline"),
            target=_float_tag(run, "cadence.target"),
            higher_is_better=run.tags.get("cadence.direction", "higher") != "lower",
            external_id=external_id,
            mlflow_run_id=run.run_id,
            links={"mlflow": url},
        )

    async def _apply_version(self, model: MlflowModel, version: ModelVersion, report: SyncReport) -> None:
        targets = [a for a in version.aliases if a in model.aliases]
        targets += [s for s in [version.stage] if s in model.stages]
        proposed = version.tags.get(PROPOSE_TAG, "")[:100]  # a tag anyone can set: keep it short
        if proposed and proposed not in targets:
            targets.append(proposed)
        for target in targets:
            key = f"mlflow:{model.name}:{target}:v{version.version}"
            try:
                async with self.notifier.transaction() as session:
                    exp = await experiments.find_by_run(session, version.run_id) if version.run_id else None
                    review, created = await governance.request_review(
                        session,
                        config=self.config,
                        team=model.team,
                        purpose=model.purpose,
                        actor=ACTOR,
                        source="mlflow",
                        experiment=exp if exp is not None and exp.team == model.team else None,
                        subject=f"{model.name} v{version.version} → {target}",
                        source_key=key,
                        now=self.clock.now(),
                    )
                    if created:
                        report.reviews_opened.append(review.key)
            except CadenceError as exc:
                report.skipped.append(f"{key}: {exc.message}")
                log.warning("MLflow model version %s skipped: %s", key, exc.message)
