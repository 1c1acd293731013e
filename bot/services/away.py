"""Time away: people who are away get no reminders, nudges or standup prompts."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.errors import Conflict, Invalid
from bot.store.models import Away

MAX_DAYS = 366


def parse_range(text: str) -> tuple[date, date]:
    """`2026-12-20..2027-01-03`, or a single day."""
    first, sep, last = text.strip().partition("..")
    try:
        start = date.fromisoformat(first.strip())
        end = date.fromisoformat(last.strip()) if sep else start
    except ValueError:
        raise Invalid(f"{text!r} is not a date range; write FROM..TO as YYYY-MM-DD..YYYY-MM-DD.") from None
    return start, end


async def set_away(
    session: AsyncSession, *, user_id: str, starts_on: date, ends_on: date, today: date
) -> Away:
    if ends_on < starts_on:
        raise Invalid("The end of the time away comes before its start.")
    if ends_on < today:
        raise Invalid("That time away is already over.")
    if (ends_on - starts_on).days >= MAX_DAYS:
        raise Invalid(f"Time away can last at most {MAX_DAYS} days.")
    overlapping = (
        await session.exec(
            select(Away).where(Away.user_id == user_id, Away.starts_on <= ends_on, Away.ends_on >= starts_on)
        )
    ).first()
    if overlapping is not None:
        raise Conflict(
            f"You are already away {overlapping.starts_on}..{overlapping.ends_on}; "
            "use `back` first to change it."
        )
    away = Away(user_id=user_id, starts_on=starts_on, ends_on=ends_on)
    session.add(away)
    await session.flush()
    return away


async def come_back(session: AsyncSession, *, user_id: str, today: date) -> int:
    """End the current time away (from today on) and drop future ones; the number of periods changed."""
    rows = list(
        (await session.exec(select(Away).where(Away.user_id == user_id, Away.ends_on >= today))).all()
    )
    for row in rows:
        if row.starts_on >= today:
            await session.delete(row)
        else:
            row.ends_on = today - timedelta(days=1)
            session.add(row)
    await session.flush()
    return len(rows)


async def away_on(session: AsyncSession, user_ids: list[str], day: date) -> set[str]:
    """Which of these people are away on `day`."""
    if not user_ids:
        return set()
    rows = await session.exec(
        select(Away.user_id).where(
            col(Away.user_id).in_(user_ids), Away.starts_on <= day, Away.ends_on >= day
        )
    )
    return set(rows.all())


async def periods(session: AsyncSession, user_id: str, today: date) -> list[Away]:
    rows = await session.exec(
        select(Away).where(Away.user_id == user_id, Away.ends_on >= today).order_by(col(Away.starts_on))
    )
    return list(rows.all())
