"""Drives the real ASGI app with requests signed exactly as Slack signs them."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI
from slack_sdk.signature import SignatureVerifier

SECRET = "test-signing-secret"
_ids = itertools.count(1)


def signed_headers(
    body: str,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": ts,
        "x-slack-signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
    }


class SlackDriver:
    """What Slack does to the bot: slash commands, clicks, form submissions and events."""

    def __init__(self, app: FastAPI, fake: Any, *, channel: str, user: str) -> None:
        self.app = app
        self.fake = fake
        self.channel = channel
        self.user = user
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cadence.test")

    async def settle(self) -> None:
        """Wait for work started after the ack (views.open, response_url …)."""
        await self.app.state.deps.followups.drain()

    async def post(self, body: str, headers: dict[str, str]) -> httpx.Response:
        response = await self.http.post("/slack/events", content=body.encode(), headers=headers)
        await self.settle()
        return response

    async def command(
        self, text: str, *, user: str | None = None, channel: str | None = None, command: str = "/scrum"
    ) -> httpx.Response:
        n = next(_ids)
        body = urlencode(
            {
                "token": "legacy-verification-token",
                "team_id": "T0001",
                "team_domain": "test",
                "channel_id": channel or self.channel,
                "channel_name": "team",
                "user_id": user or self.user,
                "user_name": (user or self.user).lower(),
                "command": command,
                "text": text,
                "api_app_id": "A0001",
                "response_url": self.fake.response_url(f"cmd{n}"),
                "trigger_id": f"trigger.{n}",
            }
        )
        return await self.post(body, signed_headers(body))

    async def interact(self, payload: dict[str, Any]) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, signed_headers(body))

    async def click(
        self,
        action_id: str,
        value: str = "",
        *,
        user: str | None = None,
        channel: str | None = None,
        from_home: bool = False,
    ) -> httpx.Response:
        n = next(_ids)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": "T0001", "domain": "test"},
            "user": {"id": user or self.user, "team_id": "T0001"},
            "api_app_id": "A0001",
            "trigger_id": f"trigger.{n}",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b1",
                    "value": value,
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        if from_home:
            payload["container"] = {"type": "view", "view_id": "V0001"}
            payload["view"] = {
                "id": "V0001",
                "type": "home",
                "private_metadata": "",
                "callback_id": "",
                "state": {"values": {}},
                "blocks": [],
            }
        else:
            payload["container"] = {
                "type": "message",
                "message_ts": "1.1",
                "channel_id": channel or self.channel,
                "is_ephemeral": True,
            }
            payload["channel"] = {"id": channel or self.channel, "name": "team"}
            payload["response_url"] = self.fake.response_url(f"act{n}")
        return await self.interact(payload)

    async def submit(
        self, view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str | None = None
    ) -> httpx.Response:
        """Submit a modal the bot opened, with `values` as block_id -> element state."""
        payload = {
            "type": "view_submission",
            "team": {"id": "T0001", "domain": "test"},
            "user": {"id": user or self.user, "team_id": "T0001"},
            "api_app_id": "A0001",
            "trigger_id": f"trigger.{next(_ids)}",
            "view": {
                "id": "V0001",
                "type": "modal",
                "callback_id": view["callback_id"],
                "private_metadata": view.get("private_metadata", ""),
                "blocks": view["blocks"],
                "state": {"values": {block_id: {"input": state} for block_id, state in values.items()}},
                "hash": "h1",
            },
            "response_urls": [],
        }
        return await self.interact(payload)

    async def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None
    ) -> httpx.Response:
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": "T0001",
                "api_app_id": "A0001",
                "type": "event_callback",
                "event": event,
                "event_id": event_id or f"Ev{next(_ids):08d}",
                "event_time": int(time.time()),
            }
        )
        headers = signed_headers(body, content_type="application/json")
        if retry is not None:
            headers |= {"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"}
        return await self.post(body, headers)

    def last_view(self) -> dict[str, Any]:
        calls = self.fake.of("views.open")
        assert calls, "the bot opened no modal"
        return calls[-1].args["view"]
