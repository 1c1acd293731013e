"""Scenario tests for the forms: the story form (add and edit) and the checklist form (Ready and Done)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.slack import ids
from bot.store.models import AuditEvent, CriterionValue, OutboxMessage, Sprint, Story
from tests.conftest import ALICE, BOB, DAVE, FRANK, PLATFORM, RECSYS
from tests.factories import rows, stored_story
from tests.slack.helpers import replies

SPRINT_CMD = 'sprint start "Sprint 1" --from 2026-12-07 --to 2026-12-18 --goal "Ship the ranker"'


# ── helpers ──────────────────────────────────────────────────────────────────────────────────


async def criteria(db, kind: str = "ready") -> dict[str, CriterionValue]:
    return {r.key: r for r in await rows(db, CriterionValue, CriterionValue.kind == kind)}


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    found = [b for b in view["blocks"] if b.get("block_id") == block_id]
    assert found, f"the view has no block {block_id!r}: {[b.get('block_id') for b in view['blocks']]}"
    return found[0]


def text(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def story_values(
    *,
    title: str = "Train the ranker",
    story_type: str = "ml",
    owner: str | None = None,
    points: str | None = None,
    sprint: str = "backlog",
) -> dict[str, dict[str, Any]]:
    return {
        ids.FIELD_TITLE: text(title),
        ids.FIELD_TYPE: {"type": "static_select", "selected_option": {"value": story_type}},
        ids.FIELD_OWNER: {"type": "users_select", "selected_user": owner},
        ids.FIELD_POINTS: {"type": "number_input", "value": points},
        ids.FIELD_SPRINT: {"type": "static_select", "selected_option": {"value": sprint}},
    }


def as_submitted(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The state Slack sends when the person changes nothing: every criterion field's initial value."""
    return {
        b["block_id"]: text(b["element"].get("initial_value"))
        for b in view["blocks"]
        if b.get("type") == "input"
    }


async def new_story(slack, args: str = "Train the ranker") -> None:
    response = await slack.command(f"story add {args}")
    assert response.status_code == 200, response.text
    assert "Added S-" in response.json()["text"], response.json()


async def open_ready_form(slack, key: str = "S-1", kind: str = "ready") -> dict[str, Any]:
    before = len(slack.fake.of("views.open"))
    action = ids.OPEN_READY_MODAL if kind == "ready" else ids.OPEN_DONE_MODAL
    response = await slack.click(action, key)
    assert response.status_code == 200, response.text
    assert len(slack.fake.of("views.open")) == before + 1, "the click opened no form"
    return slack.last_view()


# ── the story form: add ──────────────────────────────────────────────────────────────────────


async def test_story_add_without_arguments_opens_the_form(slack, db):
    response = await slack.command("story add")

    assert response.status_code == 200
    assert response.text == ""  # no message: the form opens instead
    opened = slack.fake.of("views.open")
    assert len(opened) == 1
    assert opened[0].args["trigger_id"].startswith("trigger.")
    view = slack.last_view()
    assert view["type"] == "modal"
    assert view["callback_id"] == ids.STORY_MODAL
    assert [b["block_id"] for b in view["blocks"]] == ["title", "type", "owner", "points", "sprint"]
    assert block(view, "type")["element"]["initial_option"]["value"] == "ml"
    assert block(view, "sprint")["element"]["initial_option"]["value"] == "backlog"
    assert await rows(db, Story) == []


