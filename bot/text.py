"""Text helpers used by every layer that writes messages: escaping for Slack mrkdwn, and counts."""

from __future__ import annotations


def escape(text: str) -> str:
    """Escape the three characters Slack treats as control: nobody can inject <!channel> or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def noun(count: int, singular: str, plural: str | None = None) -> str:
    """The form of a noun that agrees with `count`: story for 1, stories otherwise."""
    return singular if count == 1 else (plural or singular + "s")


def plural(count: int, singular: str, plural: str | None = None) -> str:
    """A count and its noun in agreement: "1 experiment", "3 experiments", "0 stories"."""
    return f"{count} {noun(count, singular, plural)}"
