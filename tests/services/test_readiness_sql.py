"""Readiness decided in SQL (Story.ready_lacking, kept by the services and readiness.reconcile) agrees with the checklists people see, whatever mix of
answers, waivers and cleared answers the stories hold; lists and the sprint plan read only what they
show however long the backlog grows."""

from __future__ import annotations

import random
from datetime import date

from bot.services import readiness, sprints, stories
from tests.conftest import ALICE, make_config
from tests.factories import make_story, team, tx

KINDS_OF_ANSWER = ("value", "waive", "clear", "none")


async def _random_backlog(s, config, rng: random.Random, n: int) -> None:
    for i in range(n):
        story_type = rng.choice(("ml", "eng"))
        story = await make_story(s, config, title=f"story {i}", story_type=story_type)
        keys = [c.key for c in config.criteria("ready", story_type)]
        answers, waivers, clear = {}, {}, []
        for key in keys:
            what = rng.choice(KINDS_OF_ANSWER)
            if what == "value":
                answers[key] = rng.choice(("s3://data/v1", "  padded value  ", "AUC > 0.8"))
            elif what == "waive":
                waivers[key] = "does not apply here"
            elif what == "clear":
                answers[key] = "set, then cleared"
                clear.append(key)
        if answers or waivers:
            await readiness.record_answers(
                s, story=story, kind="ready", config=config, actor=ALICE, answers=answers, waivers=waivers
            )
        if clear:
            await readiness.record_answers(
                s, story=story, kind="ready", config=config, actor=ALICE, clear=clear
            )
        if rng.random() < 0.1:
            await stories.archive_story(s, config=config, story=story, actor=ALICE)


async def test_the_sql_filter_agrees_with_the_checklists_for_any_mix_of_answers(db, config):
    rng = random.Random(1213)
    async with tx(db) as s:
        await _random_backlog(s, config, rng, 120)
    async with tx(db) as s:
        everything = await stories.list_stories(s, config=config, team=team(config))
        expected = [i.story.key for i in everything if not i.ready.complete]
        listed = await stories.list_stories(s, config=config, team=team(config), not_ready=True)
        paged = []
        for page in (1, 2, 3, 4, 5, 6, 7):
            got = await stories.page_of_stories(
                s,
                config=config,
                team=team(config),
                filters=stories.StoryFilter(not_ready=True),
                page=page,
                page_size=10,
            )
            paged += [i.story.key for i in got.items]
            assert got.total == len(expected)
    assert 20 < len(expected) < 110, "the mix has both kinds"
    assert [i.story.key for i in listed] == expected
    assert all(not i.ready.complete for i in listed)
    assert paged == expected[:70]


async def test_criteria_added_to_the_configuration_later_make_stories_not_ready_in_sql_too(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, title="eng story", story_type="eng")
        await readiness.record_answers(
            s,
            story=story,
            kind="ready",
            config=config,
            actor=ALICE,
            answers={"acceptance_criteria": "green tests", "dependencies": "none"},
        )
    stricter = make_config(
        readiness={
            "eng": [
                {"key": "acceptance_criteria", "label": "Acceptance"},
                {"key": "dependencies", "label": "Dependencies"},
                {"key": "security_review", "label": "Security review"},
            ]
        }
    )

    async def not_ready(cfg) -> list[tuple[str, list[str]]]:
        async with tx(db) as s:
            found = await stories.list_stories(s, config=cfg, team=team(cfg), not_ready=True)
        return [(i.story.key, [c.key for c in i.ready.missing]) for i in found]

    async def restart(cfg) -> int:  # what serve and clock do when they start
        async with tx(db) as s:
            return await readiness.reconcile(s, cfg)

    assert await not_ready(config) == []
    assert await restart(stricter) == 1
    assert await not_ready(stricter) == [("S-1", ["security_review"])]
    assert await restart(stricter) == 0  # a start with the configuration unchanged writes nothing
    assert await restart(config) == 1  # and taken back out again
    assert await not_ready(config) == []


