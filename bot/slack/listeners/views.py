"""Form submissions: the story form and the checklist form."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.ceremonies import post_standup_answer
from bot.jobs.governance import after_decision
from bot.services import governance, readiness, sprints, standups, stories
from bot.services.errors import Invalid
from bot.services.readiness import KIND_NAMES
from bot.slack import ids
from bot.slack.blocks import message, section
from bot.slack.blocks.checklist import readiness_badge
from bot.slack.blocks.modals import BACKLOG
from bot.slack.context import Deps, Invocation
from bot.slack.home import publish_home
from bot.slack.parsing import parse_waiver
from bot.store.db import unit_of_work
from bot.text import escape


def _values(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """block_id → the state of the element inside it."""
    state = body["view"]["state"]["values"]
    return {block_id: elements.get(ids.INPUT, {}) for block_id, elements in state.items()}


def _meta(body: dict[str, Any]) -> dict[str, Any]:
    return json.loads(body["view"].get("private_metadata") or "{}")


def _confirm(who: Invocation, deps: Deps, client: AsyncWebClient, text: str) -> None:
    """Tell the person their form was saved: where they opened it from, else by refreshing their Home."""
    if who.response_url:
        who.reply_later(message(text, [section(text)]))
    else:
        deps.followups.spawn(publish_home(deps, client, who.user_id), what="views.publish")


def register(app: AsyncApp, deps: Deps) -> None:
    @app.view(ids.STORY_MODAL)
    async def story_submitted(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        values, meta = _values(body), _meta(body)
        who = Invocation.from_body(deps, client, body)
        points_text = (values[ids.FIELD_POINTS].get("value") or "").strip()
        if points_text and not points_text.isdigit():
            raise Invalid("Points must be a whole number.", field=ids.FIELD_POINTS)
        fields = {
            "title": values[ids.FIELD_TITLE].get("value") or "",
            "story_type": (values[ids.FIELD_TYPE].get("selected_option") or {}).get("value"),
            "owner": values[ids.FIELD_OWNER].get("selected_user"),
            "points": int(points_text) if points_text else None,
        }
        sprint_choice = (values[ids.FIELD_SPRINT].get("selected_option") or {}).get("value") or BACKLOG
        team = deps.config.team(meta.get("team", "")) or who.team()
        async with unit_of_work(deps.sessions) as session:
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
                    config=deps.config,
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
                )
                verb = "Saved"
            else:
                story = await stories.add_story(
                    session, config=deps.config, team=team, actor=who.user_id, sprint=sprint, **fields
                )
                verb = "Added"
            ready = await readiness.checklist(session, story, "ready", deps.config)
        await ack()
        _confirm(
            who,
            deps,
            client,
            f":white_check_mark: {verb} *{story.key}* {escape(story.title)} · {readiness_badge(ready)}",
        )

    @app.view(ids.REVIEW_DECISION_MODAL)
    async def decision_submitted(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        values, meta = _values(body), _meta(body)
        who = Invocation.from_body(deps, client, body)
        async with unit_of_work(deps.sessions) as session:
            result = await governance.decide(
                session,
                config=deps.config,
                review_key=str(meta.get("review", "")),
                approver=who.user_id,
                verdict=str(meta.get("verdict", "")),
                rationale=values.get(ids.FIELD_RATIONALE, {}).get("value") or "",
                now=deps.ceremonies.clock.now(),
            )
            await after_decision(session, config=deps.config, result=result)
        await ack()
        # The approver's Home lists reviews waiting for them: this one no longer is.
        deps.followups.spawn(publish_home(deps, client, who.user_id), what="views.publish")

    @app.view(ids.STANDUP_MODAL)
    async def standup_submitted(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        values, meta = _values(body), _meta(body)
        who = Invocation.from_body(deps, client, body)
        run_id = meta.get("run")
        if not isinstance(run_id, int):
            raise Invalid("This standup form is out of date; use the button on today's standup.")
        async with unit_of_work(deps.sessions) as session:
            run = await standups.get_run(session, run_id)
            answer, first = await standups.answer(
                session,
                run=run,
                user_id=who.user_id,
                yesterday=values.get(ids.FIELD_YESTERDAY, {}).get("value") or "",
                today=values.get(ids.FIELD_TODAY, {}).get("value") or "",
                blockers=values.get(ids.FIELD_BLOCKERS, {}).get("value") or "",
                links=(values.get(ids.FIELD_LINKS, {}).get("value") or "").strip(),
            )
            await post_standup_answer(deps.ceremonies, session, run=run, answer=answer, first=first)
        await ack()

    @app.view(ids.CRITERIA_MODAL)
    async def criteria_submitted(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        values, meta = _values(body), _meta(body)
        who = Invocation.from_body(deps, client, body)
        kind = meta.get("kind", "ready")
        async with unit_of_work(deps.sessions) as session:
            story = await stories.get_story(session, meta.get("story", ""))
            current = {
                i.criterion.key: i
                for i in (await readiness.checklist(session, story, kind, deps.config)).items
            }
            answers, waivers, clear = {}, {}, []
            for block_id, state in values.items():
                key = block_id.removeprefix(ids.CRITERION_PREFIX)
                if key not in current:
                    continue
                text = (state.get("value") or "").strip()
                was = current[key]
                reason = parse_waiver(text)
                if not text:
                    if was.value is not None or was.waived:
                        clear.append(key)
                elif reason is not None:
                    if reason == "":
                        raise Invalid('Say why it does not apply: "n/a: <reason>".', field=key)
                    if reason != was.na_reason:
                        waivers[key] = reason
                elif text != was.value:
                    answers[key] = text
            checklist = None
            if answers or waivers or clear:
                checklist = await deps.ceremonies.record_answers(
                    session,
                    story=story,
                    kind=kind,
                    actor=who.user_id,
                    answers=answers,
                    waivers=waivers,
                    clear=clear,
                )
        await ack()
        if checklist is not None:
            state = "complete" if checklist.complete else f"{checklist.answered}/{len(checklist.items)}"
            _confirm(who, deps, client, f":pencil: Saved the {KIND_NAMES[kind]} of *{story.key}*: {state}.")
