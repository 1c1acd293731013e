"""Blocks for Definition-of-Ready / -Done checklists."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.config import Criterion
from bot.services.readiness import KIND_NAMES, Checklist, Readiness
from bot.slack import ids
from bot.slack.blocks import actions, button, context, mention, section, sections
from bot.text import escape, plural

_OPEN = {"ready": ids.OPEN_READY_MODAL, "done": ids.OPEN_DONE_MODAL}
_WORD = {"ready": "ready", "done": "dod"}  # the subcommand that fills each checklist


def readiness_badge(ready: Checklist | Readiness) -> str:
    if ready.complete:
        return ":large_green_circle: Ready"
    return f":red_circle: not Ready ({ready.answered}/{ready.total})"


def missing_line(criterion: Criterion) -> str:
    """One missing criterion: its label and what to write (its help)."""
    return f":x: {escape(criterion.label)} — _{escape(criterion.help) or 'missing'}_"


def checklist_lines(checklist: Checklist) -> str:
    if not checklist.items:
        return "_No criteria configured for this story type._"
    lines = []
    for item in checklist.items:
        label = escape(item.criterion.label)
        if item.waived:
            lines.append(
                f":heavy_minus_sign: {label}: n/a — {escape(item.na_reason or '')} ({mention(item.set_by)})"
            )
        elif item.satisfied:
            value = escape(item.value or "")
            value = value if len(value) <= 200 else value[:199] + "…"
            lines.append(f":white_check_mark: {label}: {value}")
        else:
            lines.append(missing_line(item.criterion))
    return "\n".join(lines)


def gap_count(checklist: Checklist) -> str:
    """How much of a checklist is missing, without naming the criteria (the lines below name each)."""
    total = len(checklist.items)
    return f"{len(checklist.missing)} of {plural(total, 'criterion', 'criteria')}"


def checklist_blocks(
    checklist: Checklist, *, title: str, story_open: bool = True, summary: str | None = None
) -> list[Block]:
    """The checklist under a title and a one-line summary (`summary` replaces the default one). Each
    missing criterion is named once, on its own line with its help."""
    name = KIND_NAMES[checklist.kind]
    if summary is None:
        if checklist.complete:
            summary = f"*{checklist.story_key}* meets the {name}."
        else:
            summary = f"*{checklist.story_key}* lacks {gap_count(checklist)} (marked :x: below)."
    blocks: list[Block] = [
        section(f"*{escape(title)}*\n{summary}"),
        *sections(checklist_lines(checklist)),
    ]
    if story_open:
        blocks.append(actions(button(f"Fill {name}", _OPEN[checklist.kind], checklist.story_key, "primary")))
        word, key = _WORD[checklist.kind], checklist.story_key
        blocks.append(
            context(f'Or type `{word} {key} key=value`, or `{word} {key} key=n/a reason="why"` to waive one.')
        )
    return blocks
