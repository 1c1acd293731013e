"""`away`, `back` and `standup dm`: a person's own availability and how they want standups."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.services import away as away_service
from bot.services import standups
from bot.services.errors import Invalid
from bot.slack.blocks import message, section
from bot.slack.commands import Reply
from bot.slack.context import Invocation
from bot.slack.parsing import parse_args


def _today(inv: Invocation) -> datetime:
    """Now in the person's team's zone (the configured default zone outside a team's channel)."""
    try:
        zone = inv.config.team_timezone(inv.team())
    except Invalid:
        zone = ZoneInfo(inv.config.timezone)
    return inv.deps.clock.now().astimezone(zone)


async def away(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens)
    today = _today(inv).date()
    if not args.positionals:
        async with inv.deps.transaction() as session:
            periods = await away_service.periods(session, inv.user_id, today)
        if not periods:
            return message(
                "You are not away.",
                [section("You have no time away planned. Add some with `away FROM..TO`.")],
            )
        lines = "\n".join(f"• {p.starts_on:%a %d %b %Y} → {p.ends_on:%a %d %b %Y}" for p in periods)
        return message("Your time away", [section(f"*Your time away*\n{lines}")])
    if len(args.positionals) > 1:
        raise Invalid("Write the dates as one range, e.g. `away 2026-12-21..2027-01-01`.")
    starts_on, ends_on = away_service.parse_range(args.positionals[0])
    async with inv.deps.transaction() as session:
        await away_service.set_away(
            session, user_id=inv.user_id, starts_on=starts_on, ends_on=ends_on, today=today
        )
    text = (
        f":palm_tree: You are away {starts_on:%a %d %b} → {ends_on:%a %d %b %Y}: "
        "no standup prompts or readiness nudges until then. `back` ends it early."
    )
    return message(text, [section(text)])


async def back(inv: Invocation, tokens: list[str]) -> Reply:
    if tokens:
        raise Invalid(f"Unexpected {tokens[0]!r}; `back` takes no arguments.")
    async with inv.deps.transaction() as session:
        changed = await away_service.come_back(session, user_id=inv.user_id, today=_today(inv).date())
    text = ":wave: Welcome back! Reminders and nudges reach you again." if changed else "You were not away."
    return message(text, [section(text)])


async def standup_dm(inv: Invocation, tokens: list[str]) -> Reply:
    choice = " ".join(tokens).strip().lower()
    if choice not in ("on", "off"):
        raise Invalid("Say `standup dm on` to get the standup prompt as a DM too, or `standup dm off`.")
    async with inv.deps.transaction() as session:
        await standups.set_standup_dm(session, user_id=inv.user_id, enabled=choice == "on")
    text = (
        ":incoming_envelope: You will get the standup prompt as a DM as well."
        if choice == "on"
        else "You will no longer get the standup prompt as a DM."
    )
    return message(text, [section(text)])
