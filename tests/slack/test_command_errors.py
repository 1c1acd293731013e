"""Every malformed or refused slash command: a 200 with an ephemeral ':warning:' naming the problem,
a usage line for malformed input and unknown ids (not for refused decisions), and nothing stored."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from tests.conftest import BOB, FRANK, PLATFORM, RECSYS
from tests.factories import snapshot
from tests.slack import helpers
from tests.slack.helpers import sent
from tests.slack_driver import SlackDriver

# a refused command stores nothing and sends nothing to Slack
refused = partial(helpers.refused, sends_nothing=True)


@pytest.fixture
async def story(slack: SlackDriver) -> str:
    """One ml story, S-1, in recsys's backlog."""
    response = await slack.command("story add Train ranker --points 3")
    assert "Added S-1" in response.json()["text"]
    return "S-1"


MALFORMED = [
    # what is typed, what the warning must say, the usage line it must show
    ("frobnicate", ["I don't know the command 'frobnicate'", "Type help"], "help"),
    ("story", ["'story' is not a command", "story add, story list, story show"], "help"),
    (
        "story frob",
        [
            "'story frob' is not a command",
            "Did you mean one of: story add, story list, story show, story edit, story assign, story start, "
            "story block, story unblock, story done, story drop, story archive?",
        ],
        "help",
    ),
    ("sprint frob", ["'sprint frob' is not a command", "sprint start", "sprint close"], "help"),
    ('story add "Fix ranker --points 3', ["A quote is not closed"], "help"),
    ("story add “Fix ranker --points 3", ["A quote is not closed"], "help"),
    # story add
    ("story add " + "x" * 201, ["The title is 201 characters long; keep it to 200"], "story add"),
    ("story add --points 3", ["A story needs a title"], "story add"),
    ('story add "   " --points 3', ["A story needs a title"], "story add"),
    ("story add Foo --type data", ["'data' is not a story type; use one of: eng, ml"], "story add"),
    ("story add Foo --type ML", ["'ML' is not a story type"], "story add"),
    ("story add Foo --points abc", ["--points must be a whole number, not 'abc'"], "story add"),
    ("story add Foo --points 2.5", ["--points must be a whole number, not '2.5'"], "story add"),
    ("story add Foo --points 500", ["Points must be a whole number from 0 to 100"], "story add"),
    ("story add Foo --points -1", ["Points must be a whole number from 0 to 100"], "story add"),
    ("story add Foo --points 101", ["Points must be a whole number from 0 to 100"], "story add"),
    ("story add Foo --points", ["--points needs a value"], "story add"),
    ("story add Foo --points 3 --points 5", ["--points is given twice"], "story add"),
    (
        "story add Foo --owner @nobody",
        ["I don't know a Slack user '@nobody'", "Mention them with @"],
        "story add",
    ),
    ("story add Foo --owner --points 3", ["--owner needs a value"], "story add"),
    ("story add Foo --sprint unknown", ["Team recsys has no sprint called 'unknown'"], "story add"),
    ("story add Foo --sprint current", ["Team recsys has no current sprint"], "story add"),
    ("story add Foo --sprint next", ["Team recsys has no next sprint planned"], "story add"),
    (
        "story add Foo --colour red",
        ["Unknown option --colour", "(options here: --type, --owner, --points, --sprint)"],
        "story add",
    ),
    # story list
    ("story list foo", ["Unexpected 'foo'; story list takes only options"], "story list"),
    ("story list --colour red", ["Unknown option --colour"], "story list"),
    ("story list --sprint", ["--sprint needs a value"], "story list"),
    ("story list --sprint nope", ["Team recsys has no sprint called 'nope'"], "story list"),
    ("story list --sprint current", ["Team recsys has no current sprint"], "story list"),
    # story show / edit / assign / done
    ("story show X-1", ["'X-1' is not a story id; story ids look like S-12"], "story show S-n"),
    ("story show S-999", ["There is no story S-999"], "story show S-n"),
    ("story show", ["Name one story, e.g. `story show S-12`"], "story show S-n"),
    ("story show S-1 S-2", ["Name one story"], "story show S-n"),
    ("story edit X-1", ["'X-1' is not a story id"], "story edit S-n"),
    ("story edit S-999", ["There is no story S-999"], "story edit S-n"),
    ("story edit", ["Name one story, e.g. `story edit S-12`"], "story edit S-n"),
    ("story assign X-1 <@U02BOB|bob>", ["'X-1' is not a story id"], "story assign S-n @user"),
    ("story assign S-999 <@U02BOB|bob>", ["There is no story S-999"], "story assign S-n @user"),
    ("story assign S-1", ["Name a story and a person"], "story assign S-n @user"),
    ("story assign S-1 @bob", ["I don't know a Slack user '@bob'"], "story assign S-n @user"),
    ("story assign S-1 <@U02BOB|bob> extra", ["Name a story and a person"], "story assign S-n @user"),
    ("story done X-1", ["'X-1' is not a story id"], "story done S-n"),
    ("story done S-999", ["There is no story S-999"], "story done S-n"),
    ("story done", ["Name one story, e.g. `story done S-12`"], "story done S-n"),
    # story start / block / unblock / drop / archive
    ("story start", ["Name one story, e.g. `story start S-12`"], "story start S-n"),
    ("story start X-1", ["'X-1' is not a story id"], "story start S-n"),
    ("story start S-999", ["There is no story S-999"], "story start S-n"),
    ("story start S-1 S-2", ["Name one story"], "story start S-n"),
    (
        "story block S-1",
        ['Say what it is waiting for, e.g. `story block S-12 reason="GPU quota"`'],
        "story block S-n reason=",
    ),
    ('story block S-1 reason="   "', ["Say what it is waiting for"], "story block S-n reason="),
    (
        'story block S-1 reason="' + "x" * 301 + '"',
        ["Keep the reason to 300 characters"],
        "story block S-n reason=",
    ),
    ('story block reason="GPU quota"', ["Name one story, e.g. `story block S-12"], "story block S-n"),
    (
        'story block S-1 owner=bob reason="GPU"',
        ['Unexpected owner=…; only reason="…" goes here.'],
        "story block S-n",
    ),
    ('story block S-999 reason="GPU quota"', ["There is no story S-999"], "story block S-n"),
    ("story unblock", ["Name one story, e.g. `story unblock S-12`"], "story unblock S-n"),
    ("story unblock S-999", ["There is no story S-999"], "story unblock S-n"),
    ("story drop", ["Name one story, e.g. `story drop S-12`"], "story drop S-n"),
    ("story drop X-1", ["'X-1' is not a story id"], "story drop S-n"),
    ("story drop S-999", ["There is no story S-999"], "story drop S-n"),
    ("story archive", ["Name one story, e.g. `story archive S-12`"], "story archive S-n"),
    ("story archive S-999", ["There is no story S-999"], "story archive S-n"),
    # ready / dod
    ("ready", ["Name a story, e.g. `ready S-12`"], "ready S-n"),
    ("ready X-1", ["'X-1' is not a story id"], "ready S-n"),
    ("ready S-999", ["There is no story S-999"], "ready S-n"),
    ("ready S-999 data_available=x", ["There is no story S-999"], "ready S-n"),
    (
        "ready S-1 colour=red",
        [
            "'colour' is not a Definition of Ready criterion for ml stories",
            "Known: data_available, feature_stability",
        ],
        "ready S-n",
    ),
    ("ready S-1 data_contract=n/a", ["Marking data_contract n/a needs a reason"], "ready S-n"),
    ('ready S-1 data_contract=N/A reason="  "', ["Marking data_contract n/a needs a reason"], "ready S-n"),
    (
        'ready S-1 data_available=x reason="because"',
        ['reason="…" goes with a criterion marked n/a'],
        "ready S-n",
    ),
    ('ready S-1 reason="because"', ['reason="…" goes with a criterion marked n/a'], "ready S-n"),
    ("ready S-1 S-2", ["Unexpected 'S-2': write criteria as key=value"], "ready S-n"),
    ("ready S-1 data available=x", ["Unexpected 'data'"], "ready S-n"),
    ("ready S-1 data_available=", ["data_available needs a value"], "ready S-n"),
    ("ready S-1 data_available=a data_available=b", ["data_available is given twice"], "ready S-n"),
    ("ready S-1 --force", ["Unknown option --force"], "ready S-n"),
    ("ready S-1 data_available=" + "x" * 2001, ["data_available is 2001 characters long"], "ready S-n"),
    ("dod", ["Name a story, e.g. `dod S-12`"], "dod S-n"),
    ("dod S-999", ["There is no story S-999"], "dod S-n"),
    (
        "dod S-1 data_available=x",
        ["'data_available' is not a Definition of Done criterion for ml stories", "data_lineage"],
        "dod S-n",
    ),
    ("dod S-1 monitoring=n/a", ["Marking monitoring n/a needs a reason"], "dod S-n"),
    ('dod S-1 monitoring=yes reason="x"', ['reason="…" goes with a criterion marked n/a'], "dod S-n"),
    # sprint start
    ("sprint start --from 2026-12-07 --to 2026-12-18", ["Give the sprint a name"], "sprint start NAME"),
    ('sprint start "Sprint 1" --to 2026-12-18', ["--from is required (YYYY-MM-DD)"], "sprint start NAME"),
    ('sprint start "Sprint 1" --from 2026-12-07', ["--to is required (YYYY-MM-DD)"], "sprint start NAME"),
    (
        'sprint start "Sprint 1" --from 2026-13-01 --to 2026-12-18',
        ["--from '2026-13-01' is not a date; write it as YYYY-MM-DD"],
        "sprint start NAME",
    ),
    (
        'sprint start "Sprint 1" --from 2026-12-07 --to tomorrow',
        ["--to 'tomorrow' is not a date"],
        "sprint start NAME",
    ),
    (
        'sprint start "Sprint 1" --from 2026-12-18 --to 2026-12-07',
        ["--to must be after --from"],
        "sprint start NAME",
    ),
    (
        'sprint start "Sprint 1" --from 2026-12-07 --to 2026-12-07',
        ["--to must be after --from"],
        "sprint start NAME",
    ),
    (
        'sprint start "Sprint 1" --from 2026-12-07 --to 2027-03-05',  # 88 days
        ["A sprint can last at most 42 days"],
        "sprint start NAME",
    ),
    (
        'sprint start "Sprint 1" --from 2026-12-07 --to 2027-01-19',  # 43 days
        ["A sprint can last at most 42 days"],
        "sprint start NAME",
    ),
    (
        # over before it would begin: the app's clock says Monday 7 December 2026
        'sprint start "Sprint 1" --from 2026-11-02 --to 2026-11-13',
        ["2026-11-02..2026-11-13 ended 24 days ago; check --from and --to (today is 2026-12-07)."],
        "sprint start NAME",
    ),
    (
        'sprint start "Sprint 1" --from 2026-11-23 --to 2026-12-06',
        ["2026-11-23..2026-12-06 ended 1 day ago; check --from and --to (today is 2026-12-07)."],
        "sprint start NAME",
    ),
    (
        "sprint start current --from 2026-12-07 --to 2026-12-18",
        ["Choose another sprint name"],
        "sprint start NAME",
    ),
    (
        'sprint start "Sprint 1" --from 2026-12-07 --to 2026-12-18 --goal "' + "g" * 501 + '"',
        ["Keep the goal under 500 characters"],
        "sprint start NAME",
    ),
    (
        'sprint start "Sprint 1" --from 2026-12-07 --to 2026-12-18 --length 2w',
        ["Unknown option --length", "--from, --to, --goal"],
        "sprint start NAME",
    ),
    # sprint current / plan / commit / close
    ("sprint current", ["Team recsys has no current sprint"], "sprint current"),
    ("sprint current now", ["Unexpected 'now'; `sprint current` takes no arguments"], "sprint current"),
    ("sprint plan", ["Team recsys has no sprint to plan"], "sprint plan"),
    ('sprint plan "Sprint 9"', ["Team recsys has no sprint called 'Sprint 9'"], "sprint plan"),
    ("sprint commit", ["Name at least one story to commit"], "sprint commit S-n"),
    ("sprint commit S-1 --force", ["--force needs a reason"], "sprint commit S-n"),
    ('sprint commit S-1 reason="agreed"', ['reason="…" goes with --force'], "sprint commit S-n"),
    ("sprint commit S-1 points=3", ["Unexpected points=…"], "sprint commit S-n"),
    ("sprint commit S-1", ["Team recsys has no sprint to plan"], "sprint commit S-n"),
    ("sprint commit S-1 --sprint nope", ["Team recsys has no sprint called 'nope'"], "sprint commit S-n"),
    ("sprint commit S-1 --to nope", ["Team recsys has no sprint called 'nope'"], "sprint commit S-n"),
    ("sprint commit S-1 --to next", ["Team recsys has no next sprint planned"], "sprint commit S-n"),
    ("sprint commit S-1 --to current", ["Team recsys has no current sprint"], "sprint commit S-n"),
    ("sprint commit S-1 --to", ["--to needs a value"], "sprint commit S-n"),
    ("sprint close", ["Team recsys has no current sprint to close"], "sprint close"),
    ("sprint close now", ["Unexpected 'now'; `sprint close` closes the current sprint"], "sprint close"),
]


