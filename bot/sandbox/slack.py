"""A stand-in for Slack's Web API, kept in memory. It answers the methods Cadence calls in Slack's shapes,
records every call, can be told to fail, and remembers the workspace the calls change: messages by
channel (threads, edits, ephemeral ones), modals and App Home per person, uploaded files.

The sandbox serves it beside the bot and draws its page from it; the tests serve the same class on a
loopback port (tests/fake_slack.py) and assert on what it recorded."""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

BOT_USER = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"


@dataclass
class Call:
    method: str  # Web API method ("chat.postMessage"), or "response_url"
    args: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Upload:
    """A file the bot uploaded (files_upload_v2): its bytes arrive at the upload URL, and it is shared
    in a channel (or a thread) by files.completeUploadExternal."""

    file_id: str
    filename: str
    length: int
    content: bytes = b""
    title: str = ""
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Message:
    """One message as a person sees it: posted by the bot (or a person), maybe edited, maybe only for one
    person (ephemeral), maybe in a thread."""

    channel: str
    ts: str
    user: str
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    ephemeral_to: str | None = None
    edited: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)
    posted_at: float = field(default_factory=time.time)
    metadata: dict[str, Any] | None = None  # chat.postMessage's message metadata (event_type, event_payload)

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Responder:
    """Where an answer through a response_url goes: the person who acted, the channel, and the message
    they clicked in (which replace_original and delete_original change). Like Slack's, it answers at most
    5 times within 30 minutes."""

    user: str
    channel: str | None
    message_ts: str | None = None
    issued_at: float = field(default_factory=time.monotonic)
    uses: int = 0


RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60.0
TRIGGER_LIFETIME = 3.0  # seconds a trigger_id may open a modal, as in Slack


Listener = Callable[[dict[str, Any]], None]


