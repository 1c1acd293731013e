"""Unit tests of the Block Kit builders (bot/slack/blocks): escaping, Slack's size limits, known ids."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from slack_sdk.models.blocks import (
    ContextBlock,
    DividerBlock,
    ImageElement,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.config import AppConfig
from bot.services.readiness import Checklist, CriterionStatus, Weigher, stored_keys
from bot.services.sprints import CloseReport, Plan, PlannedStory, SprintOverview
from bot.services.stories import StoryListing, StoryPage
from bot.slack import ids
from bot.slack.blocks import (
    MAX_BLOCKS,
    MAX_VIEW_BLOCKS,
    button,
    context,
    divider,
    error_message,
    message,
    render,
    section,
)
from bot.slack.blocks.checklist import checklist_blocks, checklist_lines
from bot.slack.blocks.home import home_view
from bot.slack.blocks.modals import criteria_modal, story_modal
from bot.slack.blocks.sprints import (
    close_report,
    forced_owner_dm,
    plan_blocks,
    sprint_board,
    sprint_glance,
    sprint_label,
    sprint_started,
    stories_committed,
    story_finished,
)
from bot.slack.blocks.stories import PAGE_SIZE, story_card, story_line, story_list
from bot.store.models import Sprint, Story
from tests.conftest import ALICE, BOB

EVIL = "<!channel> & <https://evil|click>"
EVIL_ESCAPED = "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"


# ── building service results without a database ─────────────────────────────────────────────


def make_sprint(*, name: str = "Sprint 14", goal: str | None = "Ship it", state: str = "active") -> Sprint:
    return Sprint(
        id=1,
        team="recsys",
        name=name,
        starts_on=date(2026, 12, 7),
        ends_on=date(2026, 12, 18),
        goal=goal,
        state=state,
        created_by=ALICE,
    )


def make_story(n: int, *, title: str | None = None, owner: str | None = ALICE, status: str = "open") -> Story:
    return Story(
        id=n,
        number=n,
        team="recsys",
        type="ml",
        title=title or f"Story number {n}",
        owner=owner,
        points=n % 8,
        sprint_id=None,
        status=status,
        created_by=ALICE,
    )


def make_checklist(
    config: AppConfig, story: Story, kind: str = "ready", *, answered: int = 0, text: str = "v7"
) -> Checklist:
    items = []
    for i, criterion in enumerate(config.criteria(kind, story.type)):
        if i < answered:
            items.append(CriterionStatus(criterion, value=text, set_by=ALICE))
        else:
            items.append(CriterionStatus(criterion))
    return Checklist(story.key, kind, tuple(items))


def listing(config: AppConfig, n: int, *, title: str | None = None, answered: int = 0) -> StoryListing:
    story = make_story(n, title=title)
    return StoryListing(
        story, "Sprint 14" if n % 2 else None, make_checklist(config, story, answered=answered)
    )


def page_of(items: list[StoryListing], page: int = 1) -> StoryPage:
    """What page_of_stories returns for `page` of these stories."""
    return StoryPage(items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE], len(items), page, PAGE_SIZE)


def planned(config: AppConfig, n: int, *, title: str | None = None, ready: bool) -> PlannedStory:
    story = make_story(n, title=title)
    return PlannedStory(story, make_checklist(config, story, answered=6 if ready else n % 6))


# ── walking rendered blocks ──────────────────────────────────────────────────────────────────


def as_dicts(blocks: Any) -> Any:
    return render(blocks) if blocks and not isinstance(blocks[0], dict) else blocks


def nodes(tree: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            out.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(tree)
    return out


def mrkdwn(tree: Any) -> str:
    return "\n".join(n["text"] for n in nodes(tree) if n.get("type") == "mrkdwn")


def assert_escaped(tree: Any) -> None:
    shown = mrkdwn(tree)
    assert EVIL_ESCAPED in shown, shown
    assert "<!channel>" not in shown
    assert "<https://evil" not in shown
    assert "&amp;lt;" not in shown and "&amp;amp;" not in shown  # escaped once, not twice


def action_ids(tree: Any) -> list[str]:
    return [n["action_id"] for n in nodes(tree) if "action_id" in n]


def assert_within_slack_limits(tree: Any) -> None:
    """The per-element limits Slack enforces (a message or view breaking one is rejected whole)."""
    for n in nodes(tree):
        kind = n.get("type")
        if kind == "section" and "text" in n:
            assert len(n["text"]["text"]) <= 3000
        if kind == "header":
            assert len(n["text"]["text"]) <= 150
        if kind == "button":
            assert len(n["text"]["text"]) <= 75
            assert len(n.get("value", "")) <= 2000
            assert len(n["action_id"]) <= 255
        if kind == "context":
            assert len(n["elements"]) <= 10
        if kind == "actions":
            assert len(n["elements"]) <= 25
        if kind == "plain_text_input" and "initial_value" in n and "max_length" in n:
            assert len(n["initial_value"]) <= n["max_length"]


# ── escaping user text in mrkdwn ─────────────────────────────────────────────────────────────


def test_escape_covers_the_three_control_characters():
    from bot.text import escape

    assert escape(EVIL) == EVIL_ESCAPED
    assert escape("a && b") == "a &amp;&amp; b"
    assert escape("plain") == "plain"


def test_story_line_escapes_the_title(config):
    assert_escaped([{"type": "mrkdwn", "text": story_line(listing(config, 1, title=EVIL))}])


def test_story_list_escapes_titles(config):
    items = [listing(config, n, title=EVIL) for n in range(1, 4)]
    assert_escaped(render(story_list(page_of(items), title="Stories · team recsys")))


def test_story_list_escapes_its_title(config):
    blocks = render(story_list(page_of([listing(config, 1)]), title=f"Stories · sprint {EVIL}"))
    assert_escaped(blocks)


def test_empty_story_list_escapes_its_title():
    assert_escaped(render(story_list(page_of([]), title=f"Stories · sprint {EVIL}")))


def test_story_card_escapes_title_and_sprint_name(config):
    story = make_story(1, title=EVIL)
    blocks = render(
        story_card(
            story,
            sprint_name=EVIL,
            ready=make_checklist(config, story),
            done=make_checklist(config, story, "done"),
        )
    )
    assert_escaped(blocks)
    assert mrkdwn(blocks).count(EVIL_ESCAPED) == 2


def test_checklist_escapes_answers_waiver_reasons_and_title(config):
    story = make_story(1)
    criteria = config.criteria("ready", "ml")
    checklist = Checklist(
        story.key,
        "ready",
        (
            CriterionStatus(criteria[0], value=EVIL, set_by=ALICE),
            CriterionStatus(criteria[1], na_reason=EVIL, set_by=BOB),
            *(CriterionStatus(c) for c in criteria[2:]),
        ),
    )
    lines = checklist_lines(checklist)
    assert lines.count(EVIL_ESCAPED) == 2
    assert "<!channel>" not in lines
    assert f"<@{BOB}>" in lines  # who waived it: a real mention, not escaped
    assert_escaped(render(checklist_blocks(checklist, title=EVIL)))


def test_long_answers_are_shortened_in_the_checklist(config):
    story = make_story(1)
    checklist = make_checklist(config, story, answered=6, text="x" * 1900)
    for line in checklist_lines(checklist).split("\n"):
        assert len(line) < 300
    assert_within_slack_limits(render(checklist_blocks(checklist, title="Definition of Ready")))


def test_home_view_escapes_titles_sprint_names_and_goals(config):
    sprint = make_sprint(name=EVIL, goal=EVIL)
    mine = [StoryListing(make_story(1, title=EVIL), EVIL, make_checklist(config, make_story(1)))]
    overview = SprintOverview(sprint, mine)
    view = home_view(mine=mine, sprints=[("recsys", overview)], command="/scrum")
    assert_escaped(view)
    assert mrkdwn(view).count(EVIL_ESCAPED) == 4


def test_sprint_blocks_escape_names_goals_and_titles(config):
    sprint = make_sprint(name=EVIL, goal=EVIL)
    assert_escaped(render(sprint_glance(SprintOverview(sprint, [listing(config, 1, title=EVIL)]))))
    plan = Plan.of(
        sprint,
        [planned(config, 1, title=EVIL, ready=True)],
        [planned(config, 2, title=EVIL, ready=False)],
    )
    assert_escaped(render(plan_blocks(plan, "/scrum")))
    report = CloseReport(sprint, [make_story(1)], [make_story(2, title=EVIL)], make_sprint(name=EVIL))
    assert_escaped(render(close_report(report)))


def test_error_message_escapes_the_problem():
    body = error_message(f"There is no story {EVIL}.", usage="story show S-n")
    assert EVIL_ESCAPED in body["text"]
    assert "<!channel>" not in body["text"]
    assert body["response_type"] == "ephemeral"


# ── size limits ──────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("count", [0, 1, 20, 21, 40, 41, 200])
def test_every_page_of_a_story_list_fits_in_a_message(config, count):
    items = [listing(config, n, title=("&<>" * 66) + str(n)) for n in range(1, count + 1)]
    pages = max(1, -(-count // PAGE_SIZE))
    seen: list[str] = []
    for page in range(1, pages + 1):
        blocks = render(story_list(page_of(items, page), title="Stories", filters={"tokens": ["--mine"]}))
        assert len(blocks) <= MAX_BLOCKS
        assert_within_slack_limits(blocks)
        texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
        keys = [t.split("*")[1] for t in texts if t.startswith("*S-")]
        assert len(keys) == (min(PAGE_SIZE, count - (page - 1) * PAGE_SIZE) if count else 0)
        seen += keys
    assert seen == [f"S-{n}" for n in range(1, count + 1)]


@pytest.mark.parametrize(
    ("count", "page", "buttons"), [(20, 1, []), (21, 1, ["next"]), (41, 2, ["prev", "next"])]
)
def test_story_list_page_buttons_carry_page_and_filters(config, count, page, buttons):
    items = [listing(config, n) for n in range(1, count + 1)]
    blocks = render(story_list(page_of(items, page), title="Stories", filters={"tokens": ["--not-ready"]}))
    found = {n["action_id"]: n for n in nodes(blocks) if n.get("type") == "button"}
    assert sorted(found) == sorted(f"{ids.STORY_LIST_PAGE}_{b}" for b in buttons)
    for direction, pressed in found.items():
        value = json.loads(pressed["value"])
        assert value == {
            "page": page + (1 if direction.endswith("next") else -1),
            "filters": {"tokens": ["--not-ready"]},
        }


def _plan(config: AppConfig, count: int, title: str | None = None) -> Plan:
    committed = [planned(config, n, title=title, ready=n % 3 == 0) for n in range(1, count // 4 + 1)]
    candidates = [planned(config, n, title=title, ready=n % 2 == 0) for n in range(count // 4 + 1, count + 1)]
    return Plan.of(make_sprint(), committed, candidates)


def _headings(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        b["text"]["text"].split(" (")[0]
        for b in blocks
        if b["type"] == "section" and b["text"]["text"].startswith(("*Committed", "*Ready", "*Not Ready"))
    ]


@pytest.mark.parametrize("count", [0, 1, 50, 200])
def test_plan_fits_in_a_message_and_keeps_every_section(config, count):
    plan = Plan.of(
        make_sprint(), [], [planned(config, n, title="T" * 200, ready=n % 2 == 0) for n in range(count)]
    )
    blocks = render(plan_blocks(plan, "/scrum"))
    assert len(blocks) <= MAX_BLOCKS
    assert_within_slack_limits(blocks)
    assert _headings(blocks) == ["*Committed", "*Ready in the backlog", "*Not Ready"]
    # the hint at the end survives: what to commit, or (nothing to commit) how to fill the backlog
    assert ("sprint commit" if count else "The backlog is empty") in mrkdwn(blocks[-1:])
    if count > 80:
        assert "lists them all." in mrkdwn(blocks)


def test_plan_with_200_committed_and_candidates_fits(config):
    blocks = render(
        plan_blocks(_plan(config, 200, title="Retrain the ranker on the new click logs " * 4), "/scrum")
    )
    assert len(blocks) <= MAX_BLOCKS
    assert _headings(blocks) == ["*Committed", "*Ready in the backlog", "*Not Ready"]
    assert "sprint commit" in mrkdwn(blocks[-1:])


def test_plan_with_long_escaped_titles_keeps_the_not_ready_section(config):
    blocks = render(plan_blocks(_plan(config, 200, title="<&>" * 66), "/scrum"))
    assert len(blocks) <= MAX_BLOCKS
    assert _headings(blocks) == ["*Committed", "*Ready in the backlog", "*Not Ready"]
    assert "sprint commit" in mrkdwn(blocks[-1:])


def test_plan_rows_that_share_a_readiness_each_end_with_their_own_gaps(config):
    """Rows read from the database share one Readiness per combination of criteria met (Weigher), and the
    plan works out each combination's ending once: every row still ends with what it lacks."""
    weigh = Weigher(config, "ready")
    stories = [make_story(n) for n in range(1, 6)]
    keys = [[], ["data_available"], [], ["data_available", "feature_stability"], ["data_available"]]
    rows = [s.model_copy(update={"ready_keys": stored_keys(k)}) for s, k in zip(stories, keys, strict=True)]
    planned_rows = [PlannedStory(s, weigh(s)) for s in rows]
    assert planned_rows[0].ready is planned_rows[2].ready  # shared: the same combination
    text = mrkdwn(render(plan_blocks(Plan.of(make_sprint(), [], planned_rows), "/scrum")))
    lines = {line.split(" ")[0]: line for line in text.splitlines() if line.startswith("*S-")}
    everything = "Data availability, Feature stability, Reproducible environment"
    assert lines["*S-1*"].endswith(
        f"not Ready (0/6) — lacks {everything}, Measurable evaluation criteria, "
        "Data contract, Validation data"
    )
    assert lines["*S-3*"] == lines["*S-1*"].replace("S-1", "S-3").replace("number 1", "number 3").replace(
        "· 1 pt", "· 3 pt"
    )
    assert lines["*S-2*"].endswith(
        "not Ready (1/6) — lacks Feature stability, Reproducible environment, "
        "Measurable evaluation criteria, Data contract, Validation data"
    )
    assert lines["*S-5*"].endswith(lines["*S-2*"].split(" · :red_circle: ")[1])
    assert lines["*S-4*"].endswith(
        "not Ready (2/6) — lacks Reproducible environment, "
        "Measurable evaluation criteria, Data contract, Validation data"
    )


