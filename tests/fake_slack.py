"""The sandbox's Slack stand-in (bot/sandbox/slack.py) served on a free loopback port for the tests: it
records every call, can be told to fail, and keeps the messages, modals and files the calls make."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from bot.sandbox.slack import Call, Failure, Upload, Workspace

__all__ = ["Call", "Failure", "FakeSlack", "Upload"]


class FakeSlack(Workspace):
    def __init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # slack_sdk sends some read methods (users.info) as GET
                path, _, query = self.path.partition("?")
                self._answer_with(path, {k: v[0] for k, v in parse_qs(query).items()})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw_bytes = self.rfile.read(length)
                if self.path.startswith(
                    "/upload/"
                ):  # a file's bytes, to the URL files.getUploadURLExternal gave
                    status, text = fake.receive(self.path.removeprefix("/upload/"), raw_bytes)
                    self._send(status, text.encode(), "text/plain")
                    return
                raw = raw_bytes.decode("utf-8")
                path, _, query = self.path.partition("?")  # some methods send their arguments as a query
                query_args = {k: v[0] for k, v in parse_qs(query).items()}
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = query_args | json.loads(raw or "{}")
                else:
                    args = Workspace.form_args(raw, query_args, {k: v[0] for k, v in parse_qs(raw).items()})
                self._answer_with(path, args)

            def _answer_with(self, path: str, args: dict[str, Any]) -> None:
                if path.startswith("/response/"):
                    method = "response_url/" + path.removeprefix("/response/")
                else:
                    method = path.removeprefix("/api/")
                status, body, headers = fake.answer(method, args, dict(self.headers))
                pause = fake.take_pause(method)
                if pause:  # Slack did the work; its answer is late (or never arrives, for a short timeout)
                    time.sleep(pause)
                self._send(status, json.dumps(body).encode(), "application/json", headers)

            def _send(
                self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up or was killed before a late answer

        self._pauses: dict[str, list[float]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        host, port = self._server.server_address[:2]
        super().__init__(f"http://{host}:{port}/")

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def api_url(self) -> str:
        return self.url + "api/"

    def answer_late(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Do the next `times` calls of `method`, but answer each only after `seconds`."""
        with self._lock:
            self._pauses.setdefault(method, []).extend([seconds] * times)

    def take_pause(self, method: str) -> float:
        with self._lock:
            queued = self._pauses.get(method)
            return queued.pop(0) if queued else 0.0

    def reset(self) -> None:
        with self._lock:
            self._pauses.clear()
        super().reset()

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
