"""Async standups end to end: the scheduled prompt with its button, the modal, the answer posted in
the standup's thread (and edited in place), the summary when the standup closes, late answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.jobs.ceremonies import CeremonyJobs
from bot.jobs.outbox_worker import OutboxWorker
from bot.notify import Notifier
from bot.services import standups
from bot.slack import ids
from bot.store.models import CeremonyRun, OutboxMessage, StandupAnswer
from tests.clock import FakeClock
from tests.conftest import ALICE, BOB, DAVE, RECSYS, make_config
from tests.factories import outbox_rows, snapshot, tx
from tests.slack.helpers import deliver, posted, updates
from tests.slack_driver import SlackDriver

STANDUP = {"standup": {"cron": "30 9 * * mon-fri", "close_after_minutes": 120}}
STANDUP_AT = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)  # Mon 7 Dec, 09:30 in Berlin
SUMMARY_AT = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)  # 11:30 in Berlin: the standup closes

MISSING_HANDLER = (
    "bug: no listener handles the standup modal's submission (callback_id 'standup_modal'): "
    "bot/slack/listeners/views.py registers only story_modal and criteria_modal, and "
    "no standup answer reaches the thread"
)


# ── fixtures and helpers ─────────────────────────────────────────────────────────────────────


@pytest.fixture
async def standup(make_app) -> AsyncIterator[SlackDriver]:
    """The whole app with a daily standup for recsys, driven as Alice in the recsys channel."""
    async with make_app(make_config(ceremonies=STANDUP)) as driver:
        yield driver


def jobs_of(slack: SlackDriver) -> CeremonyJobs:
    return slack.app.state.runner.jobs


def notifier_of(slack: SlackDriver) -> Notifier:
    return slack.app.state.deps.notifier


def run_id_in(message: dict[str, Any]) -> int:
    """The run id the message's 'Post my update' button carries."""
    found = [
        e["value"]
        for b in message.get("blocks", [])
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("action_id") == ids.OPEN_STANDUP_MODAL
    ]
    assert len(found) == 1, message
    return int(found[0])


async def run_standup(slack: SlackDriver, clock: FakeClock, worker: OutboxWorker) -> tuple[int, str]:
    """Monday's standup runs and is delivered: (run id from its button, the message's ts)."""
    clock.set(STANDUP_AT)
    made = await jobs_of(slack).run_due(STANDUP_AT)
    assert [(r.ceremony, r.status) for r in made] == [("standup", "done")]
    await deliver(worker, clock)
    [prompt] = posted(slack, RECSYS)
    run_id = run_id_in(prompt)
    assert run_id == made[0].id
    async with jobs_of(slack).notifier.transaction() as s:
        run = await s.get(CeremonyRun, run_id)
        message = await s.get(OutboxMessage, run.message_id)
    assert message.state == "sent" and message.slack_ts
    return run_id, message.slack_ts


async def close_standup(slack: SlackDriver, clock: FakeClock, worker: OutboxWorker) -> dict[str, Any]:
    """The standup closes at 11:30 Berlin: its summary is delivered; returns the summary as posted."""
    clock.set(SUMMARY_AT)
    made = await jobs_of(slack).run_due(SUMMARY_AT)
    assert [(r.ceremony, r.status) for r in made] == [("standup_summary", "done")]
    before = len(posted(slack))
    await deliver(worker, clock)
    new = posted(slack)[before:]
    summaries = [c for c in new if c["text"].startswith(":memo: *Standup summary*")]
    assert len(summaries) == 1, [c["text"] for c in new]
    return summaries[0]


def values(yesterday: str = "", today: str = "", blockers: str = "", links: str = "") -> dict[str, Any]:
    return {
        ids.FIELD_YESTERDAY: {"type": "plain_text_input", "value": yesterday or None},
        ids.FIELD_TODAY: {"type": "plain_text_input", "value": today or None},
        ids.FIELD_BLOCKERS: {"type": "plain_text_input", "value": blockers or None},
        ids.FIELD_LINKS: {"type": "plain_text_input", "value": links or None},
    }