class Workspace:
    """Slack as the bot sees it. `base_url` is where it is served: `base_url + "api/"` is the Web API,
    `base_url + "response/NAME"` a response_url, `base_url + "upload/F…"` an upload URL."""

    def __init__(self, base_url: str = "http://127.0.0.1/") -> None:
        self.base_url = base_url
        self.calls: list[Call] = []
        self.user_tz: dict[str, str] = {}  # users.info answers: user id -> IANA zone (default Europe/Berlin)
        # The workspace's directory, for the configuration's emails and #names and the ids check:
        # people by id ({"email", "real_name", "deleted"}: users.lookupByEmail finds them, users.info
        # describes them), ids users.info does not know, and channels by id ({"name", "is_private",
        # "is_archived", "is_member"}: conversations.list pages through them, conversations.info knows
        # only them; a private channel is visible only with is_member, as to a bot).
        self.users: dict[str, dict[str, Any]] = {}
        self.unknown_users: set[str] = set()
        self.channels: dict[str, dict[str, Any]] = {}
        self.page_size = 2  # conversations.list answers at most this many channels a page
        self.uploads: dict[str, Upload] = {}  # file id -> the upload
        self.messages: dict[str, Message] = {}  # "channel/ts" -> the message
        self.views: dict[str, dict[str, Any]] = {}  # view id -> the modal, with "user" and "stack" order
        self.home: dict[str, dict[str, Any]] = {}  # user id -> the App Home view published for them
        self.triggers: dict[str, str] = {}  # trigger id -> the person whose action made it
        self._trigger_issued: dict[str, float] = {}  # trigger id -> when the sandbox made it
        self.responders: dict[str, Responder] = {}  # response_url name -> where its answers go
        self.listeners: list[Listener] = []
        self._failures: dict[str, list[Failure]] = {}
        self._lock = threading.RLock()
        self._ts = itertools.count(1)
        self._files = itertools.count(1)
        self._view_ids = itertools.count(1)
        self.epoch = 1700000000  # the seconds part of every ts this workspace hands out
        self.now: Callable[[], float] = time.time  # when a message is posted (the sandbox's clock)

    # ── what a test or the sandbox asks of it ──────────────────────────────────────────────────

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base_url}response/{name}"

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._failures.clear()
            self.user_tz.clear()
            self.users.clear()
            self.unknown_users.clear()
            self.channels.clear()
            self.uploads.clear()
            self.messages.clear()
            self.views.clear()
            self.home.clear()
            self.triggers.clear()
            self._trigger_issued.clear()
            self.responders.clear()
            self.page_size = 2
        self.notify({"type": "reset"})

    def fail(
        self,
        method: str,
        status: int,
        body: dict[str, Any] | None = None,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` with this status instead of success."""
        with self._lock:
            self._failures.setdefault(method, []).extend(
                [Failure(status, body or {"ok": False, "error": "fatal_error"}, headers or {})] * times
            )

    def of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def delivered(self, method: str = "chat.postMessage") -> list[Call]:
        """The calls of `method` answered with success (not those it was told to fail), in order."""
        return [c for c in self.of(method) if "x-fake-failed" not in c.headers]

    def uploaded(self) -> list[Upload]:
        """The files shared in a channel (completed uploads), in order."""
        with self._lock:
            return [u for u in self.uploads.values() if u.completed]

    def issue_trigger(self, trigger: str, user: str) -> None:
        """A trigger_id the sandbox sends with a person's action: it opens one modal, within 3 seconds."""
        with self._lock:
            self.triggers[trigger] = user
            self._trigger_issued[trigger] = time.monotonic()

    def snapshot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """Every message in order, every open modal and every App Home, as plain data for the page."""
        with self._lock:
            messages = [m.public() for m in sorted(self.messages.values(), key=lambda m: m.ts)]
            return messages, [dict(v) for v in self.views.values()], dict(self.home)

    def _history(self, args: dict[str, Any], *, replies: bool = False) -> dict[str, Any]:
        """A channel's top-level messages newest first (conversations.history), or a thread's, parent
        first (conversations.replies), with their metadata when asked for (include_all_metadata); all in
        one page. A person's id is not a conversation: Slack answers channel_not_found."""
        channel = str(args.get("channel") or "")
        if not channel or channel[:1] in ("U", "W"):
            return {"ok": False, "error": "channel_not_found"}
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        thread = str(args.get("ts") or "")
        if replies and not thread:
            return {"ok": False, "error": "invalid_arguments"}
        found = []
        for m in sorted(self.channel_messages(channel), key=lambda m: m.ts, reverse=not replies):
            if m.ephemeral_to is not None:
                continue
            if replies and m.ts != thread and m.thread_ts != thread:
                continue
            if not replies and m.thread_ts and m.thread_ts != m.ts:
                continue
            item: dict[str, Any] = {"type": "message", "ts": m.ts, "user": m.user, "text": m.text}
            if with_metadata and m.metadata:
                item["metadata"] = m.metadata
            found.append(item)
        return {"ok": True, "messages": found, "has_more": False, "response_metadata": {"next_cursor": ""}}

    def channel_messages(self, channel: str, *, viewer: str | None = None) -> list[Message]:
        """A channel's messages in order, as `viewer` sees them (others' ephemeral ones left out)."""
        with self._lock:
            found = [
                m
                for m in self.messages.values()
                if m.channel == channel and (m.ephemeral_to is None or m.ephemeral_to == viewer)
            ]
        return sorted(found, key=lambda m: m.ts)

    def message(self, channel: str, ts: str) -> Message | None:
        with self._lock:
            return self.messages.get(f"{channel}/{ts}")

    def open_views(self, user: str) -> list[dict[str, Any]]:
        """The modals open for a person, the bottom of the stack first."""
        with self._lock:
            return sorted((v for v in self.views.values() if v["user"] == user), key=lambda v: v["stack"])

    def post_as(
        self,
        user: str,
        channel: str,
        text: str,
        thread_ts: str | None = None,
        *,
        blocks: list[dict[str, Any]] | None = None,
        ephemeral: bool = False,
    ) -> Message:
        """A message by `user` (a person at the sandbox's composer, or the bot answering in the channel);
        `ephemeral` shows it to that person only (the command they typed, as their client echoes it)."""
        message = Message(
            channel,
            self._next_ts(),
            user,
            text=text,
            blocks=list(blocks or []),
            thread_ts=thread_ts,
            ephemeral_to=user if ephemeral else None,
        )
        return self._store(message)

    def say_ephemeral(self, user: str, channel: str, body: dict[str, Any]) -> Message:
        """What Slack shows only to the person: the answer in a command's acknowledgement."""
        return self._store(
            Message(
                channel,
                self._next_ts(),
                BOT_USER,
                text=str(body.get("text") or ""),
                blocks=list(body.get("blocks") or []),
                ephemeral_to=user,
            )
        )

    def close_view(self, view_id: str, *, everything: bool = False) -> None:
        """The person closed a modal (or the bot answered response_action "clear")."""
        with self._lock:
            view = self.views.get(view_id)
            if view is None:
                return
            gone = [
                v["id"]
                for v in self.views.values()
                if v["user"] == view["user"] and (everything or v["stack"] >= view["stack"])
            ]
            for vid in gone:
                del self.views[vid]
        for vid in gone:
            self.notify({"type": "view_closed", "view_id": vid, "user": view["user"]})

    def show_view(self, user: str, view: dict[str, Any], *, replace: str | None = None) -> dict[str, Any]:
        """Open a modal for `user` on top of their stack, or put `view` in place of the modal `replace`."""
        with self._lock:
            if replace is not None and replace in self.views:
                shown = {**self.views[replace], **copy.deepcopy(view), "id": replace}
                shown["hash"] = f"h{next(self._view_ids)}"
            else:
                depth = max((v["stack"] for v in self.views.values() if v["user"] == user), default=0)
                vid = f"V{next(self._view_ids):04d}"
                shown = {**copy.deepcopy(view), "id": vid, "hash": "h1", "user": user, "stack": depth + 1}
            shown["blocks"] = self._block_ids(shown.get("blocks") or [])
            shown.setdefault("state", {"values": {}})
            self.views[shown["id"]] = shown
        self.notify({"type": "view", "view": shown, "user": user})
        return shown

    # ── the HTTP side: a transport hands each request here ─────────────────────────────────────

    def answer(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One Web API call (or a response_url post, method "response_url/NAME"): status, JSON, headers."""
        recorded = "response_url" if method.startswith("response_url") else method
        with self._lock:
            pending = self._failures.get(recorded)
            if pending:
                failure = pending.pop(0)
                self.calls.append(Call(recorded, args, headers | {"x-fake-failed": str(failure.status)}))
                return failure.status, failure.body, failure.headers
            self.calls.append(Call(recorded, args, headers))
        if recorded == "response_url":
            body = self._respond(method.partition("/")[2], args)
            return (200 if body["ok"] else 404), body, {}
        return 200, self._success(method, args), {}

    def receive(self, file_id: str, content: bytes) -> tuple[int, str]:
        """A file's bytes, sent to the URL files.getUploadURLExternal gave."""
        with self._lock:
            upload = self.uploads.get(file_id)
            if upload is None:
                return 404, "unknown upload"
            upload.content = content
            return 200, f"OK - {len(content)}"

    @staticmethod
    def form_args(raw: str, query: dict[str, str], parsed: dict[str, str]) -> dict[str, Any]:
        """A form-encoded call's arguments: JSON-valued fields (blocks, view …) decoded, query args under."""
        args: dict[str, Any] = dict(parsed)
        for key in ("blocks", "view", "attachments", "files"):
            if isinstance(args.get(key), str):
                try:
                    args[key] = json.loads(args[key])
                except ValueError:
                    pass
        return query | args

    # ── Slack's answers ────────────────────────────────────────────────────────────────────────

    def _next_ts(self) -> str:
        return f"{self.epoch}.{next(self._ts):06d}"

    def notify(self, event: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(event)

    def _block_ids(self, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Blocks as Slack keeps them: every block and element has an id (Slack makes one up if the app
        gave none), on a copy, so the recorded call keeps what the bot sent."""
        out = copy.deepcopy(blocks)
        for i, block in enumerate(out):
            block.setdefault("block_id", f"blk{i}")
            children = [block.get("accessory"), block.get("element"), *block.get("elements", [])]
            for j, element in enumerate(c for c in children if isinstance(c, dict)):
                if block.get("type") != "context" and element.get("type") not in (
                    "image",
                    "mrkdwn",
                    "plain_text",
                ):
                    element.setdefault("action_id", f"act{i}.{j}")
        return out

    def _store(self, message: Message) -> Message:
        message.blocks = self._block_ids(message.blocks)
        message.posted_at = self.now()
        with self._lock:
            self.messages[f"{message.channel}/{message.ts}"] = message
        self.notify({"type": "message", "message": message.public()})
        return message

    def _edit(self, channel: str, ts: str, args: dict[str, Any]) -> Message | None:
        with self._lock:
            message = self.messages.get(f"{channel}/{ts}")
            if message is None:
                return None
            if "text" in args:
                message.text = str(args.get("text") or "")
            if "blocks" in args:
                message.blocks = list(args.get("blocks") or [])
            message.blocks = self._block_ids(message.blocks)
            message.edited = True
        self.notify({"type": "message", "message": message.public()})
        return message

    def _delete(self, channel: str, ts: str) -> None:
        with self._lock:
            message = self.messages.pop(f"{channel}/{ts}", None)
        if message is not None:
            self.notify({"type": "deleted", "channel": channel, "ts": ts})

    def _dm_channel(self, user: str) -> str:
        return "D" + user[1:]

    def _channel_of(self, target: str) -> str:
        """chat.postMessage to a user id posts in the DM with them, as Slack does."""
        return self._dm_channel(target) if target[:1] in ("U", "W") else target

    def _respond(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        responder = self.responders.get(name)
        if responder is None or responder.channel is None:
            return {"ok": True}
        with self._lock:
            responder.uses += 1
            spent = responder.uses > RESPONSE_URL_USES
            expired = time.monotonic() - responder.issued_at > RESPONSE_URL_LIFETIME
        if spent or expired:
            return {"ok": False, "error": "used_url" if spent else "expired_url"}
        original = responder.message_ts
        if body.get("delete_original") and original:
            self._delete(responder.channel, original)
        elif body.get("replace_original") and original and self._edit(responder.channel, original, body):
            pass
        elif body.get("response_type") == "in_channel":
            self._store(
                Message(
                    responder.channel,
                    self._next_ts(),
                    BOT_USER,
                    text=str(body.get("text") or ""),
                    blocks=list(body.get("blocks") or []),
                    thread_ts=body.get("thread_ts"),
                )
            )
        else:
            self.say_ephemeral(responder.user, responder.channel, body)
        return {"ok": True}

    def _success(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "user_id": BOT_USER,
                "bot_id": BOT_ID,
                "team_id": TEAM_ID,
                "user": "cadence",
                "team": "Test",
                "url": "https://test.slack.com/",
            }
        if method in ("chat.postMessage", "chat.postEphemeral"):
            ts = self._next_ts()
            channel = self._channel_of(str(args.get("channel") or ""))
            self._store(
                Message(
                    channel,
                    ts,
                    BOT_USER,
                    text=str(args.get("text") or ""),
                    blocks=list(args.get("blocks") or []),
                    thread_ts=args.get("thread_ts") or None,
                    ephemeral_to=str(args["user"]) if method == "chat.postEphemeral" else None,
                    metadata=args.get("metadata") if isinstance(args.get("metadata"), dict) else None,
                )
            )
            return {
                "ok": True,
                "channel": channel,  # a DM sent to a person's id answers with the DM's own id, as Slack's
                "ts": ts,
                "message_ts": ts,
                "message": {"text": args.get("text"), "ts": ts},
            }
        if method == "chat.update":
            ts = str(args.get("ts") or "")
            channel = self._channel_of(str(args.get("channel") or ""))
            self._edit(channel, ts, args)
            return {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {"text": args.get("text"), "ts": ts},
            }
        if method == "chat.delete":
            self._delete(self._channel_of(str(args.get("channel") or "")), str(args.get("ts") or ""))
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        if method in ("views.open", "views.push"):
            trigger = str(args.get("trigger_id") or "")
            user = self.triggers.get(trigger)
            view = args.get("view") or {}
            if user is None:  # a trigger this workspace never handed out: only recorded
                return {"ok": True, "view": {**view, "id": "V0001", "hash": "h1"}}
            with self._lock:
                issued = self._trigger_issued.pop(trigger, None)
            if issued is None:
                return {"ok": False, "error": "invalid_trigger_id"}  # each trigger opens one modal
            if time.monotonic() - issued > TRIGGER_LIFETIME:
                return {"ok": False, "error": "expired_trigger_id"}
            shown = self.show_view(user, view)
            return {"ok": True, "view": as_slack_view(shown)}
        if method == "views.update":
            view_id = str(args.get("view_id") or "")
            if view_id not in self.views:
                return {
                    "ok": True,
                    "view": {**(args.get("view") or {}), "id": view_id or "V0001", "hash": "h1"},
                }
            shown = self.show_view(self.views[view_id]["user"], args.get("view") or {}, replace=view_id)
            return {"ok": True, "view": as_slack_view(shown)}
        if method == "views.publish":
            user = str(args.get("user_id") or "")
            view = {**(args.get("view") or {}), "id": f"VHOME{user}", "hash": "h1"}
            with self._lock:
                self.home[user] = view
            self.notify({"type": "home", "user": user, "view": view})
            return {"ok": True, "view": view}
        if method == "users.info":
            user_id = str(args.get("user", ""))
            if user_id in self.unknown_users:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": self._user(user_id)}
        if method == "users.lookupByEmail":
            email = str(args.get("email", "")).lower()
            found = next((u for u, p in self.users.items() if str(p.get("email", "")).lower() == email), None)
            if found is None:
                return {"ok": False, "error": "users_not_found"}
            return {"ok": True, "user": self._user(found)}
        if method == "conversations.list":
            return self._channel_page(args)
        if method == "conversations.history":
            return self._history(args)
        if method == "conversations.replies":
            return self._history(args, replies=True)
        if method == "conversations.info":
            visible = self._visible_channels().get(str(args.get("channel", "")))
            if visible is None:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "channel": visible}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": self._dm_channel(str(args.get("users", "UX")))}}
        if method == "files.getUploadURLExternal":
            filename, length = str(args.get("filename") or ""), str(args.get("length") or "")
            if not filename or not length.isdigit() or int(length) <= 0:
                return {"ok": False, "error": "invalid_arguments"}
            with self._lock:
                file_id = f"F{next(self._files):07d}"
                self.uploads[file_id] = Upload(file_id, filename, int(length))
            return {"ok": True, "upload_url": f"{self.base_url}upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            return self._complete_upload(args)
        return {"ok": True}

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        files = json.loads(files) if isinstance(files, str) else files or []
        with self._lock:
            for f in files:
                upload = self.uploads.get(str(f.get("id")))
                if upload is None or len(upload.content) != upload.length:
                    return {"ok": False, "error": "invalid_file"}
            shared = []
            for f in files:
                upload = self.uploads[str(f["id"])]
                upload.title = str(f.get("title") or upload.filename)
                upload.channel = args.get("channel_id")
                upload.thread_ts = args.get("thread_ts")
                upload.initial_comment = args.get("initial_comment")
                upload.completed = True
                shared.append({"id": upload.file_id, "name": upload.filename, "title": upload.title})
        channel = args.get("channel_id")
        if channel:
            attached = [
                {**f, "url": f"{self.base_url}files/{f['id']}", "image": f["name"].lower().endswith(_IMAGES)}
                for f in shared
            ]
            self._store(
                Message(
                    str(channel),
                    self._next_ts(),
                    BOT_USER,
                    text=str(args.get("initial_comment") or ""),
                    thread_ts=args.get("thread_ts") or None,
                    files=attached,
                )
            )
        return {"ok": True, "files": shared}

    def _user(self, user_id: str) -> dict[str, Any]:
        known = self.users.get(user_id, {})
        return {
            "id": user_id,
            "name": user_id.lower(),
            "real_name": known.get("real_name", ""),
            "deleted": bool(known.get("deleted")),
            "tz": self.user_tz.get(user_id, "Europe/Berlin"),
            "tz_offset": 3600,
            "profile": {"email": known.get("email", ""), "real_name": known.get("real_name", "")},
        }

    def _visible_channels(self) -> dict[str, dict[str, Any]]:
        """The channels a bot can see: every public one, the private ones it is in."""
        return {
            cid: {"id": cid, "is_private": False, "is_archived": False, "is_member": False, **c}
            for cid, c in self.channels.items()
            if not c.get("is_private") or c.get("is_member")
        }

    def _channel_page(self, args: dict[str, Any]) -> dict[str, Any]:
        types = str(args.get("types", "public_channel")).split(",")
        channels = [
            c
            for c in self._visible_channels().values()
            if ("private_channel" if c["is_private"] else "public_channel") in types
            and not (c["is_archived"] and str(args.get("exclude_archived")) in ("1", "true", "True"))
        ]
        start = int(args.get("cursor") or 0)
        size = min(int(args.get("limit") or 100), self.page_size)
        following = start + size if start + size < len(channels) else None
        return {
            "ok": True,
            "channels": channels[start : start + size],
            "response_metadata": {"next_cursor": str(following) if following else ""},
        }


_IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")


def as_slack_view(view: dict[str, Any]) -> dict[str, Any]:
    """A view as Slack describes it: without the workspace's own bookkeeping (whose, stack order)."""
    return {k: v for k, v in view.items() if k not in ("user", "stack")}