async def test_story_form_submission_stores_the_story_and_confirms(slack, db):
    await slack.command(SPRINT_CMD)
    [sprint] = await rows(db, Sprint)
    await slack.command("story add")
    view = slack.last_view()
    offered = [o["value"] for o in block(view, "sprint")["element"]["options"]]
    assert offered == ["backlog", str(sprint.id)]
    # The form remembers where the command came from, so the confirmation can go back there.
    meta = json.loads(view["private_metadata"])
    assert "/response/cmd" in meta["response_url"]
    assert (meta["channel"], meta["team"]) == ("C0123RECSYS", "recsys")

    # A new story is never Ready, so it goes to the backlog (into a sprint it would need force: see below).
    response = await slack.submit(view, story_values(title="Train ranker v2", owner=BOB, points="3"))

    assert response.status_code == 200
    assert response.text == ""  # an empty ack closes the modal
    stored = await stored_story(db, 1)
    assert (stored.title, stored.type, stored.owner, stored.points, stored.sprint_id) == (
        "Train ranker v2",
        "ml",
        BOB,
        3,
        None,
    )
    assert (stored.team, stored.created_by, stored.status) == ("recsys", ALICE, "open")
    [confirmation] = replies(slack)
    assert confirmation["text"] == (
        ":white_check_mark: Added *S-1* Train ranker v2 to the backlog.\n:red_circle: not Ready (0/6)"
    )
    assert confirmation["response_type"] == "ephemeral"
    assert confirmation["replace_original"] is False
    # Bob was told about the story he now owns, through the outbox (after the sprint's start post).
    started, dm = await rows(db, OutboxMessage)
    assert started.channel == RECSYS and started.dedupe_key == f"sprint:{sprint.id}:start"
    assert dm.channel == BOB and "S-1" in json.loads(dm.payload)["text"]


async def test_story_form_with_only_a_title_goes_to_the_backlog(slack, db):
    await slack.command("story add")
    response = await slack.submit(slack.last_view(), story_values(title="  Fix   flaky   test  "))

    assert response.status_code == 200 and response.text == ""
    stored = await stored_story(db, 1)
    assert (stored.title, stored.owner, stored.points, stored.sprint_id) == (
        "Fix flaky test",
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("values", "field", "phrase"),
    [
        (story_values(title="x" * 201), "title", "201 characters"),
        (story_values(title="   "), "title", "needs a title"),
        (story_values(points="abc"), "points", "whole number"),
        (story_values(points="-2"), "points", "whole number"),
        (story_values(points="101"), "points", "100"),
    ],
    ids=["title-too-long", "title-blank", "points-abc", "points-negative", "points-too-many"],
)
async def test_invalid_story_form_shows_the_error_on_the_field(slack, db, values, field, phrase):
    await slack.command("story add")

    response = await slack.submit(slack.last_view(), values)

    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == [field]
    assert phrase in body["errors"][field]
    assert await rows(db, Story) == []
    assert replies(slack) == []


async def test_invalid_story_form_does_not_use_up_a_story_number(slack, db):
    await slack.command("story add")
    view = slack.last_view()
    await slack.submit(view, story_values(title="x" * 500))

    await slack.submit(view, story_values(title="Fine title"))

    assert [s.key for s in await rows(db, Story)] == ["S-1"]


# ── the story form: edit ─────────────────────────────────────────────────────────────────────


async def test_story_edit_opens_a_prefilled_form(slack, db):
    await slack.command(SPRINT_CMD)
    [sprint] = await rows(db, Sprint)
    await new_story(
        slack,
        'Train ranker --type eng --owner <@U02BOB|bob> --points 5 --sprint current --force reason="planned"',
    )

    response = await slack.command("story edit S-1")

    assert response.status_code == 200 and response.text == ""
    view = slack.last_view()
    assert view["callback_id"] == ids.STORY_MODAL
    assert "S-1" in view["title"]["text"]
    assert json.loads(view["private_metadata"])["story"] == "S-1"
    assert block(view, "title")["element"]["initial_value"] == "Train ranker"
    assert block(view, "type")["element"]["initial_option"]["value"] == "eng"
    assert block(view, "owner")["element"]["initial_user"] == BOB
    assert block(view, "points")["element"]["initial_value"] == "5"
    assert block(view, "sprint")["element"]["initial_option"]["value"] == str(sprint.id)


