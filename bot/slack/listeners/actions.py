"""Buttons: open the forms, mark a story done, page through lists."""

from __future__ import annotations

import json
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import governance, sprints, standups
from bot.services.errors import Invalid
from bot.slack import ids
from bot.slack.blocks.ceremonies import standup_modal
from bot.slack.blocks.governance import decision_modal
from bot.slack.blocks.sprints import plan_modal
from bot.slack.commands.ready import open_criteria_form
from bot.slack.commands.story import finish, list_, open_story_form
from bot.slack.context import Deps, Invocation
from bot.store.db import unit_of_work


def _value(body: dict[str, Any]) -> str:
    return str(body["actions"][0].get("value") or "")


def register(app: AsyncApp, deps: Deps) -> None:
    def inv(body: dict[str, Any], client: AsyncWebClient) -> Invocation:
        return Invocation.from_body(deps, client, body)

    @app.action(ids.OPEN_READY_MODAL)
    async def open_ready(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await open_criteria_form(inv(body, client), _value(body), "ready")

    @app.action(ids.OPEN_DONE_MODAL)
    async def open_done(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await open_criteria_form(inv(body, client), _value(body), "done")

    @app.action(ids.OPEN_STORY_EDIT)
    async def open_edit(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await open_story_form(inv(body, client), _value(body))

    @app.action(ids.OPEN_STORY_ADD)
    async def open_add(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await open_story_form(inv(body, client))

    @app.action(ids.MARK_DONE)
    async def mark_done(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        who = inv(body, client)
        reply = await finish(who, _value(body))
        if reply:
            who.reply_later(reply)

    def decision_opener(verdict: str):  # type: ignore[no-untyped-def]
        async def open_decision(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            who = inv(body, client)
            async with unit_of_work(deps.sessions) as session:
                review = await governance.get_review(session, _value(body))
                # Refused here, before any form opens: not an approver, the requester, already decided, closed.
                await governance.check_can_decide(session, deps.config, review, who.user_id)
            who.open_modal(decision_modal(review.key, verdict, review.subject))

        return open_decision

    app.action(ids.REVIEW_APPROVE)(decision_opener("approve"))
    app.action(ids.REVIEW_REQUEST_CHANGES)(decision_opener("request_changes"))
    app.action(ids.REVIEW_REJECT)(decision_opener("reject"))

    @app.action(ids.OPEN_PLAN_VIEW)
    async def open_plan(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        team = deps.config.team(_value(body))
        if team is None:
            raise Invalid("That team is no longer configured.")
        async with unit_of_work(deps.sessions) as session:
            result = await sprints.plan(session, config=deps.config, team=team)
        inv(body, client).open_modal(plan_modal(result, deps.config.command))

    @app.action(ids.OPEN_STANDUP_MODAL)
    async def open_standup(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        who = inv(body, client)
        if not _value(body).isdigit():
            raise Invalid("That standup button is out of date.")
        async with unit_of_work(deps.sessions) as session:
            run = await standups.get_run(session, int(_value(body)))
            mine = await standups.answer_of(session, run=run, user_id=who.user_id)
        previous = None
        if mine is not None:
            previous = {
                "yesterday": mine.yesterday,
                "today": mine.today,
                "blockers": mine.blockers,
                "links": mine.links,
            }
        who.open_modal(standup_modal(run.id or 0, team=run.team, answer=previous))

    @app.action(re.compile(f"^{ids.STORY_LIST_PAGE}"))
    async def page(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        try:
            value = json.loads(_value(body))
            tokens, number = list(value["filters"]["tokens"]), int(value["page"])
        except (ValueError, KeyError, TypeError):
            raise Invalid("That page button is out of date; run the list command again.") from None
        who = inv(body, client)
        reply = await list_(who, tokens, page=number)
        if reply:
            who.reply_later(reply, replace_original=True)
