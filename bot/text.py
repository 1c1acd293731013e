"""Text helpers used by every layer that writes messages: escaping for Slack mrkdwn, and counts."""

from __future__ import annotations

import re

# C0 control characters but tab, newline and carriage return, and DEL: nobody types them, PostgreSQL
# cannot store NUL, and they hide text in a message. Refused at every door.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ECHO = 80  # the most of someone's input an error message repeats back


def has_control(text: str) -> bool:
    return CONTROL.search(text) is not None


def shortened(text: str, limit: int = ECHO) -> str:
    """Input as an error repeats it: at most `limit` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Escape the three characters Slack treats as control: nobody can inject <!channel> or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def noun(count: int, singular: str, plural: str | None = None) -> str:
    """The form of a noun that agrees with `count`: story for 1, stories otherwise."""
    return singular if count == 1 else (plural or singular + "s")


def plural(count: int, singular: str, plural: str | None = None) -> str:
    """A count and its noun in agreement: "1 experiment", "3 experiments", "0 stories"."""
    return f"{count} {noun(count, singular, plural)}"
