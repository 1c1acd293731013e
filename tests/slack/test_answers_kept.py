"""Lists and plans kept as rendered (bot/slack/answers.py): asked again with nothing of the team changed,
the same answer comes back without reading the backlog; after any change, however it was written, the
next answer shows it."""

from __future__ import annotations

from typing import Any

import pytest

from bot.slack.answers import Answers
from bot.store.models import TeamRevision
from tests.conftest import ALICE, BOB, PLATFORM, make_config
from tests.factories import execute, rows, scraped
from tests.slack.helpers import ok, refused, shown
from tests.slack.test_story_commands import SPRINT_1, listed_keys


async def answered(slack: Any) -> dict[str, float]:
    """How many lists and plans this app gave as kept, and how many it rendered."""
    metrics = scraped((await slack.http.get("/metrics")).text)
    return {
        outcome: metrics[f'cadence_answers_total{{outcome="{outcome}"}}'] for outcome in ("kept", "rendered")
    }


async def revisions(db: Any) -> dict[str, int]:
    return {row.team: row.revision for row in await rows(db, TeamRevision)}


async def test_a_list_asked_again_unchanged_is_the_same_answer_kept(slack, db):
    for title in ("one", "two", "three"):
        await ok(slack, f"story add {title} --type ml")

    first = await ok(slack, "story list --not-ready")
    again = await ok(slack, "story list --not-ready")

    assert again == first
    assert listed_keys(again) == ["S-1", "S-2", "S-3"]
    assert await answered(slack) == {"kept": 1, "rendered": 1}


@pytest.mark.parametrize(
    ("change", "seen"),
    [
        ("story add four --type ml", lambda body: listed_keys(body) == ["S-1", "S-2", "S-3", "S-4"]),
        ("story assign S-2 <@U02BOB|bob>", lambda body: "<@U02BOB>" in shown(body)),
        ("story archive S-3", lambda body: listed_keys(body) == ["S-1", "S-2"]),
        (
            "ready S-1 data_available=v3 feature_stability=ok reproducible_env=ok eval_criteria=auc "
            "data_contract=ok validation_dataset=holdout",
            lambda body: listed_keys(body) == ["S-2", "S-3"],
        ),
    ],
    ids=["added", "assigned", "archived", "made-ready"],
)
async def test_every_change_through_cadence_shows_in_the_next_answer(slack, db, change, seen):
    for title in ("one", "two", "three"):
        await ok(slack, f"story add {title} --type ml")
    await ok(slack, "story list --not-ready")

    await ok(slack, change)

    assert seen(await ok(slack, "story list --not-ready"))
    assert await answered(slack) == {"kept": 0, "rendered": 2}


async def test_a_change_written_straight_into_the_database_shows_in_the_next_answer(slack, db):
    """The revision is raised by the database's own triggers, so a write that bypasses Cadence (a bulk
    UPDATE, a person with psql) is seen too."""
    await ok(slack, "story add one")
    await ok(slack, f"sprint start {SPRINT_1}")
    before = await ok(slack, "story list")
    assert "one" in shown(before)
    plan = await ok(slack, "sprint plan")
    assert plan["text"] == "Planning Sprint 1"

    await execute(db, "UPDATE story SET title = 'renamed by hand'")
    await execute(db, "UPDATE sprint SET name = 'Sprint One'")

    assert "renamed by hand" in shown(await ok(slack, "story list"))
    assert (await ok(slack, "sprint plan"))["text"] == "Planning Sprint One"
    await execute(db, "DELETE FROM story")
    assert listed_keys(await ok(slack, "story list")) == []
    assert await answered(slack) == {"kept": 0, "rendered": 5}


async def test_a_plan_follows_the_commits_made_between_two_asks(slack, db):
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, "story add one --type eng")
    await ok(slack, "ready S-1 acceptance_criteria=ok dependencies=none")
    first = await ok(slack, "sprint plan")
    assert await ok(slack, "sprint plan") == first

    await ok(slack, "sprint commit S-1")

    after = await ok(slack, "sprint plan")
    assert after != first
    assert "Committed" in shown(after) and "*S-1*" in shown(after)
    assert await answered(slack) == {"kept": 1, "rendered": 2}


