"""The door of /slack/events: a request is signed by Slack and shaped like Slack's before Bolt sees it.

Bolt's adapters parse the body before they check the signature, so a body that is not UTF-8, a JSON
array, or a `payload` field that is not JSON became a 500 with a traceback in the log, for anyone who
could reach the URL. Here the signature is checked first, on the raw bytes, with slack_sdk's verifier
(the one Bolt uses, so the five-minute window is the same); the only check before it is that the body
is UTF-8, which the verifier needs. Then the shape. Whatever fails gets a 4xx and one line at INFO, and
nothing reaches the app.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse

log = logging.getLogger(__name__)


def _refuse(status: int, error: str) -> JSONResponse:
    log.info("refused a request to /slack/events (%s): %s", status, error)
    return JSONResponse({"error": error}, status_code=status)


def _form(text: str, content_type: str) -> dict[str, list[str]] | None:
    """A form body's fields (None for a JSON body): parsed once for both checks below."""
    if content_type.startswith("application/json"):
        return None
    return parse_qs(text, keep_blank_values=True)


def _shape_problem(text: str, form: dict[str, list[str]] | None) -> str | None:
    """What is wrong with a signed body's shape, or None when Bolt can read it."""
    if form is None:
        try:
            parsed = json.loads(text)
        except ValueError:
            return "the body is not JSON"
        return None if isinstance(parsed, dict) else "the JSON body is not an object"
    if "payload" in form:
        try:
            payload = json.loads(form["payload"][0])
        except ValueError:
            return "the payload field is not JSON"
        if not isinstance(payload, dict):
            return "the payload field is not a JSON object"
        return None
    if "command" in form:
        return None
    return "the body is neither a command, an interaction nor an event"


def _is_ssl_check(form: dict[str, list[str]] | None) -> bool:
    return form is not None and "ssl_check" in form and "command" not in form and "payload" not in form


async def refusal(request: Request, verifier: SignatureVerifier) -> JSONResponse | None:
    """A response refusing the request, or None to let Bolt handle it."""
    body = await request.body()  # Starlette keeps it: Bolt's adapter reads the same bytes
    try:
        text = body.decode("utf-8")  # Slack sends UTF-8, and the verifier cannot hash anything else
    except UnicodeDecodeError:
        return _refuse(400, "the body is not UTF-8")
    form = _form(text, request.headers.get("content-type", ""))
    if _is_ssl_check(form):
        return None  # Slack's certificate check: Bolt answers it with a bare 200 and runs nothing
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if not timestamp.isascii() or not timestamp.isdigit() or not signature:
        return _refuse(401, "missing or malformed Slack signature headers")
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        return _refuse(401, "invalid or expired Slack signature")
    problem = _shape_problem(text, form)
    return _refuse(400, problem) if problem else None