@pytest.mark.parametrize("count", [0, 1, 30, 31, 200])
def test_home_view_fits_in_a_view(config, count):
    mine = [listing(config, n, title="<&>" * 66, answered=n % 7) for n in range(1, count + 1)]
    sprint = make_sprint()
    sprints = [("recsys", SprintOverview(sprint, mine[:50])), ("platform", None)]
    view = home_view(mine=mine, sprints=sprints, command="/scrum")
    assert view["type"] == "home"
    assert len(view["blocks"]) <= MAX_VIEW_BLOCKS
    assert_within_slack_limits(view)
    rows = [b for b in view["blocks"] if b["type"] == "section" and b.get("accessory")]
    assert len(rows) == min(count, 30)
    assert "help` anywhere" in mrkdwn(view["blocks"][-1:])  # nothing was cut off the end
    if count > 30:
        assert f"{count - 30} more" in mrkdwn(view)


def test_modals_stay_within_slack_limits(config):
    story = make_story(7, title="x" * 200)
    story.points = 100
    long_sprints = [make_sprint(name="N" * 80), make_sprint(name="M" * 80, state="planned")]
    long_sprints[1].id = 2
    view = story_modal(
        story_types=config.story_types,
        sprints=long_sprints,
        story=story,
        default_type="ml",
        channel="C0123RECSYS",
        team="recsys",
        response_url="https://hooks.slack.com/actions/T0001/" + "1" * 13 + "/" + "a" * 24,
        may_force=True,
    )
    assert len(view["title"]["text"]) <= 24
    assert len(view["private_metadata"]) <= 3000
    assert len(view["blocks"]) <= MAX_VIEW_BLOCKS
    assert all(len(o["text"]["text"]) <= 75 for o in nodes(view) if "value" in o and "text" in o)
    assert_within_slack_limits(view)
    checklist = make_checklist(config, story, "ready", answered=6, text="y" * 2000)
    view = criteria_modal(checklist, story_title=story.title, channel=None)
    assert len(view["title"]["text"]) <= 24
    assert_within_slack_limits(view)