async def test_each_persons_own_list_is_theirs(slack, db):
    await ok(slack, "story add mine --owner <@U01ALICE|alice>")
    await ok(slack, "story add bobs --owner <@U02BOB|bob>")

    alices = await ok(slack, "story list --mine", user=ALICE)
    bobs = await ok(slack, "story list --mine", user=BOB)

    assert listed_keys(alices) == ["S-1"] and listed_keys(bobs) == ["S-2"]
    assert listed_keys(await ok(slack, "story list --mine", user=BOB)) == ["S-2"]
    assert await answered(slack) == {"kept": 1, "rendered": 2}


async def test_another_teams_change_keeps_this_teams_answer(slack, db):
    await ok(slack, "story add ours")
    await ok(slack, "story list")
    recsys_before = (await revisions(db))["recsys"]

    await ok(slack, "story add theirs", user="U04FRANK", channel=PLATFORM)

    assert listed_keys(await ok(slack, "story list")) == ["S-1"]
    assert await answered(slack) == {"kept": 1, "rendered": 1}
    assert (await revisions(db))["recsys"] == recsys_before


async def test_a_change_made_through_another_replica_shows_in_this_ones_next_answer(make_app, config, db):
    async with make_app(config) as one, make_app(config) as two:
        await ok(one, "story add first")
        assert listed_keys(await ok(one, "story list")) == ["S-1"]
        assert listed_keys(await ok(one, "story list")) == ["S-1"]  # kept by this replica

        await ok(two, "story add second")

        assert listed_keys(await ok(one, "story list")) == ["S-1", "S-2"]
        assert await answered(one) == {"kept": 1, "rendered": 2}


async def test_with_no_answers_kept_every_answer_is_rendered(make_app, db):
    async with make_app(make_config(answer_cache_entries=0)) as slack:
        await ok(slack, "story add one")
        first = await ok(slack, "story list")
        assert await ok(slack, "story list") == first
        assert await answered(slack) == {"kept": 0, "rendered": 2}


async def test_a_refusal_is_not_kept(slack, db):
    await ok(slack, "story add one")
    await refused(slack, db, "story list --sprint nowhere", "nowhere")  # and nothing stored
    await ok(slack, "sprint start nowhere --from 2026-12-07 --to 2026-12-18")

    assert listed_keys(await ok(slack, "story list --sprint nowhere")) == []
    assert await answered(slack) == {"kept": 0, "rendered": 1}


def test_answers_keep_the_most_recently_given_and_drop_what_a_newer_revision_replaced():
    answers = Answers(size=2)
    answers.put("a", 1, {"text": "a1"})
    answers.put("b", 1, {"text": "b1"})
    assert answers.get("a", 1) == {"text": "a1"}  # a is now the most recent
    answers.put("c", 1, {"text": "c1"})  # b goes
    assert answers.get("b", 1) is None
    assert answers.get("a", 1) == {"text": "a1"} and answers.get("c", 1) == {"text": "c1"}

    assert answers.get("a", 2) is None  # rendered at an older revision: dropped
    assert len(answers) == 1 and answers.get("a", 1) is None

    none = Answers(size=0)
    none.put("a", 1, {"text": "a1"})
    assert none.get("a", 1) is None and len(none) == 0


async def test_writes_racing_through_two_replicas_each_show_in_the_next_answer(make_app, config, db):
    """Two people adding stories at the same moment through two replicas: both writes raise the team's
    revision (on PostgreSQL the second waits on the team's row until the first commits), and each list
    asked after them shows both."""
    import asyncio

    async with make_app(config) as one, make_app(config) as two:
        expected: list[str] = []
        for round_ in range(5):
            await asyncio.gather(ok(one, f"story add one-{round_}"), ok(two, f"story add two-{round_}"))
            expected += [f"S-{len(expected) + 1}", f"S-{len(expected) + 2}"]
            assert listed_keys(await ok(one, "story list")) == expected
            assert listed_keys(await ok(two, "story list")) == expected
        assert await answered(one) == {"kept": 0, "rendered": 5}
        revision = (await revisions(db))["recsys"]
        assert listed_keys(await ok(one, "story list")) == expected
        assert await answered(one) == {"kept": 1, "rendered": 5}
        assert (await revisions(db))["recsys"] == revision