def _id(command: str) -> str:
    return command if len(command) <= 60 else f"{command[:40]}…({len(command)} chars)"


@pytest.mark.parametrize(("command", "needles", "usage"), MALFORMED, ids=[_id(c) for c, _, _ in MALFORMED])
async def test_malformed_command_is_refused_with_usage_and_nothing_stored(
    slack, db, story, command, needles, usage
):
    await refused(slack, db, command, *needles, usage=usage)


REFUSED_DECISIONS = [
    # allowed input, but not for this person: no usage line, the reason named
    (
        'sprint start "Sprint 1" --from 2026-12-07 --to 2026-12-18',
        "Only the leads of team recsys can start a sprint",
    ),
    ("sprint commit S-1", "Only the leads of team recsys can commit stories to a sprint"),
    ('sprint commit S-1 --force reason="agreed"', "Only the leads of team recsys can commit stories"),
    ("sprint close", "Only the leads of team recsys can close a sprint"),
]


@pytest.mark.parametrize(("command", "needle"), REFUSED_DECISIONS, ids=[c for c, _ in REFUSED_DECISIONS])
async def test_sprint_decisions_by_a_non_lead_are_forbidden_without_usage(slack, db, story, command, needle):
    await refused(slack, db, command, needle, usage=False, user=BOB)