async def test_story_edit_form_submission_changes_the_fields(slack, db):
    await slack.command(SPRINT_CMD)
    await new_story(
        slack, 'Train ranker --owner <@U02BOB|bob> --points 5 --sprint current --force reason="planned"'
    )
    await slack.command("story edit S-1")

    response = await slack.submit(
        slack.last_view(),
        story_values(title="Train ranker v3", story_type="eng", owner=DAVE, points=None, sprint="backlog"),
    )

    assert response.status_code == 200 and response.text == ""
    stored = await stored_story(db, 1)
    assert (stored.title, stored.type, stored.owner, stored.points, stored.sprint_id) == (
        "Train ranker v3",
        "eng",
        DAVE,
        None,
        None,
    )
    assert [s.key for s in await rows(db, Story)] == ["S-1"]  # edited, not added
    [confirmation] = replies(slack)
    assert "Saved" in confirmation["text"] and "S-1" in confirmation["text"]
    assert DAVE in [m.channel for m in await rows(db, OutboxMessage)]


async def test_story_edit_form_with_an_invalid_title_changes_nothing(slack, db):
    await new_story(slack, "Train ranker --points 5")
    await slack.command("story edit S-1")

    response = await slack.submit(slack.last_view(), story_values(title="y" * 300, points="8"))

    assert response.json()["response_action"] == "errors"
    assert list(response.json()["errors"]) == ["title"]
    stored = await stored_story(db, 1)
    assert (stored.title, stored.points) == ("Train ranker", 5)


async def test_story_edit_form_clearing_the_owner_unassigns_the_story(slack, db):
    await new_story(slack, "Train ranker --owner <@U02BOB|bob>")
    await slack.command("story edit S-1")

    await slack.submit(slack.last_view(), story_values(title="Train ranker", owner=None))

    assert (await stored_story(db, 1)).owner is None


# ── the story form: into a sprint only through the readiness gate ────────────────────────────


async def test_story_form_choosing_a_sprint_for_a_not_ready_story_keeps_it_in_the_backlog(slack, db):
    await slack.command(SPRINT_CMD)
    [sprint] = await rows(db, Sprint)
    outbox_before = await rows(db, OutboxMessage)
    await slack.command("story add")
    view = slack.last_view()

    response = await slack.submit(view, story_values(title="Train ranker", sprint=str(sprint.id)))

    # the form closes: the story is stored, in the backlog, and the confirmation says why
    assert response.status_code == 200 and response.text == ""
    stored = await stored_story(db, 1)
    assert (stored.title, stored.sprint_id, stored.status) == ("Train ranker", None, "open")
    [confirmation] = replies(slack)
    assert confirmation["text"].startswith(
        ":white_check_mark: Added *S-1* Train ranker to the backlog.\n"
        ":no_entry: It is not in the sprint you asked for: Not Ready: S-1 lacks Data availability, "
    )
    assert confirmation["text"].endswith("\n:red_circle: not Ready (0/6)")
    # nothing entered the sprint: no commit on the record, nothing announced
    assert await rows(db, AuditEvent) == []
    assert await rows(db, OutboxMessage) == outbox_before


async def test_story_form_sprint_by_a_non_lead_keeps_the_new_story_in_the_backlog(slack, db):
    await slack.command(SPRINT_CMD)
    [sprint] = await rows(db, Sprint)
    await slack.command("story add", user=BOB)
    view = slack.last_view()
    assert "reason" not in [b.get("block_id") for b in view["blocks"]]  # Bob is not a lead

    response = await slack.submit(view, story_values(title="Fix login", sprint=str(sprint.id)), user=BOB)

    assert response.status_code == 200 and response.text == ""
    assert (await stored_story(db, 1)).sprint_id is None
    [confirmation] = replies(slack)
    assert (
        ":no_entry: It is not in the sprint you asked for: "
        "Only the leads of team recsys can commit stories to a sprint."
    ) in confirmation["text"]
    assert await rows(db, AuditEvent) == []


async def test_story_edit_form_choosing_a_sprint_for_a_not_ready_story_changes_nothing(slack, db):
    await slack.command(SPRINT_CMD)
    [sprint] = await rows(db, Sprint)
    await new_story(slack, "Train ranker --points 5")
    before = await stored_story(db, 1)
    await slack.command("story edit S-1")

    response = await slack.submit(
        slack.last_view(), story_values(title="Renamed", points="8", sprint=str(sprint.id))
    )

    body = response.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == ["sprint"]
    assert body["errors"]["sprint"].startswith("Not Ready: S-1 lacks")
    assert await stored_story(db, 1) == before  # not even the title
    assert await rows(db, AuditEvent) == []


