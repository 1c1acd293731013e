"""Buttons: open the forms, mark a story done, page through lists."""

from __future__ import annotations

import json
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import governance, sprints, standups
from bot.services.errors import Invalid
from bot.slack import ids
from bot.slack.blocks.ceremonies import standup_modal
from bot.slack.blocks.governance import decision_modal
from bot.slack.blocks.sprints import plan_modal
from bot.slack.budget import bounded
from bot.slack.commands import drift as drift_commands
from bot.slack.commands import sprint as sprint_commands
from bot.slack.commands.ready import open_criteria_form
from bot.slack.commands.story import finish, list_, open_story_form
from bot.slack.context import Invocation


def _value(body: dict[str, Any]) -> str:
    return str(body["actions"][0].get("value") or "")


async def open_ready(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    await open_criteria_form(Invocation.of(context, client, body), _value(body), "ready")


async def open_done(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    await open_criteria_form(Invocation.of(context, client, body), _value(body), "done")


async def open_edit(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    await open_story_form(Invocation.of(context, client, body), _value(body))


async def open_add(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    await open_story_form(Invocation.of(context, client, body))


async def mark_done(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    who = Invocation.of(context, client, body)
    reply = await finish(who, _value(body))
    if reply:
        who.reply_later(reply)


async def open_decision(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """Approve, Request changes or Reject: the decision form, for someone who may decide."""
    await ack()
    who = Invocation.of(context, client, body)
    verdict = VERDICT_OF[body["actions"][0]["action_id"]]
    async with who.deps.transaction() as session:
        review = await governance.get_review(session, _value(body))
        # Refused here, before any form opens: not an approver, the requester, already decided, closed.
        await governance.check_can_decide(session, who.config, review, who.user_id)
    who.open_modal(decision_modal(review.key, verdict, review.subject))


VERDICT_OF = {
    ids.REVIEW_APPROVE: "approve",
    ids.REVIEW_REQUEST_CHANGES: "request_changes",
    ids.REVIEW_REJECT: "reject",
}


async def open_plan(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    who = Invocation.of(context, client, body)
    team = who.config.team(_value(body))
    if team is None:
        raise Invalid("That team is no longer configured.")
    who.may_read(team, "its sprints")
    result = await who.deps.read(sprints.plan_of, config=who.config, team=team)
    who.open_modal(plan_modal(result, who.command))


async def open_standup(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    who = Invocation.of(context, client, body)
    if not _value(body).isdigit():
        raise Invalid("That standup button is out of date.")
    async with who.deps.transaction() as session:
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


async def page(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    try:
        value = json.loads(_value(body))
        tokens, number = list(value["filters"]["tokens"]), int(value["page"])
    except (ValueError, KeyError, TypeError):
        raise Invalid("That page button is out of date; run the list command again.") from None
    who = Invocation.of(context, client, body)
    reply = await list_(who, tokens, page=number)
    if reply:
        who.reply_later(reply, replace_original=True)


def _permalink(body: dict[str, Any]) -> str | None:
    """The clicked message's link (the evidence of a retraining story points back to the alert)."""
    container = body.get("container") or {}
    channel, ts = container.get("channel_id"), container.get("message_ts")
    if not channel or not ts:
        return None
    return f"https://slack.com/archives/{channel}/p{str(ts).replace('.', '')}"


async def drift_ack(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    who = Invocation.of(context, client, body)
    reply = await drift_commands.acknowledge(who, _value(body))
    if reply:
        who.reply_later(reply)


async def drift_snooze(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    who = Invocation.of(context, client, body)
    selected = str((body["actions"][0].get("selected_option") or {}).get("value") or "")
    key, _, choice = selected.partition("|")
    if not key or not choice:
        raise Invalid("Pick how long to snooze the incident for.")
    reply = await drift_commands.snooze(who, key, choice)
    if reply:
        who.reply_later(reply)


async def drift_story(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    who = Invocation.of(context, client, body)
    reply = await drift_commands.story(who, _value(body), link=_permalink(body))
    if reply:
        who.reply_later(reply)


async def review_post(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    who = Invocation.of(context, client, body)
    reply = await sprint_commands.post_review(who, _value(body))
    if reply:
        who.reply_later(reply)


async def drift_runbook(ack: AsyncAck) -> None:
    """A link button: Slack opens the runbook itself and still sends the click, which needs an ack."""
    await ack()


def register(app: AsyncApp) -> None:
    app.action(ids.OPEN_READY_MODAL)(bounded(open_ready))
    app.action(ids.OPEN_DONE_MODAL)(bounded(open_done))
    app.action(ids.OPEN_STORY_EDIT)(bounded(open_edit))
    app.action(ids.OPEN_STORY_ADD)(bounded(open_add))
    app.action(ids.MARK_DONE)(bounded(mark_done))
    for action_id in VERDICT_OF:
        app.action(action_id)(bounded(open_decision))
    app.action(ids.OPEN_PLAN_VIEW)(bounded(open_plan))
    app.action(ids.OPEN_STANDUP_MODAL)(bounded(open_standup))
    app.action(re.compile(f"^{ids.STORY_LIST_PAGE}"))(bounded(page))
    app.action(ids.REVIEW_POST)(bounded(review_post))
    app.action(ids.DRIFT_ACK)(bounded(drift_ack))
    app.action(ids.DRIFT_SNOOZE)(bounded(drift_snooze))
    app.action(ids.DRIFT_STORY)(bounded(drift_story))
    app.action(ids.DRIFT_RUNBOOK)(drift_runbook)