async def test_refused_decision_on_an_existing_story_has_no_usage_line(slack, db, story):
    await slack.command("story assign S-1 <@U02BOB|bob>")
    await refused(slack, db, "story assign S-1 <@U02BOB|bob>", "S-1 is already assigned", usage=False)


async def test_done_story_refuses_more_answers_without_usage(slack, db):
    await slack.command("story add Fix login --type eng")
    await slack.command("dod S-1 code_review=https://git/pr/1 tests=unit")
    assert "is done" in (await slack.command("story done S-1")).json()["text"]
    await refused(slack, db, "dod S-1 tests=more", "S-1 is already done", usage=False)
    await refused(slack, db, "story done S-1", "S-1 is already done", usage=False)
    await refused(slack, db, "story assign S-1 <@U02BOB|bob>", "S-1 is done", usage=False)


async def test_an_empty_command_shows_help(slack):
    body = (await slack.command("")).json()
    assert body["response_type"] == "ephemeral"
    assert body["text"] == "/scrum commands"


async def test_subcommand_words_are_case_insensitive(slack, db):
    response = await slack.command("STORY Add Fix ranker")
    assert "Added S-1" in response.json()["text"]


async def test_outside_a_team_channel_a_stranger_is_asked_where_to_run_it(slack, db):
    await refused(
        slack,
        db,
        "story add Fix ranker",
        "I can't tell which team this is for (recsys, platform)",
        "Run the command in your team's channel",
        usage="story add",
        user="U05EVE",
        channel="D0555EVE",
    )