async def test_story_edit_form_puts_a_ready_story_into_the_chosen_sprint(slack, db):
    await slack.command(SPRINT_CMD)
    await slack.command('sprint start "Sprint 2" --from 2026-12-21 --to 2027-01-01')
    sprint2 = next(s for s in await rows(db, Sprint) if s.name == "Sprint 2")
    await new_story(slack, "Fix login --type eng")
    await slack.command("ready S-1 acceptance_criteria=tests dependencies=none")
    await slack.command("story edit S-1")
    view = slack.last_view()
    assert [o["text"]["text"] for o in block(view, "sprint")["element"]["options"]] == [
        "Backlog",
        "Sprint 1 (current)",
        "Sprint 2 (planned)",
    ]

    response = await slack.submit(
        view, story_values(title="Fix login", story_type="eng", sprint=str(sprint2.id))
    )

    assert response.status_code == 200 and response.text == ""
    assert (await stored_story(db, 1)).sprint_id == sprint2.id
    # Ready: nothing forced, a plain commit on the record
    [event] = await rows(db, AuditEvent)
    assert (event.action, event.subject) == ("sprint.commit", "S-1")
    assert json.loads(event.payload) == {"sprint": "Sprint 2", "team": "recsys", "points": None}


async def test_story_form_choosing_a_sprint_by_a_non_lead_is_refused(slack, db):
    await slack.command(SPRINT_CMD)
    [sprint] = await rows(db, Sprint)
    await new_story(slack, "Fix login --type eng")
    await slack.command("ready S-1 acceptance_criteria=tests dependencies=none")
    before = await stored_story(db, 1)
    await slack.command("story edit S-1", user=BOB)

    response = await slack.submit(
        slack.last_view(), story_values(title="Fix login", story_type="eng", sprint=str(sprint.id)), user=BOB
    )

    body = response.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"].values()) == ["Only the leads of team recsys can commit stories to a sprint."]
    assert await stored_story(db, 1) == before


async def test_story_edited_from_another_teams_channel_offers_its_own_teams_sprints(slack, db):
    await slack.command(SPRINT_CMD)
    await slack.command('sprint start "P1" --from 2026-12-07 --to 2026-12-18', user=FRANK, channel=PLATFORM)
    recsys_sprint = next(s for s in await rows(db, Sprint) if s.team == "recsys")
    await new_story(slack, 'Train ranker --points 5 --sprint current --force reason="planned"')
    audited = await rows(db, AuditEvent)

    await slack.command("story edit S-1", channel=PLATFORM)
    view = slack.last_view()
    sprint_field = block(view, "sprint")["element"]
    assert [o["text"]["text"] for o in sprint_field["options"]] == ["Backlog", "Sprint 1 (current)"]
    assert sprint_field["initial_option"]["value"] == str(recsys_sprint.id)
    assert json.loads(view["private_metadata"])["team"] == "recsys"

    # saved with the sprint left as it was: the story keeps its sprint, and the gate is not passed again
    response = await slack.submit(
        view, story_values(title="Train ranker v2", points="8", sprint=str(recsys_sprint.id))
    )

    assert response.status_code == 200 and response.text == ""
    stored = await stored_story(db, 1)
    assert (stored.team, stored.title, stored.points, stored.sprint_id) == (
        "recsys",
        "Train ranker v2",
        8,
        recsys_sprint.id,
    )
    assert [e.seq for e in await rows(db, AuditEvent)] == [e.seq for e in audited]


# ── the checklist form: Definition of Ready ──────────────────────────────────────────────────


async def test_ready_button_opens_a_form_prefilled_with_answers_and_waivers(slack, db):
    await new_story(slack)
    await slack.command(
        'ready S-1 data_available="s3://features v7" data_contract=n/a reason="internal only"'
    )

    view = await open_ready_form(slack)

    assert view["callback_id"] == ids.CRITERIA_MODAL
    assert json.loads(view["private_metadata"])["story"] == "S-1"
    assert json.loads(view["private_metadata"])["kind"] == "ready"
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert list(inputs) == [
        "criterion:data_available",
        "criterion:feature_stability",
        "criterion:reproducible_env",
        "criterion:eval_criteria",
        "criterion:data_contract",
        "criterion:validation_dataset",
    ]
    assert inputs["criterion:data_available"]["element"]["initial_value"] == "s3://features v7"
    assert inputs["criterion:data_contract"]["element"]["initial_value"] == "n/a: internal only"
    assert "initial_value" not in inputs["criterion:feature_stability"]["element"]
    assert all(b["optional"] for b in inputs.values())
    assert inputs["criterion:data_available"]["label"]["text"] == "Data availability"