async def open_modal(slack: SlackDriver, run_id: int, user: str = ALICE) -> dict[str, Any]:
    before = len(slack.fake.of("views.open"))
    response = await slack.click(ids.OPEN_STANDUP_MODAL, str(run_id), user=user)
    assert response.status_code == 200, response.text
    assert len(slack.fake.of("views.open")) == before + 1, "the button opened no modal"
    return slack.last_view()


async def answer_directly(
    slack: SlackDriver, run_id: int, user: str, *, today: str, yesterday: str = "", blockers: str = ""
) -> None:
    """Record an answer the way the modal's submission is meant to: the service, then the thread reply."""
    async with notifier_of(slack).transaction() as s:
        run = await standups.get_run(s, run_id)
        await standups.answer(
            s,
            config=slack.app.state.deps.config,
            run=run,
            user_id=user,
            yesterday=yesterday,
            today=today,
            blockers=blockers,
        )


async def answers(db: AsyncEngine) -> list[StandupAnswer]:
    async with tx(db) as s:
        return list((await s.exec(select(StandupAnswer).order_by(col(StandupAnswer.id)))).all())


def inputs(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


# ── the prompt and its button ────────────────────────────────────────────────────────────────


async def test_standup_prompt_is_posted_with_a_button_for_the_run(standup, clock, make_worker):
    run_id, ts = await run_standup(standup, clock, make_worker())
    [prompt] = posted(standup)
    assert prompt["channel"] == RECSYS
    assert (
        prompt["text"]
        == ":sunrise: *Standup time, team recsys!* Share yesterday, today and anything blocking you."
    )
    shown = prompt["blocks"][0]["text"]["text"]
    assert "The summary posts at 11:30" in shown
    [button] = prompt["blocks"][1]["elements"]
    assert button["text"]["text"] == "Post my update"
    assert button["value"] == str(run_id)
    assert ts


async def test_standup_runs_once_however_often_run_due_is_called(standup, clock, make_worker):
    await run_standup(standup, clock, make_worker())
    assert await jobs_of(standup).run_due(STANDUP_AT) == []
    clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    assert await jobs_of(standup).run_due() == []
    await deliver(make_worker(), clock)
    assert len(posted(standup)) == 1


async def test_the_button_opens_an_empty_standup_modal(standup, clock, make_worker):
    run_id, _ = await run_standup(standup, clock, make_worker())
    view = await open_modal(standup, run_id)
    assert view["callback_id"] == ids.STANDUP_MODAL
    assert json.loads(view["private_metadata"]) == {"run": run_id, "team": "recsys"}
    fields = inputs(view)
    assert list(fields) == [ids.FIELD_YESTERDAY, ids.FIELD_TODAY, ids.FIELD_BLOCKERS, ids.FIELD_LINKS]
    assert fields[ids.FIELD_TODAY]["optional"] is False
    assert all(fields[f]["optional"] for f in (ids.FIELD_YESTERDAY, ids.FIELD_BLOCKERS, ids.FIELD_LINKS))
    assert not any("initial_value" in f["element"] for f in fields.values())
    assert standup.fake.of("views.open")[-1].args["trigger_id"]


async def test_the_modal_prefills_a_previous_answer(standup, clock, make_worker):
    run_id, _ = await run_standup(standup, clock, make_worker())
    await answer_directly(standup, run_id, ALICE, yesterday="Wrote the loader", today="Tune the ranker")
    fields = inputs(await open_modal(standup, run_id))
    assert fields[ids.FIELD_YESTERDAY]["element"]["initial_value"] == "Wrote the loader"
    assert fields[ids.FIELD_TODAY]["element"]["initial_value"] == "Tune the ranker"
    assert "initial_value" not in fields[ids.FIELD_BLOCKERS]["element"]
    # Bob has answered nothing: his modal is empty
    fields = inputs(await open_modal(standup, run_id, user=BOB))
    assert not any("initial_value" in f["element"] for f in fields.values())


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("999999", "That standup no longer exists."),
        ("abc", "That standup button is out of date."),
        ("", "out of date"),
    ],
)
async def test_a_bogus_run_id_gets_an_ephemeral_error(standup, db, clock, make_worker, value, says):
    await run_standup(standup, clock, make_worker())
    response = await standup.click(ids.OPEN_STANDUP_MODAL, value)
    assert response.status_code == 200
    assert standup.fake.of("views.open") == []
    [reply] = standup.fake.of("response_url")
    assert reply.args["text"].startswith(":warning:")
    assert says in reply.args["text"]
    assert reply.args.get("response_type", "ephemeral") == "ephemeral"
    assert await answers(db) == []