async def test_outside_a_team_channel_a_member_gets_their_only_team(slack, db):
    response = await slack.command("story add Fix dashboards", user=FRANK, channel="D0444FRANK")
    assert "Added S-1" in response.json()["text"]
    listed = (await slack.command("story list", user=FRANK, channel=PLATFORM)).json()
    assert "Fix dashboards" in str(listed["blocks"])
    assert "no stories match" in str((await slack.command("story list", channel=RECSYS)).json()["blocks"])


async def test_problem_text_echoing_user_input_is_escaped(slack, db):
    text = await refused(
        slack, db, "story show &lt;!channel&gt;", "is not a story id", usage="story show S-n"
    )
    assert "<!channel>" not in text
    assert "'&lt;!channel&gt;' is not a story id" in text


async def test_unknown_option_value_is_escaped(slack, db):
    text = await refused(
        slack, db, "story add Foo --type &lt;!here&gt;", "is not a story type", usage="story add"
    )
    assert "<!here>" not in text
    assert "'&lt;!here&gt;' is not a story type" in text


async def test_unknown_command_echoes_what_was_typed(slack, db):
    # the person typed "a&b"; Slack sends "a&amp;b"; the warning must read 'a&b', i.e. 'a&amp;b' in mrkdwn
    text = await refused(slack, db, "a&amp;b", "I don't know the command", usage="help")
    assert "'a&amp;b'" in text


