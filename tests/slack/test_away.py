"""`away`, `back` and `standup dm`: a person's own availability and how they want the standup prompt,
driven through the signed slash command as Slack sends it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from functools import partial

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.store.models import Away, Member
from tests.conftest import ALICE, BOB, FRANK, PLATFORM, make_config
from tests.factories import snapshot, tx
from tests.slack import helpers
from tests.slack.helpers import shown
from tests.slack_driver import SlackDriver

# ── helpers ──────────────────────────────────────────────────────────────────────────────────

# every reply to these commands is for the person alone
ok = partial(helpers.ok, ephemeral=True)


async def refused(slack: SlackDriver, db: AsyncEngine, command: str, **who: str) -> str:
    """The command is answered with a warning and the database is left exactly as it was."""
    before = await snapshot(db)
    response = await slack.command(command, **who)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith(":warning:"), body
    assert await snapshot(db) == before
    return str(body["text"])


async def periods(db: AsyncEngine, user: str = ALICE) -> list[tuple[date, date]]:
    async with tx(db) as s:
        rows = await s.exec(select(Away).where(Away.user_id == user).order_by(col(Away.starts_on)))
        return [(r.starts_on, r.ends_on) for r in rows.all()]


async def member(db: AsyncEngine, user: str = ALICE) -> Member | None:
    async with tx(db) as s:
        return await s.get(Member, user)


def d(text: str) -> date:
    return date.fromisoformat(text)


# ── away FROM..TO ────────────────────────────────────────────────────────────────────────────


async def test_away_stores_the_period_and_says_so(slack, db):
    body = await ok(slack, "away 2026-12-21..2026-12-24")
    assert body["text"].startswith(":palm_tree: You are away Mon 21 Dec → Thu 24 Dec 2026")
    assert "`back` ends it early" in body["text"]
    assert await periods(db) == [(d("2026-12-21"), d("2026-12-24"))]
    assert await periods(db, BOB) == []


async def test_away_for_a_single_day(slack, db):
    await ok(slack, "away 2026-12-07")
    assert await periods(db) == [(d("2026-12-07"), d("2026-12-07"))]


async def test_away_that_started_earlier_but_is_not_over_is_accepted(slack, db):
    await ok(slack, "away 2026-12-01..2026-12-07")
    assert await periods(db) == [(d("2026-12-01"), d("2026-12-07"))]


async def test_away_for_366_days_is_the_longest_allowed(slack, db):
    await ok(slack, "away 2026-12-08..2027-12-08")  # 366 days, both ends included
    assert await periods(db) == [(d("2026-12-08"), d("2027-12-08"))]


async def test_away_periods_are_per_person(slack, db):
    await ok(slack, "away 2026-12-21..2026-12-24")
    await ok(slack, "away 2026-12-21..2026-12-24", user=BOB)
    assert await periods(db) == [(d("2026-12-21"), d("2026-12-24"))]
    assert await periods(db, BOB) == [(d("2026-12-21"), d("2026-12-24"))]


async def test_away_alone_lists_the_periods_that_are_not_over(slack, db, clock):
    await ok(slack, "away 2026-12-28..2027-01-01")
    await ok(slack, "away 2026-12-08..2026-12-09")
    body = await ok(slack, "away")
    assert body["text"] == "Your time away"
    text = shown(body)
    assert "• Tue 08 Dec 2026 → Wed 09 Dec 2026\n• Mon 28 Dec 2026 → Fri 01 Jan 2027" in text

    clock.set(datetime(2026, 12, 10, 9, 0, tzinfo=UTC))  # the first one is over now
    text = shown(await ok(slack, "away"))
    assert "09 Dec" not in text
    assert "• Mon 28 Dec 2026 → Fri 01 Jan 2027" in text


async def test_away_alone_when_nothing_is_planned(slack, db):
    body = await ok(slack, "away")
    assert body["text"] == "You are not away."
    assert "Add some with `away FROM..TO`" in shown(body)


# ── refused input: a warning, and nothing stored ───────────────────────────────────────────────


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("away tomorrow", "is not a date range"),
        ("away 2026-12-24..2026-12-20", "comes before its start"),
        ("away 2026-12-01..2026-12-06", "already over"),  # today is Mon 7 Dec in Berlin
        ("away 2026-12-08..2027-12-09", "at most 366 days"),  # 367 days
        ("away 2026-13-01..2026-13-02", "is not a date range"),
        ("away 2026-12-21..", "is not a date range"),
        ("away 2026-12-21 2026-12-24", "one range"),
    ],
)
async def test_bad_away_is_refused(slack, db, command, says):
    text = await refused(slack, db, command)
    assert says in text
    assert await periods(db) == []


async def test_invalid_away_shows_the_usage_line(slack, db):
    text = await refused(slack, db, "away tomorrow")
    assert "Usage: `/scrum away [YYYY-MM-DD..YYYY-MM-DD]`" in text


@pytest.mark.parametrize(
    "overlap",
    ["2026-12-24..2026-12-28", "2026-12-18..2026-12-21", "2026-12-22..2026-12-23", "2026-12-01..2027-01-31"],
)
async def test_overlapping_away_is_refused(slack, db, overlap):
    await ok(slack, "away 2026-12-21..2026-12-24")
    text = await refused(slack, db, f"away {overlap}")
    assert "already away 2026-12-21..2026-12-24" in text
    assert "`back`" in text
    assert await periods(db) == [(d("2026-12-21"), d("2026-12-24"))]


async def test_adjacent_away_periods_do_not_overlap(slack, db):
    await ok(slack, "away 2026-12-21..2026-12-24")
    await ok(slack, "away 2026-12-25..2026-12-27")
    assert await periods(db) == [(d("2026-12-21"), d("2026-12-24")), (d("2026-12-25"), d("2026-12-27"))]


async def test_someone_elses_away_does_not_overlap_mine(slack, db):
    await ok(slack, "away 2026-12-21..2026-12-24", user=BOB)
    await ok(slack, "away 2026-12-21..2026-12-24")
    assert await periods(db) == [(d("2026-12-21"), d("2026-12-24"))]


# ── back ─────────────────────────────────────────────────────────────────────────────────────


async def test_back_ends_the_current_period_yesterday_and_drops_future_ones(slack, db):
    await ok(slack, "away 2026-12-01..2026-12-10")
    await ok(slack, "away 2026-12-21..2026-12-24")
    await ok(slack, "away 2026-12-03..2026-12-08", user=BOB)  # not Alice's: untouched
    body = await ok(slack, "back")
    assert body["text"] == ":wave: Welcome back! Reminders and nudges reach you again."
    assert await periods(db) == [(d("2026-12-01"), d("2026-12-06"))]
    assert await periods(db, BOB) == [(d("2026-12-03"), d("2026-12-08"))]
    assert (await ok(slack, "away"))["text"] == "You are not away."


async def test_back_on_the_first_day_away_removes_the_period(slack, db):
    await ok(slack, "away 2026-12-07..2026-12-09")
    await ok(slack, "back")
    assert await periods(db) == []


async def test_back_keeps_periods_that_are_over(slack, db, clock):
    await ok(slack, "away 2026-12-07..2026-12-08")
    clock.set(datetime(2026, 12, 14, 9, 0, tzinfo=UTC))
    body = await ok(slack, "back")
    assert body["text"] == "You were not away."
    assert await periods(db) == [(d("2026-12-07"), d("2026-12-08"))]


async def test_back_when_not_away(slack, db):
    body = await ok(slack, "back")
    assert body["text"] == "You were not away."
    assert await periods(db) == []


async def test_back_counts_today_in_the_teams_time_zone(slack, db, clock):
    """Sun 6 Dec 23:30 UTC is already Monday 7 Dec in Berlin: the time away ends on Sunday 6 Dec."""
    await ok(slack, "away 2026-12-01..2026-12-10")
    clock.set(datetime(2026, 12, 6, 23, 30, tzinfo=UTC))
    await ok(slack, "back")
    assert await periods(db) == [(d("2026-12-01"), d("2026-12-06"))]


async def test_away_already_over_is_judged_in_the_teams_time_zone(slack, db, clock):
    clock.set(datetime(2026, 12, 6, 23, 30, tzinfo=UTC))  # Mon 7 Dec 00:30 in Berlin
    text = await refused(slack, db, "away 2026-12-06")
    assert "already over" in text
    await ok(slack, "away 2026-12-07")


@pytest.fixture
async def new_york(make_app) -> AsyncIterator[SlackDriver]:
    """The app with the platform team in New York, as Frank in the platform channel."""
    config = make_config(platform={"timezone": "America/New_York"})
    async with make_app(config, channel=PLATFORM, user=FRANK) as driver:
        yield driver


async def test_back_uses_the_time_zone_of_the_team_it_is_typed_in(new_york, db, clock):
    """Mon 7 Dec 03:00 UTC is still Sunday 6 Dec in New York (and Monday in Berlin)."""
    await ok(new_york, "away 2026-12-01..2026-12-10")
    clock.set(datetime(2026, 12, 7, 3, 0, tzinfo=UTC))
    await ok(new_york, "back")
    assert await periods(db, FRANK) == [(d("2026-12-01"), d("2026-12-05"))]


async def test_away_already_over_uses_the_teams_time_zone(new_york, db, clock):
    clock.set(datetime(2026, 12, 7, 3, 0, tzinfo=UTC))  # Sun 6 Dec 22:00 in New York
    await ok(new_york, "away 2026-12-06")
    assert await periods(db, FRANK) == [(d("2026-12-06"), d("2026-12-06"))]


@pytest.mark.parametrize("command", ["back now", "back 2026-12-08", "back --all"])
async def test_back_takes_no_arguments(slack, db, command):
    await ok(slack, "away 2026-12-01..2026-12-10")
    text = await refused(slack, db, command)
    assert "`back` takes no arguments" in text
    assert await periods(db) == [(d("2026-12-01"), d("2026-12-10"))]


# ── standup dm on|off ────────────────────────────────────────────────────────────────────────


async def test_standup_dm_on_and_off_are_stored(slack, db):
    assert await member(db) is None
    body = await ok(slack, "standup dm on")
    assert body["text"] == ":incoming_envelope: You will get the standup prompt as a DM as well."
    assert (await member(db)).standup_dm is True
    assert await member(db, BOB) is None

    body = await ok(slack, "standup dm off")
    assert body["text"] == "You will no longer get the standup prompt as a DM."
    assert (await member(db)).standup_dm is False

    await ok(slack, "standup dm ON")
    assert (await member(db)).standup_dm is True


async def test_standup_dm_on_twice_is_harmless(slack, db):
    await ok(slack, "standup dm on")
    await ok(slack, "standup dm on")
    assert (await member(db)).standup_dm is True


@pytest.mark.parametrize("command", ["standup dm maybe", "standup dm", "standup dm on off"])
async def test_bad_standup_dm_is_refused(slack, db, command):
    text = await refused(slack, db, command)
    assert "`standup dm on`" in text
    assert await member(db) is None


async def test_standup_dm_maybe_leaves_the_choice_as_it_was(slack, db):
    await ok(slack, "standup dm on")
    await refused(slack, db, "standup dm maybe")
    assert (await member(db)).standup_dm is True


# ── help ─────────────────────────────────────────────────────────────────────────────────────


async def test_help_lists_away_back_and_standup_dm(slack):
    text = shown(await ok(slack, "help"))
    assert "`/scrum away [YYYY-MM-DD..YYYY-MM-DD]`" in text
    assert "Plan time away (no prompts or nudges); alone, list it" in text
    assert "`/scrum back`" in text
    assert "End your time away now" in text
    assert "`/scrum standup dm on|off`" in text
    assert "Also get the standup prompt as a DM" in text
