"""Blocks for sprints: the current sprint at a glance, the planning gate and the close report."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.services.readiness import Checklist, Readiness
from bot.services.sprints import CloseReport, Plan, PlannedStory, SprintOverview, sprint_day
from bot.slack.blocks import MAX_BLOCKS, SECTION_CHARS, context, divider, mention, section, sections
from bot.slack.blocks.checklist import readiness_badge
from bot.store.models import Sprint, SprintRow, Story, StoryRow
from bot.text import escape, noun, plural

MAX_GROUP_BLOCKS = 8  # sections per group of the planning view, so the message stays under 50 blocks


def sprint_heading(sprint: Sprint | SprintRow) -> str:
    goal = f"\n_Goal:_ {escape(sprint.goal)}" if sprint.goal else ""
    state = {"active": "current", "planned": "next", "closed": "closed"}[sprint.state]
    return f"*{escape(sprint.name)}* ({state}) · {_span(sprint.starts_on, sprint.ends_on)}{goal}"


@lru_cache(maxsize=512)
def _span(starts_on: date, ends_on: date) -> str:
    """A sprint's dates as a heading shows them, formatted once per sprint: strftime was about a tenth of
    the plan's own block-building time (py-spy, docs/benchmarks.md, ninth round)."""
    return f"{starts_on:%a %d %b} → {ends_on:%a %d %b %Y}"


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


def _readiness(ready: Checklist | Readiness) -> str:
    """How a plan row ends: its badge and, when not Ready, what it lacks."""
    if ready.complete:
        return readiness_badge(ready)
    return f"{readiness_badge(ready)} — lacks " + ", ".join(escape(c.label) for c in ready.missing)


def _row(p: PlannedStory, said: dict[int, str]) -> str:
    """One story of the plan. `said` holds each readiness's ending by the object's identity: the rows
    of a plan share a Readiness per combination of criteria met (readiness.Weigher), so a plan of dozens
    of rows works out a few endings."""
    ending = said.get(id(p.ready))
    if ending is None:
        ending = said[id(p.ready)] = _readiness(p.ready)
    points = f" · {p.story.points} pt" if p.story.points is not None else ""
    return f"*{p.story.key}* {escape(p.story.title)} · {mention(p.story.owner)}{points} · {ending}"


def _group(title: str, items: list[PlannedStory], empty: str, total: int | None = None) -> list[Block]:
    """A heading and its stories in at most MAX_GROUP_BLOCKS sections; what does not fit is counted.
    `total` is how many there are when `items` holds only the first of them."""
    total = len(items) if total is None else total
    blocks: list[Block] = [section(f"*{title} ({total})*")]
    if not items:
        return [*blocks, section(empty)]
    texts: list[str] = []
    current, shown = "", 0
    said: dict[int, str] = {}  # held while `items` keeps every object alive, so no identity is reused
    for item in items:
        line = _row(item, said)[:SECTION_CHARS]
        if current and len(current) + len(line) + 1 > SECTION_CHARS:
            if len(texts) + 1 == MAX_GROUP_BLOCKS:
                break
            texts.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
        shown += 1
    texts.append(current)
    blocks += [section(t) for t in texts]
    if shown < total:
        blocks.append(context(f"…and {total - shown} more: `story list --sprint backlog` lists them all."))
    return blocks


def plan_blocks(plan: Plan, command: str) -> list[Block]:
    ready, not_ready, total = plan.ready, plan.not_ready, plan.total
    return [
        section(f"*Planning* {sprint_heading(plan.sprint)}"),
        context(
            f"{plan.ready_count} of {total} {noun(total, 'story', 'stories')} Ready · "
            f"{plural(plan.committed_points, 'point')} committed"
        ),
        divider(),
        *_group("Committed", plan.committed, "_Nothing committed yet._"),
        *_group("Ready in the backlog", ready, "_None._", plan.ready_total),
        *_group("Not Ready", not_ready, "_None — everything is Ready._", plan.not_ready_total),
        context(_commit_hint(plan, ready, not_ready, command)),
    ]  # at most 3 + 3 * (2 + MAX_GROUP_BLOCKS) + 1 blocks, well under the 50 Slack allows


def _commit_hint(plan: Plan, ready: list[PlannedStory], not_ready: list[PlannedStory], command: str) -> str:
    """What to type next, with the stories that can actually go in."""
    name = plan.sprint.name
    ref = escape(f'"{name}"' if " " in name else name)
    target = f"`{command} sprint commit {{keys}} --to {ref}`"
    if ready:
        keys = " ".join(p.story.key for p in ready[:5])
        hint = f"Commit the Ready ones with {target.format(keys=keys)}"
    elif not_ready:
        hint = f"Nothing in the backlog is Ready yet: fill criteria with `{command} ready S-n`"
    else:
        return f"The backlog is empty: add stories with `{command} story add`."
    return hint + '; a lead can force a not-Ready story in with `--force reason="…"`.'


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


