"""`ready S-n` and `dod S-n`: show a checklist, fill criteria inline, waive them with a reason (audited)."""

from __future__ import annotations

import json
from functools import partial

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.services import audit
from bot.store.db import session_factory
from bot.store.models import AuditEvent, CriterionValue, Story
from tests.conftest import ALICE, BOB
from tests.factories import rows
from tests.slack import helpers
from tests.slack.helpers import ML_READY, buttons, missing_once, shown
from tests.slack_driver import SlackDriver

# every reply to these commands is for the person alone
ok = partial(helpers.ok, ephemeral=True)


async def answers(db: AsyncEngine, kind: str = "ready") -> dict[str, tuple[str | None, str | None, str]]:
    """criterion key → (value, n/a reason, set by)."""
    return {
        r.key: (r.value, r.na_reason, r.set_by)
        for r in await rows(db, CriterionValue, CriterionValue.kind == kind)
    }


@pytest.fixture
async def ml_story(slack: SlackDriver) -> str:
    await ok(slack, "story add Train ranker --points 5 --owner <@U02BOB|bob>")
    return "S-1"


async def test_ready_shows_the_checklist_with_a_fill_button(slack, db, ml_story):
    body = await ok(slack, "ready S-1")
    assert body["text"] == "Definition of Ready for S-1"
    text = shown(body)
    assert "*Definition of Ready · Train ranker*" in text
    assert "*S-1* lacks 6 of 6 criteria (marked :x: below)." in text
    # each missing criterion is named once, with what to write
    missing_once(text, *ML_READY)
    assert ":x: Reproducible environment — _Pinned environment or image the work runs in_" in text
    [fill] = buttons(body)
    assert (fill["text"]["text"], fill["action_id"], fill["value"]) == (
        "Fill Definition of Ready",
        "open_ready_modal",
        "S-1",
    )
    assert 'Or type `ready S-1 key=value`, or `ready S-1 key=n/a reason="why"` to waive one.' in text
    assert await answers(db) == {}


async def test_ready_inline_fill_stores_the_answers(slack, db, ml_story):
    body = await ok(
        slack,
        'ready S-1 data_available="s3://recsys/clicks v3" '
        "eval_criteria=<https://wandb.ai/recsys/ndcg|wandb.ai/recsys/ndcg>",
    )
    assert body["text"] == "Recorded 2 answers for S-1"
    text = shown(body)
    assert ":pencil: Recorded 2 answers for *S-1*." in text
    assert ":white_check_mark: Data availability: s3://recsys/clicks v3" in text
    assert ":white_check_mark: Measurable evaluation criteria: https://wandb.ai/recsys/ndcg" in text
    assert "*S-1* lacks 4 of 6 criteria (marked :x: below)." in text
    missing_once(text, "Feature stability", "Reproducible environment", "Data contract", "Validation data")
    assert await answers(db) == {
        "data_available": ("s3://recsys/clicks v3", None, ALICE),
        "eval_criteria": ("https://wandb.ai/recsys/ndcg", None, ALICE),
    }
    # answering is not a decision: nothing in the audit log
    assert await rows(db, AuditEvent) == []


async def test_ready_answer_is_replaced_not_duplicated(slack, db, ml_story):
    await ok(slack, "ready S-1 data_available=v3")
    body = await ok(slack, "ready S-1 data_available=v4", user=BOB)
    assert ":pencil: Recorded 1 answer for *S-1*." in shown(body)
    assert await answers(db) == {"data_available": ("v4", None, BOB)}


async def test_ready_answers_with_special_characters_are_stored_plain_and_shown_escaped(slack, db, ml_story):
    # typed: eval_criteria="ndcg > 0.41 & recall > 0.2" feature_stability=<!here>
    body = await ok(
        slack,
        'ready S-1 eval_criteria="ndcg &gt; 0.41 &amp; recall &gt; 0.2" feature_stability=&lt;!here&gt;',
    )
    assert (await answers(db))["eval_criteria"][0] == "ndcg > 0.41 & recall > 0.2"
    assert (await answers(db))["feature_stability"][0] == "<!here>"
    text = shown(body)
    assert "Measurable evaluation criteria: ndcg &gt; 0.41 &amp; recall &gt; 0.2" in text
    assert "Feature stability: &lt;!here&gt;" in text
    assert "<!here>" not in json.dumps(body)


async def test_ready_waiver_is_stored_and_audited_with_its_reason(slack, db, ml_story):
    body = await ok(slack, 'ready S-1 data_contract=n/a reason="internal data, no producer"')
    text = shown(body)
    assert ":pencil: Recorded 1 answer for *S-1*." in text
    assert ":heavy_minus_sign: Data contract: n/a — internal data, no producer (<@U01ALICE>)" in text
    assert await answers(db) == {"data_contract": (None, "internal data, no producer", ALICE)}

    [event] = await rows(db, AuditEvent)
    assert (event.actor, event.action, event.subject) == (ALICE, "ready.waive", "S-1")
    assert json.loads(event.payload) == {"criterion": "data_contract", "reason": "internal data, no producer"}
    async with session_factory(db)() as session:
        assert (await audit.verify(session)).ok


