"""Escaping for text placed into Slack mrkdwn, used by every layer that writes messages."""

from __future__ import annotations


def escape(text: str) -> str:
    """Escape the three characters Slack treats as control: nobody can inject <!channel> or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
