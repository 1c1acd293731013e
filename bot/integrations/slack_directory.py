"""People's Slack time zones from users.info, cached in the member table for a day."""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.store.db import unit_of_work
from bot.store.models import Member

log = logging.getLogger(__name__)
FRESH_FOR = timedelta(hours=24)


class SlackDirectory:
    def __init__(
        self, client: AsyncWebClient, sessions: async_sessionmaker[AsyncSession], clock: Clock
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.clock = clock

    async def timezones(self, user_ids: list[str], fallback: ZoneInfo) -> dict[str, ZoneInfo]:
        """Each person's zone; looked up outside any transaction, cached, `fallback` when unknown."""
        now = self.clock.now()
        async with unit_of_work(self.sessions) as session:
            known = {u: await session.get(Member, u) for u in user_ids}
        zones: dict[str, ZoneInfo] = {}
        for user_id, member in known.items():
            fresh = member and member.tz and member.tz_fetched_at and now - member.tz_fetched_at < FRESH_FOR
            name = member.tz if fresh and member else await self._lookup(user_id)
            if not fresh and name:
                async with unit_of_work(self.sessions) as session:
                    row = await session.get(Member, user_id) or Member(user_id=user_id)
                    row.tz, row.tz_fetched_at = name, now
                    session.add(row)
            zones[user_id] = _zone(name) or fallback
        return zones

    async def _lookup(self, user_id: str) -> str | None:
        try:
            response = await self.client.users_info(user=user_id)
        except SlackApiError as exc:
            log.warning("users.info for %s failed: %s", user_id, exc.response.get("error"))
            return None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("users.info for %s failed: %s", user_id, exc)
            return None
        return (response.get("user") or {}).get("tz")


def _zone(name: str | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None
