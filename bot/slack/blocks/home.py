"""The App Home tab: my teams' open drift incidents, reviews waiting for me, my stories with
readiness gaps, and each of my teams' current sprint."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.services import drift
from bot.services.sprints import SprintOverview
from bot.services.stories import StoryListing
from bot.slack import ids
from bot.slack.blocks import MAX_VIEW_BLOCKS, actions, button, context, divider, header, mention, section
from bot.slack.blocks.checklist import readiness_badge
from bot.slack.blocks.drift import ICONS, subject
from bot.store.models import DriftIncident, Review
from bot.text import escape, noun

MAX_STORIES = 30


MAX_REVIEWS = 10
MAX_INCIDENTS = 10


def home_view(
    *,
    mine: list[StoryListing],
    sprints: list[tuple[str, SprintOverview | None]],
    command: str,
    reviews: list[Review] | None = None,
    incidents: list[DriftIncident] | None = None,
) -> dict[str, Any]:
    blocks: list[Block] = []
    if incidents:
        blocks.append(header("Open drift incidents"))
        for incident in incidents[:MAX_INCIDENTS]:
            who = (
                f"acknowledged by {mention(incident.acked_by)}"
                if incident.state == "acknowledged"
                else "not acknowledged"
            )
            buttons = (
                [button("Acknowledge", ids.DRIFT_ACK, incident.key, "primary")]
                if incident.state == "open"
                else []
            )
            buttons.append(
                button(
                    "Create retraining story" if incident.story_id is None else "Show story",
                    ids.DRIFT_STORY,
                    incident.key,
                )
            )
            blocks.append(
                section(
                    f"{ICONS.get(incident.severity, '')} *{incident.key}* {incident.severity} · "
                    f"{subject(incident)} · {escape(drift.comparison(incident))} · {who}"
                )
            )
            blocks.append(actions(*buttons))
        if len(incidents) > MAX_INCIDENTS:
            blocks.append(context(f"…and {len(incidents) - MAX_INCIDENTS} more: `{command} drift`"))
        blocks.append(divider())
    if reviews:
        blocks.append(header("Reviews waiting for your decision"))
        for review in reviews[:MAX_REVIEWS]:
            blocks.append(section(f"*{review.key}* · {review.purpose} · {escape(review.subject)}"))
            blocks.append(
                actions(
                    button("Approve", ids.REVIEW_APPROVE, review.key, "primary"),
                    button("Request changes", ids.REVIEW_REQUEST_CHANGES, review.key),
                    button("Reject", ids.REVIEW_REJECT, review.key, "danger"),
                )
            )
        if len(reviews) > MAX_REVIEWS:
            blocks.append(context(f"…and {len(reviews) - MAX_REVIEWS} more in the governance channel."))
        blocks.append(divider())
    blocks += [
        header("Your stories"),
        actions(button("Add a story", ids.OPEN_STORY_ADD, style="primary")),
    ]
    if not mine:
        blocks.append(section("You own no open stories."))
    for item in mine[:MAX_STORIES]:
        story = item.story
        gaps = ""
        if not item.ready.complete:
            gaps = "\nMissing: " + ", ".join(escape(c.label) for c in item.ready.missing)
        blocks.append(
            section(
                f"*{story.key}* {escape(story.title)}\n{readiness_badge(item.ready)}"
                f" · {escape(item.sprint_name) if item.sprint_name else 'backlog'}{gaps}",
                accessory=button(
                    "Fill readiness" if not item.ready.complete else "Definition of Done",
                    ids.OPEN_READY_MODAL if not item.ready.complete else ids.OPEN_DONE_MODAL,
                    story.key,
                ),
            )
        )
    if len(mine) > MAX_STORIES:
        blocks.append(context(f"…and {len(mine) - MAX_STORIES} more: `{command} story list --mine`"))
    for team, overview in sprints:
        blocks += [divider(), header(f"Team {team}: current sprint")]
        if overview is None:
            blocks.append(section(f"No current sprint. Start one with `{command} sprint start`."))
            continue
        total = len(overview.stories)
        goal = f"\n_Goal:_ {escape(overview.sprint.goal)}" if overview.sprint.goal else ""
        blocks.append(
            section(
                f"*{escape(overview.sprint.name)}* · {overview.sprint.starts_on:%d %b} → "
                f"{overview.sprint.ends_on:%d %b %Y}{goal}\n"
                f"{overview.done_count}/{total} {noun(total, 'story', 'stories')} done · "
                f"{overview.points_done}/{overview.points_total} {noun(overview.points_total, 'point')}"
                f" · {overview.ready_count}/{total} Ready or done"
            ),
        )
        blocks.append(actions(button("Planning view", ids.OPEN_PLAN_VIEW, team)))
    blocks.append(context(f"Type `{command} help` anywhere for every command."))
    return View(type="home", blocks=blocks[:MAX_VIEW_BLOCKS]).to_dict()