# ── identifiers ──────────────────────────────────────────────────────────────────────────────

KNOWN = {v for k, v in vars(ids).items() if k.isupper() and isinstance(v, str)}
PAGE_IDS = {f"{ids.STORY_LIST_PAGE}_prev", f"{ids.STORY_LIST_PAGE}_next"}


def test_ids_are_unique():
    constants = [v for k, v in vars(ids).items() if k.isupper() and isinstance(v, str)]
    assert len(constants) == len(set(constants))


def _everything_rendered(config: AppConfig) -> list[Any]:
    story = make_story(3)
    ready, done = make_checklist(config, story, answered=2), make_checklist(config, story, "done")
    items = [listing(config, n, answered=n % 7) for n in range(1, 50)]
    sprint = make_sprint()
    return [
        *(render(story_list(page_of(items, p), title="S", filters={"tokens": []})) for p in (1, 2, 3)),
        render(story_card(story, sprint_name="Sprint 14", ready=ready, done=done)),
        render(checklist_blocks(ready, title="Definition of Ready")),
        render(checklist_blocks(done, title="Definition of Done")),
        home_view(mine=items, sprints=[("recsys", SprintOverview(sprint, items))], command="/scrum"),
        render(plan_blocks(_plan(config, 20), "/scrum")),
        story_modal(
            story_types=config.story_types,
            sprints=[sprint],
            story=story,
            default_type="ml",
            channel=None,
            team="recsys",
            may_force=True,
        ),
        criteria_modal(ready, story_title="T", channel=None),
        criteria_modal(done, story_title="T", channel=None),
        message("t", story_card(story, sprint_name=None, ready=ready, done=done)),
    ]


