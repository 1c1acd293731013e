"""Publishing the App Home tab for one person."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.services import drift, governance, sprints, stories
from bot.slack.blocks.home import home_view
from bot.slack.context import Deps
from bot.store.db import synchronously


async def publish_home(deps: Deps, client: AsyncWebClient, user_id: str) -> None:
    config = deps.config
    teams = [t for t in config.teams if t.includes(user_id)] or (
        config.teams if len(config.teams) == 1 else []
    )
    async with deps.reading() as session:
        reviews = await governance.awaiting(session, config=config, user=user_id)
        mine = await synchronously(session, stories.owned_by, config=config, owner=user_id)
        incidents = []
        for team in teams:
            incidents += await drift.list_incidents(session, team=team.name, state="open", limit=50)
        overviews = []
        for team in teams:
            sprint = await sprints.current_sprint(session, team)
            view = (
                await sprints.overview(session, config=config, team=team, sprint=sprint) if sprint else None
            )
            overviews.append((team.name, view))
    mine.sort(key=lambda item: (item.ready.complete, item.story.number))
    await client.views_publish(
        user_id=user_id,
        view=home_view(
            mine=mine, sprints=overviews, command=config.command, reviews=reviews, incidents=incidents
        ),
    )
