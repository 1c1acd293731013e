"""`help`: every subcommand with its usage."""

from __future__ import annotations

from bot.slack.blocks import context, message, section
from bot.slack.commands import Reply
from bot.slack.context import Invocation
from bot.text import escape


async def show_help(inv: Invocation, tokens: list[str]) -> Reply:
    from bot.slack.commands import subcommands

    lines = [f"`{escape(inv.command)} {escape(s.usage)}`\n    {escape(s.summary)}" for s in subcommands()]
    return message(
        f"{inv.command} commands",
        [
            section(f"*{inv.config.app_name}* — what you can type after `{inv.command}`:"),
            section("\n".join(lines[: len(lines) // 2])),
            section("\n".join(lines[len(lines) // 2 :])),
            context(
                'Story ids look like S-12. Dates are YYYY-MM-DD. Quote text with spaces: --goal "Ship v2".'
            ),
        ],
    )
