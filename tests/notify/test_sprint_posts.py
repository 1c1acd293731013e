"""What the team channel hears as the sprint moves (bot/notify/sprints.py): the sprint started, stories
committed (scope added marked, forced ones named) with a DM to the owner of each forced story, a story
of the sprint done, and the close report; each post can be turned off per team with `announce`."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.jobs.outbox_worker import OutboxWorker
from bot.slack import ids
from tests.clock import FakeClock
from tests.conftest import ALICE, BOB, DAVE, FRANK, PLATFORM, RECSYS, make_config
from tests.slack.helpers import buttons, deliver, ok, posted, shown, strings
from tests.slack_driver import SlackDriver

SPRINT_1 = '"Sprint 1" --from 2026-12-07 --to 2026-12-18'  # the app's clock: Monday 7 December, 07:00
SPRINT_2 = '"Sprint 2" --from 2026-12-21 --to 2027-01-01'


@pytest.fixture
def worker(make_worker: Callable[..., OutboxWorker]) -> OutboxWorker:
    return make_worker()


async def sent_to(
    slack: SlackDriver, worker: OutboxWorker, clock: FakeClock, channel: str
) -> list[dict[str, Any]]:
    """Deliver the outbox, then what the bot has posted to `channel` so far."""
    await deliver(worker, clock)
    return posted(slack, channel)


def section_texts(message: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    """What each team-channel post is, by its fallback text."""
    out = []
    for m in messages:
        text = m["text"]
        if text.endswith(" started"):
            out.append("start")
        elif " committed to " in text:
            out.append("commit")
        elif text.endswith(" is done"):
            out.append("done")
        elif text.endswith(" closed"):
            out.append("close")
        else:
            out.append(text)
    return out


# --- sprint started -------------------------------------------------------------------------------


async def test_a_sprint_start_is_posted_in_the_team_channel(slack, db, worker, clock):
    await ok(slack, f'sprint start {SPRINT_1} --goal "Ship ranker v2"')
    [post] = await sent_to(slack, worker, clock, RECSYS)
    assert post["text"] == "Sprint Sprint 1 started"
    assert section_texts(post) == [
        f":runner: <@{ALICE}> started *Sprint 1* (current, day 1 of 10): Mon 07 Dec → Fri 18 Dec 2026."
        "\n_Goal:_ Ship ranker v2"
    ]
    await ok(slack, f"sprint start {SPRINT_2}")
    posts = await sent_to(slack, worker, clock, RECSYS)
    assert len(posts) == 2
    assert section_texts(posts[1]) == [
        f":runner: <@{ALICE}> started *Sprint 2* (next, starts Mon 21 Dec): Mon 21 Dec → Fri 01 Jan 2027."
    ]
    # nothing else was sent, to anyone
    assert posted(slack) == posts


async def test_another_teams_sprint_is_posted_in_its_own_channel(slack, db, worker, clock):
    await ok(slack, f"sprint start {SPRINT_1}", user=FRANK, channel=PLATFORM)
    [post] = await sent_to(slack, worker, clock, PLATFORM)
    assert section_texts(post)[0].startswith(f":runner: <@{FRANK}> started *Sprint 1* (current, day 1 of 10)")
    assert posted(slack, RECSYS) == []


# --- stories committed ----------------------------------------------------------------------------


@pytest.fixture
async def backlog(slack: SlackDriver) -> None:
    """Sprint 1 current (its first day), Sprint 2 next; S-1 Bob's Ready eng story (3 pt), S-2 Dave's
    ml story (5 pt, not Ready), S-3 Alice's eng story (not Ready)."""
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, f"sprint start {SPRINT_2}")
    await ok(slack, "story add Fix login --type eng --owner <@U02BOB|bob> --points 3")
    await ok(slack, "ready S-1 acceptance_criteria=tests dependencies=none")
    await ok(slack, "story add Train ranker --owner <@U03DAVE|dave> --points 5")
    await ok(slack, "story add Cache warmup --type eng --owner <@U01ALICE|alice>")


async def test_a_commit_of_ready_stories_is_posted_and_nobody_is_dmd(slack, db, worker, clock, backlog):
    before = len(await sent_to(slack, worker, clock, RECSYS))  # the two sprint starts
    dms_before = {who: len(posted(slack, who)) for who in (ALICE, BOB, DAVE)}  # owners told of stories
    await ok(slack, "sprint commit S-1")
    posts = (await sent_to(slack, worker, clock, RECSYS))[before:]
    [post] = posts
    assert post["text"] == "1 committed to Sprint 2"
    assert section_texts(post) == [
        f":inbox_tray: Committed to *Sprint 2* (next, starts Mon 21 Dec) by <@{ALICE}> · 3 points\n"
        "• *S-1* Fix login (3 pt)"
    ]
    assert {who: len(posted(slack, who)) for who in (ALICE, BOB, DAVE)} == dms_before


