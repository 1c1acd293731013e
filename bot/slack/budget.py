"""Slack waits 3 seconds for an answer and then shows the person its own failure. Every listener that
answers in the acknowledgement runs within a budget below that; past it, the work is cancelled (its
transaction rolled back) and the person gets a sentence instead of Slack's timeout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.errors import Unavailable

log = logging.getLogger(__name__)
ACK_BUDGET = 2.5  # seconds, leaving half a second of Slack's three for the network
TOO_SLOW = (
    "Cadence's database did not answer within Slack's 3 seconds, so this was stopped and may not have "
    "been done. Check before trying again in a minute."
)

Listener = Callable[[AsyncAck, dict[str, Any], AsyncWebClient, AsyncBoltContext], Awaitable[None]]


def bounded(listener: Listener) -> Listener:
    """The listener, given at most ACK_BUDGET seconds. Bolt passes arguments by parameter name, so the
    wrapper names the same four."""

    async def within_budget(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        budget = ACK_BUDGET  # read at each call (the test suite widens it for a loaded machine)
        try:
            async with asyncio.timeout(budget):  # no task of its own, unlike wait_for: this is the ack path
                await listener(ack, body, client, context)
        except TimeoutError:
            log.warning("%s ran past the %.1f s budget and was cancelled", listener.__name__, budget)
            raise Unavailable(TOO_SLOW) from None

    within_budget.__name__ = within_budget.__qualname__ = listener.__name__
    return within_budget
