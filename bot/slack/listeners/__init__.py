"""Registers every listener on the Bolt app, one module per surface."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.context import Deps
from bot.slack.listeners import actions, commands, events, views


def register(app: AsyncApp, deps: Deps) -> None:
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    events.register(app, deps)
