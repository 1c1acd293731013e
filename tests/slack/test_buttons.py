"""Scenario tests for the buttons: Mark done, list pagination, and answers to clicks from the App Home."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.slack import ids
from bot.store.models import AuditEvent
from tests.conftest import ALICE, BOB
from tests.factories import rows, stored_story
from tests.slack.helpers import missing_once, new_story, replies, shown

DOD_ALL = "dod S-1 data_lineage=warehouse.v7 model_evaluation=ndcg+3% rollback_plan=pin-v6 monitoring=grafana"


# ── helpers ──────────────────────────────────────────────────────────────────────────────────


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """action_id → the button, for every button in the blocks."""
    found: dict[str, dict[str, Any]] = {}
    for b in blocks:
        for element in [*b.get("elements", []), b.get("accessory") or {}]:
            if element.get("type") == "button":
                found[element["action_id"]] = element
    return found


def keys_listed(blocks: list[dict[str, Any]]) -> list[str]:
    """Story keys in the order the list shows them (each story line starts with *S-n*)."""
    keys = []
    for b in blocks:
        text = (b.get("text") or {}).get("text", "")
        if b["type"] == "section" and text.startswith("*S-"):
            keys.append(text[1 : text.index("*", 1)])
    return keys


# ── Mark done ────────────────────────────────────────────────────────────────────────────────


async def test_mark_done_refuses_and_lists_the_missing_definition_of_done(slack, db):
    await new_story(slack)
    await slack.command("dod S-1 data_lineage=warehouse.v7")

    response = await slack.click(ids.MARK_DONE, "S-1")

    assert response.status_code == 200
    [refusal] = replies(slack)
    assert refusal["response_type"] == "ephemeral"
    assert refusal["replace_original"] is False
    assert "S-1 does not meet the Definition of Done" in refusal["text"]
    assert refusal["text"] == "S-1 does not meet the Definition of Done yet: it lacks 3 of 4 criteria."
    missing_once(shown(refusal), "Model evaluation", "Rollback plan", "Monitoring")
    assert ":white_check_mark: Data lineage: warehouse.v7" in shown(refusal)  # already given
    assert ids.OPEN_DONE_MODAL in json.dumps(refusal["blocks"])  # a way to fill them
    stored = await stored_story(db, 1)
    assert (stored.status, stored.done_at) == ("open", None)
    assert await rows(db, AuditEvent) == []


async def test_mark_done_succeeds_once_the_definition_of_done_is_met(slack, db):
    await new_story(slack)
    await slack.click(ids.MARK_DONE, "S-1")
    await slack.command(DOD_ALL)

    await slack.click(ids.MARK_DONE, "S-1")

    refusal, success = replies(slack)
    assert "does not meet" in refusal["text"]
    assert success["text"] == "S-1 is done."
    assert ":tada:" in json.dumps(success["blocks"])
    stored = await stored_story(db, 1)
    assert stored.status == "done" and stored.done_at is not None
    [audit] = await rows(db, AuditEvent)
    assert (audit.actor, audit.action, audit.subject) == (ALICE, "story.done", "S-1")
    assert json.loads(audit.payload)["evidence"]["rollback_plan"] == "pin-v6"


async def test_mark_done_twice_changes_nothing_the_second_time(slack, db):
    await new_story(slack)
    await slack.command(DOD_ALL)
    await slack.click(ids.MARK_DONE, "S-1")
    done_at = (await stored_story(db, 1)).done_at

    response = await slack.click(ids.MARK_DONE, "S-1", user=BOB)

    assert response.status_code == 200
    second = replies(slack)[-1]
    assert second["response_type"] == "ephemeral"
    assert "S-1 is already done" in second["text"]
    assert (await stored_story(db, 1)).done_at == done_at
    assert len(await rows(db, AuditEvent)) == 1


async def test_mark_done_with_a_waived_criterion_counts_it(slack, db):
    await new_story(slack)
    await slack.command(
        'dod S-1 data_lineage=a model_evaluation=b rollback_plan=c monitoring=n/a reason="batch only"'
    )

    await slack.click(ids.MARK_DONE, "S-1")

    assert (await stored_story(db, 1)).status == "done"
    evidence = json.loads((await rows(db, AuditEvent, AuditEvent.action == "story.done"))[0].payload)
    assert evidence["evidence"]["monitoring"] == "n/a: batch only"


async def test_mark_done_for_an_unknown_story_says_so(slack, db):
    response = await slack.click(ids.MARK_DONE, "S-42")

    assert response.status_code == 200
    [reply] = replies(slack)
    assert "There is no story S-42" in reply["text"]
    assert reply["response_type"] == "ephemeral"


# ── list pagination ──────────────────────────────────────────────────────────────────────────


async def first_page(slack, count: int, args: str = "") -> list[dict[str, Any]]:
    for n in range(1, count + 1):
        await new_story(slack, f"Story number {n}")
    response = await slack.command(f"story list {args}".strip())
    assert response.status_code == 200
    return response.json()["blocks"]


async def test_list_first_page_has_only_a_next_button(slack, db):
    blocks = await first_page(slack, 25)

    assert keys_listed(blocks) == [f"S-{n}" for n in range(1, 21)]
    assert "Page 1 of 2" in json.dumps(blocks)
    nav = buttons(blocks)
    assert list(nav) == ["story_list_page_next"]
    assert json.loads(nav["story_list_page_next"]["value"])["page"] == 2


async def test_next_button_replaces_the_message_with_page_two(slack, db):
    blocks = await first_page(slack, 25)
    next_button = buttons(blocks)["story_list_page_next"]

    response = await slack.click("story_list_page_next", next_button["value"])

    assert response.status_code == 200
    [page] = replies(slack)
    assert page["replace_original"] is True
    assert page["response_type"] == "ephemeral"
    assert keys_listed(page["blocks"]) == [f"S-{n}" for n in range(21, 26)]
    assert "Page 2 of 2" in json.dumps(page["blocks"])
    assert "25 stories" in json.dumps(page["blocks"])
    assert list(buttons(page["blocks"])) == ["story_list_page_prev"]


async def test_previous_button_goes_back_to_page_one(slack, db):
    blocks = await first_page(slack, 45)
    await slack.click("story_list_page_next", buttons(blocks)["story_list_page_next"]["value"])
    page_two = replies(slack)[-1]["blocks"]
    assert sorted(buttons(page_two)) == ["story_list_page_next", "story_list_page_prev"]

    await slack.click("story_list_page_prev", buttons(page_two)["story_list_page_prev"]["value"])

    page_one = replies(slack)[-1]
    assert page_one["replace_original"] is True
    assert keys_listed(page_one["blocks"]) == [f"S-{n}" for n in range(1, 21)]
    assert "Page 1 of 3" in json.dumps(page_one["blocks"])


async def test_pagination_keeps_the_list_filters(slack, db):
    for n in range(1, 51):
        owner = "<@U01ALICE|alice>" if n % 2 else "<@U02BOB|bob>"
        await new_story(slack, f"Story number {n} --owner {owner}")
    blocks = (await slack.command("story list --mine")).json()["blocks"]
    assert "25 stories" in json.dumps(blocks)
    assert json.loads(buttons(blocks)["story_list_page_next"]["value"])["filters"] == {"tokens": ["--mine"]}

    await slack.click("story_list_page_next", buttons(blocks)["story_list_page_next"]["value"])

    page = replies(slack)[-1]
    assert page["replace_original"] is True
    assert "25 stories" in json.dumps(page["blocks"]) and "mine" in json.dumps(page["blocks"])
    # Alice's 21st to 25th stories: the odd numbers from 41 on, none of Bob's.
    assert keys_listed(page["blocks"]) == ["S-41", "S-43", "S-45", "S-47", "S-49"]


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "",
        '{"page": 2}',
        '{"page": "two", "filters": {"tokens": []}}',
        '{"page": 2, "filters": {"tokens": ["--bogus"]}}',
        '{"page": 2, "filters": {"tokens": ["S-1"]}}',
        "[1, 2]",
    ],
    ids=["not-json", "empty", "no-filters", "page-not-a-number", "unknown-option", "stray-word", "a-list"],
)
async def test_tampered_page_value_gives_an_ephemeral_error(slack, db, value):
    await first_page(slack, 21)

    response = await slack.click("story_list_page_next", value)

    assert response.status_code == 200
    [reply] = replies(slack)
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith(":warning:")
    assert reply["replace_original"] is False  # the list the person had stays
    assert "blocks" not in reply


async def test_out_of_range_page_shows_the_last_page(slack, db):
    await first_page(slack, 25)

    await slack.click("story_list_page_next", json.dumps({"page": 99, "filters": {"tokens": []}}))

    [page] = replies(slack)
    assert page["replace_original"] is True
    assert keys_listed(page["blocks"]) == [f"S-{n}" for n in range(21, 26)]


# ── clicks from the App Home: no response_url, so the answer is a DM ─────────────────────────


async def test_failed_home_click_is_answered_by_dm(slack, db):
    await new_story(slack)

    response = await slack.click(ids.MARK_DONE, "S-1", from_home=True)

    assert response.status_code == 200
    assert replies(slack) == []
    [dm] = slack.fake.of("chat.postMessage")
    assert dm.args["channel"] == ALICE
    assert "S-1 does not meet the Definition of Done" in dm.args["text"]
    assert "Rollback plan" in json.dumps(dm.args["blocks"])
    assert (await stored_story(db, 1)).status == "open"


async def test_home_click_that_raises_is_answered_by_dm(slack, db):
    await new_story(slack)
    await slack.command(DOD_ALL)
    await slack.command("story done S-1")
    slack.fake.reset()

    response = await slack.click(ids.OPEN_READY_MODAL, "S-1", from_home=True)

    assert response.status_code == 200
    assert slack.fake.of("views.open") == []
    assert replies(slack) == []
    [dm] = slack.fake.of("chat.postMessage")
    assert dm.args["channel"] == ALICE
    assert "S-1 is already done" in dm.args["text"]


async def test_home_click_by_another_person_goes_to_that_person(slack, db):
    response = await slack.click(ids.OPEN_DONE_MODAL, "S-7", from_home=True, user=BOB)

    assert response.status_code == 200
    [dm] = slack.fake.of("chat.postMessage")
    assert dm.args["channel"] == BOB
    assert "There is no story S-7" in dm.args["text"]


async def test_successful_home_click_opens_the_form_without_a_dm(slack, db):
    await new_story(slack)

    await slack.click(ids.OPEN_READY_MODAL, "S-1", from_home=True)

    assert len(slack.fake.of("views.open")) == 1
    assert slack.fake.of("chat.postMessage") == []
    meta = json.loads(slack.last_view()["private_metadata"])
    assert "response_url" not in meta


async def test_form_opened_from_home_refreshes_home_after_saving(slack, db):
    await new_story(slack, "Train the ranker --owner <@U01ALICE|alice>")
    await slack.click(ids.OPEN_READY_MODAL, "S-1", from_home=True)
    view = slack.last_view()

    response = await slack.submit(
        view, {"criterion:data_available": {"type": "plain_text_input", "value": "s3://v7"}}
    )

    assert response.status_code == 200 and response.text == ""
    assert replies(slack) == []
    [publish] = slack.fake.of("views.publish")
    assert publish.args["user_id"] == ALICE
    assert "1/6" in json.dumps(publish.args["view"])
