"""Events API: the App Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.context import deps_of
from bot.slack.home import publish_home


async def home_opened(event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
    if event.get("tab", "home") == "home":
        deps = deps_of(context)
        deps.followups.spawn(publish_home(deps, client, event["user"]), what="views.publish")


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(home_opened)