async def test_ready_form_records_the_answers(slack, db):
    await new_story(slack)
    view = await open_ready_form(slack)
    values = as_submitted(view)
    values["criterion:data_available"] = text("s3://features v7")
    values["criterion:eval_criteria"] = text("  NDCG@10 > 0.41  ")

    response = await slack.submit(view, values)

    assert response.status_code == 200 and response.text == ""
    stored = await criteria(db)
    assert {k: r.value for k, r in stored.items()} == {
        "data_available": "s3://features v7",
        "eval_criteria": "NDCG@10 > 0.41",
    }
    assert all(r.set_by == ALICE and r.na_reason is None for r in stored.values())
    [confirmation] = replies(slack)
    assert "S-1" in confirmation["text"] and "2/6" in confirmation["text"]
    assert await rows(db, AuditEvent) == []  # answers are not decisions; waivers are


async def test_ready_form_waiver_is_recorded_and_audited(slack, db):
    await new_story(slack)
    view = await open_ready_form(slack)
    values = as_submitted(view)
    values["criterion:data_contract"] = text("n/a: internal only")

    response = await slack.submit(view, values)

    assert response.status_code == 200 and response.text == ""
    row = (await criteria(db))["data_contract"]
    assert (row.value, row.na_reason, row.set_by) == (None, "internal only", ALICE)
    [audit] = await rows(db, AuditEvent)
    assert (audit.actor, audit.action, audit.subject) == (ALICE, "ready.waive", "S-1")
    assert json.loads(audit.payload) == {"criterion": "data_contract", "reason": "internal only"}


@pytest.mark.parametrize("bare", ["n/a", "N/A", "n/a:", "  n/a -  "])
async def test_ready_form_bare_na_is_refused_on_that_field(slack, db, bare):
    await new_story(slack)
    view = await open_ready_form(slack)
    values = as_submitted(view)
    values["criterion:data_available"] = text("s3://features v7")
    values["criterion:data_contract"] = text(bare)

    response = await slack.submit(view, values)

    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == ["criterion:data_contract"]
    assert "n/a: <reason>" in body["errors"]["criterion:data_contract"]
    assert await criteria(db) == {}  # not even the valid answer next to it
    assert await rows(db, AuditEvent) == []
    assert replies(slack) == []


async def test_ready_form_emptying_a_field_clears_that_answer(slack, db):
    await new_story(slack)
    await slack.command('ready S-1 data_available=v7 eval_criteria=ndcg data_contract=n/a reason="internal"')
    view = await open_ready_form(slack)
    values = as_submitted(view)
    values["criterion:data_available"] = text(None)
    values["criterion:data_contract"] = text("   ")

    response = await slack.submit(view, values)

    assert response.status_code == 200 and response.text == ""
    assert {k: r.value for k, r in (await criteria(db)).items()} == {"eval_criteria": "ndcg"}
    [confirmation] = replies(slack)
    assert "1/6" in confirmation["text"]


async def test_ready_form_submitted_unchanged_writes_nothing(slack, db):
    await new_story(slack)
    await slack.command('ready S-1 data_available=v7 data_contract=n/a reason="internal only"')
    before = {k: (r.value, r.na_reason, r.set_at) for k, r in (await criteria(db)).items()}
    audits = len(await rows(db, AuditEvent))
    view = await open_ready_form(slack)

    response = await slack.submit(view, as_submitted(view), user=BOB)

    assert response.status_code == 200 and response.text == ""
    after = await criteria(db)
    assert {k: (r.value, r.na_reason, r.set_at) for k, r in after.items()} == before
    assert all(r.set_by == ALICE for r in after.values())
    assert len(await rows(db, AuditEvent)) == audits
    assert replies(slack) == []