async def test_a_run_id_that_is_not_a_standup_gets_an_error(standup, clock, make_worker):
    await run_standup(standup, clock, make_worker())
    clock.set(SUMMARY_AT)
    [summary] = await jobs_of(standup).run_due(SUMMARY_AT)
    await standup.click(ids.OPEN_STANDUP_MODAL, str(summary.id))
    assert standup.fake.of("views.open") == []
    [reply] = standup.fake.of("response_url")
    assert "That standup no longer exists." in reply.args["text"]


# ── answering through the modal ──────────────────────────────────────────────────────────────


async def test_submitting_stores_the_answer_and_posts_it_in_the_thread(standup, db, clock, make_worker):
    worker = make_worker()
    run_id, standup_ts = await run_standup(standup, clock, worker)
    view = await open_modal(standup, run_id)
    clock.set(datetime(2026, 12, 7, 8, 45, tzinfo=UTC))
    response = await standup.submit(
        view, values(yesterday="Wrote the loader", today="Tune the ranker", blockers="GPU quota", links="S-1")
    )
    assert response.status_code == 200, response.text
    assert not response.text or "errors" not in response.json()
    [row] = await answers(db)
    assert (row.run_id, row.user_id) == (run_id, ALICE)
    assert (row.yesterday, row.today, row.blockers, row.links) == (
        "Wrote the loader",
        "Tune the ranker",
        "GPU quota",
        "S-1",
    )

    before = len(posted(standup))
    await deliver(worker, clock)
    [reply] = posted(standup)[before:]
    assert reply["channel"] == RECSYS
    assert reply["thread_ts"] == standup_ts
    text = reply["text"]
    assert text.startswith(f"*<@{ALICE}>*\n")
    assert "(late)" not in text
    assert "*Yesterday:* Wrote the loader" in text
    assert "*Today:* Tune the ranker" in text
    assert ":construction: *Blockers:* GPU quota" in text
    assert "*Linked:* S-1" in text


async def test_submitting_again_edits_the_reply_in_place(standup, db, clock, make_worker):
    worker = make_worker()
    run_id, standup_ts = await run_standup(standup, clock, worker)
    await standup.submit(await open_modal(standup, run_id), values(today="Tune the ranker"))
    await deliver(worker, clock)
    assert len([c for c in posted(standup) if c.get("thread_ts") == standup_ts]) == 1
    reply_row = next(r for r in await outbox_rows(db) if r.thread_of is not None)

    view = await open_modal(standup, run_id)
    assert inputs(view)[ids.FIELD_TODAY]["element"]["initial_value"] == "Tune the ranker"
    await standup.submit(view, values(today="Ship the ranker", blockers="Waiting for review"))
    [row] = await answers(db)
    assert (row.today, row.blockers) == ("Ship the ranker", "Waiting for review")

    await deliver(worker, clock)
    [update] = updates(standup)
    assert update["channel"] == RECSYS
    assert update["ts"] == reply_row.slack_ts
    assert "*Today:* Ship the ranker" in update["text"]
    assert ":construction: *Blockers:* Waiting for review" in update["text"]
    assert len([c for c in posted(standup) if c.get("thread_ts") == standup_ts]) == 1


async def test_an_answer_without_today_is_refused_on_the_today_field(standup, db, clock, make_worker):
    run_id, _ = await run_standup(standup, clock, make_worker())
    rows_before = len(await outbox_rows(db))
    response = await standup.submit(
        await open_modal(standup, run_id), values(yesterday="Wrote the loader", today="   ")
    )
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == [ids.FIELD_TODAY]
    assert "today" in body["errors"][ids.FIELD_TODAY].lower()
    assert await answers(db) == []
    assert len(await outbox_rows(db)) == rows_before