def test_every_action_id_comes_from_the_ids_module(config):
    used = set()
    for tree in _everything_rendered(config):
        used |= set(action_ids(tree))
    assert used - KNOWN - PAGE_IDS == set()
    # Every button and input the bot can render is in use somewhere (nothing dead in ids.py).
    assert {
        ids.OPEN_READY_MODAL,
        ids.OPEN_DONE_MODAL,
        ids.OPEN_STORY_EDIT,
        ids.OPEN_STORY_ADD,
        ids.MARK_DONE,
        ids.INPUT,
        *PAGE_IDS,
    } <= used


def test_page_buttons_share_the_prefix_their_listener_matches():
    assert all(p.startswith(ids.STORY_LIST_PAGE) for p in PAGE_IDS)


def test_modal_callback_and_block_ids_come_from_the_ids_module(config):
    trees = _everything_rendered(config)
    views = [t for t in trees if isinstance(t, dict) and t.get("type") == "modal"]
    assert {v["callback_id"] for v in views} == {ids.STORY_MODAL, ids.CRITERIA_MODAL}
    fields = {
        ids.FIELD_TITLE,
        ids.FIELD_TYPE,
        ids.FIELD_OWNER,
        ids.FIELD_POINTS,
        ids.FIELD_SPRINT,
        ids.FIELD_REASON,
    }
    for view in views:
        for b in view["blocks"]:
            if b["type"] == "input":
                assert b["block_id"] in fields or b["block_id"].startswith(ids.CRITERION_PREFIX)
                assert b["element"]["action_id"] == ids.INPUT


