"""Blocks for sprints: the current sprint at a glance, the planning gate and the close report."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.services.sprints import CloseReport, Plan, SprintOverview
from bot.slack.blocks import context, divider, mention, section
from bot.slack.blocks.checklist import readiness_badge
from bot.store.models import Sprint, Story
from bot.text import escape

MAX_ROWS = 40  # per section of the planning view, so the whole message stays under 50 blocks


def sprint_heading(sprint: Sprint) -> str:
    goal = f"\n_Goal:_ {escape(sprint.goal)}" if sprint.goal else ""
    state = {"active": "current", "planned": "next", "closed": "closed"}[sprint.state]
    return f"*{escape(sprint.name)}* ({state}) · {sprint.starts_on:%a %d %b} → {sprint.ends_on:%a %d %b %Y}{goal}"


def sprint_glance(view: SprintOverview) -> list[Block]:
    total = len(view.stories)
    return [
        section(sprint_heading(view.sprint)),
        context(
            f"{view.done_count}/{total} stories done · {view.points_done}/{view.points_total} points · "
            f"{view.ready_count}/{total} Ready or done"
        ),
    ]


def _rows(items: list, empty: str) -> str:  # type: ignore[type-arg]
    if not items:
        return empty
    lines = []
    for p in items[:MAX_ROWS]:
        missing = ""
        if not p.ready.complete:
            missing = " — lacks " + ", ".join(escape(c.label) for c in p.ready.missing)
        points = f" · {p.story.points} pt" if p.story.points is not None else ""
        lines.append(
            f"*{p.story.key}* {escape(p.story.title)} · {mention(p.story.owner)}{points} · "
            f"{readiness_badge(p.ready)}{missing}"
        )
    if len(items) > MAX_ROWS:
        lines.append(f"…and {len(items) - MAX_ROWS} more (`story list --not-ready` shows them all)")
    return "\n".join(lines)


def _chunks(text: str, size: int = 2900) -> list[str]:
    out, current = [], ""
    for line in text.split("\n"):
        if current and len(current) + len(line) + 1 > size:
            out.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line[:size]
    return [*out, current] if current else out


def plan_blocks(plan: Plan, command: str) -> list[Block]:
    ready = [p for p in plan.candidates if p.ready.complete]
    not_ready = [p for p in plan.candidates if not p.ready.complete]
    total = len(plan.committed) + len(plan.candidates)
    blocks: list[Block] = [
        section(f"*Planning* {sprint_heading(plan.sprint)}"),
        context(f"{plan.ready_count} of {total} stories Ready · {plan.committed_points} points committed"),
        divider(),
        section(f"*Committed ({len(plan.committed)})*"),
    ]
    blocks += [section(c) for c in _chunks(_rows(plan.committed, "_Nothing committed yet._"))]
    blocks.append(section(f"*Ready in the backlog ({len(ready)})*"))
    blocks += [section(c) for c in _chunks(_rows(ready, "_None._"))]
    blocks.append(section(f"*Not Ready ({len(not_ready)})*"))
    blocks += [section(c) for c in _chunks(_rows(not_ready, "_None — everything is Ready._"))]
    blocks.append(
        context(
            f'Commit with `{command} sprint commit S-1 S-2`; a not-Ready story needs `--force reason="…"`.'
        )
    )
    return blocks[:50]


def close_report(report: CloseReport) -> list[Block]:
    where = f"sprint *{escape(report.next_sprint.name)}*" if report.next_sprint else "the backlog"
    lines = [
        f"*Sprint {escape(report.closed.name)} closed.* Velocity: {report.velocity} points "
        f"({len(report.done)} stories done).",
    ]
    if report.carried_over:
        keys = ", ".join(f"{s.key} {escape(s.title)}" for s in report.carried_over[:30])
        more = f" and {len(report.carried_over) - 30} more" if len(report.carried_over) > 30 else ""
        lines.append(f"Carried over to {where} ({len(report.carried_over)}): {keys}{more}")
    else:
        lines.append("Nothing carried over.")
    if report.next_sprint:
        lines.append(f"{escape(report.next_sprint.name)} is now the current sprint.")
    return [section(c) for c in _chunks("\n".join(lines))]


def story_keys(stories: list[Story]) -> str:
    return ", ".join(s.key for s in stories)
