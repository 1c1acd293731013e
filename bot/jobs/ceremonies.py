"""Running what is due: each occurrence is claimed in ceremony_run, then its messages go to the outbox,
in one transaction. A claim that exists already means another process (or an earlier run) did it."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import AppConfig, Team
from bot.integrations.slack_directory import SlackDirectory
from bot.jobs.templates import Renderer
from bot.services import away, nudges, readiness, sprints, standups
from bot.services.nudges import ReadinessRound
from bot.services.readiness import Checklist
from bot.services.schedule import Occasion, grace, local_dm_time, occasions, on_week
from bot.services.stories import StoryFilter, page_of_stories
from bot.slack.blocks import ceremonies as messages
from bot.store import outbox
from bot.store.db import unit_of_work
from bot.store.models import CeremonyRun, Sprint, StandupAnswer, Story
from bot.store.queries import insert_ignore

log = logging.getLogger(__name__)
LOOKBACK = timedelta(hours=26)  # how far back a start looks for runs it missed
_JUST_NOW = timedelta(seconds=1)  # a team's very first look includes what is due this second
WORKING_DAYS = (0, 1, 2, 3, 4)


@dataclass
class Due:
    """One occurrence being run: which team and occasion, when it was due, and when it runs."""

    team: Team
    occ: Occasion
    at: datetime  # when this event is due (the ceremony time plus the occasion's offset), UTC
    base: datetime  # the ceremony's own time, UTC
    now: datetime
    zones: dict[str, ZoneInfo] = field(default_factory=dict)  # standup DM recipients' own zones

    @property
    def local_base(self) -> datetime:
        return self.base.astimezone(self.occ.tz)

    @property
    def local_day(self) -> date:
        return self.local_base.date()


async def _enqueue_for_run(
    session: AsyncSession, key: str, channel: str, payload: dict[str, Any]
) -> int | None:
    """Queue a run's channel message and return its outbox id (the run keeps it, to edit or thread)."""
    await outbox.enqueue(session, dedupe_key=key, channel=channel, payload=payload)
    queued = await outbox.find(session, key)
    return queued.id if queued else None