# ── the sprint's labels, board and team-channel posts ────────────────────────────────────────

MON, FRI = date(2026, 12, 7), date(2026, 12, 18)  # the first and last day of make_sprint()


@pytest.mark.parametrize(
    ("state", "today", "label"),
    [
        ("active", MON, "*Sprint 14* (current, day 1 of 10)"),
        ("active", date(2026, 12, 9), "*Sprint 14* (current, day 3 of 10)"),
        ("active", FRI, "*Sprint 14* (current, day 10 of 10)"),
        ("active", date(2026, 12, 19), "*Sprint 14* (current, ended Fri 18 Dec, 1 day ago)"),
        ("active", date(2026, 12, 21), "*Sprint 14* (current, ended Fri 18 Dec, 3 days ago)"),
        ("active", date(2026, 12, 4), "*Sprint 14* (current, starts Mon 07 Dec)"),
        ("planned", date(2026, 12, 4), "*Sprint 14* (next, starts Mon 07 Dec)"),
        ("planned", MON, "*Sprint 14* (next, day 1 of 10)"),
        ("closed", date(2026, 12, 21), "*Sprint 14* (closed)"),
    ],
)
def test_sprint_label_names_the_sprint_and_where_it_stands(state, today, label):
    assert sprint_label(make_sprint(state=state), today) == label


