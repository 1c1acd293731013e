"""Two people doing the same thing at the same moment, each in their own transaction: the outcome a
user sees is the same on SQLite and PostgreSQL (where transactions really interleave)."""

import asyncio
import json
from datetime import date, timedelta

import pytest

from bot.services import sprints, stories
from bot.services.errors import CadenceError
from bot.store.models import Sprint, Story
from tests.conftest import ALICE, BOB
from tests.factories import answer_all, audit_rows, make_story, rows, tx


async def _race(*calls):
    async def one(call):
        try:
            async with tx(call.db) as session:
                return await call.run(session)
        except CadenceError as exc:
            return exc

    return await asyncio.gather(*(one(c) for c in calls))


class _Call:
    def __init__(self, db, run):
        self.db, self.run = db, run


async def test_two_done_clicks_at_once_finish_the_story_once(db, config):
    async with tx(db) as s:
        story = await make_story(s, config)
        await answer_all(s, config, story, "done")
    key = story.key

    async def done(session, actor):
        found = await stories.get_story(session, key)
        return await stories.complete_story(session, config=config, story=found, actor=actor)

    results = await _race(*(_Call(db, lambda s, a=actor: done(s, a)) for actor in (ALICE, BOB) * 5))

    assert sum(isinstance(r, Story) for r in results) == 1
    assert all(isinstance(r, Story) or "already done" in r.message for r in results)
    assert [e.action for e in await audit_rows(db)].count("story.done") == 1
    assert [s.status for s in await rows(db, Story)] == ["done"]


async def test_two_sprint_starts_at_once_make_one_current_sprint(db, config):
    team = config.teams[0]

    async def start(session, n):
        return await sprints.start_sprint(
            session,
            team=team,
            name=f"Sprint {n}",
            starts_on=date(2027, 1, 4) + timedelta(days=14 * n),
            ends_on=date(2027, 1, 15) + timedelta(days=14 * n),
            actor=ALICE,
        )

    results = await _race(*(_Call(db, lambda s, n=n: start(s, n)) for n in range(4)))

    states = sorted(s.state for s in await rows(db, Sprint))
    assert states.count("active") == 1
    # whichever start wins becomes current; a later-dated one may win, and then earlier ones are
    # refused as starting before the current sprint: never two current sprints
    refused = [r for r in results if isinstance(r, CadenceError)]
    assert all("would start before the current sprint" in r.message for r in refused)
    assert len(states) == 4 - len(refused)


async def test_two_sprint_closes_at_once_close_one_sprint(db, config):
    team = config.teams[0]
    async with tx(db) as s:
        await sprints.start_sprint(
            s, team=team, name="S1", starts_on=date(2027, 1, 4), ends_on=date(2027, 1, 15), actor=ALICE
        )
        await sprints.start_sprint(
            s, team=team, name="S2", starts_on=date(2027, 1, 18), ends_on=date(2027, 1, 29), actor=ALICE
        )

    results = await _race(
        *(_Call(db, lambda s: sprints.close_sprint(s, team=team, actor=ALICE)) for _ in range(3))
    )

    closed = [r for r in results if not isinstance(r, CadenceError)]
    # one close moves S1 → closed and S2 → current; the others close S2 in turn or find nothing
    assert {s.name: s.state for s in await rows(db, Sprint)}["S1"] == "closed"
    assert [e.action for e in await audit_rows(db)].count("sprint.close") == len(closed)
    assert len({r.closed.name for r in closed}) == len(closed)  # never the same sprint closed twice


async def test_the_same_status_reported_twice_at_once_moves_the_experiment_once(db, config):
    from bot.services import experiments
    from bot.store.models import Experiment

    async with tx(db) as s:
        story = await make_story(s, config)
        exp = await experiments.add_experiment(s, config=config, story=story, name="Ranker", actor=ALICE)
    key = exp.key

    async def report(session):
        found = await experiments.get_experiment(session, key)
        return await experiments.set_status(
            session, config=config, experiment=found, status="running", actor="api:pipeline"
        )

    results = await _race(*(_Call(db, report) for _ in range(6)))

    assert results.count(True) == 1 and results.count(False) == 5
    assert [e.action for e in await audit_rows(db)].count("experiment.status") == 1
    assert [e.status for e in await rows(db, Experiment)] == ["running"]


