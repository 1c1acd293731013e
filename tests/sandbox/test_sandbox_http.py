"""The sandbox's own endpoints over HTTP: bad input gets a JSON error naming the field and changes
nothing, what it sends the bot is signed as Slack signs it, and the controls do what they say."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
from slack_sdk.signature import SignatureVerifier

from tests.sandbox.conftest import Served

RECSYS = "C0RECSYS"


def count(served: Served) -> int:
    return len(served.sandbox.workspace.messages)


def field_of(response: httpx.Response) -> str:
    detail = response.json()["detail"]
    if isinstance(detail, list):  # pydantic's own validation errors
        return str(detail[0]["loc"][-1])
    return str(detail["field"])


def test_bad_input_is_refused_with_the_field_and_changes_nothing(fresh):
    before = count(fresh)
    keys0 = set(fresh.sandbox.workspace.messages)
    cases = [
        ("/sandbox/command", {"user": "U0BOB", "channel": RECSYS, "text": "story list"}, 422, "text"),
        ("/sandbox/command", {"user": "U0BOB", "channel": RECSYS}, 422, "text"),
        ("/sandbox/post", {"user": "U0BOB", "channel": RECSYS, "text": ""}, 422, "text"),
        ("/sandbox/post", {"user": "U0BOB", "channel": "C0NOWHERE", "text": "hi"}, 422, "channel"),
        ("/sandbox/post", {"user": "U0BOB", "channel": "D0ALICE", "text": "hi"}, 422, "channel"),
        ("/sandbox/command", {"user": "U0MALLORY", "channel": RECSYS, "text": "/scrum help"}, 422, "user"),
        (
            "/sandbox/action",
            {"user": "U0BOB", "element": {"type": "button"}, "channel": RECSYS, "ts": "1.2"},
            404,
            "ts",
        ),
        ("/sandbox/action", {"user": "U0BOB", "element": {"type": "button"}}, 422, "ts"),
        ("/sandbox/submit", {"user": "U0BOB", "view_id": "V9999", "values": {}}, 404, "view_id"),
        ("/sandbox/advance", {"days": 0}, 422, "days"),
        ("/sandbox/drift", {"value": "high"}, 422, "value"),
    ]
    for path, body, status, field in cases:
        response = fresh.post(path, body)
        assert response.status_code == status, (path, body, response.text)
        assert field_of(response) == field, (path, response.text)
    new = [fresh.sandbox.workspace.messages[k] for k in set(fresh.sandbox.workspace.messages) - keys0]
    assert count(fresh) == before, [(m.channel, m.text[:80]) for m in new]


def test_firing_an_occasion_the_team_does_not_have_names_what_it_has(fresh):
    response = fresh.post("/sandbox/fire", {"team": "recsys", "kind": "standup_party"})
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "kind" and "standup_summary" in body["error"]
    unknown = fresh.post("/sandbox/fire", {"team": "nobody", "kind": "standup"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "team", unknown.text


def test_what_reaches_the_bot_is_signed_with_its_secret_and_a_forged_request_is_refused(fresh):
    sent: list[httpx.Request] = []
    sandbox = fresh.sandbox
    original = sandbox.http

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    sandbox.http = httpx.AsyncClient(base_url=sandbox.base, event_hooks={"request": [record]}, timeout=30)
    try:
        assert fresh.post(
            "/sandbox/command", {"user": "U0BOB", "channel": RECSYS, "text": "/scrum whoami"}
        ).json()["ok"]
    finally:
        sandbox.http = original
    (request,) = [r for r in sent if r.url.path == "/slack/events"]
    body = request.content.decode()
    verifier = SignatureVerifier(sandbox.secret)
    assert verifier.is_valid(
        body=body,
        timestamp=request.headers["x-slack-request-timestamp"],
        signature=request.headers["x-slack-signature"],
    )
    assert "command=%2Fscrum" in body and "user_id=U0BOB" in body

    forged = httpx.post(
        fresh.url + "slack/events",
        content=body,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": request.headers["x-slack-request-timestamp"],
            "x-slack-signature": "v0=" + "0" * 64,
        },
    )
    assert forged.status_code == 401


def test_a_day_forward_runs_what_falls_due_at_its_own_time(fresh):
    before = datetime.fromisoformat(fresh.post("/sandbox/advance", {"days": 1}).json()["now"])
    answer = fresh.post("/sandbox/advance", {"days": 7}).json()
    after = datetime.fromisoformat(answer["now"])
    assert 7 * 86400 - 5 < (after - before).total_seconds() < 7 * 86400 + 5
    # a week holds five standups and their five summaries, and the review or planning of the fortnight
    assert answer["ran"] >= 11
    runs = [
        m
        for m in fresh.sandbox.workspace.channel_messages(RECSYS)
        if "Standup time" in m.text and m.posted_at > before.timestamp()
    ]
    assert len(runs) == 5
    assert len({datetime.fromtimestamp(m.posted_at).date() for m in runs}) == 5, "each on its own day"
    state = httpx.get(fresh.url + "sandbox/state").json()
    assert state["now"][:10] == answer["now"][:10]


def test_a_drift_reading_goes_through_the_ingestion_api(fresh):
    answer = fresh.post("/sandbox/drift", {"model": "recsys-ranker", "metric": "auc", "value": 0.7}).json()
    assert answer["status"] == 200
    assert answer["answer"]["stored"] == 1 and answer["answer"]["opened"] == ["D-2"]
    refused = fresh.post("/sandbox/drift", {"model": "", "metric": "auc", "value": 0.7})
    assert refused.status_code == 422 and field_of(refused) == "model"


def test_the_page_and_its_files_are_served_and_nothing_else(served):
    page = httpx.get(served.url)
    assert page.status_code == 200 and "/sandbox/static/app.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    for name in ("app.js", "app.css"):
        assert httpx.get(served.url + f"sandbox/static/{name}").status_code == 200
    assert httpx.get(served.url + "sandbox/static/..%2Fserver.py").status_code == 404
    assert httpx.get(served.url + "sandbox/static/demo.yaml").status_code == 404


def test_the_state_lists_people_with_their_roles_and_the_occasions(served):
    state = httpx.get(served.url + "sandbox/state").json()
    roles = {p["id"]: p["role"] for p in state["people"]}
    assert roles == {
        "U0ALICE": "lead",
        "U0BOB": "member",
        "U0DAVE": "member",
        "U0CAROL": "approver",
        "U0OLGA": "outsider",
    }
    kinds = {o["kind"] for o in state["occasions"]}
    assert {"standup", "standup_summary", "planning", "planning_nudge_24h", "review", "retro"} <= kinds
    json.dumps(state)  # every part of it is plain JSON


def test_a_modal_answers_only_to_the_person_it_was_opened_for(fresh):
    assert fresh.post(
        "/sandbox/command", {"user": "U0ALICE", "channel": RECSYS, "text": "/scrum story add"}
    ).json()["ok"]
    (view,) = fresh.sandbox.workspace.open_views("U0ALICE")
    button = {"type": "button", "action_id": "anything"}
    for path, body in (
        ("/sandbox/close", {"user": "U0OLGA", "view_id": view["id"]}),
        ("/sandbox/action", {"user": "U0OLGA", "element": button, "view_id": view["id"]}),
        ("/sandbox/submit", {"user": "U0OLGA", "view_id": view["id"], "values": {}}),
    ):
        refused = fresh.post(path, body)
        assert refused.status_code == 404 and field_of(refused) == "view_id", (path, refused.text)
    assert [v["id"] for v in fresh.sandbox.workspace.open_views("U0ALICE")] == [view["id"]]
