"""Blocks for stories: one-line summaries, the detail card and paginated lists."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import Block

from bot.services.readiness import Checklist
from bot.services.stories import STATUS_WORDS, StoryListing, StoryPage
from bot.slack import ids
from bot.slack.blocks import actions, button, context, divider, mention, render, section, sections
from bot.slack.blocks.checklist import checklist_lines, missing_line, readiness_badge
from bot.store.models import Story
from bot.text import escape, plural

PAGE_SIZE = 20


def story_line(item: StoryListing) -> str:
    story = item.story
    points = f" · {story.points} pt" if story.points is not None else ""
    sprint = f" · {escape(item.sprint_name)}" if item.sprint_name else " · backlog"
    if story.status == "done":
        status = " · :white_check_mark: done"
    else:
        doing = f" · {STATUS_WORDS[story.status]}" if story.status in ("in_progress", "blocked") else ""
        status = f"{doing} · {readiness_badge(item.ready)}"
    return (
        f"*{story.key}* {escape(story.title)}\n{story.type} · {mention(story.owner)}{points}{sprint}{status}"
    )


def story_list(result: StoryPage, *, title: str, filters: dict[str, Any] | None = None) -> list[Block]:
    """One page of stories (at most PAGE_SIZE sections, far below Slack's 50 blocks) with paging buttons."""
    if not result.total:
        return [section(f"*{escape(title)}*: no stories match.")]
    page, pages = result.page, result.pages
    noun = "story" if result.total == 1 else "stories"
    blocks: list[Block] = [section(f"*{escape(title)}* — {result.total} {noun}")]
    blocks += [section(story_line(i)) for i in result.items]
    if pages > 1:
        blocks.append(context(f"Page {page} of {pages}"))
        nav = []
        if page > 1:
            nav.append(button("← Previous", ids.STORY_LIST_PAGE + "_prev", _page_value(page - 1, filters)))
        if page < pages:
            nav.append(button("Next →", ids.STORY_LIST_PAGE + "_next", _page_value(page + 1, filters)))
        blocks.append(actions(*nav))
    return blocks


def _page_value(page: int, filters: dict[str, Any] | None) -> str:
    return json.dumps({"page": page, "filters": filters or {}}, separators=(",", ":"))


def story_card(story: Story, *, sprint_name: str | None, ready: Checklist, done: Checklist) -> list[Block]:
    facts = [
        f"*Type* {story.type}",
        f"*Owner* {mention(story.owner)}",
        f"*Points* {story.points if story.points is not None else '–'}",
        f"*Sprint* {escape(sprint_name) if sprint_name else 'backlog'}",
        f"*Status* {STATUS_WORDS.get(story.status, story.status)}"
        + (
            f" — {escape(story.blocked_reason)}" if story.status == "blocked" and story.blocked_reason else ""
        ),
    ]
    blocks: list[Block] = [
        section(f"*{story.key}* {escape(story.title)}"),
        context(" · ".join(facts)),
        *(sections(escape(story.details)) if story.details else []),
        divider(),
        *sections(f"*Definition of Ready* — {readiness_badge(ready)}\n" + checklist_lines(ready)),
        *sections(f"*Definition of Done* — {done.answered}/{len(done.items)}\n" + checklist_lines(done)),
    ]
    if not story.closed:
        blocks.append(
            actions(
                button("Fill readiness", ids.OPEN_READY_MODAL, story.key, "primary"),
                button("Fill Definition of Done", ids.OPEN_DONE_MODAL, story.key),
                button("Edit", ids.OPEN_STORY_EDIT, story.key),
                button("Mark done", ids.MARK_DONE, story.key),
            )
        )
    return blocks


def assignment_dm(story: Story, *, actor: str, sprint_name: str | None, ready: Checklist) -> dict[str, Any]:
    """The new owner's DM: the story at a glance, what its Definition of Ready still lacks (each
    criterion once, with what to write), and buttons to fill it and to open the story."""
    points = plural(story.points, "point") if story.points is not None else "no points yet"
    where = f"sprint {escape(sprint_name)}" if sprint_name else "backlog"
    blocks: list[Block] = [
        section(f":bust_in_silhouette: {mention(actor)} assigned you *{story.key}* {escape(story.title)}"),
        context(f"{story.type} · {points} · {where} · {readiness_badge(ready)}"),
    ]
    if not ready.complete:
        lines = "\n".join(missing_line(c) for c in ready.missing)
        blocks += sections(f"Its Definition of Ready still lacks:\n{lines}")
        fill = button("Fill readiness", ids.OPEN_READY_MODAL, story.key, "primary")
    else:
        fill = button("Fill Definition of Done", ids.OPEN_DONE_MODAL, story.key)
    blocks.append(actions(fill, button("Open story", ids.OPEN_STORY_EDIT, story.key)))
    return {
        "text": f"<@{actor}> assigned you {story.key}: {escape(story.title)}",
        "blocks": render(blocks),
    }