def test_sprint_label_escapes_the_name():
    assert sprint_label(make_sprint(name=EVIL), MON) == f"*{EVIL_ESCAPED}* (current, day 1 of 10)"


def overview(config: AppConfig, statuses: list[str], *, title: str | None = None) -> SprintOverview:
    items = []
    for n, status in enumerate(statuses, start=1):
        story = make_story(n, title=title, status=status, owner=BOB if n % 2 else None)
        if status == "blocked":
            story.blocked_reason = f"reason {n}"
        items.append(StoryListing(story, "Sprint 14", make_checklist(config, story, answered=n % 7)))
    return SprintOverview(make_sprint(goal=None), items)


def test_sprint_board_groups_blocked_in_progress_to_do_and_done(config):
    view = overview(config, ["open", "blocked", "done", "in_progress", "open", "blocked"])
    blocks = render(sprint_board(view, today=date(2026, 12, 9)))
    assert mrkdwn(blocks[:2]).split("\n") == [
        "*Sprint 14* (current) · Mon 07 Dec → Fri 18 Dec 2026",
        "Day 3 of 10 · 7 working days left · 1/6 stories done · 3/21 points · 2/6 Ready or done",
    ]
    groups = [b["text"]["text"].split("\n") for b in blocks[2:]]
    assert [g[0] for g in groups] == [
        "*:octagonal_sign: Blocked (2 · 8 pt)*",  # S-2 (2 pt) and S-6 (6 pt)
        "*:large_blue_circle: In progress (1 · 4 pt)*",
        "*:white_circle: To do (2 · 6 pt)*",
        "*:white_check_mark: Done (1 · 3 pt)*",
    ]
    assert groups[0][1] == "*S-2* Story number 2 (2 pt) · :red_circle: not Ready (2/6) — _reason 2_"
    assert groups[0][2] == "*S-6* Story number 6 (6 pt) · :large_green_circle: Ready — _reason 6_"
    assert groups[1][1] == "*S-4* Story number 4 (4 pt) · :red_circle: not Ready (4/6)"
    assert groups[3][1] == f"*S-3* Story number 3 (3 pt) · <@{BOB}>"  # done: no readiness badge


def test_sprint_board_of_an_empty_sprint_says_how_to_fill_it(config):
    blocks = render(sprint_board(overview(config, []), today=MON))
    assert mrkdwn(blocks[-1:]) == "_No stories in this sprint yet: `sprint commit S-n` adds them._"


@pytest.mark.parametrize("count", [1, 40, 200])
def test_sprint_board_fits_in_a_message(config, count):
    statuses = ["open", "in_progress", "blocked", "done"]
    view = overview(config, [statuses[n % 4] for n in range(count)], title="<&>" * 66)
    blocks = render(sprint_board(view, today=MON))
    assert len(blocks) <= MAX_BLOCKS
    assert_within_slack_limits(blocks)


def test_sprint_board_escapes_titles_reasons_and_names(config):
    view = overview(config, ["blocked", "done"], title=EVIL)
    view.stories[0].story.blocked_reason = EVIL
    view.sprint.name = view.sprint.goal = EVIL
    blocks = render(sprint_board(view, today=MON))
    assert_escaped(blocks)
    assert mrkdwn(blocks).count(EVIL_ESCAPED) == 5  # name, goal, two titles, the reason


