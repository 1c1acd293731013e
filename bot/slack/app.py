"""The Bolt app: built once per process (or per test) from settings, config and a database."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncBoltRequest
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.services.errors import CadenceError, Forbidden, Invalid, NotFound
from bot.slack import ids
from bot.slack.blocks import error_message
from bot.slack.context import DEPS, Deps, Invocation
from bot.slack.listeners import register
from bot.slack.replays import first_time
from bot.store.slack_events import claim_event
from bot.text import has_control

log = logging.getLogger(__name__)
VERIFIED = "cadence_verified"
UNEXPECTED = "Something went wrong on my side; it has been logged. Please try again in a moment."


def _json(body: dict[str, Any]) -> BoltResponse:
    return BoltResponse(status=200, body=json.dumps(body), headers={"content-type": "application/json"})


def _view_error_block(body: dict[str, Any], field: str | None) -> str:
    """The input block an error belongs on: the named field if the form has it, else the first input."""
    block_ids = [b.get("block_id") for b in body["view"].get("blocks", []) if b.get("type") == "input"]
    for candidate in (field, f"{ids.CRITERION_PREFIX}{field}", (field or "").lstrip("-")):
        if candidate in block_ids:
            return str(candidate)
    return str(block_ids[0]) if block_ids else "input"


def make_error_handler(deps: Deps) -> Callable[..., Awaitable[BoltResponse | None]]:
    async def on_error(
        error: Exception, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> BoltResponse | None:
        if not context.get(VERIFIED):
            # The error came before or during signature verification (say, a timestamp that is not a
            # number): nothing in this body can be trusted, so never act on it.
            log.warning("refused an unverifiable request: %s", error)
            return BoltResponse(status=401, body='{"error":"invalid request"}')
        if isinstance(error, Forbidden):
            deps.metrics.refusals.labels("slack").inc()
        if isinstance(error, CadenceError):
            problem = error.message
        else:
            log.error("unhandled error in a listener", exc_info=error)
            problem = UNEXPECTED
        if "command" in body:
            # The usage line helps with a malformed command or a wrong id, not with a refused decision.
            usage = context.get("usage") if isinstance(error, (Invalid, NotFound)) else None
            return _json(error_message(problem, usage))
        kind = body.get("type")
        if kind == "view_submission":
            field = error.field if isinstance(error, CadenceError) else None
            return _json({"response_action": "errors", "errors": {_view_error_block(body, field): problem}})
        if kind == "block_actions":
            Invocation.from_body(deps, client, body).reply_later(error_message(problem))
        return BoltResponse(status=200, body="")

    return on_error


def _control_field(body: dict[str, Any]) -> str | None:
    """The field of a command's text or a form's inputs that holds a control character, if any."""
    if has_control(str(body.get("text") or "")):
        return "text"
    values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
    for block_id, elements in values.items():
        for state in (elements or {}).values():
            if isinstance(state, dict) and has_control(str(state.get("value") or "")):
                return str(block_id)
    return None


class AfterVerification(AsyncMiddleware):
    """Runs after Bolt verified the signature: marks the request trusted, then drops repeated events.

    A class rather than a function given to `app.middleware`: Bolt calls a function middleware through
    its keyword-argument injection, which builds every argument it could pass from the request on each
    call; this takes the request as Bolt holds it, 0.16M instructions fewer per answer (a fifth of what
    `help` costs above bare Bolt; docs/benchmarks.md, tenth round)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        deps, body, context = self.deps, req.body, req.context
        context[VERIFIED] = True
        context[DEPS] = deps
        field = _control_field(body)
        if field is not None:
            raise Invalid(
                "That text holds a control character (such as NUL); type it again without it.", field=field
            )
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id:
            async with deps.transaction() as session:
                first = await claim_event(session, str(event_id))
            if not first:
                log.info("event %s already handled; ignoring the retry", event_id)
                return BoltResponse(status=200, body="")
        trigger = body.get("trigger_id") if body.get("type") in ("block_actions", "view_submission") else None
        if trigger and not await first_time(deps, str(trigger)):
            return BoltResponse(status=200, body="")
        return await next()


def web_client(settings: Settings) -> AsyncWebClient:
    client = AsyncWebClient(token=settings.slack_bot_token or None, base_url=settings.slack_api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return client


def create_app(*, settings: Settings, deps: Deps, client: AsyncWebClient | None = None) -> AsyncApp:
    app = AsyncApp(
        client=client or web_client(settings),
        signing_secret=settings.slack_signing_secret,
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )

    app.use(AfterVerification(deps))
    app.error(make_error_handler(deps))
    register(app, deps.config.command)
    return app
