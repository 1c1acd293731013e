"""`help`: every subcommand with its usage."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from bot.slack.blocks import context, message, section
from bot.slack.commands import Reply
from bot.slack.context import Invocation
from bot.text import escape


async def show_help(inv: Invocation, tokens: list[str]) -> Reply:
    return _help(inv.config.app_name, inv.command)


@lru_cache(maxsize=8)
def _help(app_name: str, command: str) -> dict[str, Any]:
    """The same for every request of a process: rendered once (the ack only serializes it)."""
    from bot.slack.commands import subcommands

    lines = [f"`{escape(command)} {escape(s.usage)}`\n    {escape(s.summary)}" for s in subcommands()]
    return message(
        f"{command} commands",
        [
            section(f"*{app_name}* — what you can type after `{command}`:"),
            section("\n".join(lines[: len(lines) // 2])),
            section("\n".join(lines[len(lines) // 2 :])),
            context(
                'Story ids look like S-12. Dates are YYYY-MM-DD. Quote text with spaces: --goal "Ship v2".'
            ),
        ],
    )
