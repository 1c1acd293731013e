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
    expect(page.locator("#clock")).to_have_text(before)


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