async def test_ready_form_changing_a_waiver_reason_is_audited_again(slack, db):
    await new_story(slack)
    await slack.command('ready S-1 data_contract=n/a reason="internal only"')
    view = await open_ready_form(slack)
    values = as_submitted(view)
    values["criterion:data_contract"] = text("n/a – no external consumers")

    await slack.submit(view, values)

    assert (await criteria(db))["data_contract"].na_reason == "no external consumers"
    reasons = [json.loads(a.payload)["reason"] for a in await rows(db, AuditEvent)]
    assert reasons == ["internal only", "no external consumers"]


async def test_ready_form_completing_the_checklist_says_so(slack, db):
    await new_story(slack)
    view = await open_ready_form(slack)
    values = {b: text(f"answer for {b}") for b in as_submitted(view)}

    await slack.submit(view, values)

    assert len(await criteria(db)) == 6
    [confirmation] = replies(slack)
    assert "complete" in confirmation["text"]


async def test_ready_form_for_an_eng_story_has_the_eng_criteria(slack, db):
    await new_story(slack, "Add endpoint --type eng")

    view = await open_ready_form(slack)

    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == [
        "criterion:acceptance_criteria",
        "criterion:dependencies",
    ]


# ── the checklist form: Definition of Done ───────────────────────────────────────────────────


async def test_done_button_opens_the_definition_of_done_form(slack, db):
    await new_story(slack)
    await slack.command("dod S-1 data_lineage=warehouse.v7")

    view = await open_ready_form(slack, kind="done")

    assert view["callback_id"] == ids.CRITERIA_MODAL
    assert json.loads(view["private_metadata"])["kind"] == "done"
    assert view["title"]["text"] == "Definition of Done"
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert list(inputs) == [
        "criterion:data_lineage",
        "criterion:model_evaluation",
        "criterion:rollback_plan",
        "criterion:monitoring",
    ]
    assert inputs["criterion:data_lineage"]["element"]["initial_value"] == "warehouse.v7"


async def test_done_form_records_done_criteria_not_ready_ones(slack, db):
    await new_story(slack)
    view = await open_ready_form(slack, kind="done")
    values = as_submitted(view)
    values["criterion:rollback_plan"] = text("pin model v6 in the registry")
    values["criterion:monitoring"] = text("n/a: shadow mode only")

    response = await slack.submit(view, values)

    assert response.status_code == 200 and response.text == ""
    done = await criteria(db, "done")
    assert done["rollback_plan"].value == "pin model v6 in the registry"
    assert done["monitoring"].na_reason == "shadow mode only"
    assert await criteria(db, "ready") == {}
    [audit] = await rows(db, AuditEvent)
    assert audit.action == "done.waive"
    [confirmation] = replies(slack)
    assert "Definition of Done" in confirmation["text"] and "2/4" in confirmation["text"]


# ── forms for a story that is already done ───────────────────────────────────────────────────


async def finish_story(slack, key: str = "S-1") -> None:
    response = await slack.command(
        f"dod {key} data_lineage=a model_evaluation=b rollback_plan=c monitoring=d"
    )
    assert "Recorded 4" in response.json()["text"], response.json()
    response = await slack.command(f"story done {key}")
    assert "is done" in response.json()["text"], response.json()


@pytest.mark.parametrize("action", [ids.OPEN_READY_MODAL, ids.OPEN_DONE_MODAL])
async def test_form_for_a_done_story_is_refused(slack, db, action):
    await new_story(slack)
    await finish_story(slack)
    slack.fake.reset()

    response = await slack.click(action, "S-1")

    assert response.status_code == 200
    assert slack.fake.of("views.open") == []
    [refusal] = replies(slack)
    assert refusal["response_type"] == "ephemeral"
    assert "S-1 is already done" in refusal["text"]