@dataclass
class CeremonyJobs:
    config: AppConfig
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    renderer: Renderer
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

    async def _run_team(self, team: Team, now: datetime) -> list[CeremonyRun]:
        occs = occasions(self.config, team)
        if not occs:
            return []
        async with unit_of_work(self.sessions) as session:
            first_run = (
                await session.exec(
                    select(func.min(CeremonyRun.scheduled_for)).where(CeremonyRun.team == team.name)
                )
            ).one()
            anchor = await _sprint_anchor(session, team)
            # Look back for runs missed while no clock ran, but not to before this team's first run:
            # what was scheduled before Cadence ran for the team was never missed.
            since = now - _JUST_NOW if first_run is None else max(now - LOOKBACK, first_run)
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
                for at, base in occ.fire_times(since, now)
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
        due = Due(team, occ, at, base, now)
        status, note = "done", None
        window = grace(self.config, occ.ceremony)
        if now - at > window:
            status, note = (
                "missed",
                f"missed by {_minutes(now - at)} min, outside the {_minutes(window)} min grace window",
            )
        elif due.local_day in team.holidays:
            status, note = "skipped", f"team holiday {due.local_day}"
        if status == "done" and occ.kind == "standup" and occ.ceremony.dm_local_time and self.directory:
            async with unit_of_work(self.sessions) as session:
                subscribers = [m.user_id for m in await standups.dm_subscribers(session, _people(team))]
            due.zones.update(
                await self.directory.timezones(subscribers, occ.tz)
            )  # a Web API read: no transaction open
        async with unit_of_work(self.sessions) as session:
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
            if status == "done":
                if occ.kind.startswith("planning_nudge_"):
                    await self._nudge(session, due, run)
                elif occ.kind == "standup_summary":
                    await self._standup_summary(session, due, run)
                else:
                    await self._reminder(session, due, run)
            session.add(run)
        level = logging.WARNING if status == "missed" else logging.INFO
        outcome = f"skipped: {note}" if status != "done" else "ran" + (f" ({run.note})" if run.note else "")
        log.log(level, "%s %s at %s %s", team.name, occ.kind, at.isoformat(), outcome)
        return run

    async def _reminder(self, session: AsyncSession, due: Due, run: CeremonyRun) -> None:
        team, occ = due.team, due.occ
        current = await sprints.current_sprint(session, team)
        ctx: dict[str, Any] = {
            "team": team.name,
            "ceremony": occ.kind,
            "when": due.local_base,
            "command": self.config.command,
            "sprint": await _sprint_facts(session, self.config, team, current, due.local_day)
            if current
            else None,
            "close_at": None,
            "plan": None,
            "not_ready": 0,
        }
        if occ.kind == "standup" and occ.ceremony.close_after_minutes:
            ctx["close_at"] = due.local_base + timedelta(minutes=occ.ceremony.close_after_minutes)
        if occ.kind == "planning":
            rr = await nudges.readiness_round(session, config=self.config, team=team)
            if rr is not None:
                ctx["plan"] = {"sprint": rr.sprint.name, "ready": rr.ready_count, "total": len(rr.stories)}
        if occ.kind == "refinement":
            filters = StoryFilter(not_ready=True)
            ctx["not_ready"] = (
                await page_of_stories(session, config=self.config, team=team, filters=filters)
            ).total
        text = self.renderer.render(f"ceremonies/{occ.kind}.md.j2", **ctx)
        standup_id = run.id if occ.kind == "standup" else None
        run.message_id = await _enqueue_for_run(
            session, f"run:{run.id}", team.channel, messages.reminder(text, standup_run_id=standup_id)
        )
        if occ.kind == "standup":
            await self._standup_dms(session, due, run, text)

    async def _standup_dms(self, session: AsyncSession, due: Due, run: CeremonyRun, text: str) -> None:
        subscribers = [m.user_id for m in await standups.dm_subscribers(session, _people(due.team))]
        gone = await away.away_on(session, subscribers, due.local_day)
        local_time = due.occ.ceremony.dm_local_time
        for user_id in subscribers:
            if user_id in gone:
                continue
            not_before = None
            if local_time:
                zone = due.zones.get(user_id, due.occ.tz)
                not_before = max(due.now, local_dm_time(local_time, due.local_day, zone))
            await outbox.enqueue(
                session,
                dedupe_key=f"run:{run.id}:dm:{user_id}",
                channel=user_id,
                payload=messages.reminder(text, standup_run_id=run.id),
                not_before=not_before,
            )

    async def _nudge(self, session: AsyncSession, due: Due, run: CeremonyRun) -> None:
        rr = await nudges.readiness_round(session, config=self.config, team=due.team)
        if rr is None:
            run.note = "no sprint to plan"
            return
        run.sprint_id = rr.sprint.id
        now = due.now.astimezone(due.occ.tz)
        gone = await away.away_on(session, list(rr.by_owner), now.date())
        for owner, items in rr.by_owner.items():
            if owner in gone:
                continue
            intro = self.renderer.render(
                "messages/nudge_dm.md.j2",
                sprint=rr.sprint.name,
                when=due.local_base,
                now=now,
                count=len(items),
            )
            await outbox.enqueue(
                session,
                dedupe_key=f"run:{run.id}:dm:{owner}",
                channel=owner,
                payload=messages.nudge_dm(intro, items),
            )
        payload = self.readiness_summary(rr, when=due.local_base, now=now, away=gone)
        run.message_id = await _enqueue_for_run(session, f"run:{run.id}", due.team.channel, payload)
        nudged = len([o for o in rr.by_owner if o not in gone])
        run.note = f"{rr.ready_count} of {len(rr.stories)} Ready; nudged {nudged}"

    def readiness_summary(
        self, rr: ReadinessRound, *, when: datetime, now: datetime, away: set[str]
    ) -> dict[str, Any]:
        text = self.renderer.render(
            "messages/readiness_summary.md.j2",
            sprint=rr.sprint.name,
            when=when,
            now=now,
            ready=rr.ready_count,
            total=len(rr.stories),
            waiting=[
                (o, [i.story.key for i in items]) for o, items in sorted(rr.by_owner.items()) if o not in away
            ],
            unowned=[i.story.key for i in rr.unowned],
            away=sorted(o for o in rr.by_owner if o in away),
        )
        return messages.plain(text)

    async def record_answers(
        self, session: AsyncSession, *, story: Story, kind: str, **answers: Any
    ) -> Checklist:
        """Record checklist answers (readiness.record_answers) and, for the Definition of Ready, keep
        the sprint's readiness summary in the team channel up to date: one call for every surface."""
        checklist = await readiness.record_answers(
            session, story=story, kind=kind, config=self.config, **answers
        )
        if kind == "ready":
            await self.refresh_readiness_summary(session, story)
        return checklist

    async def refresh_readiness_summary(self, session: AsyncSession, story: Story) -> bool:
        """After criteria change, edit the latest readiness summary of the story's sprint in place."""
        if story.sprint_id is None:
            return False
        team = self.config.team(story.team)
        run = (
            await session.exec(
                select(CeremonyRun)
                .where(
                    CeremonyRun.team == story.team,
                    col(CeremonyRun.ceremony).startswith("planning_nudge_"),
                    CeremonyRun.sprint_id == story.sprint_id,
                    col(CeremonyRun.message_id).is_not(None),
                )
                .order_by(col(CeremonyRun.scheduled_for).desc())
            )
        ).first()
        if team is None or run is None or run.message_id is None:
            return False
        sprint = await session.get(Sprint, story.sprint_id)
        rr = await nudges.readiness_round(session, config=self.config, team=team, sprint=sprint)
        if rr is None:
            return False
        tz = self.config.team_timezone(team)
        hours = int(run.ceremony.removeprefix("planning_nudge_").removesuffix("h"))
        when = (run.scheduled_for + timedelta(hours=hours)).astimezone(tz)
        now = self.clock.now().astimezone(tz)
        gone = await away.away_on(session, list(rr.by_owner), now.date())
        payload = self.readiness_summary(rr, when=when, now=now, away=gone)
        await outbox.edit(
            session,
            original=run.message_id,
            channel=team.channel,
            payload=payload,
            dedupe_key=f"update:{run.message_id}:{now.isoformat()}",
        )
        return True

    async def _standup_summary(self, session: AsyncSession, due: Due, run: CeremonyRun) -> None:
        team, base, local_day = due.team, due.base, due.local_day
        standup = (
            await session.exec(
                select(CeremonyRun).where(
                    CeremonyRun.team == team.name,
                    CeremonyRun.ceremony == "standup",
                    CeremonyRun.scheduled_for == base,
                )
            )
        ).first()
        if standup is None or standup.status != "done":
            run.note = "the standup itself did not run"
            return
        people = _people(team)
        gone = await away.away_on(session, people, local_day)
        summary = await standups.summarize(session, run=standup, expected=people, away=gone)
        text = self.renderer.render(
            "messages/standup_summary.md.j2",
            answered=[{"user": a.user_id, "today": a.today, "blockers": a.blockers} for a in summary.answers],
            missing=summary.missing,
            away=summary.away,
        )
        await outbox.enqueue(
            session,
            dedupe_key=f"run:{run.id}",
            channel=team.channel,
            payload={**messages.plain(text), "reply_broadcast": True},
            thread_of=standup.message_id,
        )
        run.note = f"{len(summary.answers)} answered, {len(summary.missing)} did not"


