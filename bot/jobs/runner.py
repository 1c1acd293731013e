"""The clock: APScheduler jobs built from config, the catch-up on start, and the outbox worker loop."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import AppConfig, Settings
from bot.integrations.slack_anchors import anchors_in
from bot.jobs import outbox_worker
from bot.jobs.ceremonies import CeremonyJobs
from bot.jobs.drift import DriftJobs
from bot.jobs.governance import GovernanceJobs
from bot.jobs.mlflow_sync import MlflowSync
from bot.jobs.outbox_worker import OutboxWorker, Stats
from bot.metrics import Metrics, Snapshot
from bot.notify import Notifier
from bot.notify.audit import anchor_channels
from bot.notify.templates import Renderer
from bot.services import audit, drift
from bot.services.schedule import Occasion, grace, occasions
from bot.store.db import unit_of_work
from bot.store.slack_events import forget_before
from bot.text import plural

log = logging.getLogger(__name__)
OUTBOX_STATES = ("pending", "sending", "sent", "dead")
SWEEP = timedelta(minutes=5)  # also look for due work this often, in case a wake-up was missed
ANCHOR_EVERY = timedelta(hours=6)  # post the audit log's head to the governance channels this often
EVENT_MEMORY = timedelta(days=2)  # how long handled Events API ids are kept for deduplication


class OccasionTrigger(BaseTrigger):
    """Fires at an occasion's times: the ceremony's cron in the team's zone, shifted by the offset
    (a nudge 24 h before planning, a summary 2 h after standup)."""

    def __init__(self, occasion: Occasion) -> None:
        self.occasion = occasion

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        after = previous_fire_time or (now - timedelta(microseconds=1))
        return self.occasion.next_fire(after.astimezone(UTC))

    def __str__(self) -> str:
        o = self.occasion
        return f"{o.team.name}/{o.kind} cron[{o.ceremony.cron}] {o.tz.key} offset {o.offset}"


class Runner:
    """Everything `cadence clock` runs (and `cadence serve` unless --no-scheduler)."""

    def __init__(
        self,
        jobs: CeremonyJobs,
        worker: OutboxWorker,
        *,
        governance: GovernanceJobs | None = None,
        mlflow: MlflowSync | None = None,
        drift: DriftJobs | None = None,
        slack: AsyncWebClient | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.jobs = jobs
        self.worker = worker
        self.metrics = metrics
        self.governance = governance
        self.mlflow = mlflow
        self.drift = drift
        self.slack = slack  # reads the audit heads back (check_audit)
        self.notifier = jobs.notifier
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._stop = asyncio.Event()
        self._worker_task: asyncio.Task[None] | None = None
        if metrics is not None:
            worker.on_sent = metrics.delivery.observe
            metrics.deliveries = self._deliveries
            self.scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)

    def _submitted(self, event: JobSubmissionEvent) -> None:
        """How late each job started, against the time it was due (the last, when runs were coalesced)."""
        if self.metrics is not None and event.scheduled_run_times:
            late = datetime.now(UTC) - max(event.scheduled_run_times)
            self.metrics.lag.observe(max(0.0, late.total_seconds()))

    async def snapshot(self, session: AsyncSession, ingested: Any = None) -> Snapshot:
        """What /metrics reads from the database and this process's worker for one scrape."""
        states = await outbox_worker.counts(session)
        oldest = await outbox_worker.oldest_waiting(session)
        open_incidents = await drift.open_counts(session)
        return Snapshot(
            outbox={s: states.get(s, 0) for s in OUTBOX_STATES},
            outbox_oldest_seconds=(self.jobs.clock.now() - oldest).total_seconds() if oldest else 0.0,
            open_incidents=dict(open_incidents),
            readings={
                "received": ingested.received if ingested else 0,
                "stored": ingested.stored if ingested else 0,
            },
        )

    def _deliveries(self) -> dict[str, int]:
        """The worker's tally by outcome, every counter of its Stats (their names are the labels)."""
        return {f.name: getattr(self.worker.stats, f.name) for f in fields(Stats) if f.type == "int"}

    async def keep_metrics_fresh(self, every: float = 15.0) -> None:
        """For `cadence clock --metrics-port`, whose /metrics (prometheus-client's own server) shows the
        last snapshot: one now, then one every `every` seconds."""
        await self.refresh_metrics()
        self.scheduler.add_job(
            self.refresh_metrics,
            IntervalTrigger(seconds=every),
            id="metrics",
            name="metrics",
            coalesce=True,
            max_instances=1,
        )

    async def refresh_metrics(self) -> None:
        """The figures /metrics shows, read again (see keep_metrics_fresh)."""
        if self.metrics is None:
            return
        try:
            async with unit_of_work(self.jobs.sessions) as session:
                self.metrics.snapshot = await self.snapshot(session)
        except Exception:  # the next refresh tries again; the page keeps the last figures
            log.exception("reading the figures for /metrics failed")

    def build(self) -> AsyncIOScheduler:
        config = self.jobs.config
        for team in config.teams:
            for occ in occasions(config, team):
                self.scheduler.add_job(
                    self._tick,
                    trigger=OccasionTrigger(occ),
                    kwargs={"team": team.name},
                    id=f"{team.name}:{occ.kind}",
                    name=f"{team.name} {occ.kind}",
                    misfire_grace_time=int(grace(config, occ.ceremony).total_seconds()) or 1,
                    coalesce=True,
                    max_instances=1,
                    replace_existing=True,
                )
        self.scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=SWEEP.total_seconds()),
            id="sweep",
            name="sweep",
            coalesce=True,
            max_instances=1,
        )
        if self.mlflow is not None:
            self.scheduler.add_job(
                self.mlflow.tick,
                IntervalTrigger(minutes=self.mlflow.mlflow.poll_minutes),
                id="mlflow",
                name="mlflow sync",
                coalesce=True,
                max_instances=1,
            )
        if anchor_channels(config):
            self.scheduler.add_job(
                self.anchor_audit,
                IntervalTrigger(seconds=ANCHOR_EVERY.total_seconds()),
                id="audit-anchor",
                name="audit log head to the governance channels",
                coalesce=True,
                max_instances=1,
            )
        self.scheduler.add_job(
            self.prune_outbox,
            IntervalTrigger(hours=6),
            id="outbox-prune",
            name="sent messages retention",
            coalesce=True,
            max_instances=1,
        )
        if self.drift is not None:
            self.scheduler.add_job(
                self.drift.prune,
                IntervalTrigger(hours=6),
                id="drift-prune",
                name="drift readings retention",
                coalesce=True,
                max_instances=1,
            )
        return self.scheduler

    async def _tick(self, team: str | None = None) -> None:
        try:
            await self.jobs.run_due(team=team)
            if team is None:
                if self.governance is not None:
                    await self.governance.remind_overdue()
                if self.drift is not None:
                    await self.drift.remind_unacknowledged()
                async with unit_of_work(self.jobs.sessions) as session:
                    await forget_before(session, self.jobs.clock.now() - EVENT_MEMORY)
        except Exception:  # a failed round is retried by the next wake-up; never kill the scheduler
            log.exception("running due ceremonies failed")

    async def prune_outbox(self) -> int:
        """Delete sent messages past outbox.keep_sent_days; the number deleted."""
        days = self.jobs.config.outbox.keep_sent_days
        try:
            async with unit_of_work(self.jobs.sessions) as session:
                deleted = await outbox_worker.prune_sent(
                    session, self.jobs.clock.now() - timedelta(days=days)
                )
        except Exception:  # the next interval tries again
            log.exception("pruning sent messages failed")
            return 0
        if deleted:
            log.info("deleted %d sent messages older than %d days", deleted, days)
        return deleted

    async def anchor_audit(self) -> None:
        """Hold the log against the heads posted so far (alerting the governance channels when it does
        not match), then post its head (once per head: see audit.anchor), unless it did not match: a
        changed log is not vouched for."""
        try:
            if not await self.check_audit():
                return
            async with self.notifier.transaction() as session:
                await audit.anchor(session)
        except Exception:  # the next interval tries again
            log.exception("anchoring the audit log failed")

    async def check_audit(self) -> bool:
        """What `cadence audit verify --against-slack` does, on the clock: a mismatch is posted to the
        governance channels (audit.report_check). True when the log matches."""
        anchors = await anchors_in(self.slack, anchor_channels(self.jobs.config)) if self.slack else []
        async with self.notifier.transaction() as session:
            result = await audit.verify(session)
            if result.ok:
                result = await audit.against_anchors(session, anchors)
            audit.report_check(session, result)
        return result.ok

    async def sweep(self) -> None:
        """Run everything due now, as the scheduler's periodic sweep does (the sandbox's clock jumps)."""
        await self._tick()

    async def start(self) -> None:
        await self._tick()  # catch up on anything missed while no clock was running
        self.build().start()
        self._log_schedule()
        self._worker_task = asyncio.create_task(self.worker.run_forever(self._stop), name="outbox worker")

    def _log_schedule(self) -> None:
        """One line per team at INFO (a clock with 300 teams starts quietly); every job at DEBUG."""
        by_team: dict[str, list[Any]] = {}
        for job in self.scheduler.get_jobs():
            log.debug("scheduled %s, next at %s", job.name, job.next_run_time)
            by_team.setdefault(job.id.split(":")[0] if ":" in job.id else "", []).append(job)
        for team, jobs in sorted(by_team.items()):
            first = min(jobs, key=lambda j: j.next_run_time)
            if team:
                log.info(
                    "team %s: %s scheduled; next %s at %s",
                    team,
                    plural(len(jobs), "occasion"),
                    first.name.removeprefix(f"{team} "),
                    first.next_run_time,
                )
            else:
                log.info("clock: %s", ", ".join(sorted(j.name for j in jobs)))

    async def stop(self) -> None:
        self._stop.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._worker_task is not None:
            await self._worker_task


