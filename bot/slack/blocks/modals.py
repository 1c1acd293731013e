"""Modal views: the story form and the readiness / done checklist form."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import (
    InputBlock,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.services.readiness import KIND_NAMES, MAX_ANSWER, Checklist
from bot.services.stories import MAX_POINTS, MAX_TITLE
from bot.slack import ids
from bot.slack.blocks import context
from bot.store.models import Sprint, Story
from bot.text import escape

BACKLOG = "backlog"
NA_PREFIX = "n/a"


def _meta(**values: Any) -> str:
    return json.dumps({k: v for k, v in values.items() if v is not None}, separators=(",", ":"))


def story_modal(
    *,
    story_types: list[str],
    sprints: list[Sprint],
    story: Story | None = None,
    default_type: str,
    channel: str | None,
    team: str,
    response_url: str | None = None,
    may_force: bool = False,
) -> dict[str, Any]:
    """Add a story (story=None) or edit one; block ids are the field names services report errors on.
    `may_force`: the person may commit a not-Ready story to a sprint with a reason (a lead)."""
    type_options = [Option(value=t, text=t) for t in story_types]
    current_type = story.type if story else default_type
    sprint_options = [Option(value=BACKLOG, text="Backlog")] + [
        Option(value=str(s.id), text=f"{s.name} ({'current' if s.state == 'active' else 'planned'})"[:75])
        for s in sprints
    ]
    current_sprint = next(
        (o for o in sprint_options if story and o.value == str(story.sprint_id)), sprint_options[0]
    )
    blocks = [
        InputBlock(
            block_id=ids.FIELD_TITLE,
            label="Title",
            element=PlainTextInputElement(
                action_id=ids.INPUT, initial_value=story.title if story else None, max_length=MAX_TITLE
            ),
        ),
        InputBlock(
            block_id=ids.FIELD_TYPE,
            label="Type",
            element=StaticSelectElement(
                action_id=ids.INPUT,
                options=type_options,
                initial_option=next((o for o in type_options if o.value == current_type), type_options[0]),
            ),
        ),
        InputBlock(
            block_id=ids.FIELD_OWNER,
            label="Owner",
            optional=True,
            element=UserSelectElement(action_id=ids.INPUT, initial_user=story.owner if story else None),
        ),
        InputBlock(
            block_id=ids.FIELD_POINTS,
            label="Points",
            optional=True,
            element=NumberInputElement(
                action_id=ids.INPUT,
                is_decimal_allowed=False,
                min_value=0,
                max_value=MAX_POINTS,
                initial_value=story.points if story and story.points is not None else None,
            ),
        ),
        InputBlock(
            block_id=ids.FIELD_SPRINT,
            label="Sprint",
            element=StaticSelectElement(
                action_id=ids.INPUT, options=sprint_options, initial_option=current_sprint
            ),
        ),
    ]
    if may_force and sprints:
        blocks.append(
            InputBlock(
                block_id=ids.FIELD_REASON,
                label="Reason to commit it although not Ready",
                hint="Only if a sprint is picked and the story is not Ready yet; the reason is audited.",
                optional=True,
                element=PlainTextInputElement(action_id=ids.INPUT, max_length=300),
            )
        )
    title = f"Edit {story.key}" if story else "New story"
    return View(
        type="modal",
        callback_id=ids.STORY_MODAL,
        title=title,
        submit="Save" if story else "Add story",
        close="Cancel",
        private_metadata=_meta(
            story=story.key if story else None, channel=channel, team=team, response_url=response_url
        ),
        blocks=blocks,
    ).to_dict()


def criterion_block_id(key: str) -> str:
    return ids.CRITERION_PREFIX + key


def criteria_modal(
    checklist: Checklist, *, story_title: str, channel: str | None, response_url: str | None = None
) -> dict[str, Any]:
    """One optional text field per criterion, prefilled; `n/a: reason` waives a criterion."""
    blocks: list[Any] = [context(f"*{checklist.story_key}* {escape(story_title)}")]
    for item in checklist.items:
        initial = item.value
        if item.waived:
            initial = f"{NA_PREFIX}: {item.na_reason}"
        helped = item.criterion.help.rstrip()
        if helped and helped[-1] not in ".!?":
            helped += "."  # the help is a phrase; the hint goes on with a sentence of its own
        hint = (helped + " " if helped else "") + 'Type "n/a: reason" if it does not apply.'
        blocks.append(
            InputBlock(
                block_id=criterion_block_id(item.criterion.key),
                label=item.criterion.label,
                optional=True,
                hint=hint[:2000],
                element=PlainTextInputElement(
                    action_id=ids.INPUT,
                    initial_value=initial,
                    multiline=True,
                    max_length=MAX_ANSWER + len(NA_PREFIX) + 2,  # room for "n/a: " before a full reason
                ),
            )
        )
    name = KIND_NAMES[checklist.kind]
    return View(
        type="modal",
        callback_id=ids.CRITERIA_MODAL,
        title=name[:24],
        submit="Save",
        close="Cancel",
        private_metadata=_meta(
            story=checklist.story_key, kind=checklist.kind, channel=channel, response_url=response_url
        ),
        blocks=blocks,
    ).to_dict()