async def test_the_summary_lists_answers_given_in_the_modal(standup, clock, make_worker):
    worker = make_worker()
    run_id, standup_ts = await run_standup(standup, clock, worker)
    await standup.submit(await open_modal(standup, run_id), values(today="Tune the ranker"))
    await standup.submit(
        await open_modal(standup, run_id, user=BOB),
        values(today="Feature store", blockers="Need data access"),
        user=BOB,
    )
    await deliver(worker, clock)
    summary = await close_standup(standup, clock, worker)
    text = summary["text"]
    assert summary["thread_ts"] == standup_ts
    assert text.startswith(":memo: *Standup summary* · 2 answered · 1 did not")
    assert text.index(f"<@{BOB}>") < text.index(f"<@{ALICE}>")
    assert f"No update from <@{DAVE}>." in text


async def test_an_answer_after_the_summary_is_marked_late(standup, clock, make_worker):
    worker = make_worker()
    run_id, standup_ts = await run_standup(standup, clock, worker)
    await close_standup(standup, clock, worker)
    clock.set(datetime(2026, 12, 7, 11, 0, tzinfo=UTC))
    await standup.submit(await open_modal(standup, run_id, user=DAVE), values(today="Catch up"), user=DAVE)
    before = len(posted(standup))
    await deliver(worker, clock)
    [reply] = posted(standup)[before:]
    assert reply["thread_ts"] == standup_ts
    assert reply["text"].startswith(f"*<@{DAVE}>* (late)")


# ── the answer in the thread (as the submission is meant to post it) ────────────────────────────


async def test_an_answer_goes_into_the_standup_thread(standup, clock, make_worker):
    worker = make_worker()
    run_id, standup_ts = await run_standup(standup, clock, worker)
    clock.set(datetime(2026, 12, 7, 8, 50, tzinfo=UTC))
    await answer_directly(standup, run_id, BOB, yesterday="Loader", today="Ranker", blockers="GPU quota")
    before = len(posted(standup))
    await deliver(worker, clock)
    [reply] = posted(standup)[before:]
    assert reply["channel"] == RECSYS
    assert reply["thread_ts"] == standup_ts
    assert reply["text"] == (
        f"*<@{BOB}>*\n*Yesterday:* Loader\n*Today:* Ranker\n:construction: *Blockers:* GPU quota"
    )


async def test_a_changed_answer_edits_the_reply(standup, db, clock, make_worker):
    worker = make_worker()
    run_id, _ = await run_standup(standup, clock, worker)
    await answer_directly(standup, run_id, BOB, today="Ranker")
    await deliver(worker, clock)
    reply_row = next(r for r in await outbox_rows(db) if r.thread_of is not None)

    await answer_directly(standup, run_id, BOB, today="Ranker, then the loader")
    await deliver(worker, clock)
    [update] = updates(standup)
    assert update["ts"] == reply_row.slack_ts
    assert update["channel"] == RECSYS
    assert "*Today:* Ranker, then the loader" in update["text"]
    assert len(await answers(db)) == 1


async def test_two_quick_edits_become_one_update(standup, db, clock, make_worker):
    worker = make_worker()
    run_id, _ = await run_standup(standup, clock, worker)
    await answer_directly(standup, run_id, BOB, today="Ranker")
    await deliver(worker, clock)
    await answer_directly(standup, run_id, BOB, today="Second thought")
    await answer_directly(standup, run_id, BOB, today="Third thought")
    await deliver(worker, clock)
    [update] = updates(standup)
    assert "*Today:* Third thought" in update["text"]


async def test_the_summary_lists_blockers_first_and_who_did_not_answer(standup, clock, make_worker):
    worker = make_worker()
    run_id, standup_ts = await run_standup(standup, clock, worker)
    clock.set(datetime(2026, 12, 7, 8, 40, tzinfo=UTC))
    await answer_directly(standup, run_id, ALICE, today="Review the PRs")  # first, but not blocked
    clock.set(datetime(2026, 12, 7, 9, 40, tzinfo=UTC))
    await answer_directly(standup, run_id, BOB, today="Feature store", blockers="Need data access")
    await deliver(worker, clock)

    summary = await close_standup(standup, clock, worker)
    assert summary["channel"] == RECSYS
    assert summary["thread_ts"] == standup_ts
    assert summary["reply_broadcast"] is True
    text = summary["text"]
    assert text.startswith(":memo: *Standup summary* · 2 answered · 1 did not\n")
    assert f"<@{BOB}> :construction: *Blocked:* Need data access" in text
    assert text.index(f"<@{BOB}>") < text.index(f"<@{ALICE}>")
    assert "> *Today:* Feature store" in text and "> *Today:* Review the PRs" in text
    assert f"No update from <@{DAVE}>." in text
    assert "Away:" not in text


