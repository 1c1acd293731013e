"""Messages of ceremonies: the reminder (and standup DMs), the readiness nudge round with its channel
summary kept up to date, standup answers in the thread, and the standup summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig, Team
from bot.notify.review import post_review
from bot.services import away, nudges, sprint_review, sprints, standups
from bot.services.events import CeremonyDue, ReadinessChanged, StandupAnswered
from bot.services.nudges import ReadinessRound
from bot.services.schedule import Occasion, local_dm_time, occasions
from bot.services.stories import StoryFilter, page_of_stories
from bot.services.teams import people
from bot.slack.blocks import ceremonies as messages
from bot.store import outbox
from bot.store.models import CeremonyRun, Sprint, StandupAnswer, Story

if TYPE_CHECKING:
    from bot.notify.notifier import Notifier


@dataclass
class Due:
    """One occurrence being held: which team and occasion, when it was due, and when it runs."""

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


async def ceremony_due(n: Notifier, session: AsyncSession, event: CeremonyDue) -> None:
    """What a claimed occurrence says, by its kind; the run keeps its message and a note of the outcome."""
    run = await session.get(CeremonyRun, event.run_id)
    team = n.config.team(run.team) if run else None
    occ = (
        next((o for o in occasions(n.config, team) if o.kind == run.ceremony), None) if team and run else None
    )
    if run is None or team is None or occ is None:
        return  # the team or ceremony left the configuration since the run was claimed
    zones = {user: ZoneInfo(zone) for user, zone in event.zones}
    due = Due(team, occ, run.scheduled_for, run.scheduled_for - occ.offset, event.now, zones)
    if occ.kind.startswith("planning_nudge_"):
        await _nudge(n, session, due, run)
    elif occ.kind == "standup_summary":
        await _standup_summary(n, session, due, run)
    elif occ.kind == "review_summary":
        await _review_summary(n, session, due, run)
    else:
        await _reminder(n, session, due, run)
    session.add(run)


async def _reminder(n: Notifier, session: AsyncSession, due: Due, run: CeremonyRun) -> None:
    team, occ = due.team, due.occ
    current = await sprints.current_sprint(session, team)
    ctx: dict[str, Any] = {
        "team": team.name,
        "ceremony": occ.kind,
        "when": due.local_base,
        "command": n.config.command,
        "sprint": await _sprint_facts(session, n.config, team, current, due.local_day) if current else None,
        "close_at": None,
        "plan": None,
        "not_ready": 0,
    }
    if occ.kind == "standup" and occ.ceremony.close_after_minutes:
        ctx["close_at"] = due.local_base + timedelta(minutes=occ.ceremony.close_after_minutes)
    if occ.kind == "planning":
        rr = await nudges.readiness_round(session, config=n.config, team=team)
        if rr is not None:
            ctx["plan"] = {"sprint": rr.sprint.name, "ready": rr.ready_count, "total": len(rr.stories)}
    if occ.kind == "refinement":
        filters = StoryFilter(not_ready=True)
        ctx["not_ready"] = (await page_of_stories(session, config=n.config, team=team, filters=filters)).total
    text = n.renderer.render(f"ceremonies/{occ.kind}.md.j2", **ctx)
    standup_id = run.id if occ.kind == "standup" else None
    run.message_id = await _enqueue_for_run(
        session, f"run:{run.id}", team.channel, messages.reminder(text, standup_run_id=standup_id)
    )
    if occ.kind == "standup":
        await _standup_dms(session, due, run, text)


async def _standup_dms(session: AsyncSession, due: Due, run: CeremonyRun, text: str) -> None:
    subscribers = [m.user_id for m in await standups.dm_subscribers(session, people(due.team))]
    gone = await away.away_on(session, subscribers, due.local_day)
    local_time = due.occ.ceremony.dm_local_time
    for user_id in subscribers:
        if user_id in gone:
            continue
        not_before = None
        if local_time:
            # the person's own date at the standup's time: a Tokyo morning follows a Berlin evening
            zone = due.zones.get(user_id, due.occ.tz)
            their_day = due.base.astimezone(zone).date()
            not_before = max(due.now, local_dm_time(local_time, their_day, zone))
        await outbox.enqueue(
            session,
            dedupe_key=f"run:{run.id}:dm:{user_id}",
            channel=user_id,
            payload=messages.reminder(text, standup_run_id=run.id),
            not_before=not_before,
        )


async def _nudge(n: Notifier, session: AsyncSession, due: Due, run: CeremonyRun) -> None:
    rr = await nudges.readiness_round(session, config=n.config, team=due.team)
    if rr is None:
        run.note = "no sprint to plan"
        return
    run.sprint_id = rr.sprint.id
    now = due.now.astimezone(due.occ.tz)
    gone = await away.away_on(session, list(rr.by_owner), now.date())
    for owner, items in rr.by_owner.items():
        if owner in gone:
            continue
        intro = n.renderer.render(
            "messages/nudge_dm.md.j2", sprint=rr.sprint.name, when=due.local_base, now=now, count=len(items)
        )
        await outbox.enqueue(
            session,
            dedupe_key=f"run:{run.id}:dm:{owner}",
            channel=owner,
            payload=messages.nudge_dm(intro, items),
        )
    payload = readiness_summary(n, rr, when=due.local_base, now=now, away=gone)
    run.message_id = await _enqueue_for_run(session, f"run:{run.id}", due.team.channel, payload)
    nudged = len([o for o in rr.by_owner if o not in gone])
    run.note = f"{rr.ready_count} of {len(rr.stories)} Ready; nudged {nudged}"


def readiness_summary(
    n: Notifier, rr: ReadinessRound, *, when: datetime, now: datetime, away: set[str]
) -> dict[str, Any]:
    text = n.renderer.render(
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


async def readiness_changed(n: Notifier, session: AsyncSession, event: ReadinessChanged) -> None:
    """Criteria of the Definition of Ready changed: the sprint's readiness summary is edited in place."""
    story = await session.get(Story, event.story_id)
    if event.kind == "ready" and story is not None:
        await refresh_readiness_summary(n, session, story)