def build_clock(
    *,
    config: AppConfig,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    slack: AsyncWebClient,
    metrics: Metrics | None = None,
) -> Runner:
    """Everything the clock runs, wired from configuration: `cadence clock` and `cadence serve` share it.
    `slack` is the client the directory reads time zones with; delivery gets its own client."""
    from bot.integrations.mlflow import MlflowClient
    from bot.integrations.slack_directory import SlackDirectory
    from bot.jobs.outbox_worker import delivery_client

    notifier = Notifier(
        config=config, sessions=sessions, renderer=Renderer(config.templates_dir), clock=clock
    )
    jobs = CeremonyJobs(
        config=config,
        sessions=sessions,
        clock=clock,
        notifier=notifier,
        directory=SlackDirectory(slack, sessions, clock),
    )
    worker = OutboxWorker(
        sessions,
        delivery_client(settings.slack_bot_token, settings.slack_api_url),
        clock=clock,
        settings=config.outbox,
    )
    sync = None
    if config.mlflow is not None:
        client = MlflowClient(
            config.mlflow.tracking_uri,
            token=settings.mlflow_token or None,
            timeout=config.mlflow.timeout_seconds,
        )
        sync = MlflowSync(config=config, notifier=notifier, client=client, clock=clock)
    return Runner(
        jobs,
        worker,
        governance=GovernanceJobs(config=config, notifier=notifier, clock=clock),
        mlflow=sync,
        drift=DriftJobs(config=config, notifier=notifier, clock=clock),
        slack=slack,
        metrics=metrics,
    )
