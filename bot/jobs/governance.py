"""Governance on the clock: claim the one reminder of each review pending past its SLA. What the
reminder says is the notifier's (bot/notify/governance.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.clock import Clock
from bot.config import AppConfig
from bot.notify import Notifier
from bot.services import governance
from bot.store.models import Review

log = logging.getLogger(__name__)


@dataclass
class GovernanceJobs:
    config: AppConfig
    notifier: Notifier
    clock: Clock

    async def remind_overdue(self, now: datetime | None = None) -> list[Review]:
        """One reminder per review pending past its SLA, in the request's thread."""
        now = now or self.clock.now()
        reminded = []
        async with self.notifier.transaction() as session:
            for review in await governance.overdue(session, config=self.config, now=now):
                if await governance.mark_reminded(session, review, now):
                    reminded.append(review)
        for review in reminded:
            log.info("reminded approvers of %s", review.key)
        return reminded
