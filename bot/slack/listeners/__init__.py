"""Registers every listener on the Bolt app, one module per surface. Listeners are module-level
callbacks; each finds its dependencies in the Bolt context (`deps_of(context)`)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners import actions, commands, events, views


def register(app: AsyncApp, command: str) -> None:
    commands.register(app, command)
    actions.register(app)
    views.register(app)
    events.register(app)
