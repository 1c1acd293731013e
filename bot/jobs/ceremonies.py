"""Holding what is due: each occurrence is claimed in ceremony_run and, in the same transaction, the
notifier queues what it says. A claim that exists already means another process (or an earlier run)
did it. What a reminder, nudge or summary says lives in bot/notify/ceremonies.py."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import AppConfig, Team
from bot.integrations.slack_directory import SlackDirectory
from bot.notify import Notifier
from bot.services import events, sprints, standups
from bot.services.errors import Invalid, NotFound
from bot.services.schedule import Occasion, grace, occasions, on_week
from bot.services.teams import people
from bot.store.db import unit_of_work
from bot.store.models import CeremonyRun, OccasionSeen
from bot.store.queries import insert_ignore

log = logging.getLogger(__name__)
LOOKBACK = timedelta(hours=26)  # how far back a start looks for runs it missed
_JUST_NOW = timedelta(seconds=1)  # an occasion's very first look includes what is due this second


@dataclass
class CeremonyJobs:
    config: AppConfig
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    notifier: Notifier
    directory: SlackDirectory | None = None
    instance: str = f"{socket.gethostname()}:{os.getpid()}"

    async def run_due(self, now: datetime | None = None, *, team: str | None = None) -> list[CeremonyRun]:
        """Claim and run every occurrence due by `now` that nobody has run; returns the runs this call made."""
        now = now or self.clock.now()
        made: list[CeremonyRun] = []
        for t in self.config.teams:
            if team is None or t.name == team:
                made += await self._run_team(t, now)
        return made

    async def run_now(self, team_name: str, kind: str) -> CeremonyRun | None:
        """Run one of a team's occasions (a ceremony, a nudge round, a standup summary) as if it were due
        this moment: the sandbox's "fire now". None if this moment was claimed already."""
        team = self.config.team(team_name)
        if team is None:
            raise NotFound(f"There is no team {team_name!r}.", field="team")
        occ = next((o for o in occasions(self.config, team) if o.kind == kind), None)
        if occ is None:
            known = ", ".join(o.kind for o in occasions(self.config, team)) or "none"
            raise Invalid(f"Team {team.name} has no {kind!r}; it has: {known}.", field="kind")
        now = self.clock.now()
        return await self._run_one(team, occ, now, now - occ.offset, now)

    async def _run_team(self, team: Team, now: datetime) -> list[CeremonyRun]:
        occs = occasions(self.config, team)
        if not occs:
            return []
        async with unit_of_work(self.sessions) as session:
            seen = dict(
                (
                    await session.exec(
                        select(OccasionSeen.kind, OccasionSeen.since).where(OccasionSeen.team == team.name)
                    )
                ).all()
            )
            for occ in occs:
                if occ.kind not in seen:
                    await insert_ignore(
                        session, OccasionSeen, {"team": team.name, "kind": occ.kind, "since": now}
                    )
                    seen[occ.kind] = now
            anchor = await sprints.anchor(session, team)
            # Look back for runs missed while no clock ran, but not to before the clock first knew of the
            # occasion: what was scheduled before it was in the configuration was never missed.
            starts = {kind: max(now - LOOKBACK, first - _JUST_NOW) for kind, first in seen.items()}
            since = min(starts[o.kind] for o in occs)
            claimed = set(
                (
                    await session.exec(
                        select(CeremonyRun.ceremony, CeremonyRun.scheduled_for).where(
                            CeremonyRun.team == team.name, CeremonyRun.scheduled_for > since
                        )
                    )
                ).all()
            )
        due = sorted(
            (
                (at, base, occ)
                for occ in occs
                for at, base in occ.fire_times(starts[occ.kind], now)
                if (occ.kind, at) not in claimed
                and on_week(occ.ceremony_name, occ.ceremony, base.astimezone(occ.tz).date(), anchor)
            ),
            key=lambda item: (item[0], item[2].kind),
        )
        made = []
        for at, base, occ in due:
            try:
                run = await self._run_one(team, occ, at, base, now)
            except Exception:  # e.g. a broken template: nothing was claimed, so the next tick retries it
                log.exception("%s %s at %s failed; will retry", team.name, occ.kind, at.isoformat())
                continue
            if run is not None:
                made.append(run)
        return made

    async def _run_one(
        self, team: Team, occ: Occasion, at: datetime, base: datetime, now: datetime
    ) -> CeremonyRun | None:
        status, note = "done", None
        window = grace(self.config, occ.ceremony)
        local_day = base.astimezone(occ.tz).date()
        if now - at > window:
            status, note = (
                "missed",
                f"missed by {_minutes(now - at)} min, outside the {_minutes(window)} min grace window",
            )
        elif local_day in team.holidays:
            status, note = "skipped", f"team holiday {local_day}"
        zones: dict[str, str] = {}
        if status == "done" and occ.kind == "standup" and occ.ceremony.dm_local_time and self.directory:
            async with unit_of_work(self.sessions) as session:
                subscribers = [m.user_id for m in await standups.dm_subscribers(session, people(team))]
            found = await self.directory.timezones(subscribers, occ.tz)  # a Web API read: no transaction open
            zones = {user: zone.key for user, zone in found.items()}
        async with self.notifier.transaction() as session:
            claim = {
                "team": team.name,
                "ceremony": occ.kind,
                "scheduled_for": at,
                "status": status,
                "note": note,
            }
            if not await insert_ignore(
                session, CeremonyRun, {**claim, "claimed_by": self.instance, "claimed_at": now}
            ):
                return None  # another process (or an earlier tick) has it
            run = (
                await session.exec(
                    select(CeremonyRun).where(
                        CeremonyRun.team == team.name,
                        CeremonyRun.ceremony == occ.kind,
                        CeremonyRun.scheduled_for == at,
                    )
                )
            ).one()
            if status == "done" and run.id is not None:
                events.record(session, events.CeremonyDue(run.id, now, tuple(sorted(zones.items()))))
        level = logging.WARNING if status == "missed" else logging.INFO
        outcome = f"skipped: {note}" if status != "done" else "ran" + (f" ({run.note})" if run.note else "")
        log.log(level, "%s %s at %s %s", team.name, occ.kind, at.isoformat(), outcome)
        return run


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)
