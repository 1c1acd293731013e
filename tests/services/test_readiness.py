"""Definition of Ready / Done: checklists from config, answers, waivers (audited) and refusals."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from bot.services import audit, readiness, stories
from bot.services.errors import Conflict, Invalid
from bot.store.models import CriterionValue
from tests.conftest import ALICE, BOB
from tests.factories import answer_all, audit_rows, get, make_story, refused, snapshot, tx

ML_READY = [
    "data_available",
    "feature_stability",
    "reproducible_env",
    "eval_criteria",
    "data_contract",
    "validation_dataset",
]
ENG_READY = ["acceptance_criteria", "dependencies"]


async def _record(s, config, key="S-1", kind="ready", actor=ALICE, **kw):
    return await readiness.record_answers(
        s, story=await get(s, key), kind=kind, config=config, actor=actor, **kw
    )


async def _checklist(db, config, key="S-1", kind="ready"):
    async with tx(db) as s:
        return await readiness.checklist(s, await get(s, key), kind, config)


async def _criterion_rows(db):
    async with tx(db) as s:
        rows = await s.exec(select(CriterionValue).order_by(CriterionValue.kind, CriterionValue.key))
        return list(rows.all())


# --- checklists from config ----------------------------------------------------------------------


async def test_ml_checklist_has_the_six_configured_criteria_in_order(db, config):
    async with tx(db) as s:
        await make_story(s, config, story_type="ml")
    checklist = await _checklist(db, config)
    assert checklist.story_key == "S-1"
    assert checklist.kind == "ready"
    assert [i.criterion.key for i in checklist.items] == ML_READY
    assert [c.label for c in checklist.missing] == [
        "Data availability",
        "Feature stability",
        "Reproducible environment",
        "Measurable evaluation criteria",
        "Data contract",
        "Validation data",
    ]
    assert checklist.answered == 0
    assert not checklist.complete


async def test_eng_checklist_has_two_criteria(db, config):
    async with tx(db) as s:
        await make_story(s, config, story_type="eng")
    checklist = await _checklist(db, config)
    assert [i.criterion.key for i in checklist.items] == ENG_READY
    assert not checklist.complete


async def test_done_checklists_come_from_the_done_section(db, config):
    async with tx(db) as s:
        await make_story(s, config, story_type="ml")
        await make_story(s, config, story_type="eng")
    ml = await _checklist(db, config, "S-1", "done")
    eng = await _checklist(db, config, "S-2", "done")
    assert [i.criterion.key for i in ml.items] == [
        "data_lineage",
        "model_evaluation",
        "rollback_plan",
        "monitoring",
    ]
    assert [i.criterion.key for i in eng.items] == ["code_review", "tests"]


async def test_checklists_for_many_stories_at_once(db, config):
    async with tx(db) as s:
        a = await make_story(s, config, story_type="eng")
        b = await make_story(s, config, story_type="ml")
        await answer_all(s, config, a, "ready")
        await _record(s, config, "S-2", answers={"data_available": "events v4"})
    async with tx(db) as s:
        a, b = await get(s, "S-1"), await get(s, "S-2")
        result = await readiness.checklists(s, [a, b], "ready", config)
        assert await readiness.checklists(s, [], "ready", config) == {}
    assert result[a.id].complete
    assert result[b.id].answered == 1
    assert len(result[b.id].missing) == 5


# --- answers -------------------------------------------------------------------------------------


async def test_answers_are_stored_trimmed_with_who_set_them(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    async with tx(db) as s:
        result = await _record(
            s,
            config,
            actor=BOB,
            answers={"data_available": "  events v4 in s3://bucket  ", "data_contract": "agreed"},
        )
    assert result.answered == 2
    checklist = await _checklist(db, config)
    by_key = {i.criterion.key: i for i in checklist.items}
    assert by_key["data_available"].value == "events v4 in s3://bucket"
    assert by_key["data_available"].set_by == BOB
    assert by_key["data_available"].set_at is not None
    assert by_key["data_contract"].value == "agreed"
    assert by_key["data_contract"].satisfied and not by_key["data_contract"].waived
    assert not by_key["feature_stability"].satisfied
    assert checklist.answered == 2


async def test_answering_every_criterion_makes_the_story_ready(db, config):
    async with tx(db) as s:
        story = await make_story(s, config)
        result = await answer_all(s, config, story, "ready")
    assert result.complete
    assert result.missing == []
    assert (await _checklist(db, config)).complete
    # Values are not decisions: nothing is audited.
    assert await audit_rows(db) == []


async def test_a_new_answer_replaces_the_old_one(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        await _record(s, config, answers={"data_available": "v1"})
    async with tx(db) as s:
        await _record(s, config, actor=BOB, answers={"data_available": "v2"})
    rows = await _criterion_rows(db)
    assert [(r.key, r.value, r.set_by) for r in rows] == [("data_available", "v2", BOB)]


async def test_recording_answers_touches_the_story(db, config):
    async with tx(db) as s:
        story = await make_story(s, config)
        created = story.updated_at
    async with tx(db) as s:
        await _record(s, config, answers={"data_available": "v1"})
    async with tx(db) as s:
        assert (await get(s, "S-1")).updated_at > created


async def test_ready_and_done_answers_are_kept_apart(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, story_type="eng")
        await answer_all(s, config, story, "ready")
    assert (await _checklist(db, config, kind="ready")).complete
    assert (await _checklist(db, config, kind="done")).answered == 0


# --- waivers -------------------------------------------------------------------------------------


async def test_a_waiver_satisfies_the_criterion_and_is_audited(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    async with tx(db) as s:
        result = await _record(
            s, config, actor=BOB, waivers={"data_contract": "  internal data, no producer  "}
        )
    item = next(i for i in result.items if i.criterion.key == "data_contract")
    assert item.waived and item.satisfied
    assert item.value is None
    assert item.na_reason == "internal data, no producer"
    rows = await audit_rows(db)
    assert len(rows) == 1
    (row,) = rows
    assert (row.action, row.actor, row.subject) == ("ready.waive", BOB, "S-1")
    assert json.loads(row.payload) == {"criterion": "data_contract", "reason": "internal data, no producer"}


async def test_every_waiver_writes_its_own_audit_row(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    async with tx(db) as s:
        await _record(
            s,
            config,
            waivers={"data_contract": "no producer", "validation_dataset": "unsupervised"},
            answers={"data_available": "v4"},
        )
    async with tx(db) as s:
        await _record(s, config, waivers={"data_contract": "still no producer"})
    rows = await audit_rows(db)
    assert [r.action for r in rows] == ["ready.waive"] * 3
    assert sorted(json.loads(r.payload)["criterion"] for r in rows[:2]) == [
        "data_contract",
        "validation_dataset",
    ]
    assert json.loads(rows[2].payload) == {"criterion": "data_contract", "reason": "still no producer"}
    async with tx(db) as s:
        assert (await audit.verify(s)).ok


async def test_done_waivers_are_audited_as_done_waive(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        await _record(s, config, kind="done", waivers={"monitoring": "batch only"})
    assert [r.action for r in await audit_rows(db)] == ["done.waive"]


async def test_a_value_replaces_a_waiver_and_a_waiver_replaces_a_value(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        await _record(s, config, waivers={"data_contract": "none"}, answers={"data_available": "v1"})
    async with tx(db) as s:
        await _record(s, config, answers={"data_contract": "signed"}, waivers={"data_available": "synthetic"})
    rows = {r.key: r for r in await _criterion_rows(db)}
    assert (rows["data_contract"].value, rows["data_contract"].na_reason) == ("signed", None)
    assert (rows["data_available"].value, rows["data_available"].na_reason) == (None, "synthetic")


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
async def test_a_waiver_needs_a_reason(db, config, reason):
    async with tx(db) as s:
        await make_story(s, config)
    before = await snapshot(db)
    error = await refused(db, Invalid, lambda s: _record(s, config, waivers={"data_contract": reason}))
    assert "data_contract" in error.message
    assert "reason" in error.message
    assert error.field == "data_contract"
    assert await snapshot(db) == before


# --- clearing ------------------------------------------------------------------------------------


async def test_clearing_removes_a_value_and_a_waiver(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        await _record(s, config, answers={"data_available": "v1"}, waivers={"data_contract": "none"})
    async with tx(db) as s:
        result = await _record(s, config, clear=["data_available", "data_contract"])
    assert result.answered == 0
    assert await _criterion_rows(db) == []
    # Clearing is not a waiver: only the original waiver was audited.
    assert [r.action for r in await audit_rows(db)] == ["ready.waive"]


async def test_clearing_an_unanswered_criterion_is_harmless(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        await _record(s, config, answers={"data_available": "v1"})
    async with tx(db) as s:
        result = await _record(s, config, clear=["feature_stability"])
    assert result.answered == 1


# --- refusals ------------------------------------------------------------------------------------


async def test_unknown_key_is_refused_naming_the_valid_keys(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    before = await snapshot(db)
    error = await refused(db, Invalid, lambda s: _record(s, config, answers={"data_avail": "x"}))
    assert "'data_avail'" in error.message
    assert "Definition of Ready" in error.message
    assert "ml stories" in error.message
    for key in ML_READY:
        assert key in error.message
    assert error.field == "data_avail"
    assert await snapshot(db) == before


async def test_a_key_of_the_other_type_is_refused(db, config):
    async with tx(db) as s:
        await make_story(s, config, story_type="eng")
    error = await refused(db, Invalid, lambda s: _record(s, config, answers={"data_available": "x"}))
    assert "eng stories" in error.message
    assert "acceptance_criteria, dependencies" in error.message


async def test_a_ready_key_is_not_a_done_key(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    error = await refused(
        db, Invalid, lambda s: _record(s, config, kind="done", waivers={"data_contract": "x"})
    )
    assert "Definition of Done" in error.message
    assert "data_lineage" in error.message


async def test_unknown_key_in_clear_or_waivers_is_refused(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    before = await snapshot(db)
    await refused(db, Invalid, lambda s: _record(s, config, clear=["nope"]))
    await refused(db, Invalid, lambda s: _record(s, config, waivers={"nope": "reason"}))
    assert await snapshot(db) == before


async def test_value_and_na_for_the_same_key_is_refused(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    before = await snapshot(db)
    error = await refused(
        db,
        Invalid,
        lambda s: _record(s, config, answers={"data_contract": "signed"}, waivers={"data_contract": "none"}),
    )
    assert "data_contract" in error.message
    assert "choose one" in error.message
    assert error.field == "data_contract"
    assert await snapshot(db) == before


async def test_setting_and_clearing_the_same_key_is_refused(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    before = await snapshot(db)
    error = await refused(
        db, Invalid, lambda s: _record(s, config, answers={"data_contract": "x"}, clear=["data_contract"])
    )
    assert error.field == "data_contract"
    assert await snapshot(db) == before


@pytest.mark.parametrize("value", ["", "   "])
async def test_an_empty_value_is_refused(db, config, value):
    async with tx(db) as s:
        await make_story(s, config)
    error = await refused(db, Invalid, lambda s: _record(s, config, answers={"data_available": value}))
    assert "data_available needs a value" in error.message


async def test_a_value_of_2000_characters_is_accepted(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        await _record(s, config, answers={"data_available": "x" * 2000})
    (row,) = await _criterion_rows(db)
    assert row.value == "x" * 2000


async def test_an_over_long_value_is_refused_with_its_length(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    before = await snapshot(db)
    error = await refused(db, Invalid, lambda s: _record(s, config, answers={"data_available": "x" * 2001}))
    assert "2001" in error.message
    assert "2000" in error.message
    assert error.field == "data_available"
    assert await snapshot(db) == before


async def test_an_over_long_reason_is_refused(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    before = await snapshot(db)
    error = await refused(db, Invalid, lambda s: _record(s, config, waivers={"data_contract": "r" * 2001}))
    assert "data_contract" in error.message
    assert await snapshot(db) == before


async def test_nothing_to_record_is_refused(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    error = await refused(db, Invalid, lambda s: _record(s, config))
    assert "at least one criterion" in error.message


async def test_an_unknown_checklist_kind_is_refused(db, config):
    async with tx(db) as s:
        await make_story(s, config)
    await refused(db, Invalid, lambda s: _record(s, config, kind="maybe", answers={"data_available": "x"}))


async def test_one_bad_item_refuses_the_whole_call(db, config):
    async with tx(db) as s:
        await make_story(s, config)
        await _record(s, config, answers={"data_available": "v1"})
    before = await snapshot(db)
    await refused(
        db,
        Invalid,
        lambda s: _record(
            s,
            config,
            answers={"data_available": "v2", "feature_stability": "frozen"},
            waivers={"data_contract": "none", "validation_dataset": " "},
            clear=["reproducible_env"],
        ),
    )
    assert await snapshot(db) == before
    assert await audit_rows(db) == []


async def test_a_done_story_is_refused_and_unchanged(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, story_type="eng")
        await answer_all(s, config, story, "done")
        await stories.complete_story(s, config=config, story=story, actor=ALICE)
    before = await snapshot(db)
    for kind in ("ready", "done"):
        error = await refused(
            db, Conflict, lambda s, kind=kind: _record(s, config, kind=kind, waivers={"tests": "x"})
        )
        assert error.message == "S-1 is already done; its checklists are closed."
    assert await snapshot(db) == before
