"""Readiness before planning: who owns which not-Ready stories of the sprint being planned."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig, Team
from bot.services import sprints, stories
from bot.services.errors import NotFound
from bot.services.stories import StoryListing
from bot.store.models import Sprint


@dataclass(frozen=True)
class ReadinessRound:
    sprint: Sprint
    stories: list[StoryListing]
    by_owner: dict[str, list[StoryListing]] = field(default_factory=dict)  # not-Ready stories per owner
    unowned: list[StoryListing] = field(default_factory=list)  # not Ready and nobody to ask

    @property
    def ready_count(self) -> int:
        return sum(1 for s in self.stories if s.ready.complete)


async def readiness_round(
    session: AsyncSession, *, config: AppConfig, team: Team, sprint: Sprint | None = None
) -> ReadinessRound | None:
    """The stories of the sprint being planned and the owners still to fill criteria; None if no sprint."""
    if sprint is None:
        try:
            sprint = await sprints.planning_target(session, team)
        except NotFound:
            return None
    listed = await stories.list_stories(session, config=config, team=team, sprint=sprint)
    by_owner: dict[str, list[StoryListing]] = defaultdict(list)
    unowned = []
    for item in listed:
        if item.ready.complete:
            continue
        if item.story.owner:
            by_owner[item.story.owner].append(item)
        else:
            unowned.append(item)
    return ReadinessRound(sprint, listed, dict(by_owner), unowned)
