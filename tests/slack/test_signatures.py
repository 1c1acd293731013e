"""Request verification: only requests signed with the app's signing secret, within five minutes, get in."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.store.models import AuditEvent, CriterionValue, SlackEvent, Story
from tests.conftest import ALICE, RECSYS
from tests.factories import rows
from tests.slack_driver import SECRET, signed_headers

JSON = "application/json"


def command_body(text: str = "story add Forged story --points 3") -> str:
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": "T0001",
            "team_domain": "test",
            "channel_id": RECSYS,
            "channel_name": "team",
            "user_id": ALICE,
            "user_name": "alice",
            "command": "/scrum",
            "text": text,
            "api_app_id": "A0001",
            "response_url": "http://127.0.0.1:9/response/x",
            "trigger_id": "trigger.1",
        }
    )


def event_body(event_id: str = "Ev0SIG0001") -> str:
    return json.dumps(
        {
            "token": "legacy",
            "team_id": "T0001",
            "api_app_id": "A0001",
            "type": "event_callback",
            "event": {"type": "app_home_opened", "user": ALICE, "tab": "home", "event_ts": "1.1"},
            "event_id": event_id,
            "event_time": int(time.time()),
        }
    )


async def nothing_happened(slack, db) -> None:
    assert await rows(db, Story) == []
    assert await rows(db, SlackEvent) == []
    assert slack.fake.calls == []


# ── slash commands ───────────────────────────────────────────────────────────────────────────


async def test_correctly_signed_command_is_handled(slack, db):
    body = command_body()

    response = await slack.post(body, signed_headers(body))

    assert response.status_code == 200
    assert "Added S-1" in response.json()["text"]
    [stored] = await rows(db, Story)
    assert (stored.title, stored.points, stored.created_by) == ("Forged story", 3, ALICE)


async def test_command_signed_with_another_secret_is_rejected(slack, db):
    body = command_body()

    response = await slack.post(body, signed_headers(body, secret="not-" + SECRET))

    assert response.status_code == 401
    await nothing_happened(slack, db)


async def test_command_whose_body_was_changed_after_signing_is_rejected(slack, db):
    signed_for = command_body("story list")
    sent = command_body("story add Injected story")

    response = await slack.post(sent, signed_headers(signed_for))

    assert response.status_code == 401
    await nothing_happened(slack, db)


async def test_signature_with_a_swapped_timestamp_is_rejected(slack, db):
    body = command_body()
    headers = signed_headers(body, timestamp=int(time.time()) - 10)
    headers["x-slack-request-timestamp"] = str(int(time.time()))

    response = await slack.post(body, headers)

    assert response.status_code == 401
    await nothing_happened(slack, db)


@pytest.mark.parametrize("age", [301, 600, 24 * 3600])
async def test_command_older_than_five_minutes_is_rejected(slack, db, age):
    body = command_body()

    response = await slack.post(body, signed_headers(body, timestamp=int(time.time()) - age))

    assert response.status_code == 401
    await nothing_happened(slack, db)


async def test_command_from_more_than_five_minutes_in_the_future_is_rejected(slack, db):
    body = command_body()

    response = await slack.post(body, signed_headers(body, timestamp=int(time.time()) + 600))

    assert response.status_code == 401
    await nothing_happened(slack, db)


async def test_command_four_minutes_old_is_still_accepted(slack, db):
    body = command_body()

    response = await slack.post(body, signed_headers(body, timestamp=int(time.time()) - 240))

    assert response.status_code == 200
    assert len(await rows(db, Story)) == 1


@pytest.mark.parametrize(
    "drop",
    [
        ("x-slack-signature",),
        ("x-slack-request-timestamp",),
        ("x-slack-signature", "x-slack-request-timestamp"),
    ],
    ids=["no-signature", "no-timestamp", "neither"],
)
async def test_command_without_signature_headers_is_rejected(slack, db, drop):
    body = command_body()
    headers = {k: v for k, v in signed_headers(body).items() if k not in drop}

    response = await slack.post(body, headers)

    assert response.status_code == 401
    await nothing_happened(slack, db)


@pytest.mark.parametrize("signature", ["", "v0=", "v1=abc", "v0=" + "0" * 64])
async def test_command_with_a_malformed_signature_is_rejected(slack, db, signature):
    body = command_body()
    headers = signed_headers(body) | {"x-slack-signature": signature}

    response = await slack.post(body, headers)

    assert response.status_code == 401
    await nothing_happened(slack, db)


async def test_command_with_a_non_numeric_timestamp_is_rejected(slack, db):
    body = command_body()
    headers = signed_headers(body) | {"x-slack-request-timestamp": "yesterday"}

    response = await slack.post(body, headers)

    assert response.status_code == 401
    await nothing_happened(slack, db)


@pytest.mark.parametrize("with_response_url", [True, False], ids=["response_url", "dm"])
async def test_unverified_click_never_makes_the_bot_call_out(slack, db, with_response_url):
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U0VICTIM"},
        "actions": [{"type": "button", "action_id": "mark_story_done", "value": "S-1"}],
    }
    if with_response_url:
        payload["response_url"] = slack.fake.response_url("attacker-chosen")
    body = urlencode({"payload": json.dumps(payload)})
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": "not-a-number",
        "x-slack-signature": "v0=" + "0" * 64,
    }

    response = await slack.post(body, headers)

    assert slack.fake.of("response_url") == []
    assert slack.fake.of("chat.postMessage") == []
    assert response.status_code == 401


# ── interactivity and events ─────────────────────────────────────────────────────────────────


async def test_forged_form_submission_is_rejected(slack, db):
    await slack.command("story add Real story")
    payload = {
        "type": "view_submission",
        "user": {"id": ALICE},
        "view": {
            "callback_id": "criteria_modal",
            "private_metadata": json.dumps({"story": "S-1", "kind": "ready"}),
            "blocks": [],
            "state": {"values": {"criterion:data_contract": {"input": {"value": "n/a: forged"}}}},
        },
    }
    body = urlencode({"payload": json.dumps(payload)})

    response = await slack.post(body, signed_headers(body, secret="attacker"))

    assert response.status_code == 401
    assert await rows(db, CriterionValue) == []
    assert await rows(db, AuditEvent) == []


async def test_forged_button_click_is_rejected(slack, db):
    await slack.command("story add Real story")
    await slack.command("dod S-1 data_lineage=a model_evaluation=b rollback_plan=c monitoring=d")
    payload = {
        "type": "block_actions",
        "user": {"id": ALICE},
        "actions": [{"type": "button", "action_id": "mark_story_done", "value": "S-1"}],
    }
    body = urlencode({"payload": json.dumps(payload)})

    response = await slack.post(body, signed_headers(body, timestamp=int(time.time()) - 3600))

    assert response.status_code == 401
    [story] = await rows(db, Story)
    assert story.status == "open"


async def test_forged_event_is_rejected_and_not_remembered(slack, db):
    body = event_body("Ev0SIG0002")

    response = await slack.post(body, signed_headers(body, secret="attacker", content_type=JSON))

    assert response.status_code == 401
    await nothing_happened(slack, db)
    # The genuine delivery of that event id afterwards is not mistaken for a retry.
    response = await slack.post(body, signed_headers(body, content_type=JSON))
    assert response.status_code == 200
    assert [e.event_id for e in await rows(db, SlackEvent)] == ["Ev0SIG0002"]
    assert len(slack.fake.of("views.publish")) == 1


# ── url_verification ─────────────────────────────────────────────────────────────────────────


async def test_url_verification_returns_the_challenge(slack, db):
    body = json.dumps(
        {"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY", "type": "url_verification"}
    )

    response = await slack.post(body, signed_headers(body, content_type=JSON))

    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY"}
    await nothing_happened(slack, db)


async def test_unsigned_url_verification_is_rejected(slack, db):
    body = json.dumps({"token": "legacy", "challenge": "abc", "type": "url_verification"})

    response = await slack.post(body, {"content-type": JSON})

    assert response.status_code == 401
    assert "abc" not in response.text


# ── malformed bodies: a 4xx with a reason, no traceback, nothing stored ──────────────────────

MALFORMED = [
    pytest.param(b"[]", JSON, "the JSON body is not an object", id="json-array"),
    pytest.param(b"null", JSON, "the JSON body is not an object", id="json-null"),
    pytest.param(b"command=%2Fscrum&text=x", JSON, "the body is not JSON", id="form-sent-as-json"),
    pytest.param(
        b"payload=notjson",
        "application/x-www-form-urlencoded",
        "the payload field is not JSON",
        id="payload-not-json",
    ),
    pytest.param(
        b"payload=%5B1%5D", "application/x-www-form-urlencoded", "not a JSON object", id="payload-array"
    ),
    pytest.param(b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded", "UTF-8", id="not-utf8"),
    pytest.param(b"hello=world", "application/x-www-form-urlencoded", "neither a command", id="unknown-form"),
]


def _headers_for_bytes(body: bytes, content_type: str, *, secret: str = SECRET) -> dict[str, str]:
    import hashlib
    import hmac

    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": ts,
        "x-slack-signature": "v0=" + digest,
    }


@pytest.mark.parametrize(("body", "content_type", "reason"), MALFORMED)
async def test_a_malformed_unsigned_body_is_refused_before_it_is_parsed(
    slack, db, caplog, body, content_type, reason
):
    caplog.set_level("DEBUG")
    headers = {"content-type": content_type, "x-slack-request-timestamp": "1", "x-slack-signature": "v0=0"}

    response = await slack.http.post("/slack/events", content=body, headers=headers)

    assert response.status_code == (400 if "UTF-8" in reason else 401)
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)
    await nothing_happened(slack, db)


@pytest.mark.parametrize(("body", "content_type", "reason"), MALFORMED)
async def test_a_malformed_body_with_a_good_signature_is_a_400_naming_what_is_wrong(
    slack, db, caplog, body, content_type, reason
):
    caplog.set_level("DEBUG")

    response = await slack.http.post(
        "/slack/events", content=body, headers=_headers_for_bytes(body, content_type)
    )

    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert not any(r.exc_info for r in caplog.records)
    await nothing_happened(slack, db)


async def test_slacks_certificate_check_is_answered_and_runs_nothing(slack, db):
    body = "ssl_check=1&token=legacy"

    response = await slack.http.post(
        "/slack/events", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )

    assert response.status_code == 200
    await nothing_happened(slack, db)


@pytest.mark.parametrize(
    "body",
    [
        "ssl_check=1&command=%2Fscrum&text=story+add+Smuggled&user_id=U01ALICE&channel_id=C0123RECSYS",
        "ssl_check=1&payload=%7B%22type%22%3A%22block_actions%22%7D",
    ],
    ids=["with-a-command", "with-a-payload"],
)
async def test_a_certificate_check_carrying_a_command_still_needs_a_signature(slack, db, body):
    """Only a bare certificate check skips the signature: one that also carries a command or a payload
    is checked like any other request, and an unsigned one is refused with nothing done."""
    response = await slack.http.post(
        "/slack/events", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )

    assert response.status_code == 401
    assert response.json() == {"error": "missing or malformed Slack signature headers"}
    await nothing_happened(slack, db)


async def test_a_refused_request_body_never_reaches_the_logs(slack, db, caplog):
    """Bolt logs a request whose signature fails with its whole body at INFO; the gate refuses it first,
    so no line at any level carries what the caller sent."""
    caplog.set_level("DEBUG")
    body = "command=%2Fscrum&text=story+add+SECRET-PLAN-7731&user_id=U01ALICE"
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": str(int(time.time())),
        "x-slack-signature": "v0=" + "0" * 64,
    }
    response = await slack.http.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401
    assert "SECRET-PLAN-7731" not in caplog.text
    assert caplog.records, "the refusal itself is logged"
