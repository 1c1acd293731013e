"""`away`, `back`, `standup dm` and `whoami`: a person's own availability, how they want standups, and
the ids to write them into the configuration with."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.services import away as away_service
from bot.services import standups, teams
from bot.services.errors import Invalid
from bot.slack.blocks import context, message, section
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


async def whoami(inv: Invocation, tokens: list[str]) -> Reply:
    """The person's own Slack user id, this channel's id and their teams: what to paste into config.yaml."""
    if tokens:
        raise Invalid(f"Unexpected {tokens[0]!r}; `whoami` takes no arguments.")
    lines = [f"*Your Slack user id:* `{inv.user_id}`"]
    channel = inv.channel_id or ""
    if channel.startswith("D"):
        lines.append(
            f"*This conversation:* `{channel}`, a direct message. Type `{inv.command} whoami` in a "
            "channel to see that channel's id."
        )
    elif channel:
        uses = teams.channel_uses(inv.config, channel)
        said = "; ".join(
            f"team *{team.name}*'s channel"
            if use == "team"
            else f"where team *{team.name}*'s reviews are decided"
            for team, use in uses
        )
        lines.append(
            f"*This channel's id:* `{channel}`" + (f" ({said})" if said else " (no team uses it yet)")
        )
    mine = teams.roles_of(inv.config, inv.user_id)
    if mine:
        lines.append("*Your teams:*")
        lines += [f"• *{team.name}*: {' and '.join(roles)}" for team, roles in mine]
    else:
        lines.append("*Your teams:* none yet.")
    hint = (
        f"To add yourself to a team, put `{inv.user_id}` under its `members:` in config.yaml "
        f"(your email works too); a channel goes under `channel:` as its id or as its name in quotes "
        '(`"#name"`). Then run `cadence check-config --slack` and restart the bot.'
    )
    text = f"Your Slack user id is {inv.user_id}" + (f"; this channel's id is {channel}." if channel else ".")
    return message(text, [section("\n".join(lines)), context(hint)])
