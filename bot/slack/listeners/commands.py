"""The slash command: tokenise, find the subcommand, answer in the ack."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.errors import Invalid
from bot.slack.budget import bounded
from bot.slack.commands import match
from bot.slack.context import Invocation
from bot.slack.parsing import tokenize
from bot.slack.replays import first_time


async def on_command(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    began = time.perf_counter()
    who = Invocation.of(context, client, body)
    context["usage"] = f"{who.command} help"
    tokens = tokenize(body.get("text") or "")
    if "--team" in tokens:  # any command may say which team it is for (see Invocation.team)
        at = tokens.index("--team")
        if at + 1 >= len(tokens):
            raise Invalid("--team needs a team name, e.g. --team recsys.", field="--team")
        who = replace(who, team_name=tokens[at + 1])
        tokens = tokens[:at] + tokens[at + 2 :]
    sub, rest = match(tokens)
    context["usage"] = f"{who.command} {sub.usage}"
    try:
        if not sub.reads and who.trigger_id and not await first_time(who.deps, who.trigger_id):
            await ack()  # a replayed command that changes something: Slack has its answer already
            return
        reply = await sub.handler(who, rest)
        await (ack(**reply) if reply else ack())
    finally:  # refused and cut-short commands are timed too: their answer is on the same clock
        who.deps.metrics.ack.labels(" ".join(sub.words)).observe(time.perf_counter() - began)


def register(app: AsyncApp, command: str) -> None:
    app.command(command)(bounded(on_command))