async def test_submitting_an_open_form_after_the_story_was_done_is_refused(slack, db):
    await new_story(slack)
    view = await open_ready_form(slack)
    await finish_story(slack)

    values = as_submitted(view)
    values["criterion:data_available"] = text("late answer")
    response = await slack.submit(view, values)

    body = response.json()
    assert body["response_action"] == "errors"
    assert "already done" in next(iter(body["errors"].values()))
    assert "data_available" not in await criteria(db)


async def test_edit_form_for_a_done_story_is_refused(slack, db):
    await new_story(slack)
    await finish_story(slack)
    slack.fake.reset()

    await slack.click(ids.OPEN_STORY_EDIT, "S-1")

    assert slack.fake.of("views.open") == []
    [refusal] = replies(slack)
    assert "S-1" in refusal["text"] and "done" in refusal["text"]


async def test_form_for_an_unknown_story_is_refused(slack, db):
    response = await slack.click(ids.OPEN_READY_MODAL, "S-99")

    assert response.status_code == 200
    assert slack.fake.of("views.open") == []
    [refusal] = replies(slack)
    assert "There is no story S-99" in refusal["text"]


# ── what the forms show ──────────────────────────────────────────────────────────────────────


def _mrkdwn_texts(view: dict[str, Any]) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(view)
    return found


async def test_checklist_form_escapes_the_story_title(slack, db):
    await slack.command("story add")
    await slack.submit(slack.last_view(), story_values(title="<!channel> & <https://evil|click>"))

    view = await open_ready_form(slack)

    shown = " ".join(_mrkdwn_texts(view))
    assert "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;" in shown
    assert "<!channel>" not in shown and "<https://evil" not in shown


async def test_checklist_message_with_the_form_button_shows_the_title_once_escaped(slack, db):
    await slack.command("story add")
    await slack.submit(slack.last_view(), story_values(title="R&D <ranker>"))

    response = await slack.command("ready S-1")

    shown = json.dumps(response.json()["blocks"])
    assert ids.OPEN_READY_MODAL in shown
    assert "R&amp;D &lt;ranker&gt;" in shown
    assert "&amp;amp;" not in shown and "&amp;lt;" not in shown


async def test_checklist_form_prefill_fits_the_field_for_a_long_waiver(slack, db):
    await new_story(slack)
    reason = "r" * 2000
    response = await slack.command(f'ready S-1 data_contract=n/a reason="{reason}"')
    assert "Recorded 1" in response.json()["text"]

    view = await open_ready_form(slack)

    for b in view["blocks"]:
        element = b.get("element") or {}
        if "initial_value" in element:
            assert len(element["initial_value"]) <= element["max_length"], b["block_id"]


@pytest.mark.parametrize("action", [ids.OPEN_READY_MODAL, ids.OPEN_DONE_MODAL])
async def test_form_for_an_archived_story_is_refused(slack, db, action):
    await new_story(slack)
    await slack.command("story archive S-1")
    slack.fake.reset()

    response = await slack.click(action, "S-1")

    assert response.status_code == 200
    assert slack.fake.of("views.open") == []
    [refusal] = replies(slack)
    assert "S-1 is already archived; its checklists are closed." in refusal["text"]


# ── the story form: a lead's reason to commit a story that is not Ready ──────────────────────


def reason(value: str | None) -> dict[str, dict[str, Any]]:
    return {ids.FIELD_REASON: text(value)}


async def test_the_reason_field_is_offered_to_leads_when_the_team_has_open_sprints(slack, db):
    await slack.command("story add")
    assert "reason" not in [b["block_id"] for b in slack.last_view()["blocks"]]  # no sprint to commit to
    await slack.command(SPRINT_CMD)
    await slack.command("story add")
    view = slack.last_view()
    assert [b["block_id"] for b in view["blocks"]] == ["title", "type", "owner", "points", "sprint", "reason"]
    field = block(view, "reason")
    assert field["label"]["text"] == "Reason to commit it although not Ready"
    assert field["optional"] is True
    assert field["element"]["max_length"] == 300
    # not for Bob, who is not a lead: the gate would not let him commit anyway
    await slack.command("story add", user=BOB)
    assert "reason" not in [b["block_id"] for b in slack.last_view()["blocks"]]


