"""Replayed interactions: the same signed request sent again within Slack's five minutes."""

from __future__ import annotations

import logging

from bot.slack.context import Deps
from bot.store.slack_events import claim_trigger

log = logging.getLogger(__name__)


async def first_time(deps: Deps, trigger_id: str) -> bool:
    """Claims an interaction's trigger id: False (and logged) for a replay, which is acknowledged and
    ignored, as Slack's event retries are. Clicks and form submissions claim theirs before any listener
    runs; a slash command claims its own once it is known to change something (a command that only shows
    something may be answered twice)."""
    async with deps.transaction() as session:
        first = await claim_trigger(session, trigger_id)
    if not first:
        log.info("trigger %s already handled; ignoring the replay", trigger_id[:24])
    return first