async def test_ready_one_reason_waives_several_criteria_each_audited(slack, db, ml_story):
    body = await ok(
        slack,
        'ready S-1 data_available=clicks@v3 data_contract=N/A validation_dataset=n/a reason="offline only"',
    )
    assert ":pencil: Recorded 3 answers for *S-1*." in shown(body)
    assert await answers(db) == {
        "data_available": ("clicks@v3", None, ALICE),
        "data_contract": (None, "offline only", ALICE),
        "validation_dataset": (None, "offline only", ALICE),
    }
    events = await rows(db, AuditEvent)
    assert sorted(json.loads(e.payload)["criterion"] for e in events) == [
        "data_contract",
        "validation_dataset",
    ]
    assert {e.action for e in events} == {"ready.waive"}


async def test_ready_answer_can_become_a_waiver_and_back(slack, db, ml_story):
    await ok(slack, "ready S-1 data_contract=agreed")
    await ok(slack, 'ready S-1 data_contract=n/a reason="no producer"')
    assert await answers(db) == {"data_contract": (None, "no producer", ALICE)}
    await ok(slack, "ready S-1 data_contract=signed")
    assert await answers(db) == {"data_contract": ("signed", None, ALICE)}


async def test_ready_complete_checklist_makes_the_story_ready(slack, db, ml_story):
    await ok(slack, "ready S-1 data_available=v3 feature_stability=frozen reproducible_env=img:1.2")
    body = await ok(
        slack, 'ready S-1 eval_criteria=ndcg validation_dataset=holdout data_contract=n/a reason="internal"'
    )
    assert "*S-1* meets the Definition of Ready." in shown(body)
    card = shown(await ok(slack, "story show S-1"))
    assert "*Definition of Ready* — :large_green_circle: Ready" in card
    listing = shown(await ok(slack, "story list"))
    assert ":large_green_circle: Ready" in listing


async def test_ready_for_an_eng_story_uses_the_eng_criteria(slack, db):
    await ok(slack, "story add Fix login --type eng")
    body = await ok(slack, 'ready S-1 acceptance_criteria="p95 &lt; 200ms" dependencies=none')
    assert "*S-1* meets the Definition of Ready." in shown(body)
    assert await answers(db) == {
        "acceptance_criteria": ("p95 < 200ms", None, ALICE),
        "dependencies": ("none", None, ALICE),
    }


async def test_dod_shows_and_fills_the_definition_of_done(slack, db, ml_story):
    body = await ok(slack, "dod S-1")
    assert body["text"] == "Definition of Done for S-1"
    assert "*S-1* lacks 4 of 4 criteria (marked :x: below)." in shown(body)
    missing_once(shown(body), "Data lineage", "Model evaluation", "Rollback plan", "Monitoring")
    assert "`dod S-1 key=value`" in shown(body)
    [fill] = buttons(body)
    assert (fill["text"]["text"], fill["action_id"], fill["value"]) == (
        "Fill Definition of Done",
        "open_done_modal",
        "S-1",
    )

    body = await ok(slack, 'dod S-1 data_lineage=clicks@v3 monitoring=n/a reason="batch model, no serving"')
    text = shown(body)
    assert ":pencil: Recorded 2 answers for *S-1*." in text
    assert ":white_check_mark: Data lineage: clicks@v3" in text
    assert ":heavy_minus_sign: Monitoring: n/a — batch model, no serving (<@U01ALICE>)" in text
    assert await answers(db, "done") == {
        "data_lineage": ("clicks@v3", None, ALICE),
        "monitoring": (None, "batch model, no serving", ALICE),
    }
    assert await answers(db, "ready") == {}
    [event] = await rows(db, AuditEvent)
    assert (event.action, event.subject) == ("done.waive", "S-1")


async def test_checklist_of_a_done_story_has_no_fill_button(slack, db):
    await ok(slack, "story add Fix login --type eng")
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "story done S-1")
    [stored] = await rows(db, Story)
    assert stored.status == "done"
    body = await ok(slack, "dod S-1")
    assert "*S-1* meets the Definition of Done." in shown(body)
    assert buttons(body) == []


@pytest.mark.parametrize("command", ["ready S-1", "ready S-1 data_available=x", "dod S-1"])
async def test_checklist_heading_shows_the_title_escaped_once(slack, db, command):
    await ok(slack, "story add a &lt; b &amp; c")
    text = shown(await ok(slack, command))
    assert "· a &lt; b &amp; c*" in text
    assert "&amp;lt;" not in text


async def test_inline_na_colon_reason_is_a_waiver_as_in_the_form(slack, db, ml_story):
    await ok(slack, 'ready S-1 data_contract="n/a: internal data"')
    assert await answers(db) == {"data_contract": (None, "internal data", ALICE)}
    [event] = await rows(db, AuditEvent)
    assert event.action == "ready.waive"