def test_sprint_posts_escape_what_people_typed(config):
    sprint = make_sprint(name=EVIL, goal=EVIL)
    story = make_story(1, title=EVIL)
    assert_escaped(render(sprint_started(sprint, actor=ALICE, today=MON)))
    committed = stories_committed(
        sprint, [story], forced=[story], actor=ALICE, scope_added=True, reason=EVIL, today=MON
    )
    assert_escaped(render(committed))
    assert mrkdwn(render(committed)).count(EVIL_ESCAPED) == 3  # the sprint, the title, the reason
    dm = forced_owner_dm(story, sprint, actor=ALICE, reason=EVIL, missing=[EVIL])
    assert EVIL_ESCAPED in dm and "<!channel>" not in dm and dm.count(EVIL_ESCAPED) == 4
    view = SprintOverview(sprint, [StoryListing(story, EVIL, make_checklist(config, story))])
    assert_escaped(render(story_finished(story, actor=BOB, view=view)))


def test_a_commit_post_counts_points_and_names_forced_stories_once():
    sprint = make_sprint()
    a, b, c = make_story(1), make_story(2), make_story(8)  # 1, 2 and 0 points
    c.points = None
    blocks = render(
        stories_committed(
            sprint, [a, b, c], forced=[b], actor=ALICE, scope_added=False, reason=None, today=MON
        )
    )
    assert mrkdwn(blocks) == (
        f":inbox_tray: Committed to *Sprint 14* (current, day 1 of 10) by <@{ALICE}> · 3 points\n"
        "• *S-1* Story number 1 (1 pt)\n"
        "• *S-2* Story number 2 (2 pt) — :warning: not Ready\n"
        "• *S-8* Story number 8\n"
        ":warning: S-2 went in although not Ready (audited)"
    )


def test_a_commit_post_of_many_stories_fits_in_a_message():
    stories = [make_story(n, title="T" * 200) for n in range(1, 201)]
    blocks = render(
        stories_committed(
            make_sprint(), stories, forced=stories, actor=ALICE, scope_added=True, reason="x" * 300, today=MON
        )
    )
    assert len(blocks) <= MAX_BLOCKS
    assert_within_slack_limits(blocks)


def test_the_forced_owner_dm_says_what_is_left_or_that_nothing_is():
    sprint, story = make_sprint(), make_story(4)
    assert forced_owner_dm(story, sprint, actor=ALICE, reason="hotfix", missing=["Data contract"]) == (
        f"<@{ALICE}> committed your story *S-4* Story number 4 (4 pt) to sprint *Sprint 14* although it is "
        "not Ready (reason: hotfix). It still lacks: Data contract."
    )
    assert forced_owner_dm(story, sprint, actor=ALICE, reason=None, missing=[]).endswith(
        "although it is not Ready. It still lacks: nothing any more."
    )


def test_a_finished_story_post_with_and_without_its_sprint(config):
    story = make_story(3, status="done")
    assert mrkdwn(render(story_finished(story, actor=BOB, view=None))) == (
        f":tada: <@{BOB}> finished *S-3* Story number 3 (3 pt)"
    )
    view = overview(config, ["done", "open", "done"])
    assert mrkdwn(render(story_finished(story, actor=BOB, view=view))).endswith(
        " · Sprint 14: 2/3 stories, 4/6 points done"
    )


@pytest.mark.parametrize(
    ("ready", "not_ready", "hint"),
    [
        (
            [1, 2],
            [3],
            'Commit the Ready ones with `/scrum sprint commit S-1 S-2 --to "Sprint 14"`; '
            'a lead can force a not-Ready story in with `--force reason="…"`.',
        ),
        (
            [],
            [3],
            "Nothing in the backlog is Ready yet: fill criteria with `/scrum ready S-n`; "
            'a lead can force a not-Ready story in with `--force reason="…"`.',
        ),
        ([], [], "The backlog is empty: add stories with `/scrum story add`."),
    ],
)
def test_the_planning_hint_suggests_only_what_can_go_in(config, ready, not_ready, hint):
    candidates = [planned(config, n, ready=True) for n in ready] + [
        planned(config, n, ready=False) for n in not_ready
    ]
    plan = Plan.of(make_sprint(), [planned(config, 9, ready=True)], candidates)
    assert mrkdwn(render(plan_blocks(plan, "/scrum"))[-1:]) == hint


