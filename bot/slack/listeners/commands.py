"""The slash command: tokenise, find the subcommand, answer in the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.commands import match
from bot.slack.context import Deps, Invocation
from bot.slack.parsing import tokenize


def register(app: AsyncApp, deps: Deps) -> None:
    async def on_command(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        context["usage"] = f"{deps.config.command} help"
        tokens = tokenize(body.get("text") or "")
        sub, rest = match(tokens)
        context["usage"] = f"{deps.config.command} {sub.usage}"
        reply = await sub.handler(Invocation.from_body(deps, client, body), rest)
        await (ack(**reply) if reply else ack())

    app.command(deps.config.command)(on_command)
