"""Drift on the clock: claim the reminder of each incident nobody acknowledged in time, and delete
readings past their retention. What a reminder says is the notifier's (bot/notify/drift.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.clock import Clock
from bot.config import AppConfig
from bot.notify import Notifier
from bot.services import drift
from bot.store.models import DriftIncident

log = logging.getLogger(__name__)


@dataclass
class DriftJobs:
    config: AppConfig
    notifier: Notifier
    clock: Clock

    async def remind_unacknowledged(self, now: datetime | None = None) -> list[DriftIncident]:
        """One reminder per overdue incident, never more often than `repeat_interval_hours`."""
        now = now or self.clock.now()
        reminded = []
        async with self.notifier.transaction() as session:
            for incident in await drift.overdue(session, now=now):
                if await drift.mark_reminded(session, config=self.config, incident=incident, now=now):
                    reminded.append(incident)
        for incident in reminded:
            log.info("reminded the leads of team %s of %s", incident.team, incident.key)
        return reminded

    async def prune(self, now: datetime | None = None) -> int:
        async with self.notifier.transaction() as session:
            deleted = await drift.prune(session, config=self.config, now=now or self.clock.now())
        if deleted:
            log.info("deleted %d drift readings past their retention", deleted)
        return deleted