async def test_someone_away_is_not_asked_for_and_gets_no_dm(standup, db, clock, make_worker):
    await standup.command("away 2026-12-07..2026-12-08", user=DAVE)
    await standup.command("standup dm on", user=DAVE)
    await standup.command("standup dm on", user=BOB)
    worker = make_worker()
    run_id, _ = await run_standup(standup, clock, worker)
    dms = [c for c in posted(standup) if c["channel"] in (BOB, DAVE)]
    assert [c["channel"] for c in dms] == [BOB]
    assert run_id_in(dms[0]) == run_id

    await answer_directly(standup, run_id, BOB, today="Feature store")
    await deliver(worker, clock)
    text = (await close_standup(standup, clock, worker))["text"]
    assert text.startswith(":memo: *Standup summary* · 1 answered · 1 did not\n")
    assert f"No update from <@{ALICE}>." in text
    assert f"Away: <@{DAVE}>." in text
    assert f"<@{DAVE}>" not in text.split("Away:")[0]


async def test_nobody_answering_gives_a_summary_naming_everyone(standup, clock, make_worker):
    worker = make_worker()
    await run_standup(standup, clock, worker)
    text = (await close_standup(standup, clock, worker))["text"]
    assert text.startswith(":memo: *Standup summary* · 0 answered · 3 did not")
    assert f"No update from <@{ALICE}>, <@{BOB}>, <@{DAVE}>." in text


async def test_an_answer_after_the_summary_is_late(standup, clock, make_worker):
    worker = make_worker()
    run_id, standup_ts = await run_standup(standup, clock, worker)
    clock.set(datetime(2026, 12, 7, 10, 29, tzinfo=UTC))
    await answer_directly(standup, run_id, ALICE, today="On time")
    await close_standup(standup, clock, worker)
    clock.set(datetime(2026, 12, 7, 11, 0, tzinfo=UTC))
    await answer_directly(standup, run_id, DAVE, today="Catch up")
    before = len(posted(standup))
    await deliver(worker, clock)
    [reply] = posted(standup)[before:]
    assert reply["thread_ts"] == standup_ts
    assert reply["text"].startswith(f"*<@{DAVE}>* (late)\n")
    [on_time] = [c for c in posted(standup) if c["text"].startswith(f"*<@{ALICE}>*")]
    assert "(late)" not in on_time["text"]


async def test_an_answer_sent_before_the_prompt_is_delivered_waits_for_it(standup, db, clock, make_worker):
    """The reply needs the prompt's ts: it goes out after the prompt, in its thread."""
    clock.set(STANDUP_AT)
    [run] = await jobs_of(standup).run_due(STANDUP_AT)
    await answer_directly(standup, run.id, BOB, today="Early bird")
    await deliver(make_worker(), clock)
    prompt, reply = posted(standup)
    assert prompt["text"].startswith(":sunrise:")
    assert reply["thread_ts"] == next(r.slack_ts for r in await outbox_rows(db) if r.id == run.message_id)


async def test_someone_outside_the_team_cannot_answer_its_standup(standup, db, clock, make_worker):
    run_id, _ = await run_standup(standup, clock, make_worker())
    view = await open_modal(standup, run_id)  # the form a member was shown, submitted by someone else
    before = await snapshot(db)

    response = await standup.submit(view, values(today="Read everyone's plans"), user="U04FRANK")

    body = response.json()
    assert body["response_action"] == "errors", body
    assert "Only members of team recsys can answer its standup." in " ".join(body["errors"].values())
    assert await snapshot(db) == before