async def refresh_readiness_summary(n: Notifier, session: AsyncSession, story: Story) -> bool:
    """Edit the latest readiness summary of the story's sprint in place; False if there is none."""
    if story.sprint_id is None:
        return False
    team = n.config.team(story.team)
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
    rr = await nudges.readiness_round(session, config=n.config, team=team, sprint=sprint)
    if rr is None:
        return False
    tz = n.config.team_timezone(team)
    hours = int(run.ceremony.removeprefix("planning_nudge_").removesuffix("h"))
    when = (run.scheduled_for + timedelta(hours=hours)).astimezone(tz)
    now = n.clock.now().astimezone(tz)
    gone = await away.away_on(session, list(rr.by_owner), now.date())
    await outbox.edit(
        session,
        original=run.message_id,
        channel=team.channel,
        payload=readiness_summary(n, rr, when=when, now=now, away=gone),
        dedupe_key=f"update:{run.message_id}:{now.isoformat()}",
    )
    return True


async def _standup_summary(n: Notifier, session: AsyncSession, due: Due, run: CeremonyRun) -> None:
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
    expected = people(team)
    gone = await away.away_on(session, expected, local_day)
    summary = await standups.summarize(session, run=standup, expected=expected, away=gone)
    text = n.renderer.render(
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


async def _review_summary(n: Notifier, session: AsyncSession, due: Due, run: CeremonyRun) -> None:
    """The sprint review, `summary_minutes_before` the review ceremony: of the sprint current then."""
    sprint = await sprints.current_sprint(session, due.team)
    if sprint is None:
        run.note = "no current sprint to review"
        return
    review = await sprint_review.build(session, config=n.config, team=due.team, sprint=sprint, now=due.now)
    run.sprint_id = sprint.id
    run.message_id = await post_review(
        session, config=n.config, team=due.team, review=review, key=f"run:{run.id}"
    )
    run.note = f"review of {sprint.name}"


async def standup_answered(n: Notifier, session: AsyncSession, event: StandupAnswered) -> None:
    """Put a person's answer in the standup thread; a changed answer edits their earlier reply."""
    run = await session.get(CeremonyRun, event.run_id)
    team = n.config.team(run.team) if run else None
    answer = (
        await session.exec(
            select(StandupAnswer).where(
                StandupAnswer.run_id == event.run_id, StandupAnswer.user_id == event.user_id
            )
        )
    ).first()
    if run is None or team is None or answer is None:
        return
    closes = next((o for o in occasions(n.config, team) if o.kind == "standup_summary"), None)
    late = closes is not None and n.clock.now() > run.scheduled_for + closes.offset
    text = n.renderer.render(
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
    if event.first:
        await outbox.enqueue(
            session, dedupe_key=key, channel=team.channel, payload=payload, thread_of=run.message_id
        )
        return
    original = await outbox.find(session, key)
    if original is None or original.id is None:
        return
    await outbox.edit(
        session,
        original=original.id,
        channel=team.channel,
        payload=payload,
        dedupe_key=f"{key}:edit:{event.at.isoformat()}",
    )


async def _sprint_facts(
    session: AsyncSession, config: AppConfig, team: Team, sprint: Sprint, today: date
) -> dict[str, Any]:
    view = await sprints.overview(session, config=config, team=team, sprint=sprint)
    return {
        "name": sprint.name,
        "goal": sprint.goal,
        "starts_on": sprint.starts_on,
        "ends_on": sprint.ends_on,
        "days_left": sprints.working_days_left(sprint, today),
        "done": view.done_count,
        "total": len(view.stories),
        "points_done": view.points_done,
        "points_total": view.points_total,
    }