async def test_scope_added_and_forced_stories_are_posted_and_their_owners_told(
    slack, db, worker, clock, backlog
):
    before = len(await sent_to(slack, worker, clock, RECSYS))
    dms_before = {who: len(posted(slack, who)) for who in (ALICE, BOB, DAVE)}
    clock.set(datetime(2026, 12, 8, 9, 0, tzinfo=UTC))  # Tuesday: Sprint 1's first (planning) day is over
    body = await ok(slack, 'sprint commit S-1 S-2 S-3 --to current --force reason="agreed with the PO"')
    assert "The sprint is under way: recorded as scope added (the sprint review shows it)." in shown(body)

    [post] = (await sent_to(slack, worker, clock, RECSYS))[before:]
    assert post["text"] == "3 committed to Sprint 1"
    assert section_texts(post) == [
        f":heavy_plus_sign: Scope added to *Sprint 1* (current, day 2 of 10) by <@{ALICE}> · 8 points\n"
        "• *S-1* Fix login (3 pt)\n"
        "• *S-2* Train ranker (5 pt) — :warning: not Ready\n"
        "• *S-3* Cache warmup — :warning: not Ready\n"
        ":warning: S-2, S-3 went in although not Ready (audited): _agreed with the PO_"
    ]
    # the owner of a forced story hears it: Dave; not Alice, who forced her own S-3; not Bob (Ready)
    assert len(posted(slack, ALICE)) == dms_before[ALICE]
    assert len(posted(slack, BOB)) == dms_before[BOB]
    [dm] = posted(slack, DAVE)[dms_before[DAVE] :]
    assert dm["text"] == (
        f"<@{ALICE}> committed your story *S-2* Train ranker (5 pt) to sprint *Sprint 1* although it is "
        "not Ready (reason: agreed with the PO). It still lacks: Data availability, Feature stability, "
        "Reproducible environment, Measurable evaluation criteria, Data contract, Validation data."
    )
    assert section_texts(dm) == [dm["text"]]
    [fill] = buttons(dm)
    assert (fill["text"]["text"], fill["action_id"], fill["value"]) == (
        "Fill readiness",
        ids.OPEN_READY_MODAL,
        "S-2",
    )

    # the button opens the story's readiness form for Dave
    await slack.click(fill["action_id"], fill["value"], user=DAVE, channel="D03DAVE")
    view = slack.last_view()
    assert view["callback_id"] == ids.CRITERIA_MODAL
    meta = json.loads(view["private_metadata"])
    assert (meta["story"], meta["kind"]) == ("S-2", "ready")


async def test_a_story_added_into_a_sprint_is_posted_as_a_commit(slack, db, worker, clock):
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(
        slack,
        'story add Train ranker --owner <@U02BOB|bob> --points 2 --sprint current --force reason="hotfix"',
    )
    start, commit = await sent_to(slack, worker, clock, RECSYS)
    assert kinds([start, commit]) == ["start", "commit"]
    # on the sprint's first day (planning day): a plain commit, not scope added
    assert section_texts(commit) == [
        f":inbox_tray: Committed to *Sprint 1* (current, day 1 of 10) by <@{ALICE}> · 2 points\n"
        "• *S-1* Train ranker (2 pt) — :warning: not Ready\n"
        ":warning: S-1 went in although not Ready (audited): _hotfix_"
    ]
    # Bob hears twice: he owns a new story, and it went into the sprint although not Ready
    assigned, forced = posted(slack, BOB)
    assert assigned["text"] == f"<@{ALICE}> assigned you S-1: Train ranker"
    assert forced["text"].startswith(f"<@{ALICE}> committed your story *S-1* Train ranker (2 pt)")


async def test_a_story_kept_in_the_backlog_is_not_posted(slack, db, worker, clock):
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, "story add Train ranker --sprint current")  # not Ready, no reason: the backlog
    await ok(slack, 'story add Fix login --sprint current --force reason="x"', user=BOB)  # not a lead
    assert kinds(await sent_to(slack, worker, clock, RECSYS)) == ["start"]


# --- a story done ---------------------------------------------------------------------------------


async def test_a_story_of_the_sprint_done_is_posted_with_the_sprints_progress(slack, db, worker, clock):
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, 'story add Fix login --type eng --points 3 --sprint current --force reason="planned"')
    await ok(slack, 'story add Train ranker --points 5 --sprint current --force reason="planned"')
    await ok(slack, "story add Someday --type eng")  # in the backlog
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "dod S-3 code_review=https://git/pr/3 tests=unit")
    before = len(await sent_to(slack, worker, clock, RECSYS))
    await ok(slack, "story done S-1", user=BOB)
    await ok(slack, "story done S-3")  # not in a sprint: nothing to tell the team
    [post] = (await sent_to(slack, worker, clock, RECSYS))[before:]
    assert post["text"] == "S-1 is done"
    assert section_texts(post) == [
        f":tada: <@{BOB}> finished *S-1* Fix login (3 pt) · Sprint 1: 1/2 stories, 3/8 points done"
    ]