def _people(team: Team) -> list[str]:
    return list(dict.fromkeys([*team.members, *team.leads]))


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


async def _sprint_anchor(session: AsyncSession, team: Team) -> date | None:
    """The start of the current sprint, else of the latest one: every-N-weeks ceremonies follow it."""
    current = await sprints.current_sprint(session, team)
    if current is not None:
        return current.starts_on
    latest = (
        await session.exec(
            select(Sprint).where(Sprint.team == team.name).order_by(col(Sprint.starts_on).desc())
        )
    ).first()
    return latest.starts_on if latest else None


async def _sprint_facts(
    session: AsyncSession, config: AppConfig, team: Team, sprint: Sprint, today: date
) -> dict[str, Any]:
    view = await sprints.overview(session, config=config, team=team, sprint=sprint)
    days_left = sum(
        1
        for n in range((sprint.ends_on - today).days + 1)
        if (today + timedelta(days=n)).weekday() in WORKING_DAYS
    )
    return {
        "name": sprint.name,
        "goal": sprint.goal,
        "starts_on": sprint.starts_on,
        "ends_on": sprint.ends_on,
        "days_left": max(days_left, 0),
        "done": view.done_count,
        "total": len(view.stories),
        "points_done": view.points_done,
        "points_total": view.points_total,
    }


async def post_standup_answer(
    jobs: CeremonyJobs, session: AsyncSession, *, run: CeremonyRun, answer: StandupAnswer, first: bool
) -> None:
    """Put a person's answer in the standup thread; a changed answer edits their earlier reply."""
    team = jobs.config.team(run.team)
    if team is None:
        return
    closes = next((o for o in occasions(jobs.config, team) if o.kind == "standup_summary"), None)
    late = closes is not None and jobs.clock.now() > run.scheduled_for + closes.offset
    text = jobs.renderer.render(
        "messages/standup_answer.md.j2",
        user=answer.user_id,
        yesterday=answer.yesterday,
        today=answer.today,
        blockers=answer.blockers,
        links=answer.links,
        late=late,
    )
    payload = messages.plain(text)
    key = f"standup:{run.id}:{answer.user_id}"
    if first:
        await outbox.enqueue(
            session, dedupe_key=key, channel=team.channel, payload=payload, thread_of=run.message_id
        )
        return
    original = await outbox.find(session, key)
    if original is None:
        return
    await outbox.edit(
        session,
        original=original.id,  # type: ignore[arg-type]
        channel=team.channel,
        payload=payload,
        dedupe_key=f"{key}:edit:{answer.updated_at.isoformat()}",
    )
