"""The Slack stand-in on its own: what each Web API call and response_url post leaves in the workspace
the sandbox's page draws (the tests' fake Slack is the same class, served on a port)."""

from __future__ import annotations

from typing import Any

from bot.sandbox.slack import BOT_USER, Responder, Workspace

BLOCKS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*R-1*"}},
    {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Approve"}}]},
]


def call(ws: Workspace, method: str, **args: Any) -> dict[str, Any]:
    status, body, _ = ws.answer(method, args, {})
    assert status == 200
    return body


def test_a_post_is_kept_with_ids_slack_would_add_and_an_update_edits_it_in_place():
    ws = Workspace()
    seen: list[dict[str, Any]] = []
    ws.listeners.append(seen.append)
    ts = call(ws, "chat.postMessage", channel="C1", text="R-1 waits", blocks=BLOCKS)["ts"]
    (posted,) = ws.channel_messages("C1")
    assert posted.ts == ts and posted.user == BOT_USER and not posted.edited
    assert [b["block_id"] for b in posted.blocks] == ["blk0", "blk1"]
    assert posted.blocks[1]["elements"][0]["action_id"] == "act1.0"
    assert "block_id" not in ws.of("chat.postMessage")[0].args["blocks"][0], "the call is recorded as sent"

    call(ws, "chat.update", channel="C1", ts=ts, text="R-1 approved", blocks=BLOCKS[:1])
    (edited,) = ws.channel_messages("C1")
    assert edited.ts == ts and edited.edited and edited.text == "R-1 approved" and len(edited.blocks) == 1
    assert [e["type"] for e in seen] == ["message", "message"]


def test_a_post_to_a_person_lands_in_their_dm_and_ephemeral_ones_only_for_them():
    ws = Workspace()
    call(ws, "chat.postMessage", channel="U0BOB", text="you were assigned S-1")
    call(ws, "chat.postEphemeral", channel="C1", user="U0BOB", text="only Bob")
    assert [m.text for m in ws.channel_messages("D0BOB")] == ["you were assigned S-1"]
    assert [m.text for m in ws.channel_messages("C1", viewer="U0BOB")] == ["only Bob"]
    assert ws.channel_messages("C1", viewer="U0ALICE") == []


def test_response_urls_answer_privately_replace_or_delete_the_message_clicked():
    ws = Workspace()
    ts = call(ws, "chat.postMessage", channel="C1", text="checklist")["ts"]
    ws.responders["cmd"] = Responder("U0DAVE", "C1")
    ws.responders["click"] = Responder("U0DAVE", "C1", ts)

    call(ws, "response_url/cmd", text="S-3 lacks 4 criteria")
    private = ws.channel_messages("C1", viewer="U0DAVE")[-1]
    assert private.text == "S-3 lacks 4 criteria" and private.ephemeral_to == "U0DAVE"

    call(ws, "response_url/cmd", text="everyone sees this", response_type="in_channel")
    assert ws.channel_messages("C1", viewer="U0ALICE")[-1].text == "everyone sees this"

    call(ws, "response_url/click", text="checklist, filled", replace_original=True)
    assert ws.message("C1", ts).text == "checklist, filled"
    call(ws, "response_url/click", delete_original=True)
    assert ws.message("C1", ts) is None
    assert len(ws.of("response_url")) == 4


