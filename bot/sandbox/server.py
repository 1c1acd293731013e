"""`cadence sandbox`: the whole bot, a Slack stand-in and a page that behaves like a Slack client, in one
process and on one port, with no workspace and no tokens.

What a person does on the page (a command, a click, a form) becomes the request Slack would send —
built in Slack's shape, signed with the sandbox's signing secret and posted over HTTP to the bot's own
/slack/events — so the page runs the bot's real code. The bot's Web API calls go to the stand-in
(bot/sandbox/slack.py), which keeps the messages, modals and files and tells the page about each change
over server-sent events."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import mimetypes
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import delete
from sqlmodel import SQLModel

from bot.config import AppConfig, Settings
from bot.jobs import outbox_worker
from bot.sandbox import demo
from bot.sandbox.slack import BOT_USER, TEAM_ID, Responder, Workspace, as_slack_view
from bot.services.errors import CadenceError
from bot.services.schedule import occasions
from bot.store.db import create_engine, unit_of_work
from bot.web import create_web_app

log = logging.getLogger(__name__)
STATIC = files("bot.sandbox") / "static"
APP_ID = "A0SANDBOX"


class SandboxClock:
    """The system clock moved forward by what the page asked for ("+1 day")."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def set(self, at: datetime) -> None:
        self.offset = at - datetime.now(UTC)


# ── what the page sends ──────────────────────────────────────────────────────────────────────


class CommandIn(BaseModel):
    user: str
    channel: str
    text: str = Field(max_length=4000)


class PostIn(BaseModel):
    user: str
    channel: str
    text: str = Field(min_length=1, max_length=4000)
    thread_ts: str | None = None


class ActionIn(BaseModel):
    """A click or a choice: on a message (channel and ts), in a modal or on App Home (view_id)."""

    user: str
    element: dict[str, Any]  # the Block Kit element as the bot sent it
    block_id: str = ""
    channel: str | None = None
    ts: str | None = None
    view_id: str | None = None
    selected: Any = None  # a select's or overflow's option, a date, checkbox options


class SubmitIn(BaseModel):
    user: str
    view_id: str
    values: dict[str, dict[str, dict[str, Any]]]  # block_id -> action_id -> state, as Slack sends it


class CloseIn(BaseModel):
    user: str
    view_id: str


class HomeIn(BaseModel):
    user: str


class FireIn(BaseModel):
    team: str
    kind: str


class AdvanceIn(BaseModel):
    days: int = Field(default=1, ge=1, le=14)


class DriftIn(BaseModel):
    model: str = Field(default="recsys-ranker", min_length=1, max_length=200)
    metric: str = Field(default="psi", min_length=1, max_length=100)
    feature: str = Field(default="user_age", max_length=200)
    value: float


