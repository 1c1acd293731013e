"""How Cadence logs: one line per record, as text (the default) or as JSON objects for a log pipeline
(`--log-format json` or CADENCE_LOG_FORMAT=json). Every record carries the id of the HTTP request it
was logged under ("-" outside one), so the lines of one Slack command or API call can be found
together; the response names it in X-Request-Id."""

from __future__ import annotations

import logging
import re
import secrets
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str] = ContextVar("cadence_request_id", default="-")
FORMATS = ("text", "json")
_GIVEN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # an X-Request-Id a proxy sent, if it looks like an id


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted (not when it was configured)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def configure(*, verbose: bool = False, fmt: str = "text") -> None:
    handler = _Stderr()
    handler.addFilter(_WithRequestId())
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")
        )
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    if not verbose:  # "Adding job tentatively" and "Added job" for each of thousands of jobs
        logging.getLogger("apscheduler.scheduler").setLevel(logging.WARNING)


class RequestIds:
    """ASGI middleware: each HTTP request runs with an id (the caller's X-Request-Id when it sent a
    plausible one, else a new one), which every log line under it carries and the response returns.
    Work a request starts in the background inherits it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), "")
        request_id = given if _GIVEN.match(given) else secrets.token_hex(8)
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
