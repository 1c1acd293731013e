"""Form submissions: the story form, the checklist form, the decision form and the standup form."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import governance, readiness, sprints, standups, stories
from bot.services.errors import Invalid
from bot.services.readiness import KIND_NAMES, Entry
from bot.slack import ids
from bot.slack.blocks import message, section
from bot.slack.blocks.checklist import readiness_badge
from bot.slack.blocks.modals import BACKLOG
from bot.slack.budget import bounded
from bot.slack.commands.story import added_text
from bot.slack.context import Invocation
from bot.slack.home import publish_home
from bot.slack.parsing import parse_waiver
from bot.text import escape


def _values(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """block_id → the state of the element inside it."""
    state = body["view"]["state"]["values"]
    return {block_id: elements.get(ids.INPUT, {}) for block_id, elements in state.items()}


def _meta(body: dict[str, Any]) -> dict[str, Any]:
    return json.loads(body["view"].get("private_metadata") or "{}")


def _text(values: dict[str, dict[str, Any]], field: str) -> str:
    return values.get(field, {}).get("value") or ""


def _confirm(who: Invocation, client: AsyncWebClient, text: str) -> None:
    """Tell the person their form was saved: where they opened it from, else by refreshing their Home."""
    if who.response_url:
        who.reply_later(message(text, [section(text)]))
    else:
        who.deps.followups.spawn(publish_home(who.deps, client, who.user_id), what="views.publish")


def _story_fields(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    points_text = _text(values, ids.FIELD_POINTS).strip()
    if points_text and not points_text.isdigit():
        raise Invalid("Points must be a whole number.", field=ids.FIELD_POINTS)
    return {
        "title": _text(values, ids.FIELD_TITLE),
        "story_type": (values[ids.FIELD_TYPE].get("selected_option") or {}).get("value"),
        "owner": values[ids.FIELD_OWNER].get("selected_user"),
        "points": int(points_text) if points_text else None,
    }


async def story_submitted(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    values, meta = _values(body), _meta(body)
    who = Invocation.of(context, client, body)
    fields = _story_fields(values)
    force_reason = _text(values, ids.FIELD_REASON).strip() or None
    sprint_choice = (values[ids.FIELD_SPRINT].get("selected_option") or {}).get("value") or BACKLOG
    team = who.config.team(meta.get("team", "")) or who.team()
    async with who.deps.transaction() as session:
        sprint = None
        if sprint_choice != BACKLOG:
            sprint = next(
                (s for s in await sprints.open_sprints(session, team) if str(s.id) == sprint_choice), None
            )
            if sprint is None:
                raise Invalid("That sprint is no longer open; pick another.", field=ids.FIELD_SPRINT)
        if meta.get("story"):
            story = await stories.get_story(session, meta["story"])
            await stories.edit_story(
                session,
                config=who.config,
                story=story,
                actor=who.user_id,
                title=fields["title"],
                story_type=fields["story_type"],
                owner=fields["owner"],
                clear_owner=fields["owner"] is None,
                points=fields["points"],
                clear_points=fields["points"] is None,
                sprint=sprint,
                to_backlog=sprint is None,
                force_reason=force_reason if sprint is not None else None,
                today=who.today(team),
            )
            text = None
        else:
            added = await stories.add_story(
                session,
                config=who.config,
                team=team,
                actor=who.user_id,
                sprint=sprint,
                force_reason=force_reason if sprint is not None else None,
                today=who.today(team),
                **fields,
            )
            story = added.story
            text = added_text(added, today=who.today(team))
        ready = await readiness.checklist(session, story, "ready", who.config)
    await ack()
    if text is None:
        text = f":white_check_mark: Saved *{story.key}* {escape(story.title)} · {readiness_badge(ready)}"
    else:
        text += f"\n{readiness_badge(ready)}"
    _confirm(who, client, text)


async def decision_submitted(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    values, meta = _values(body), _meta(body)
    who = Invocation.of(context, client, body)
    async with who.deps.transaction() as session:
        await governance.decide(
            session,
            config=who.config,
            review_key=str(meta.get("review", "")),
            approver=who.user_id,
            verdict=str(meta.get("verdict", "")),
            rationale=_text(values, ids.FIELD_RATIONALE),
            now=who.deps.clock.now(),
        )
    await ack()
    # The approver's Home lists reviews waiting for them: this one no longer is.
    who.deps.followups.spawn(publish_home(who.deps, client, who.user_id), what="views.publish")


async def standup_submitted(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    values, meta = _values(body), _meta(body)
    who = Invocation.of(context, client, body)
    run_id = meta.get("run")
    if not isinstance(run_id, int):
        raise Invalid("This standup form is out of date; use the button on today's standup.")
    async with who.deps.transaction() as session:
        await standups.answer(
            session,
            config=who.config,
            run=await standups.get_run(session, run_id),
            user_id=who.user_id,
            yesterday=_text(values, ids.FIELD_YESTERDAY),
            today=_text(values, ids.FIELD_TODAY),
            blockers=_text(values, ids.FIELD_BLOCKERS),
            links=_text(values, ids.FIELD_LINKS).strip(),
        )
    await ack()


def _entry(text: str) -> Entry:
    """A criterion's text as typed: 'n/a: reason' waives it, blank clears it, anything else answers it."""
    text = text.strip()
    reason = parse_waiver(text)
    return Entry(na_reason=reason) if reason is not None else Entry(value=text or None)


async def criteria_submitted(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    values, meta = _values(body), _meta(body)
    who = Invocation.of(context, client, body)
    kind = meta.get("kind", "ready")
    entries = {
        block_id.removeprefix(ids.CRITERION_PREFIX): _entry(state.get("value") or "")
        for block_id, state in values.items()
        if block_id.startswith(ids.CRITERION_PREFIX)
    }
    async with who.deps.transaction() as session:
        story = await stories.get_story(session, meta.get("story", ""))
        checklist = await readiness.apply_form(
            session, story=story, kind=kind, config=who.config, actor=who.user_id, entries=entries
        )
    await ack()
    if checklist is not None:
        state = "complete" if checklist.complete else f"{checklist.answered}/{len(checklist.items)}"
        _confirm(who, client, f":pencil: Saved the {KIND_NAMES[kind]} of *{story.key}*: {state}.")


def register(app: AsyncApp) -> None:
    app.view(ids.STORY_MODAL)(bounded(story_submitted))
    app.view(ids.REVIEW_DECISION_MODAL)(bounded(decision_submitted))
    app.view(ids.STANDUP_MODAL)(bounded(standup_submitted))
    app.view(ids.CRITERIA_MODAL)(bounded(criteria_submitted))