class Sandbox:
    """The bot wired to the stand-in, and what the page can do to it."""

    def __init__(
        self,
        *,
        config: AppConfig,
        database_url: str,
        port: int,
        host: str = "127.0.0.1",
        seed: bool = True,
        names: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.port = port
        self.seed_demo = seed
        self.base = f"http://{host}:{port}"
        self.workspace = Workspace(f"{self.base}/sandbox/slack/")
        self.people = demo.people_of(config, names)
        self.channels = demo.channels_of(config, names)
        self._directory()
        self.clock = SandboxClock()
        self.workspace.now = lambda: self.clock.now().timestamp()
        self.secret = secrets.token_hex(16)
        self.api_token = secrets.token_hex(16)
        self.settings = Settings(
            slack_bot_token="xoxb-sandbox",
            slack_signing_secret=self.secret,
            slack_api_url=f"{self.workspace.base_url}api/",
            database_url=database_url,
            api_tokens=(f"sandbox={self.api_token}",),
            port=port,
        )
        self.engine = create_engine(database_url)
        self.web = create_web_app(
            settings=self.settings,
            config=config,
            engine=self.engine,
            migrate_on_start=True,
            run_scheduler=True,
            clock=self.clock,
            on_start=self.start,
        )
        self.web.state.sandbox = self
        self.http = httpx.AsyncClient(base_url=self.base, timeout=30)
        self._ids = itertools.count(1)
        self.web.include_router(self._router())

    # ── life ───────────────────────────────────────────────────────────────────────────────

    def _directory(self) -> None:
        for p in self.people:
            self.workspace.users[p.id] = {"real_name": p.name, "email": p.email}
        for cid, name in self.channels.items():
            self.workspace.channels[cid] = {"name": name, "is_member": True}

    async def start(self) -> None:
        if self.seed_demo:
            await demo.seed(self.web.state.runner.notifier, self.config, self.clock)

    async def reset(self) -> None:
        """Back to the first start: every table emptied, the demo seeded again, the clock at now."""
        async with unit_of_work(self.web.state.deps.sessions) as session:
            for table in reversed(SQLModel.metadata.sorted_tables):
                await session.exec(delete(table))
        self.workspace.reset()
        self._directory()
        self.clock.offset = timedelta(0)
        await self.start()
        await self.deliver()
        self.workspace.notify({"type": "clock", "now": self.clock.now().isoformat()})

    async def deliver(self) -> None:
        """Send what the last request queued now, rather than at the worker's next round, so the page
        shows the result of a click at once (the worker and this share the outbox's claims safely)."""
        worker = self.web.state.runner.worker
        # Until nothing is due and nothing is on its way: the background worker may hold a claim on
        # some of them, and on a loaded machine its sending can take a while, so wait for it too.
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            if await worker.run_once():
                continue
            async with unit_of_work(self.web.state.deps.sessions) as session:
                sending = (await outbox_worker.counts(session)).get("sending")
            due = await worker.next_due()
            if not sending and (due is None or due > self.clock.now()):
                return
            await asyncio.sleep(0.02)
        log.warning("the sandbox's outbox was still sending after 15 s")

    # ── Slack's side of each request ───────────────────────────────────────────────────────

    def _trigger(self, user: str) -> str:
        trigger = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(8)}"
        self.workspace.issue_trigger(trigger, user)
        return trigger

    def _response_url(self, responder: Responder) -> str:
        name = f"R{next(self._ids):06d}{secrets.token_hex(6)}"
        self.workspace.responders[name] = responder  # answered as Slack does: 5 times in 30 minutes
        return self.workspace.response_url(name)

    def _name(self, user: str) -> str:
        return next((p.name for p in self.people if p.id == user), user)

    async def _send(self, body: str, content_type: str) -> httpx.Response:
        """Post to the bot exactly as Slack does: the body signed with the app's signing secret."""
        ts = str(int(time.time()))
        signature = SignatureVerifier(self.secret).generate_signature(timestamp=ts, body=body)
        headers = {
            "content-type": content_type,
            "x-slack-request-timestamp": ts,
            "x-slack-signature": str(signature),
            "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        return await self.http.post("/slack/events", content=body.encode(), headers=headers)

    async def _interact(self, payload: dict[str, Any]) -> httpx.Response:
        return await self._send(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
        )

    async def _event(self, event: dict[str, Any]) -> httpx.Response:
        body = {
            "token": "sandbox",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "type": "event_callback",
            "event": event,
            "event_id": f"Ev{next(self._ids):010d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER, "is_bot": True}],
        }
        return await self._send(json.dumps(body), "application/json")

    def _where(self, user: str, channel: str) -> None:
        """Someone the workspace knows, in a channel they can type in (a team channel or their own DM)."""
        if not any(p.id == user for p in self.people):
            raise HTTPException(422, detail={"field": "user", "error": f"nobody in this workspace is {user}"})
        if channel not in self.channels and channel != "D" + user[1:]:
            raise HTTPException(
                422, detail={"field": "channel", "error": f"{user} cannot write in {channel}"}
            )

    async def command(self, cmd: CommandIn) -> dict[str, Any]:
        self._where(cmd.user, cmd.channel)
        slash, _, text = cmd.text.strip().partition(" ")
        if not slash.startswith("/"):
            raise HTTPException(422, detail={"field": "text", "error": "a command starts with /"})
        self.workspace.post_as(cmd.user, cmd.channel, cmd.text.strip(), ephemeral=True)
        if slash != self.config.command:
            self.workspace.say_ephemeral(
                cmd.user,
                cmd.channel,
                {"text": f"{slash} is not a valid command. This app has {self.config.command}."},
            )
            return {"ok": False, "error": "unknown_command"}
        body = urlencode(
            {
                "token": "sandbox",
                "team_id": TEAM_ID,
                "team_domain": "sandbox",
                "channel_id": cmd.channel,
                "channel_name": self.channels.get(cmd.channel, "directmessage"),
                "user_id": cmd.user,
                "user_name": self._name(cmd.user).split()[0].lower(),
                "command": slash,
                "text": text.strip(),
                "api_app_id": APP_ID,
                "is_enterprise_install": "false",
                "response_url": self._response_url(Responder(cmd.user, cmd.channel)),
                "trigger_id": self._trigger(cmd.user),
            }
        )
        response = await self._send(body, "application/x-www-form-urlencoded")
        if response.status_code != 200:
            self.workspace.say_ephemeral(
                cmd.user, cmd.channel, {"text": f'{slash} failed with the error "dispatch_failed"'}
            )
            return {"ok": False, "status": response.status_code}
        answer = _json_or_text(response)
        if answer:
            if answer.get("response_type") == "in_channel":
                self.workspace.post_as(
                    BOT_USER, cmd.channel, str(answer.get("text") or ""), blocks=answer.get("blocks")
                )
            else:
                self.workspace.say_ephemeral(cmd.user, cmd.channel, answer)
        await self.deliver()  # what the command queued shows after its answer, as in Slack
        return {"ok": True}

    async def post(self, post: PostIn) -> dict[str, Any]:
        self._where(post.user, post.channel)
        message = self.workspace.post_as(post.user, post.channel, post.text, thread_ts=post.thread_ts)
        await self._event(
            {
                "type": "message",
                "channel": post.channel,
                "user": post.user,
                "text": post.text,
                "ts": message.ts,
                "channel_type": "im" if post.channel.startswith("D") else "channel",
                **({"thread_ts": post.thread_ts} if post.thread_ts else {}),
            }
        )
        return {"ok": True, "ts": message.ts}

    async def action(self, act: ActionIn) -> dict[str, Any]:
        element = act.element
        action: dict[str, Any] = {
            "type": element.get("type", "button"),
            "action_id": element.get("action_id", ""),
            "block_id": act.block_id,
            "action_ts": f"{time.time():.6f}",
        }
        if action["type"] == "button":
            action["text"] = element.get("text", {})
            if "value" in element:
                action["value"] = element["value"]
        elif action["type"] in ("static_select", "overflow", "radio_buttons"):
            action["selected_option"] = act.selected
        elif action["type"] == "checkboxes":
            action["selected_options"] = act.selected or []
        elif action["type"] == "datepicker":
            action["selected_date"] = act.selected
        elif action["type"] == "users_select":
            action["selected_user"] = act.selected
        payload: dict[str, Any] = {
            "type": "block_actions",
            "token": "sandbox",
            "team": {"id": TEAM_ID, "domain": "sandbox"},
            "user": {"id": act.user, "username": act.user.lower(), "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "trigger_id": self._trigger(act.user),
            "actions": [action],
        }
        if act.view_id:
            view = self.workspace.views.get(act.view_id) or _home_view(self.workspace, act.user, act.view_id)
            if view is None or view.get("user", act.user) != act.user:  # a modal is its person's only
                raise HTTPException(404, detail={"field": "view_id", "error": "no such view"})
            payload["container"] = {"type": "view", "view_id": act.view_id}
            payload["view"] = _slack_view(view)
        else:
            if not act.channel or not act.ts:
                raise HTTPException(422, detail={"field": "ts", "error": "a click on a message names it"})
            message = self.workspace.message(act.channel, act.ts)
            if message is None:
                raise HTTPException(404, detail={"field": "ts", "error": "no such message"})
            payload["container"] = {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": message.ephemeral_to is not None,
            }
            payload["channel"] = {
                "id": message.channel,
                "name": self.channels.get(message.channel, "directmessage"),
            }
            if message.ephemeral_to is None:
                payload["message"] = {
                    "type": "message",
                    "user": message.user,
                    "ts": message.ts,
                    "text": message.text,
                    "blocks": message.blocks,
                    **({"bot_id": "BBOT"} if message.user == BOT_USER else {}),
                }
            payload["state"] = {"values": {}}
            payload["response_url"] = self._response_url(Responder(act.user, message.channel, message.ts))
        response = await self._interact(payload)
        await self.deliver()
        return {"ok": response.status_code == 200, "status": response.status_code}

    async def submit(self, sub: SubmitIn) -> dict[str, Any]:
        view = self.workspace.views.get(sub.view_id)
        if view is None or view["user"] != sub.user:
            raise HTTPException(404, detail={"field": "view_id", "error": "no such open modal"})
        sent = _slack_view({**view, "state": {"values": sub.values}})
        payload = {
            "type": "view_submission",
            "token": "sandbox",
            "team": {"id": TEAM_ID, "domain": "sandbox"},
            "user": {"id": sub.user, "username": sub.user.lower(), "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "trigger_id": self._trigger(sub.user),
            "view": sent,
            "response_urls": [],
        }
        response = await self._interact(payload)
        await self.deliver()
        if response.status_code != 200:
            return {"ok": False, "status": response.status_code, "errors": {}}
        answer = _json_or_text(response) or {}
        what = answer.get("response_action")
        if what == "errors":
            return {"ok": True, "errors": answer.get("errors") or {}}
        if what == "update":
            self.workspace.show_view(sub.user, answer.get("view") or {}, replace=sub.view_id)
        elif what == "push":
            self.workspace.show_view(sub.user, answer.get("view") or {})
        else:
            self.workspace.close_view(sub.view_id, everything=what == "clear")
        return {"ok": True, "errors": {}}

    async def close(self, close: CloseIn) -> dict[str, Any]:
        view = self.workspace.views.get(close.view_id)
        if view is None:
            return {"ok": True}
        if view["user"] != close.user:
            raise HTTPException(404, detail={"field": "view_id", "error": "no such open modal"})
        self.workspace.close_view(close.view_id)
        if view.get("notify_on_close"):
            await self._interact(
                {
                    "type": "view_closed",
                    "team": {"id": TEAM_ID, "domain": "sandbox"},
                    "user": {"id": close.user, "team_id": TEAM_ID},
                    "api_app_id": APP_ID,
                    "view": _slack_view(view),
                    "is_cleared": False,
                }
            )
        return {"ok": True}

    async def home(self, home: HomeIn) -> dict[str, Any]:
        await self._event(
            {
                "type": "app_home_opened",
                "user": home.user,
                "channel": "D" + home.user[1:],
                "tab": "home",
                "event_ts": f"{time.time():.6f}",
            }
        )
        return {"ok": True}

    async def fire(self, fire: FireIn) -> dict[str, Any]:
        run = await self.web.state.runner.jobs.run_now(fire.team, fire.kind)
        await self.deliver()
        return {
            "ok": True,
            "status": run.status if run else "claimed already",
            "note": run.note if run else None,
        }

    async def advance(self, days: int) -> dict[str, Any]:
        """Move the clock forward, running every ceremony, nudge and summary due on the way at its own time."""
        jobs = self.web.state.runner.jobs
        start = self.clock.now()
        end = start + timedelta(days=days)
        due = sorted(
            {
                at
                for team in self.config.teams
                for occ in occasions(self.config, team)
                for at, _ in occ.fire_times(start, end)
            }
        )
        ran = 0
        for at in due:
            self.clock.set(at)
            ran += len(await jobs.run_due(now=at))
            await self.deliver()  # each message is posted at the time it falls due
        self.clock.set(end)
        await self.web.state.runner.sweep()
        await self.deliver()
        self.workspace.notify({"type": "clock", "now": self.clock.now().isoformat()})
        return {"ok": True, "now": self.clock.now().isoformat(), "ran": ran}

    async def drift_reading(self, reading: DriftIn) -> dict[str, Any]:
        """A reading sent to the bot's own ingestion API, as a monitoring job would."""
        body = {
            "readings": [
                {
                    "model": reading.model,
                    "metric": reading.metric,
                    "feature": reading.feature or None,
                    "value": reading.value,
                    "window_end": self.clock.now().isoformat(),
                    "source": "sandbox",
                }
            ]
        }
        response = await self.http.post(
            "/api/v1/drift", json=body, headers={"authorization": f"Bearer {self.api_token}"}
        )
        await self.deliver()
        return {"status": response.status_code, "answer": response.json()}

    def state(self) -> dict[str, Any]:
        messages, views, home = self.workspace.snapshot()
        return {
            "command": self.config.command,
            "bot": {"id": BOT_USER, "name": self.config.app_name},
            "people": [asdict(p) for p in self.people],
            "channels": [{"id": cid, "name": name} for cid, name in self.channels.items()],
            "messages": messages,
            "views": views,
            "home": home,
            "occasions": [
                {"team": team.name, "kind": occ.kind}
                for team in self.config.teams
                for occ in occasions(self.config, team)
            ],
            "now": self.clock.now().isoformat(),
            "timezone": self.config.timezone,
        }

    # ── routes ─────────────────────────────────────────────────────────────────────────────

    def _router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        ws = self.workspace

        @router.get("/")
        async def page() -> FileResponse:
            return FileResponse(str(STATIC / "index.html"))

        @router.get("/sandbox/static/{name}")
        async def static(name: str) -> Response:
            if name not in ("app.js", "app.css", "index.html"):
                raise HTTPException(404)
            return FileResponse(str(STATIC / name), media_type=mimetypes.guess_type(name)[0] or "text/plain")

        @router.get("/sandbox/state")
        async def state() -> JSONResponse:
            return JSONResponse(self.state())

        @router.get("/sandbox/events")
        async def stream(request: Request) -> StreamingResponse:
            return StreamingResponse(self._events(request), media_type="text/event-stream")

        @router.post("/sandbox/command")
        async def command(cmd: CommandIn) -> dict[str, Any]:
            return await self.command(cmd)

        @router.post("/sandbox/post")
        async def post(p: PostIn) -> dict[str, Any]:
            return await self.post(p)

        @router.post("/sandbox/action")
        async def action(act: ActionIn) -> dict[str, Any]:
            return await self.action(act)

        @router.post("/sandbox/submit")
        async def submit(sub: SubmitIn) -> dict[str, Any]:
            return await self.submit(sub)

        @router.post("/sandbox/close")
        async def close(c: CloseIn) -> dict[str, Any]:
            return await self.close(c)

        @router.post("/sandbox/home")
        async def home(h: HomeIn) -> dict[str, Any]:
            return await self.home(h)

        @router.post("/sandbox/fire")
        async def fire(f: FireIn) -> JSONResponse:
            try:
                return JSONResponse(await self.fire(f))
            except CadenceError as exc:
                return JSONResponse({"field": exc.field or "kind", "error": exc.message}, status_code=422)

        @router.post("/sandbox/advance")
        async def advance(a: AdvanceIn) -> dict[str, Any]:
            return await self.advance(a.days)

        @router.post("/sandbox/drift")
        async def drift_reading(d: DriftIn) -> dict[str, Any]:
            return await self.drift_reading(d)

        @router.post("/sandbox/reset")
        async def reset() -> dict[str, Any]:
            await self.reset()
            return {"ok": True}

        # the stand-in for Slack's Web API, response URLs, file uploads and downloads
        @router.api_route("/sandbox/slack/api/{method}", methods=["GET", "POST"])
        async def web_api(method: str, request: Request) -> JSONResponse:
            query = dict(request.query_params)
            raw = (await request.body()).decode("utf-8")
            if "json" in request.headers.get("content-type", ""):
                args = query | json.loads(raw or "{}")
            else:
                args = Workspace.form_args(raw, query, {k: v[0] for k, v in parse_qs(raw).items()})
            status, body, headers = ws.answer(method, args, dict(request.headers))
            return JSONResponse(body, status_code=status, headers=headers)

        @router.post("/sandbox/slack/response/{name}")
        async def respond(name: str, request: Request) -> JSONResponse:
            args = json.loads((await request.body()) or b"{}")
            status, body, headers = ws.answer(f"response_url/{name}", args, dict(request.headers))
            return JSONResponse(body, status_code=status, headers=headers)

        @router.post("/sandbox/slack/upload/{file_id}")
        async def upload(file_id: str, request: Request) -> Response:
            status, text = ws.receive(file_id, await request.body())
            return Response(text, status_code=status, media_type="text/plain")

        @router.get("/sandbox/slack/files/{file_id}")
        async def download(file_id: str) -> Response:
            found = ws.uploads.get(file_id)
            if found is None or not found.completed:
                raise HTTPException(404)
            kind = mimetypes.guess_type(found.filename)[0] or "application/octet-stream"
            return Response(found.content, media_type=kind)

        return router

    async def _events(self, request: Request) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def listener(event: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        self.workspace.listeners.append(listener)
        try:
            yield "retry: 1000\n\n"
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"data: {json.dumps(event, default=str)}\n\n"
        finally:
            self.workspace.listeners.remove(listener)


def _json_or_text(response: httpx.Response) -> dict[str, Any] | None:
    """What an acknowledgement carried for the person: a JSON message, or plain text."""
    if not response.content:
        return None
    try:
        data = response.json()
    except ValueError:
        return {"text": response.text}
    return data if isinstance(data, dict) else None


def _slack_view(view: dict[str, Any]) -> dict[str, Any]:
    """The view as an interaction payload carries it, with the fields Slack fills in."""
    out = as_slack_view(view)
    out.setdefault("team_id", TEAM_ID)
    out.setdefault("app_id", APP_ID)
    out.setdefault("bot_id", "BBOT")
    out.setdefault("private_metadata", "")
    out.setdefault("callback_id", "")
    out.setdefault("state", {"values": {}})
    return out


def _home_view(ws: Workspace, user: str, view_id: str) -> dict[str, Any] | None:
    view = ws.home.get(user)
    return {**view, "type": "home"} if view and view.get("id") == view_id else None
