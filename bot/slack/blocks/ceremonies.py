"""Messages the bot posts on its own (reminders, nudges, standups). Pure builders: the jobs use them
to fill the outbox, so text comes from templates and buttons use the ids in bot/slack/ids.py."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import Block, InputBlock, PlainTextInputElement
from slack_sdk.models.views import View

from bot.services.stories import StoryListing
from bot.slack import ids
from bot.slack.blocks import actions, button, context, render, section, sections
from bot.text import escape

MAX_NUDGE_STORIES = 40


def reminder(text: str, *, standup_run_id: int | None = None) -> dict[str, Any]:
    blocks: list[Block] = [section(text)]
    if standup_run_id is not None:
        blocks.append(
            actions(button("Post my update", ids.OPEN_STANDUP_MODAL, str(standup_run_id), "primary"))
        )
    return {"text": text.split("\n")[0], "blocks": render(blocks)}


def nudge_dm(intro: str, items: list[StoryListing]) -> dict[str, Any]:
    """One DM per owner per round: every not-Ready story with what it lacks and a button to fill it."""
    blocks: list[Block] = [section(intro)]
    for item in items[:MAX_NUDGE_STORIES]:
        missing = ", ".join(escape(c.label) for c in item.ready.missing)
        blocks.append(
            section(
                f"*{item.story.key}* {escape(item.story.title)}\nMissing: {missing}",
                accessory=button("Fill readiness", ids.OPEN_READY_MODAL, item.story.key, "primary"),
            )
        )
    if len(items) > MAX_NUDGE_STORIES:
        blocks.append(
            context(f"…and {len(items) - MAX_NUDGE_STORIES} more: `story list --mine --not-ready`.")
        )
    return {"text": intro.split("\n")[0], "blocks": render(blocks)}


def plain(text: str) -> dict[str, Any]:
    return {"text": text, "blocks": render(list(sections(text)))}


def standup_modal(run_id: int, *, team: str, answer: dict[str, str] | None = None) -> dict[str, Any]:
    answer = answer or {}

    def field(
        block_id: str, label: str, *, optional: bool, multiline: bool = True, hint: str | None = None
    ) -> InputBlock:
        return InputBlock(
            block_id=block_id,
            label=label,
            optional=optional,
            hint=hint,
            element=PlainTextInputElement(
                action_id=ids.INPUT,
                multiline=multiline,
                initial_value=answer.get(block_id) or None,
                max_length=2000 if multiline else 500,
            ),
        )

    return View(
        type="modal",
        callback_id=ids.STANDUP_MODAL,
        title="Standup",
        submit="Post",
        close="Cancel",
        private_metadata=json.dumps({"run": run_id, "team": team}),
        blocks=[
            field(ids.FIELD_YESTERDAY, "Yesterday", optional=True),
            field(ids.FIELD_TODAY, "Today", optional=False),
            field(ids.FIELD_BLOCKERS, "Blockers", optional=True, hint="Leave empty if nothing blocks you."),
            field(
                ids.FIELD_LINKS,
                "Stories or experiments",
                optional=True,
                multiline=False,
                hint="e.g. S-12, E-3",
            ),
        ],
    ).to_dict()
