"""Async standups: answers to a standup run, and who has not answered."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig
from bot.services import events
from bot.services.errors import Invalid, NotFound
from bot.services.teams import require_member
from bot.store.models import CeremonyRun, Member, StandupAnswer
from bot.store.queries import insert_ignore
from bot.store.types import utcnow

MAX_FIELD = 2000


async def get_run(session: AsyncSession, run_id: int) -> CeremonyRun:
    run = await session.get(CeremonyRun, run_id)
    if run is None or run.ceremony != "standup":
        raise NotFound("That standup no longer exists.")
    return run


async def answer_of(session: AsyncSession, *, run: CeremonyRun, user_id: str) -> StandupAnswer | None:
    return (
        await session.exec(
            select(StandupAnswer).where(StandupAnswer.run_id == run.id, StandupAnswer.user_id == user_id)
        )
    ).first()


async def answer(
    session: AsyncSession,
    *,
    config: AppConfig,
    run: CeremonyRun,
    user_id: str,
    yesterday: str,
    today: str,
    blockers: str,
    links: str = "",
) -> tuple[StandupAnswer, bool]:
    """Record (or replace) a person's answer; True when it is their first answer to this standup. Only
    the team's people answer its standup (its summary is theirs)."""
    require_member(config, run.team, user_id, doing="answer its standup")
    fields = {"yesterday": yesterday.strip(), "today": today.strip(), "blockers": blockers.strip()}
    if not fields["today"]:
        raise Invalid("Say what you plan to do today.", field="today")
    for name, value in fields.items():
        if len(value) > MAX_FIELD:
            raise Invalid(f"Keep {name} to {MAX_FIELD} characters.", field=name)
    if len(links) > 500:
        raise Invalid("Keep the linked items to 500 characters.", field="links")
    now = utcnow()
    values = {**fields, "links": links, "updated_at": now}
    # Insert, or replace the earlier answer: a double submit of the form never fails on the unique key.
    first = await insert_ignore(
        session, StandupAnswer, {"run_id": run.id, "user_id": user_id, "submitted_at": now, **values}
    )
    if not first:
        await session.exec(
            update(StandupAnswer)
            .where(col(StandupAnswer.run_id) == run.id, col(StandupAnswer.user_id) == user_id)
            .values(**values)
        )
    row = (
        await session.exec(
            select(StandupAnswer)
            .where(StandupAnswer.run_id == run.id, StandupAnswer.user_id == user_id)
            .execution_options(populate_existing=True)
        )
    ).one()
    events.record(session, events.StandupAnswered(run.id, user_id, first, now))  # type: ignore[arg-type]
    return row, first


@dataclass(frozen=True)
class StandupSummary:
    answers: list[StandupAnswer]  # blockers first
    missing: list[str]  # expected people who did not answer
    away: list[str]


async def summarize(
    session: AsyncSession, *, run: CeremonyRun, expected: list[str], away: set[str]
) -> StandupSummary:
    answers = list((await session.exec(select(StandupAnswer).where(StandupAnswer.run_id == run.id))).all())
    answers.sort(key=lambda a: (not a.blockers, a.submitted_at))
    answered = {a.user_id for a in answers}
    missing = [u for u in expected if u not in answered and u not in away]
    return StandupSummary(answers, missing, sorted(u for u in expected if u in away and u not in answered))


async def set_standup_dm(session: AsyncSession, *, user_id: str, enabled: bool) -> Member:
    member = await session.get(Member, user_id) or Member(user_id=user_id)
    member.standup_dm = enabled
    session.add(member)
    await session.flush()
    return member


async def dm_subscribers(session: AsyncSession, user_ids: list[str]) -> list[Member]:
    if not user_ids:
        return []
    rows = await session.exec(
        select(Member).where(col(Member.user_id).in_(user_ids), col(Member.standup_dm).is_(True))
    )
    return list(rows.all())
