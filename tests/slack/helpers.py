"""Helpers for the Slack scenario tests: what a person sees in a reply (the text of its blocks, its
buttons), replies that are not warnings, warnings, and refused commands that leave the database as it
was; the outbox delivered, and what the bot posted to Slack."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.jobs.outbox_worker import OutboxWorker
from tests.clock import FakeClock
from tests.factories import snapshot
from tests.slack_driver import SlackDriver

SENT = ("views.open", "views.publish", "chat.postMessage", "chat.postEphemeral", "response_url")


# ── what a reply shows ───────────────────────────────────────────────────────────────────────


def texts(value: Any) -> list[str]:
    """Every piece of text a person reads in a reply: its `text` and the text of every block."""
    if isinstance(value, dict):
        out: list[str] = []
        for key, item in value.items():
            out += [item] if key == "text" and isinstance(item, str) else texts(item)
        return out
    if isinstance(value, list):
        return [t for item in value for t in texts(item)]
    return []


def strings(value: Any) -> list[str]:
    """Every string anywhere in a payload: text, but also ids, values and urls."""
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [value] if isinstance(value, str) else []


def shown(body: dict[str, Any]) -> str:
    """The texts of a reply, one a line."""
    return "\n".join(texts(body))


def buttons(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The buttons in the reply's actions blocks, in order."""
    return [
        e
        for b in body.get("blocks", [])
        if b["type"] == "actions"
        for e in b["elements"]
        if e["type"] == "button"
    ]


# ── what was sent to Slack ───────────────────────────────────────────────────────────────────


def replies(slack: SlackDriver) -> list[dict[str, Any]]:
    """What the app posted to the response_url, in order."""
    return [c.args for c in slack.fake.of("response_url")]


def sent(slack: SlackDriver) -> list[str]:
    """The calls to Slack that show someone something (views, messages, replies), in order."""
    return [c.method for c in slack.fake.calls if c.method in SENT]


def posted(slack: SlackDriver, channel: str | None = None) -> list[dict[str, Any]]:
    """The messages the bot posted (chat.postMessage, as Slack accepted them), to `channel` or to anyone,
    in order."""
    return [c.args for c in slack.fake.delivered() if channel in (None, c.args.get("channel"))]


def updates(slack: SlackDriver) -> list[dict[str, Any]]:
    """The edits of messages the bot made (chat.update, as Slack accepted them), in order."""
    return [c.args for c in slack.fake.delivered("chat.update")]


async def deliver(worker: OutboxWorker, clock: FakeClock, *, rounds: int = 400) -> None:
    """Run the outbox worker until nothing is left to send: after each round the clock moves on a little
    over a second (one message per second per channel), or to when the next message is due."""
    for _ in range(rounds):
        await worker.run_once()
        due = await worker.next_due()
        if due is None:
            return
        clock.set(max(clock.now() + timedelta(seconds=1.1), due))
    raise AssertionError(f"the outbox did not drain in {rounds} rounds")


# ── commands ─────────────────────────────────────────────────────────────────────────────────


async def new_story(slack: SlackDriver, args: str = "Train the ranker", **who: Any) -> None:
    response = await slack.command(f"story add {args}", **who)
    assert "Added S-" in response.json()["text"], response.json()


async def ok(slack: SlackDriver, command: str, *, ephemeral: bool = False, **who: str) -> dict[str, Any]:
    """The reply to `command`, which must not be a warning; `ephemeral`: it must be for the person alone."""
    response = await slack.command(command, **who)
    assert response.status_code == 200, response.text
    body = response.json()
    if ephemeral:
        assert body["response_type"] == "ephemeral"
    assert not body["text"].startswith(":warning:"), body["text"]
    return body


def warning(response: httpx.Response, *needles: str, usage: str | bool | None = None) -> str:
    """An ephemeral ':warning: ' saying every one of `needles`. `usage`: the start of the expected
    usage line, False when there must be none, None: not checked."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["response_type"] == "ephemeral", body
    text = body["text"]
    assert text.startswith(":warning: "), text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    if usage is False:
        assert "Usage:" not in text, text
    elif usage:
        assert f"\nUsage: `/scrum {usage}" in text, text
    return text


async def refused(
    slack: SlackDriver,
    db: AsyncEngine,
    command: str,
    *needles: str,
    usage: str | bool | None = None,
    sends_nothing: bool = False,
    **who: str,
) -> str:
    """`command` is answered with a `warning` and the database is left exactly as it was;
    `sends_nothing`: nor is anything sent to Slack."""
    before, calls = await snapshot(db), sent(slack)
    text = warning(await slack.command(command, **who), *needles, usage=usage)
    assert await snapshot(db) == before, f"{command!r} changed the database"
    if sends_nothing:
        assert sent(slack) == calls, f"{command!r} sent something to Slack"
    return text


def missing_once(text: str, *labels: str) -> None:
    """Each of `labels` is shown exactly once in `text`, as a missing criterion with its help."""
    for label in labels:
        assert text.count(label) == 1, f"{label!r} is shown {text.count(label)} times in:\n{text}"
        assert f":x: {label} — _" in text, f"{label!r} is not shown as missing with its help in:\n{text}"


# the Definition of Ready of an ml story, as the test configuration labels it
ML_READY = (
    "Data availability",
    "Feature stability",
    "Reproducible environment",
    "Measurable evaluation criteria",
    "Data contract",
    "Validation data",
)

# an answer to every criterion of that Definition of Ready, as a person types it after `ready S-n`
READY_ANSWERS = (
    'data_available="s3://clicks v3" feature_stability="frozen for the sprint" reproducible_env=image:1.4 '
    'eval_criteria="ndcg from 0.30 to 0.35" data_contract="signed with data eng" '
    'validation_dataset="held-out last week"'
)


async def make_ready(slack: SlackDriver, key: str = "S-1", **who: str) -> None:
    """Answer every Definition-of-Ready criterion of the ml story `key`."""
    body = await ok(slack, f"ready {key} {READY_ANSWERS}", **who)
    assert f"*{key}* meets the Definition of Ready." in shown(body), shown(body)