def test_the_planning_hint_names_at_most_five_stories_and_a_one_word_sprint_unquoted(config):
    plan = Plan.of(make_sprint(name="S14"), [], [planned(config, n, ready=True) for n in range(1, 9)])
    assert mrkdwn(render(plan_blocks(plan, "/scrum"))[-1:]).startswith(
        "Commit the Ready ones with `/scrum sprint commit S-1 S-2 S-3 S-4 S-5 --to S14`;"
    )


# ── stories by status ────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("open", ":red_circle: not Ready (0/6)"),
        ("in_progress", "in progress · :red_circle: not Ready (0/6)"),
        ("blocked", "blocked · :red_circle: not Ready (0/6)"),
        ("done", ":white_check_mark: done"),
    ],
)
def test_story_line_shows_the_status(config, status, shown):
    story = make_story(2, status=status)
    line = story_line(StoryListing(story, None, make_checklist(config, story)))
    assert line.endswith(f" · backlog · {shown}")


@pytest.mark.parametrize(
    ("status", "reason", "shown", "has_buttons"),
    [
        ("open", None, "to do", True),
        ("in_progress", None, "in progress", True),
        ("blocked", EVIL, f"blocked — {EVIL_ESCAPED}", True),
        ("done", None, "done", False),
        ("archived", None, "archived", False),
    ],
)
def test_story_card_shows_the_status_and_offers_buttons_while_open(
    config, status, reason, shown, has_buttons
):
    story = make_story(1, status=status)
    story.blocked_reason = reason
    blocks = render(
        story_card(
            story,
            sprint_name=None,
            ready=make_checklist(config, story),
            done=make_checklist(config, story, "done"),
        )
    )
    assert mrkdwn(blocks[1:2]).endswith(f"*Status* {shown}")
    assert bool(action_ids(blocks)) is has_buttons


def _story_form(config: AppConfig, *, sprints: list[Sprint], may_force: bool) -> dict[str, Any]:
    return story_modal(
        story_types=config.story_types,
        sprints=sprints,
        story=None,
        default_type="ml",
        channel=None,
        team="recsys",
        may_force=may_force,
    )


def test_the_story_form_offers_the_reason_only_to_who_may_force_into_an_open_sprint(config):
    def block_ids(view: dict[str, Any]) -> list[str]:
        return [b["block_id"] for b in view["blocks"]]

    assert block_ids(_story_form(config, sprints=[make_sprint()], may_force=True))[-1] == ids.FIELD_REASON
    assert ids.FIELD_REASON not in block_ids(_story_form(config, sprints=[make_sprint()], may_force=False))
    assert ids.FIELD_REASON not in block_ids(_story_form(config, sprints=[], may_force=True))


@pytest.mark.parametrize(
    "block",
    [
        section("plain *mrkdwn* with <@U01ALICE>"),
        section("with a button", button("Go", "go", "v")),
        SectionBlock(text=MarkdownTextObject(text="verbatim", verbatim=True)),
        SectionBlock(text="plain text object"),
        SectionBlock(block_id="b1", text=MarkdownTextObject(text="with an id")),
        SectionBlock(fields=[MarkdownTextObject(text="a field")]),
        context("a context"),
        context("*bold* and <@U01ALICE> · 3 of 5 Ready"),
        ContextBlock(elements=[MarkdownTextObject(text="one"), MarkdownTextObject(text="two")]),
        ContextBlock(elements=[PlainTextObject(text="plain", emoji=True)]),
        ContextBlock(elements=[MarkdownTextObject(text="verbatim", verbatim=False)]),
        ContextBlock(block_id="c1", elements=[MarkdownTextObject(text="with an id")]),
        ContextBlock(elements=[ImageElement(image_url="https://example.com/a.png", alt_text="a")]),
        divider(),
        DividerBlock(block_id="d1"),
    ],
)
def test_render_writes_every_block_as_slack_sdk_does(block):
    """render() skips slack_sdk's validation for the plain sections, contexts and dividers the builders
    make; the output is the same, and any other block goes through slack_sdk."""
    assert render([block]) == [block.to_dict()]
