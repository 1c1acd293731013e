"""Block Kit builders: pure functions from service results to lists of block dicts."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.text import escape, plural

MAX_BLOCKS = 50  # Slack's limit for a message
MAX_VIEW_BLOCKS = 100  # Slack's limit for a modal or the App Home


def mention(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "_unassigned_"


def team_time(when: datetime, zone: ZoneInfo) -> str:
    """A moment as the team reads it: "Tue 8 Dec, 14:00 (Europe/Berlin)"."""
    local = when.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M} ({zone.key})"


def local_time(when: datetime, zone: ZoneInfo) -> str:
    """A moment each reader sees in their own time zone (Slack's date token); clients that cannot
    render it show the team's time instead."""
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{team_time(when, zone)}>"


def section(text: str, accessory: ButtonElement | None = None) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text[:3000]), accessory=accessory)


SECTION_CHARS = 2900  # Slack allows 3000 characters in a section's text; keep a margin


def _safe_cut(line: str, size: int) -> int:
    """Where to cut an over-long line: at a space, never inside <…> (a mention or link) or &…; ."""
    cut = line.rfind(" ", 0, size)
    cut = cut if cut > size // 2 else size
    for opener, closer in (("<", ">"), ("&", ";")):
        start = line.rfind(opener, 0, cut)
        if start != -1 and line.find(closer, start, cut) == -1:
            cut = start
    return max(cut, 1)


def sections(text: str, *, most: int = 40) -> list[SectionBlock]:
    """Long text as as many sections as it needs, split between lines (or at a safe point in a very
    long line), so nothing is cut off silently; past `most` sections the rest is counted."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > SECTION_CHARS:
            cut = _safe_cut(line, SECTION_CHARS)
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:cut])
            line = line[cut:].lstrip()
        if current and len(current) + len(line) + 1 > SECTION_CHARS:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    if len(chunks) > most:
        chunks = [
            *chunks[: most - 1],
            f"…and {plural(len(chunks) - most + 1, 'more part')}, too long for one message.",
        ]
    return [SectionBlock(text=MarkdownTextObject(text=c)) for c in chunks if c]


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text[:3000])])


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=text[:150])


def divider() -> DividerBlock:
    return DividerBlock()


def button(text: str, action_id: str, value: str = "", style: str | None = None) -> ButtonElement:
    return ButtonElement(text=text, action_id=action_id, value=value or None, style=style)


def actions(*buttons: ButtonElement) -> ActionsBlock:
    return ActionsBlock(elements=list(buttons))


def render(blocks: list[Block]) -> list[dict[str, Any]]:
    return [_plain(b) or b.to_dict() for b in blocks]


def _plain(block: Block) -> dict[str, Any] | None:
    """The blocks `section`, `sections`, `context` and `divider` make, as slack_sdk's to_dict writes them,
    without its validation pass: these builders already keep the text within Slack's limit, and
    validating cost more than building (a long story list is twenty sections, 0.9 ms a page measured
    with cProfile; a context 12 µs, a divider 6). Anything else goes through to_dict."""
    kind = type(block)
    if block.block_id is not None:
        return None
    if kind is DividerBlock:
        return {"type": "divider"}
    if kind is ContextBlock:
        elements = block.elements  # type: ignore[attr-defined]
        if len(elements) == 1 and _plain_mrkdwn(elements[0]):
            return {"type": "context", "elements": [{"type": "mrkdwn", "text": elements[0].text}]}
        return None
    if kind is not SectionBlock or block.accessory is not None or block.fields:  # type: ignore[attr-defined]
        return None
    text = block.text  # type: ignore[attr-defined]
    return {"type": "section", "text": {"type": "mrkdwn", "text": text.text}} if _plain_mrkdwn(text) else None


def _plain_mrkdwn(text: Any) -> bool:
    return type(text) is MarkdownTextObject and text.verbatim is None and len(text.text) <= 3000


def message(text: str, blocks: list[Block] | None = None) -> dict[str, Any]:
    """An ephemeral answer to the person who typed the command; `text` is the notification fallback."""
    out: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    if blocks:
        out["blocks"] = render(blocks)
    return out


_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,30})&gt;")


MAX_PROBLEM = 600


def error_message(problem: str, usage: str | None = None) -> dict[str, Any]:
    """A refusal for the caller alone. Escaped, except user mentions (who already acknowledged, who
    decided): shown as names; an ephemeral message notifies nobody. A problem that repeats someone's
    input at length is cut to MAX_PROBLEM characters, so the reply stays one Slack can show."""
    if len(problem) > MAX_PROBLEM:
        problem = problem[: MAX_PROBLEM - 1] + "…"
    text = ":warning: " + _MENTION.sub(r"<@\1>", escape(problem))
    if usage:
        text += f"\nUsage: `{escape(usage)}`"
    return {"response_type": "ephemeral", "text": text}