# --- the close report -----------------------------------------------------------------------------


async def test_the_close_report_is_posted_and_the_lead_told_where(slack, db, worker, clock):
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, f"sprint start {SPRINT_2}")
    await ok(slack, 'story add Fix login --type eng --points 3 --sprint current --force reason="planned"')
    await ok(slack, 'story add Train ranker --points 5 --sprint current --force reason="planned"')
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "story done S-1")
    before = len(await sent_to(slack, worker, clock, RECSYS))
    body = await ok(slack, "sprint close", ephemeral=True)
    assert body["blocks"][-1]["elements"][0]["text"] == f"Posted in <#{RECSYS}> for the team."
    [post] = (await sent_to(slack, worker, clock, RECSYS))[before:]
    assert post["text"] == "Sprint Sprint 1 closed"
    # the same report the lead sees, without the note about where it was posted
    assert section_texts(post) == [
        "*Sprint Sprint 1 closed.* Velocity: 3 points (1 story done).\n"
        "Carried over to sprint *Sprint 2* (1): S-2 Train ranker\n"
        "Sprint 2 is now the current sprint."
    ]
    assert post["blocks"] == [b for b in body["blocks"] if b["type"] == "section"]


# --- each post can be turned off ------------------------------------------------------------------


async def _the_whole_sprint(slack: SlackDriver) -> dict[str, Any]:
    """Start a sprint, force Bob's story in, finish another, close it; the close answer."""
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, "story add Fix login --type eng --points 3")
    await ok(slack, "story add Train ranker --owner <@U02BOB|bob>")
    await ok(slack, 'sprint commit S-1 S-2 --force reason="planned"')
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "story done S-1")
    return await ok(slack, "sprint close")


@pytest.mark.parametrize("off", [None, "sprint_start", "commits", "done", "close"])
async def test_each_team_channel_post_can_be_turned_off(
    make_app: Callable[..., AbstractAsyncContextManager[SlackDriver]], db, worker, clock, off
):
    config = make_config(recsys={"announce": {off: False}} if off else None)
    async with make_app(config) as slack:
        closed = await _the_whole_sprint(slack)
        channel = await sent_to(slack, worker, clock, RECSYS)
        to_bob = posted(slack, BOB)
    expected = {"sprint_start": "start", "commits": "commit", "done": "done", "close": "close"}
    assert kinds(channel) == [k for key, k in expected.items() if key != off]
    # the note that the report was posted is there exactly when it was
    note = f"Posted in <#{RECSYS}> for the team."
    assert (note in shown(closed)) is (off != "close")
    # Bob's DMs are not team-channel posts: his assignment, and his story forced in, whatever is off
    assert [m["text"].split(" ", 2)[1] for m in to_bob] == ["assigned", "committed"]


async def test_the_config_turns_a_post_off_only_for_its_team(make_app, db, worker, clock):
    config = make_config(recsys={"announce": {"sprint_start": False}})
    async with make_app(config) as slack:
        await ok(slack, f"sprint start {SPRINT_1}")
        await ok(slack, f"sprint start {SPRINT_1}", user=FRANK, channel=PLATFORM)
        assert await sent_to(slack, worker, clock, RECSYS) == []
        assert kinds(posted(slack, PLATFORM)) == ["start"]


# --- user text in the posts -----------------------------------------------------------------------

NAME = "&lt;!channel&gt; &amp; co"  # a lead typed: <!channel> & co
TITLE = "&lt;!here&gt; ping"


async def test_posts_never_contain_a_typed_channel_mention(slack, db, worker, clock):
    await ok(slack, f'sprint start {NAME} --from 2026-12-07 --to 2026-12-18 --goal "{TITLE}"')
    await ok(slack, f"story add {TITLE} --type eng --owner <@U02BOB|bob> --points 1")
    await ok(slack, 'sprint commit S-1 --force reason="&lt;!channel&gt; says so"')
    await ok(slack, "dod S-1 code_review=https://git/pr/1 tests=unit")
    await ok(slack, "story done S-1")
    await ok(slack, "sprint close")
    channel = await sent_to(slack, worker, clock, RECSYS)
    assert kinds(channel) == ["start", "commit", "done", "close"]
    for message in posted(slack):
        for text in strings(message):
            assert "<!channel>" not in text and "<!here>" not in text, text
    assert channel[0]["text"] == "Sprint &lt;!channel&gt; &amp; co started"
    assert channel[1]["text"] == "1 committed to &lt;!channel&gt; &amp; co"
    assert channel[3]["text"] == "Sprint &lt;!channel&gt; &amp; co closed"