async def test_the_same_metric_reported_at_once_is_stored_once(db, config):
    from bot.services import experiments
    from bot.store.models import ExperimentResult

    async with tx(db) as s:
        story = await make_story(s, config)
        exp = await experiments.add_experiment(s, config=config, story=story, name="Ranker", actor=ALICE)
    key = exp.key

    async def report(session, value):
        found = await experiments.get_experiment(session, key)
        return await experiments.record_results(
            session,
            config=config,
            experiment=found,
            metrics={"auc": value},
            actor="api:pipeline",
            source="api",
            run_id="run-1",
        )

    results = await _race(*(_Call(db, lambda s, v=v: report(s, v)) for v in (0.81, 0.82, 0.83, 0.84)))

    assert not any(isinstance(r, Exception) for r in results)
    stored = await rows(db, ExperimentResult)
    assert len(stored) == 1 and stored[0].value in (0.81, 0.82, 0.83, 0.84)


async def test_two_people_answering_the_same_criterion_at_once_both_succeed(db, config):
    from bot.services import readiness
    from bot.store.models import CriterionValue

    async with tx(db) as s:
        story = await make_story(s, config)
    key = story.key

    async def answer(session, who, text):
        found = await stories.get_story(session, key)
        return await readiness.record_answers(
            session, story=found, kind="ready", config=config, actor=who, answers={"data_available": text}
        )

    results = await _race(
        _Call(db, lambda s: answer(s, ALICE, "clicks v3")), _Call(db, lambda s: answer(s, BOB, "clicks v4"))
    )

    assert not any(isinstance(r, Exception) for r in results)
    [row] = await rows(db, CriterionValue)
    assert (row.set_by, row.value) in ((ALICE, "clicks v3"), (BOB, "clicks v4"))


async def test_two_starts_at_once_start_the_story_once(db, config):
    async with tx(db) as s:
        story = await make_story(s, config)
    key = story.key

    async def start(session, actor):
        found = await stories.get_story(session, key)
        return await stories.start_story(session, config=config, story=found, actor=actor)

    results = await _race(*(_Call(db, lambda s, a=actor: start(s, a)) for actor in (ALICE, BOB) * 5))

    # one start moves it (compare-and-set on the status it read); every other is told, whether it read
    # the story before the winner committed (PostgreSQL) or after (SQLite's write lock at BEGIN)
    assert sum(isinstance(r, Story) for r in results) == 1
    refusals = [r for r in results if not isinstance(r, Story)]
    assert all(
        r.message
        in (
            "S-1 is already in progress.",
            "S-1 changed a moment ago; look at it again with `story show S-1`.",
        )
        for r in refusals
    ), [r.message for r in refusals]
    assert [e.action for e in await audit_rows(db)].count("story.start") == 1
    assert [s.status for s in await rows(db, Story)] == ["in_progress"]


async def test_a_block_and_an_archive_at_once_end_consistent(db, config):
    async with tx(db) as s:
        story = await make_story(s, config)
    key = story.key

    async def block(session):
        found = await stories.get_story(session, key)
        return await stories.block_story(session, config=config, story=found, actor=BOB, reason="GPU quota")

    async def archive(session):
        found = await stories.get_story(session, key)
        return await stories.archive_story(session, config=config, story=found, actor=ALICE)

    results = await _race(_Call(db, block), _Call(db, archive))

    # Either both go through in turn (block, then archive: a blocked story can be archived), or the one
    # that read a status the other had just changed is refused by the compare-and-set and changes nothing.
    [stored] = await rows(db, Story)
    actions = [e.action for e in await audit_rows(db)]
    blocked, archived = results
    stale = (
        "S-1 is archived; it cannot become blocked.",
        "S-1 changed a moment ago; look at it again with `story show S-1`.",
    )
    if isinstance(blocked, Story) and isinstance(archived, Story):
        assert (stored.status, stored.blocked_reason, stored.sprint_id) == ("archived", None, None)
        assert actions == ["story.block", "story.archive"]
    elif isinstance(archived, Story):
        assert blocked.message in stale
        assert (stored.status, stored.blocked_reason) == ("archived", None)
        assert actions == ["story.archive"]
    else:
        assert isinstance(blocked, Story) and archived.message in stale
        assert (stored.status, stored.blocked_reason) == ("blocked", "GPU quota")
        assert actions == ["story.block"]