async def test_a_key_whose_name_is_inside_anothers_is_told_apart_in_sql_and_in_python(db):
    """Keys are stored each between commas, so "data" is not found inside "data_contract" or
    "big_data": a story with only those lacks "data", and one with "data" alone lacks the others."""
    config = make_config(
        readiness={
            "eng": [
                {"key": "data", "label": "Data"},
                {"key": "data_contract", "label": "Data contract"},
                {"key": "big_data", "label": "Big data"},
            ]
        }
    )
    async with tx(db, config) as s:
        one = await make_story(s, config, title="contract only", story_type="eng")
        two = await make_story(s, config, title="data only", story_type="eng")
        three = await make_story(s, config, title="everything", story_type="eng")
        for story, keys in (
            (one, ["data_contract", "big_data"]),
            (two, ["data"]),
            (three, ["data", "data_contract", "big_data"]),
        ):
            await readiness.record_answers(
                s, story=story, kind="ready", config=config, actor=ALICE, answers=dict.fromkeys(keys, "yes")
            )
    async with tx(db, config) as s:
        lacking = await stories.list_stories(s, config=config, team=team(config), not_ready=True)
        assert [(i.story.key, [c.key for c in i.ready.missing]) for i in lacking] == [
            ("S-1", ["data"]),
            ("S-2", ["data_contract", "big_data"]),
        ]
        assert (await stories.get_story(s, "S-1")).ready_keys == ",big_data,data_contract,"


async def _sprint_one(s, config):
    return await sprints.start_sprint(
        s,
        team=team(config),
        name="Sprint 1",
        starts_on=date(2026, 12, 7),
        ends_on=date(2026, 12, 18),
        actor=ALICE,
    )


async def test_the_plan_lists_the_first_of_each_group_and_counts_the_rest(db, config, monkeypatch):
    monkeypatch.setattr(sprints, "PLAN_SHOWN", 5)
    async with tx(db) as s:
        await _sprint_one(s, config)
        for i in range(12):
            story = await make_story(s, config, title=f"eng {i}", story_type="eng")
            if i % 3 == 0:
                await readiness.record_answers(
                    s,
                    story=story,
                    kind="ready",
                    config=config,
                    actor=ALICE,
                    answers={"acceptance_criteria": "a", "dependencies": "b"},
                )
    async with tx(db) as s:
        plan = await sprints.plan(s, config=config, team=team(config))
    assert (plan.ready_total, plan.not_ready_total, plan.total) == (4, 8, 12)
    assert [p.story.key for p in plan.ready] == ["S-1", "S-4", "S-7", "S-10"]
    assert [p.story.key for p in plan.not_ready] == ["S-2", "S-3", "S-5", "S-6", "S-8"]
    assert plan.ready_count == 4


async def test_a_plan_and_a_page_of_stories_read_the_same_few_statements_however_long_the_backlog(db, config):
    """What `sprint plan` and `story list` run (Reads.run, as the commands do): for a plan, the open
    sprints with the backlog's counts beside them, then one statement of rows; for a page of a list, one
    statement (its count rides on its rows)."""
    from sqlalchemy import event

    from bot.store.db import Reads

    async with tx(db) as s:
        sprint = await _sprint_one(s, config)
        for i in range(3):
            story = await make_story(s, config, title=f"committed {i}", story_type="eng")
            await stories.edit_story(
                s, config=config, story=story, actor=ALICE, sprint=sprint, force_reason="test"
            )
    reads = Reads(db)
    engine = reads._inline if reads._inline is not None else reads._direct.sync_engine  # type: ignore[union-attr]
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):  # not SQLite's BEGIN and COMMIT
            statements.append(statement)

    async def read_both() -> tuple[int, int, sprints.Plan]:
        statements.clear()
        plan = await reads.run(sprints.plan_of, config=config, team=team(config))
        planned = len(statements)
        statements.clear()
        page = await reads.run(
            stories.story_page, config=config, team=team(config), filters=stories.StoryFilter(not_ready=True)
        )
        assert page.items
        return planned, len(statements), plan

    event.listen(engine, "before_cursor_execute", count)
    try:
        async with tx(db) as s:
            await _random_backlog(s, config, random.Random(3), 8)
        small = await read_both()
        async with tx(db) as s:
            await _random_backlog(s, config, random.Random(4), 80)
        large = await read_both()
    finally:
        event.remove(engine, "before_cursor_execute", count)
        await reads.dispose()
    selects = [(planned, paged) for planned, paged, _ in (small, large)]
    assert selects == [(2, 1), (2, 1)], statements
    assert [p.story.key for p in large[2].committed] == ["S-1", "S-2", "S-3"]
    assert large[2].not_ready_total > small[2].not_ready_total