def sprint_label(sprint: Sprint, today: date) -> str:
    """The sprint named with which one it is and where it stands, e.g. "*Sprint 2* (next, starts Mon 14 Dec)"."""
    name = f"*{escape(sprint.name)}*"
    if sprint.state == "closed":
        return f"{name} (closed)"
    where = sprint_day(sprint, today)
    role = "current" if sprint.state == "active" else "next"
    if where.not_started:
        return f"{name} ({role}, starts {sprint.starts_on:%a %d %b})"
    if where.over:
        ago = where.days_over
        return f"{name} ({role}, ended {sprint.ends_on:%a %d %b}, {ago} day{'s' if ago != 1 else ''} ago)"
    return f"{name} ({role}, day {where.day} of {where.of})"


def _story_ref(story: Story | StoryRow) -> str:
    points = f" ({story.points} pt)" if story.points is not None else ""
    return f"*{story.key}* {escape(story.title)}{points}"


def sprint_started(sprint: Sprint, *, actor: str, today: date) -> list[Block]:
    goal = f"\n_Goal:_ {escape(sprint.goal)}" if sprint.goal else ""
    return [
        section(
            f":runner: {mention(actor)} started {sprint_label(sprint, today)}: "
            f"{sprint.starts_on:%a %d %b} → {sprint.ends_on:%a %d %b %Y}.{goal}"
        )
    ]


def stories_committed(
    sprint: Sprint,
    stories: list[Story],
    *,
    forced: list[Story],
    actor: str,
    scope_added: bool,
    reason: str | None,
    today: date,
) -> list[Block]:
    points = sum(s.points or 0 for s in stories)
    head = ":heavy_plus_sign: Scope added to" if scope_added else ":inbox_tray: Committed to"
    lines = [f"{head} {sprint_label(sprint, today)} by {mention(actor)} · {points} points"]
    lines += [f"• {_story_ref(s)}{' — :warning: not Ready' if s in forced else ''}" for s in stories]
    if forced:
        why = f": _{escape(reason)}_" if reason else ""
        lines.append(f":warning: {story_keys(forced)} went in although not Ready (audited){why}")
    return list(sections("\n".join(lines), most=10))


def forced_owner_dm(
    story: Story, sprint: Sprint, *, actor: str, reason: str | None, missing: list[str]
) -> str:
    why = f" (reason: {escape(reason)})" if reason else ""
    lacks = ", ".join(escape(m) for m in missing) or "nothing any more"
    return (
        f"{mention(actor)} committed your story {_story_ref(story)} to sprint *{escape(sprint.name)}* "
        f"although it is not Ready{why}. It still lacks: {lacks}."
    )


def story_finished(story: Story, *, actor: str, view: SprintOverview | None) -> list[Block]:
    progress = ""
    if view is not None:
        progress = (
            f" · {escape(view.sprint.name)}: {view.done_count}/{len(view.stories)} stories, "
            f"{view.points_done}/{view.points_total} points done"
        )
    return [section(f":tada: {mention(actor)} finished {_story_ref(story)}{progress}")]


STATUS_ORDER = ("blocked", "in_progress", "open", "done")
STATUS_HEADINGS = {
    "open": ":white_circle: To do",
    "in_progress": ":large_blue_circle: In progress",
    "blocked": ":octagonal_sign: Blocked",
    "done": ":white_check_mark: Done",
}


def sprint_board(view: SprintOverview, *, today: date) -> list[Block]:
    """The current sprint as a small board: where it stands, then its stories by status with points."""
    total = len(view.stories)
    where = sprint_day(view.sprint, today)
    blocks: list[Block] = [section(sprint_heading(view.sprint))]
    if where.over:
        ago = where.days_over
        status = (
            f":hourglass: Ended {ago} day{'s' if ago != 1 else ''} ago — close it with `sprint close` "
            "(unfinished stories carry over)."
        )
    elif where.not_started:
        status = f"Starts {view.sprint.starts_on:%a %d %b}."
    else:
        status = f"Day {where.day} of {where.of} · {where.of - where.day} working day{'s' if where.of - where.day != 1 else ''} left"
    blocks.append(
        context(
            f"{status} · {view.done_count}/{plural(total, 'story', 'stories')} done · "
            f"{view.points_done}/{plural(view.points_total, 'point')} · {view.ready_count}/{total} Ready or done"
        )
    )
    for status_key in STATUS_ORDER:
        items = [i for i in view.stories if i.story.status == status_key]
        if not items:
            continue
        points = sum(i.story.points or 0 for i in items)
        lines = [f"*{STATUS_HEADINGS[status_key]} ({len(items)} · {points} pt)*"]
        for i in items:
            s = i.story
            owner = f" · {mention(s.owner)}" if s.owner else ""
            extra = f" — _{escape(s.blocked_reason)}_" if s.status == "blocked" and s.blocked_reason else ""
            badge = "" if s.status == "done" else f" · {readiness_badge(i.ready)}"
            lines.append(f"{_story_ref(s)}{owner}{badge}{extra}")
        blocks += sections("\n".join(lines), most=8)
    if not view.stories:
        blocks.append(section("_No stories in this sprint yet: `sprint commit S-n` adds them._"))
    return blocks[:MAX_BLOCKS]
