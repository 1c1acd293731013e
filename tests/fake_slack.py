"""A stand-in for Slack's Web API on a free loopback port: records every call, can be told to fail."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


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


class FakeSlack:
    def __init__(self) -> None:
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
        self._failures: dict[str, list[Failure]] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._files = itertools.count(1)
        self.uploads: dict[str, Upload] = {}  # file id -> the upload
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # slack_sdk sends some read methods (users.info) as GET
                path, _, query = self.path.partition("?")
                self._answer_with(path, {k: v[0] for k, v in parse_qs(query).items()})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.path.startswith(
                    "/upload/"
                ):  # a file's bytes, to the URL files.getUploadURLExternal gave
                    status, text = fake._receive(self.path.removeprefix("/upload/"), self.rfile.read(length))
                    body = text.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                raw = self.rfile.read(length).decode("utf-8")
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = json.loads(raw or "{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(raw).items()}
                    for key in ("blocks", "view", "attachments"):
                        if isinstance(args.get(key), str):
                            args[key] = json.loads(args[key])
                path, _, query = self.path.partition("?")  # some methods send their arguments as a query
                args = {k: v[0] for k, v in parse_qs(query).items()} | args
                self._answer_with(path, args)

            def _answer_with(self, path: str, args: dict[str, Any]) -> None:
                method = "response_url" if path.startswith("/response/") else path.removeprefix("/api/")
                status, body, headers = fake._answer(method, args, dict(self.headers))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def api_url(self) -> str:
        return self.url + "api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}response/{name}"

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._failures.clear()
            self.user_tz.clear()
            self.users.clear()
            self.unknown_users.clear()
            self.channels.clear()
            self.uploads.clear()
            self.page_size = 2

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

    def uploaded(self) -> list[Upload]:
        """The files shared in a channel (completed uploads), in order."""
        with self._lock:
            return [u for u in self.uploads.values() if u.completed]

    def _receive(self, file_id: str, content: bytes) -> tuple[int, str]:
        with self._lock:
            upload = self.uploads.get(file_id)
            if upload is None:
                return 404, "unknown upload"
            upload.content = content
            return 200, f"OK - {len(content)}"

    def delivered(self, method: str = "chat.postMessage") -> list[Call]:
        """The calls of `method` answered with success (not those it was told to fail), in order."""
        return [c for c in self.of(method) if "x-fake-failed" not in c.headers]

    def _answer(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            pending = self._failures.get(method)
            if pending:
                failure = pending.pop(0)
                self.calls.append(Call(method, args, headers | {"x-fake-failed": str(failure.status)}))
                return failure.status, failure.body, failure.headers
            self.calls.append(Call(method, args, headers))
        return 200, self._success(method, args), {}

    def _success(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "user_id": "UBOT",
                "bot_id": "BBOT",
                "team_id": "T0001",
                "user": "cadence",
                "team": "Test",
                "url": "https://test.slack.com/",
            }
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            ts = f"1700000000.{next(self._ts):06d}"
            return {
                "ok": True,
                "channel": args.get("channel"),
                "ts": args.get("ts", ts),
                "message_ts": ts,
                "message": {"text": args.get("text"), "ts": ts},
            }
        if method in ("views.open", "views.publish", "views.update", "views.push"):
            view = args.get("view") or {}
            return {"ok": True, "view": {**view, "id": "V0001", "hash": "h1"}}
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
        if method == "conversations.info":
            channel = self._visible_channels().get(str(args.get("channel", "")))
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "channel": channel}
        if method == "files.getUploadURLExternal":
            filename, length = str(args.get("filename") or ""), str(args.get("length") or "")
            if not filename or not length.isdigit() or int(length) <= 0:
                return {"ok": False, "error": "invalid_arguments"}
            with self._lock:
                file_id = f"F{next(self._files):07d}"
                self.uploads[file_id] = Upload(file_id, filename, int(length))
            return {"ok": True, "upload_url": f"{self.url}upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
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
            return {"ok": True, "files": shared}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args.get("users", "X"))[1:]}}
        return {"ok": True}

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