async def test_in_a_team_without_leads_everyone_gets_the_reason_field(slack, db):
    await slack.command('sprint start "P1" --from 2026-12-07 --to 2026-12-18', user=FRANK, channel=PLATFORM)
    await slack.command("story add", user=FRANK, channel=PLATFORM)
    assert "reason" in [b["block_id"] for b in slack.last_view()["blocks"]]


async def test_a_lead_commits_a_new_not_ready_story_with_a_reason_from_the_form(slack, db):
    await slack.command(SPRINT_CMD)
    [sprint] = await rows(db, Sprint)
    await slack.command("story add")
    view = slack.last_view()

    response = await slack.submit(
        view, story_values(title="Hotfix ranker", sprint=str(sprint.id)) | reason("  agreed with the PO ")
    )

    assert response.status_code == 200 and response.text == ""
    assert (await stored_story(db, 1)).sprint_id == sprint.id
    [event] = await rows(db, AuditEvent)
    assert (event.actor, event.action, event.subject) == (ALICE, "sprint.force_commit", "S-1")
    assert json.loads(event.payload)["reason"] == "agreed with the PO"
    [confirmation] = replies(slack)
    assert confirmation["text"] == (
        ":white_check_mark: Added *S-1* Hotfix ranker to *Sprint 1* (current, day 1 of 10).\n"
        ":red_circle: not Ready (0/6)"
    )


async def test_a_blank_reason_is_no_reason_and_a_reason_without_a_sprint_is_ignored(slack, db):
    await slack.command(SPRINT_CMD)
    [sprint] = await rows(db, Sprint)
    await slack.command("story add")
    view = slack.last_view()

    await slack.submit(view, story_values(title="One", sprint=str(sprint.id)) | reason("   "))
    await slack.submit(view, story_values(title="Two") | reason("agreed"))

    assert [(s.key, s.sprint_id) for s in await rows(db, Story)] == [("S-1", None), ("S-2", None)]
    assert await rows(db, AuditEvent) == []
    first, second = replies(slack)
    assert ":no_entry: It is not in the sprint you asked for: Not Ready: S-1 lacks" in first["text"]
    assert second["text"].startswith(":white_check_mark: Added *S-2* Two to the backlog.\n")


async def test_a_lead_moves_a_not_ready_story_into_a_sprint_with_a_reason_from_the_edit_form(slack, db):
    await slack.command(SPRINT_CMD)
    [sprint] = await rows(db, Sprint)
    await new_story(slack, "Train ranker --points 5")
    await slack.command("story edit S-1")
    view = slack.last_view()
    assert "reason" in [b["block_id"] for b in view["blocks"]]

    response = await slack.submit(
        view, story_values(title="Train ranker", points="5", sprint=str(sprint.id)) | reason("hotfix")
    )

    assert response.status_code == 200 and response.text == ""
    assert (await stored_story(db, 1)).sprint_id == sprint.id
    [event] = await rows(db, AuditEvent)
    assert (event.action, json.loads(event.payload)["reason"]) == ("sprint.force_commit", "hotfix")


async def test_taking_a_story_out_of_its_sprint_in_the_form_is_a_lead_decision(slack, db):
    await slack.command(SPRINT_CMD)
    await new_story(slack, 'Train ranker --sprint current --force reason="planned"')
    before = await stored_story(db, 1)
    await slack.command("story edit S-1", user=BOB)

    refused = await slack.submit(slack.last_view(), story_values(title="Renamed", sprint="backlog"), user=BOB)

    body = refused.json()
    assert body["response_action"] == "errors"
    assert body["errors"] == {"sprint": "Only the leads of team recsys can drop stories from a sprint."}
    assert await stored_story(db, 1) == before

    await slack.command("story edit S-1")
    response = await slack.submit(slack.last_view(), story_values(title="Renamed", sprint="backlog"))
    assert response.status_code == 200 and response.text == ""
    stored = await stored_story(db, 1)
    assert (stored.title, stored.sprint_id) == ("Renamed", None)
    [drop] = await rows(db, AuditEvent, AuditEvent.action == "sprint.drop")
    assert (drop.actor, drop.subject, json.loads(drop.payload)["sprint"]) == (ALICE, "S-1", "Sprint 1")