async def test_usage_line_is_escaped(slack, db):
    text = await refused(
        slack, db, "story add Foo --colour red", "Unknown option --colour", usage="story add"
    )
    assert "story add &lt;title&gt;" in text
    assert "<title>" not in text


# --- help -----------------------------------------------------------------------------------------


def shown(body: dict[str, Any]) -> str:
    parts = [body.get("text", "")]
    for block in body.get("blocks", []):
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [e["text"] for e in block.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(parts)


async def test_help_lists_every_subcommand(slack, db):
    before = await snapshot(db)
    response = await slack.command("help", user=BOB)
    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"] == "/scrum commands"
    text = shown(body)
    assert "*Cadence* — what you can type after `/scrum`:" in text
    for usage, summary in [
        ("help", "List every command"),
        ("story add", "Add a story (no arguments opens a form)"),
        (
            "story list [--mine] [--sprint current|next|NAME|backlog] [--not-ready] [--all]",
            "List open stories",
        ),
        ("story show S-n", "Show a story with its checklists"),
        ("story edit S-n", "Edit a story in a form"),
        ("story assign S-n @user", "Give a story a new owner"),
        ("story start S-n", "Mark a story in progress"),
        ('story block S-n reason="…"', "Mark a story blocked, saying what it waits for"),
        ("story unblock S-n", "Back in progress"),
        ("story done S-n", "Mark done (checks the Definition of Done)"),
        ("story drop S-n", "Take a story out of its sprint, back to the backlog"),
        ("story archive S-n", "Put away a story nobody will do (audited)"),
        ('ready S-n [key=value …] [key=n/a reason="…"]', "Show or fill the Definition of Ready"),
        ('dod S-n [key=value …] [key=n/a reason="…"]', "Show or fill the Definition of Done"),
        ('sprint start NAME --from YYYY-MM-DD --to YYYY-MM-DD [--goal "…"]', "Create a sprint"),
        ("sprint current", "The current sprint at a glance"),
        ("sprint plan [NAME]", "Readiness gate for the sprint being planned"),
        (
            'sprint commit S-n … [--to current|next|NAME] [--force reason="…"]',
            "Add Ready stories to a sprint: the next one if planned, else the current (--to picks)",
        ),
        ("sprint close", "Close the sprint; unfinished stories carry over"),
    ]:
        assert f"`/scrum {usage}" in text, usage
        assert summary in text, summary
    assert "Story ids look like S-12. Dates are YYYY-MM-DD." in text
    assert len(body["blocks"]) <= 50
    assert await snapshot(db) == before
    assert sent(slack) == []


async def test_help_ignores_what_follows_it(slack):
    assert (await slack.command("help story")).json()["text"] == "/scrum commands"


async def test_help_usage_lines_are_escaped(slack):
    text = shown((await slack.command("help")).json())
    assert "`/scrum story add &lt;title&gt; [--type ml|eng]" in text
    assert "<title>" not in text
