"""The audit heads Cadence posted to the governance channels, read back from Slack's history."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.notify.audit import ANCHOR_TYPE

MAX_PAGES = 50  # 200 messages a page: the heads of the last months of a busy channel


async def anchors_in(client: AsyncWebClient, channels: list[str]) -> list[tuple[int, str]]:
    """Every (row number, digest) found in the channels' messages whose metadata is an audit head. Needs
    the channels:history (groups:history for a private channel) scope."""
    found: list[tuple[int, str]] = []
    for channel in channels:
        cursor = None
        for _ in range(MAX_PAGES):
            page = await client.conversations_history(
                channel=channel, include_all_metadata=True, limit=200, cursor=cursor
            )
            for message in page.get("messages") or []:
                anchor = _anchor(message.get("metadata"))
                if anchor is not None:
                    found.append(anchor)
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                break
    return found


def _anchor(metadata: Any) -> tuple[int, str] | None:
    if not isinstance(metadata, dict) or metadata.get("event_type") != ANCHOR_TYPE:
        return None
    payload = metadata.get("event_payload") or {}
    seq, digest = payload.get("seq"), payload.get("digest")
    if isinstance(seq, int) and isinstance(digest, str) and len(digest) == 64:
        return seq, digest
    return None
