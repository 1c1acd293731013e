"""The sandbox in Chromium, as a new user meets it: commands typed in the composer, buttons, modals with
field errors, approvals updating a message in place, a standup, a drift alert, and the controls. Each
test starts from the freshly seeded demo; what the page shows is checked, and where it matters what the
Slack stand-in received."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.sandbox.conftest import Served, screenshot

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'")
from playwright.sync_api import expect

ALICE, BOB, DAVE, CAROL, OLGA = "U0ALICE", "U0BOB", "U0DAVE", "U0CAROL", "U0OLGA"
RECSYS, REVIEWS = "C0RECSYS", "C0REVIEWS"


def open_as(page: Any, served: Served, user: str, channel: str = RECSYS) -> None:
    page.goto(f"{served.url}?as={user}&channel={channel}")
    expect(page.locator("body[data-live=true]")).to_be_attached()


def command(page: Any, text: str) -> None:
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")


def messages(page: Any) -> Any:
    return page.locator("#messages .msg")


def modal(page: Any) -> Any:
    return page.locator("#modal-root .modal[data-view-id]")


def field(page: Any, label: str) -> Any:
    return modal(page).locator(".input-block", has=page.locator("label", has_text=label))


def test_a_command_is_answered_only_to_whoever_typed_it(page, fresh):
    open_as(page, fresh, ALICE)
    command(page, "/scrum story list")
    reply = messages(page).filter(has_text="Retrain the ranker on November clicks").last
    expect(reply).to_contain_text("Only visible to you")
    expect(reply).to_have_attribute("data-ephemeral", "true")
    expect(messages(page).filter(has_text="/scrum story list")).to_have_count(1)
    screenshot(page, "command")

    page.select_option("#acting-user", BOB)
    expect(messages(page).filter(has_text="/scrum story list")).to_have_count(0)
    expect(page.locator("#messages [data-ephemeral=true]")).to_have_count(0)
    expect(messages(page).filter(has_text="Sprint 14")).not_to_have_count(0)


def test_an_unknown_command_and_a_plain_message(page, fresh):
    open_as(page, fresh, BOB)
    command(page, "/standup now")
    expect(messages(page).last).to_contain_text("/standup is not a valid command")
    command(page, "morning all")
    expect(messages(page).filter(has_text="morning all")).to_have_count(1)
    expect(messages(page).filter(has_text="morning all")).not_to_have_attribute("data-ephemeral", "true")


def test_the_readiness_form_shows_an_error_under_the_field_then_the_story_turns_ready(page, fresh):
    open_as(page, fresh, DAVE)
    command(page, "/scrum ready S-3")
    checklist = messages(page).filter(has_text="lacks 4 of 6 criteria").last
    checklist.get_by_role("button", name="Fill Definition of Ready").click()
    expect(modal(page)).to_contain_text("Definition of Ready")

    field(page, "Feature stability").locator("textarea").fill("n/a:")
    field(page, "Measurable evaluation criteria").locator("textarea").fill("nDCG@10 +2% over the baseline")
    modal(page).get_by_role("button", name="Save").click()
    error = field(page, "Feature stability").locator(".field-error")
    expect(error).to_contain_text("Say why it does not apply")
    # what was typed is still there, as in Slack
    expect(field(page, "Measurable evaluation criteria").locator("textarea")).to_have_value(
        "nDCG@10 +2% over the baseline"
    )
    screenshot(page, "readiness-error")

    field(page, "Feature stability").locator("textarea").fill("n/a: reuses the frozen fs-2026.11 set")
    field(page, "Data contract").locator("textarea").fill("search_events.v1 signed off by tracking")
    field(page, "Validation data").locator("textarea").fill("Last 7 days, split by user")
    modal(page).get_by_role("button", name="Save").click()
    expect(modal(page)).to_have_count(0)
    expect(messages(page).last).to_contain_text("S-3")
    expect(messages(page).last).to_contain_text("Ready")

    command(page, "/scrum ready S-3")
    expect(messages(page).last).to_contain_text("S-3 meets the Definition of Ready")
    submissions = [c for c in fresh.sandbox.workspace.of("response_url")]
    assert submissions, "the confirmation came back through the response_url, as Slack delivers it"


def test_an_approver_approves_and_the_request_changes_in_place(page, fresh):
    open_as(page, fresh, CAROL, REVIEWS)
    request = messages(page).filter(has_text="R-1 · production").first
    ts = request.get_attribute("data-ts")
    request.get_by_role("button", name="Approve").click()
    expect(modal(page)).to_be_visible()
    modal(page).locator("textarea, input[type=text]").first.fill(
        "Offline AUC 0.84 on the holdout; canary clean"
    )
    modal(page).locator("button.submit").click()
    expect(modal(page)).to_have_count(0)
    updated = page.locator(f'#messages .msg[data-ts="{ts}"]')
    expect(updated).to_contain_text(re.compile("approved", re.I))
    expect(updated).to_contain_text("(edited)")
    expect(updated.get_by_role("button", name="Approve")).to_have_count(0)
    assert any(c.args.get("ts") == ts for c in fresh.sandbox.workspace.delivered("chat.update"))
    screenshot(page, "governance-approved")


def test_an_outsider_is_refused_and_nothing_changes(page, fresh):
    open_as(page, fresh, OLGA, REVIEWS)
    request = messages(page).filter(has_text="R-1 · production").first
    ts = request.get_attribute("data-ts")
    request.get_by_role("button", name="Approve").click()
    refusal = page.locator("#messages .msg[data-ephemeral=true]").last
    expect(refusal).to_contain_text(re.compile("approver", re.I))
    expect(modal(page)).to_have_count(0)
    expect(page.locator(f'#messages .msg[data-ts="{ts}"]')).not_to_contain_text("(edited)")
    assert not fresh.sandbox.workspace.delivered("chat.update")


def test_a_standup_from_reminder_to_summary(page, fresh):
    open_as(page, fresh, BOB)
    page.select_option("#fire-kind", "recsys|standup")
    page.click("#fire")
    reminder = messages(page).filter(has_text="Standup time").last
    reminder.get_by_role("button", name="Post my update").click()
    expect(modal(page)).to_be_visible()
    inputs = modal(page).locator("textarea, input[type=text]")
    inputs.nth(0).fill("Trained ranker v2 on November clicks")
    inputs.nth(1).fill("Offline evaluation against the baseline")
    modal(page).locator("button.submit").click()
    expect(modal(page)).to_have_count(0)
    expect(reminder.locator(".replies")).to_have_text("1 reply")
    reminder.locator(".replies").click()
    expect(page.locator("#thread-messages")).to_contain_text("Offline evaluation against the baseline")
    screenshot(page, "standup")

    page.select_option("#fire-kind", "recsys|standup_summary")
    page.click("#fire")
    expect(messages(page).last).to_contain_text(re.compile("summary|answered", re.I))


def test_a_drift_alert_is_acknowledged_and_becomes_a_retraining_story(page, fresh):
    open_as(page, fresh, ALICE)
    alert = messages(page).filter(has_text="D-1").filter(has_text="critical").first
    ts = alert.get_attribute("data-ts")
    alert.get_by_role("button", name="Acknowledge").click()
    same = page.locator(f'#messages .msg[data-ts="{ts}"]')
    expect(same).to_contain_text(re.compile("acknowledged by", re.I))
    same.get_by_role("button", name="Create retraining story").click()
    expect(same).to_contain_text(re.compile(r"S-\d+"))
    same.scroll_into_view_if_needed()
    screenshot(page, "drift")
    command(page, "/scrum story list")
    expect(messages(page).last).to_contain_text(re.compile("retrain", re.I))


def test_app_home_shows_what_waits_for_the_person(page, fresh):
    open_as(page, fresh, CAROL)
    page.locator("#app-list li").click()
    expect(page.locator("#home")).to_contain_text("R-1")
    screenshot(page, "app-home")


def test_the_controls_move_the_clock_send_drift_and_reset(page, fresh):
    open_as(page, fresh, ALICE)
    before = page.locator("#clock").inner_text()
    page.click("#advance")
    expect(page.locator("#clock")).not_to_have_text(before)
    page.fill("#drift-model", "recsys-ranker")
    page.fill("#drift-metric", "auc")
    page.fill("#drift-feature", "")
    page.fill("#drift-value", "0.70")
    page.click("#drift-send")
    expect(messages(page).filter(has_text="auc").last).to_contain_text("critical")
    count = messages(page).count()
    page.click("#reset")
    page.get_by_role("alertdialog").get_by_role("button", name="Reset").click()
    expect(messages(page).filter(has_text="auc")).to_have_count(0)
    assert messages(page).count() < count
    # back to today (the minute may have turned meanwhile)
    expect(page.locator("#clock")).to_contain_text(", ".join(before.split(", ")[:2]))


def test_the_tour_walks_a_new_user_into_planning(page, fresh):
    open_as(page, fresh, OLGA, REVIEWS)
    page.get_by_role("button", name="See the sprint plan (as the lead)").click()
    expect(page.locator("#acting-user")).to_have_value(ALICE)
    expect(page.locator("#channel-title")).to_have_text("# recsys")
    expect(page.locator("#composer-input")).to_have_value("/scrum sprint plan")
    page.press("#composer-input", "Enter")
    plan = messages(page).last
    expect(plan).to_contain_text("Sprint 14")
    expect(plan).to_contain_text("S-3")
    screenshot(page, "planning")


KITCHEN_SINK = [
    {"type": "header", "text": {"type": "plain_text", "text": "Every block :tada:"}},
    {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": "*bold* _italic_ ~gone~ `code` <https://example.com/run|the run> <@U0BOB> &lt;tag&gt; "
            "<javascript:alert(1)|bad link>\n> quoted",
        },
        "fields": [{"type": "mrkdwn", "text": "*Owner*\nDave"}, {"type": "plain_text", "text": "Points\n3"}],
        "accessory": {
            "type": "overflow",
            "action_id": "more",
            "options": [
                {"text": {"type": "plain_text", "text": "Snooze a day"}, "value": "snooze:1"},
                {"text": {"type": "plain_text", "text": "Close"}, "value": "close"},
            ],
        },
    },
    {"type": "divider"},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "context <!here>"}]},
    {"type": "image", "image_url": "data:image/gif;base64,R0lGODlhAQABAAAAACw=", "alt_text": "a pixel"},
    {
        "type": "actions",
        "block_id": "pick",
        "elements": [
            {"type": "datepicker", "action_id": "when", "initial_date": "2026-12-07"},
            {
                "type": "checkboxes",
                "action_id": "which",
                "options": [{"text": {"type": "plain_text", "text": "Lineage"}, "value": "lineage"}],
            },
            {
                "type": "button",
                "action_id": "danger",
                "style": "danger",
                "text": {"type": "plain_text", "text": "Drop"},
                "value": "S-9",
                "confirm": {
                    "title": {"type": "plain_text", "text": "Drop S-9?"},
                    "text": {"type": "mrkdwn", "text": "It goes back to the backlog."},
                    "confirm": {"type": "plain_text", "text": "Drop it"},
                    "deny": {"type": "plain_text", "text": "Keep it"},
                },
            },
        ],
    },
]


def post_from_bot(served: Served, blocks: list[dict[str, Any]]) -> str:
    import httpx

    answer = httpx.post(
        served.url + "sandbox/slack/api/chat.postMessage",
        json={"channel": RECSYS, "text": "fallback", "blocks": blocks},
        headers={"authorization": "Bearer xoxb-sandbox"},
    ).json()
    return str(answer["ts"])


def recording(served: Served) -> list[dict[str, Any]]:
    """What the sandbox sends the bot from now on, decoded (interactive payloads only)."""
    import json
    from urllib.parse import parse_qs

    import httpx

    sent: list[dict[str, Any]] = []

    async def record(request: httpx.Request) -> None:
        form = parse_qs(request.content.decode())
        if "payload" in form:
            sent.append(json.loads(form["payload"][0]))

    served.sandbox.http = httpx.AsyncClient(
        base_url=served.sandbox.base, event_hooks={"request": [record]}, timeout=30
    )
    return sent


def test_block_kit_and_mrkdwn_render_as_slack_shows_them_and_every_element_clicks(page, fresh):
    ts = post_from_bot(fresh, KITCHEN_SINK)
    sent = recording(fresh)
    open_as(page, fresh, ALICE)
    message = page.locator(f'#messages .msg[data-ts="{ts}"]')
    expect(message.locator(".block-header")).to_have_text("Every block 🎉")
    text = message.locator(".block-section .mrkdwn").first
    expect(text.locator("strong")).to_have_text("bold")
    expect(text.locator("em")).to_have_text("italic")
    expect(text.locator("del")).to_have_text("gone")
    expect(text.locator("code")).to_have_text("code")
    expect(text.locator("a", has_text="the run")).to_have_attribute("href", "https://example.com/run")
    expect(text.locator("a", has_text="bad link")).to_have_attribute("href", "#")
    expect(text.locator(".mention")).to_have_text("@Bob Okafor")
    expect(text).to_contain_text("<tag>")
    expect(text.locator("blockquote")).to_have_text("quoted")
    expect(message.locator(".fields > div")).to_have_count(2)
    expect(message.locator(".block-context")).to_contain_text("@here")
    expect(message.locator("figure img")).to_have_attribute("alt", "a pixel")

    message.get_by_role("button", name="More actions").click()
    message.get_by_role("button", name="Snooze a day").click()
    message.locator("input[type=date]").fill("2026-12-09")
    message.get_by_label("Lineage").check()
    message.get_by_role("button", name="Drop").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Keep it").click()  # denied: nothing sent
    message.get_by_role("button", name="Drop").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Drop it").click()

    expect(page.locator("#toasts .toast.error")).not_to_have_count(0)  # the bot has no such actions: 404
    actions = [p["actions"][0] for p in sent]
    assert [a["type"] for a in actions] == ["overflow", "datepicker", "checkboxes", "button"]
    assert actions[0]["selected_option"]["value"] == "snooze:1"
    assert actions[1]["selected_date"] == "2026-12-09" and actions[1]["block_id"] == "pick"
    assert [o["value"] for o in actions[2]["selected_options"]] == ["lineage"]
    assert actions[3]["value"] == "S-9"
    assert all(
        p["container"] == {"type": "message", "message_ts": ts, "channel_id": RECSYS, "is_ephemeral": False}
        for p in sent
    )
    assert all(p["message"]["ts"] == ts and p["response_url"] for p in sent)


def test_markup_in_text_is_never_run(page, fresh):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    ts = post_from_bot(
        fresh,
        [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "<img src=x onerror=alert(1)> *<script>alert(2)</script>*",
                },
            }
        ],
    )
    open_as(page, fresh, ALICE)
    message = page.locator(f'#messages .msg[data-ts="{ts}"]')
    expect(message).to_contain_text("alert(2)")
    assert message.locator("img, script").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []


def test_edits_reach_every_open_page_live(browser, page, fresh):
    open_as(page, fresh, BOB, REVIEWS)
    other = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    try:
        open_as(other, fresh, CAROL, REVIEWS)
        request = messages(other).filter(has_text="R-1 · production").first
        ts = request.get_attribute("data-ts")
        request.get_by_role("button", name="Request changes").click()
        modal(other).locator("textarea, input[type=text]").first.fill("Add the rollback plan first")
        modal(other).locator("button.submit").click()
        watched = page.locator(f'#messages .msg[data-ts="{ts}"]')
        expect(watched).to_contain_text("(edited)")  # Bob's page, never reloaded
        expect(watched).to_contain_text("Add the rollback plan first")
    finally:
        other.context.close()


def test_the_sprint_review_posts_with_its_charts_shown_as_images(page, fresh):
    open_as(page, fresh, ALICE)
    command(page, "/scrum sprint review")
    preview = messages(page).filter(has_text="Sprint 14").last
    preview.get_by_role("button", name=re.compile("Post")).click()
    posted = page.locator("#messages .msg:not([data-ephemeral])").filter(has_text="Sprint review").last
    expect(posted).to_contain_text("Committed at planning: 2 stories, 8 points")
    posted.locator(".replies").click()  # the burndown and velocity charts, in the review's thread
    image = page.locator("#thread-messages .file img").first
    expect(image).to_be_visible(timeout=20_000)
    expect(page.locator("#thread-messages .file img")).to_have_count(2)
    assert image.evaluate("img => img.complete && img.naturalWidth > 100")
    image.scroll_into_view_if_needed()
    screenshot(page, "sprint-review")
    uploaded = fresh.sandbox.workspace.uploaded()
    assert uploaded and all(u.channel == RECSYS and u.content.startswith(b"\x89PNG") for u in uploaded)