def test_modals_open_for_the_person_whose_click_made_the_trigger_and_stack():
    ws = Workspace()
    ws.issue_trigger("t1", "U0DAVE")
    ws.issue_trigger("t2", "U0DAVE")
    first = call(
        ws,
        "views.open",
        trigger_id="t1",
        view={"type": "modal", "title": {"type": "plain_text", "text": "A"}},
    )
    second = call(
        ws,
        "views.push",
        trigger_id="t2",
        view={"type": "modal", "title": {"type": "plain_text", "text": "B"}},
    )
    assert first["view"]["id"] != second["view"]["id"]
    assert "user" not in first["view"], "Slack's answer has none of the workspace's bookkeeping"
    assert [v["title"]["text"] for v in ws.open_views("U0DAVE")] == ["A", "B"]
    assert ws.open_views("U0ALICE") == []

    call(
        ws,
        "views.update",
        view_id=second["view"]["id"],
        view={"type": "modal", "title": {"type": "plain_text", "text": "B2"}},
    )
    assert [v["title"]["text"] for v in ws.open_views("U0DAVE")] == ["A", "B2"]
    ws.close_view(second["view"]["id"])
    assert [v["title"]["text"] for v in ws.open_views("U0DAVE")] == ["A"]
    ws.close_view(first["view"]["id"], everything=True)
    assert ws.open_views("U0DAVE") == []


def test_a_trigger_opens_one_modal_and_only_within_three_seconds(monkeypatch):
    import bot.sandbox.slack as standin

    ws = Workspace()
    ws.issue_trigger("t1", "U0DAVE")
    assert call(ws, "views.open", trigger_id="t1", view={"type": "modal"})["ok"]
    assert call(ws, "views.open", trigger_id="t1", view={"type": "modal"}) == {
        "ok": False,
        "error": "invalid_trigger_id",
    }
    ws.issue_trigger("t2", "U0DAVE")
    later = standin.time.monotonic() + 3.5
    monkeypatch.setattr(standin.time, "monotonic", lambda: later)
    assert call(ws, "views.open", trigger_id="t2", view={"type": "modal"})["error"] == "expired_trigger_id"
    assert len(ws.open_views("U0DAVE")) == 1


def test_a_response_url_answers_five_times_then_refuses():
    ws = Workspace()
    ws.responders["r"] = Responder("U0DAVE", "C1")
    for n in range(5):
        call(ws, "response_url/r", text=f"answer {n}")
    status, body, _ = ws.answer("response_url/r", {"text": "a sixth"}, {})
    assert (status, body) == (404, {"ok": False, "error": "used_url"})
    assert [m.text for m in ws.channel_messages("C1", viewer="U0DAVE")] == [f"answer {n}" for n in range(5)]


def test_an_unknown_trigger_is_only_recorded_as_the_tests_fake_always_did():
    ws = Workspace()
    answer = call(ws, "views.open", trigger_id="trigger.1", view={"type": "modal", "blocks": []})
    assert answer["view"]["id"] == "V0001"
    assert ws.views == {} and len(ws.of("views.open")) == 1


def test_app_home_is_kept_per_person():
    ws = Workspace()
    call(ws, "views.publish", user_id="U0CAROL", view={"type": "home", "blocks": BLOCKS})
    assert ws.home["U0CAROL"]["blocks"] == BLOCKS and "U0BOB" not in ws.home


def test_an_uploaded_image_is_shared_as_a_message_with_a_link_to_its_bytes():
    ws = Workspace("http://sandbox/")
    started = call(ws, "files.getUploadURLExternal", filename="burndown.png", length="4")
    assert ws.receive(started["file_id"], b"\x89PNG") == (200, "OK - 4")
    call(
        ws,
        "files.completeUploadExternal",
        files=[{"id": started["file_id"], "title": "Burndown"}],
        channel_id="C1",
    )
    (shared,) = ws.channel_messages("C1")
    assert shared.files == [
        {
            "id": started["file_id"],
            "name": "burndown.png",
            "title": "Burndown",
            "url": f"http://sandbox/files/{started['file_id']}",
            "image": True,
        }
    ]


def test_a_failure_told_in_advance_is_answered_recorded_and_changes_nothing():
    ws = Workspace()
    ws.fail("chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "3"})
    status, body, headers = ws.answer("chat.postMessage", {"channel": "C1", "text": "hi"}, {})
    assert (status, body["error"], headers["Retry-After"]) == (429, "ratelimited", "3")
    assert ws.channel_messages("C1") == [] and ws.delivered() == []
    assert call(ws, "chat.postMessage", channel="C1", text="hi")["ok"]
    assert len(ws.delivered()) == 1