async def test_a_status_move_on_a_story_read_before_another_moved_it_is_refused(db, config):
    """The compare-and-set itself, without relying on how the database interleaves: Alice's request
    read S-1 as to do; before it writes, Bob's request starts it; Alice's start then moves nothing."""
    async with tx(db) as s:
        await make_story(s, config)
    async with tx(db) as s:
        read_by_alice = await stories.get_story(s, "S-1")  # kept past its transaction: a stale read
    async with tx(db) as s:
        await stories.start_story(s, config=config, story=await stories.get_story(s, "S-1"), actor=BOB)
    assert read_by_alice.status == "open"

    with pytest.raises(CadenceError) as info:
        async with tx(db) as s:
            await stories.block_story(s, config=config, story=read_by_alice, actor=ALICE, reason="GPU quota")
    assert info.value.message == "S-1 changed a moment ago; look at it again with `story show S-1`."
    [stored] = await rows(db, Story)
    assert (stored.status, stored.blocked_reason) == ("in_progress", None)
    assert [e.action for e in await audit_rows(db)] == ["story.start"]


async def test_a_drop_during_a_sprint_close_names_the_sprint_the_story_really_left(db, config):
    """Closing carries S-1 on to the next sprint while a lead drops it: the drop waits for the close, so
    either it came first (S-1 was not carried) or it takes S-1 out of the sprint it was carried into.
    The decision log never says it left a sprint it was no longer in."""
    team = config.teams[0]
    async with tx(db) as s:
        first = await sprints.start_sprint(
            s, team=team, name="S1", starts_on=date(2027, 1, 4), ends_on=date(2027, 1, 15), actor=ALICE
        )
        await sprints.start_sprint(
            s, team=team, name="S2", starts_on=date(2027, 1, 18), ends_on=date(2027, 1, 29), actor=ALICE
        )
        story = await make_story(s, config, title="carried or dropped")
        await answer_all(s, config, story, "ready")
        await sprints.commit(s, config=config, team=team, keys=[story.key], actor=ALICE, sprint=first)
    key = story.key

    async def close(session):
        return await sprints.close_sprint(session, team=team, actor=ALICE)

    async def drop(session):
        found = await stories.get_story(session, key)
        return await stories.drop_story(session, config=config, story=found, actor=ALICE)

    closed, dropped = await _race(_Call(db, close), _Call(db, drop))
    assert isinstance(closed, sprints.CloseReport), closed
    assert isinstance(dropped, Sprint), dropped
    carried = key in [s.key for s in closed.carried_over]
    drop_row = next(e for e in await audit_rows(db) if e.action == "sprint.drop")
    assert json.loads(drop_row.payload)["sprint"] == ("S2" if carried else "S1")
    assert [(s.key, s.sprint_id) for s in await rows(db, Story)] == [(key, None)]


async def test_twenty_first_reports_of_one_new_experiment_at_once_create_it_once(db, config):
    """The issue saw 9, 3 and 14 of 20 answers fail on PostgreSQL (a unique violation not caught)."""
    from bot.services import experiments
    from bot.store.models import Experiment

    async with tx(db) as s:
        story = await make_story(s, config)

    async def report(session):
        found = await stories.get_story(session, story.key)
        return await experiments.upsert_external(
            session, config=config, external_id="pipe-7", story=found, name="ranker-v7", actor="api:pipeline"
        )

    results = await _race(*(_Call(db, report) for _ in range(20)))

    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(1 for _, created in results if created) == 1
    assert len(await rows(db, Experiment)) == 1
