"""Blocks for sprints: the current sprint at a glance, the planning gate and the close report."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.services.sprints import CloseReport, Plan, PlannedStory, SprintOverview
from bot.slack.blocks import SECTION_CHARS, context, divider, mention, section, sections
from bot.slack.blocks.checklist import readiness_badge
from bot.store.models import Sprint, Story
from bot.text import escape, noun, plural

MAX_GROUP_BLOCKS = 8  # sections per group of the planning view, so the message stays under 50 blocks


def sprint_heading(sprint: Sprint) -> str:
    goal = f"\n_Goal:_ {escape(sprint.goal)}" if sprint.goal else ""
    state = {"active": "current", "planned": "next", "closed": "closed"}[sprint.state]
    return f"*{escape(sprint.name)}* ({state}) · {sprint.starts_on:%a %d %b} → {sprint.ends_on:%a %d %b %Y}{goal}"


def sprint_glance(view: SprintOverview) -> list[Block]:
    total = len(view.stories)
    return [
        section(sprint_heading(view.sprint)),
        context(
            f"{view.done_count}/{total} {noun(total, 'story', 'stories')} done · "
            f"{view.points_done}/{view.points_total} {noun(view.points_total, 'point')} · "
            f"{view.ready_count}/{total} Ready or done"
        ),
    ]


def _row(p: PlannedStory) -> str:
    missing = ""
    if not p.ready.complete:
        missing = " — lacks " + ", ".join(escape(c.label) for c in p.ready.missing)
    points = f" · {p.story.points} pt" if p.story.points is not None else ""
    return (
        f"*{p.story.key}* {escape(p.story.title)} · {mention(p.story.owner)}{points} · "
        f"{readiness_badge(p.ready)}{missing}"
    )


def _group(title: str, items: list[PlannedStory], empty: str) -> list[Block]:
    """A heading and its stories in at most MAX_GROUP_BLOCKS sections; what does not fit is counted."""
    blocks: list[Block] = [section(f"*{title} ({len(items)})*")]
    if not items:
        return [*blocks, section(empty)]
    texts: list[str] = []
    current, shown = "", 0
    for item in items:
        line = _row(item)[:SECTION_CHARS]
        if current and len(current) + len(line) + 1 > SECTION_CHARS:
            if len(texts) + 1 == MAX_GROUP_BLOCKS:
                break
            texts.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
        shown += 1
    texts.append(current)
    blocks += [section(t) for t in texts]
    if shown < len(items):
        blocks.append(
            context(f"…and {len(items) - shown} more: `story list --sprint backlog` lists them all.")
        )
    return blocks


def plan_blocks(plan: Plan, command: str) -> list[Block]:
    ready = [p for p in plan.candidates if p.ready.complete]
    not_ready = [p for p in plan.candidates if not p.ready.complete]
    total = len(plan.committed) + len(plan.candidates)
    return [
        section(f"*Planning* {sprint_heading(plan.sprint)}"),
        context(
            f"{plan.ready_count} of {total} {noun(total, 'story', 'stories')} Ready · "
            f"{plural(plan.committed_points, 'point')} committed"
        ),
        divider(),
        *_group("Committed", plan.committed, "_Nothing committed yet._"),
        *_group("Ready in the backlog", ready, "_None._"),
        *_group("Not Ready", not_ready, "_None — everything is Ready._"),
        context(
            f'Commit with `{command} sprint commit S-1 S-2`; a not-Ready story needs `--force reason="…"`.'
        ),
    ]  # at most 3 + 3 * (2 + MAX_GROUP_BLOCKS) + 1 blocks, well under the 50 Slack allows


def plan_modal(plan: Plan, command: str) -> dict[str, Any]:
    """The readiness gate as a read-only form, for the App Home (where no message can be posted)."""
    return View(
        type="modal", title="Sprint planning", close="Close", blocks=plan_blocks(plan, command)
    ).to_dict()


def close_report(report: CloseReport) -> list[Block]:
    where = f"sprint *{escape(report.next_sprint.name)}*" if report.next_sprint else "the backlog"
    lines = [
        f"*Sprint {escape(report.closed.name)} closed.* Velocity: {plural(report.velocity, 'point')} "
        f"({plural(len(report.done), 'story', 'stories')} done).",
    ]
    if report.carried_over:
        keys = ", ".join(f"{s.key} {escape(s.title)}" for s in report.carried_over[:30])
        more = f" and {len(report.carried_over) - 30} more" if len(report.carried_over) > 30 else ""
        lines.append(f"Carried over to {where} ({len(report.carried_over)}): {keys}{more}")
    else:
        lines.append("Nothing carried over.")
    if report.next_sprint:
        lines.append(f"{escape(report.next_sprint.name)} is now the current sprint.")
    return list(sections("\n".join(lines)))


def story_keys(stories: list[Story]) -> str:
    return ", ".join(s.key for s in stories)