async def test_a_storys_type_decides_what_it_lacks_when_it_is_added_and_when_its_type_changes(db):
    """ready_lacking follows the type: a story of a type that asks for nothing is Ready from the start;
    given a type that asks for criteria it has not met it is not Ready, and back again."""
    config = make_config(
        readiness={"eng": [{"key": "dependencies", "label": "Dependencies"}], "ml": [], "ops": []}
    )

    async def not_ready() -> list[str]:
        async with tx(db) as s:
            found = await stories.list_stories(s, config=config, team=team(config), not_ready=True)
        return [i.story.key for i in found]

    async with tx(db) as s:
        await make_story(s, config, title="needs nothing", story_type="ml")
        await make_story(s, config, title="needs dependencies", story_type="eng")
    assert await not_ready() == ["S-2"]
    async with tx(db) as s:
        story = await stories.get_story(s, "S-1")
        await stories.edit_story(s, config=config, story=story, actor=ALICE, story_type="eng")
    assert await not_ready() == ["S-1", "S-2"]
    async with tx(db) as s:
        story = await stories.get_story(s, "S-1")
        await stories.edit_story(s, config=config, story=story, actor=ALICE, story_type="ops")
        assert story.ready_lacking is False
    assert await not_ready() == ["S-2"]


async def test_a_start_without_its_database_keeps_trying_until_the_database_is_there(tmp_path, caplog):
    """serve starts while its database is down or not migrated yet: bringing ready_lacking in line says
    so and is tried again until it has run."""
    import asyncio

    from bot.store.db import create_engine, session_factory
    from bot.store.migrate import upgrade

    config = make_config()
    engine = create_engine(f"sqlite:///{tmp_path / 'later' / 'cadence.db'}")  # its folder is not there yet
    try:
        sessions = session_factory(engine)
        assert await readiness.reconcile_on_start(sessions, config) is False
        assert "could not bring ready_lacking in line" in caplog.text
        trying = asyncio.create_task(readiness.reconcile_until_done(sessions, config, pause=0.02))
        await asyncio.sleep(0.1)
        assert not trying.done()
        (tmp_path / "later").mkdir()
        await upgrade(engine)
        await asyncio.wait_for(trying, 5)
    finally:
        await engine.dispose()


async def test_answers_and_a_change_of_type_at_once_leave_the_story_as_its_row_says(db):
    """One person answers the one criterion an eng story asks for while another makes it an ops story,
    which asks for one more: the second write waits for the first, and the story ends up not Ready, as
    its type and answers now say, not Ready as the first write left it."""
    import asyncio

    import pytest

    if db.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer: the two changes cannot overlap there")
    config = make_config(
        readiness={
            "eng": [{"key": "dependencies", "label": "Dependencies"}],
            "ops": [
                {"key": "dependencies", "label": "Dependencies"},
                {"key": "runbook", "label": "Runbook"},
            ],
        }
    )
    async with tx(db, config) as s:
        await make_story(s, config, title="shared", story_type="eng")
    async with tx(db, config) as answering, tx(db, config) as retyping:
        story = await stories.get_story(answering, "S-1")
        await readiness.record_answers(
            answering, story=story, kind="ready", config=config, actor=ALICE, answers={"dependencies": "none"}
        )
        assert story.ready_lacking is False  # Ready as an eng story
        their_copy = await stories.get_story(retyping, "S-1")  # as committed: no answers yet
        edit = asyncio.create_task(
            stories.edit_story(retyping, config=config, story=their_copy, actor=ALICE, story_type="ops")
        )
        await asyncio.sleep(0.3)
        assert not edit.done()  # waiting for the answer's transaction to end
        await answering.commit()
        await edit
    async with tx(db, config) as s:
        story = await stories.get_story(s, "S-1")
        lacking = await stories.list_stories(s, config=config, team=team(config), not_ready=True)
    assert (story.type, story.ready_keys, story.ready_lacking) == ("ops", ",dependencies,", True)
    assert [(i.story.key, [c.key for c in i.ready.missing]) for i in lacking] == [("S-1", ["runbook"])]
