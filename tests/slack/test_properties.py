"""Property tests (Hypothesis): whatever a person types, the parser answers with a CadenceError at worst; and
whatever titles, owners and counts the stories have, the messages the builders make stay within Block
Kit's limits (50 blocks a message, 3,000 characters a section, 75 a button's text)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import parse_config
from bot.services import readiness
from bot.services.errors import CadenceError
from bot.services.sprints import PLAN_SHOWN, Plan, PlannedStory
from bot.services.stories import StoryListing, StoryPage
from bot.slack.blocks import message
from bot.slack.blocks.sprints import plan_blocks
from bot.slack.blocks.stories import story_list
from bot.slack.commands import match
from bot.slack.parsing import parse_args, parse_user, tokenize
from bot.store.models import Sprint, Story

CONFIG = parse_config("teams: [{name: recsys, channel: C0123RECSYS, members: [U01ALICE]}]")
QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

typed = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=400
) | st.lists(
    st.sampled_from(
        ['"', "--sprint", "--force", "reason=", "S-1", "<@U01ALICE|a>", "<", ">", "&", "n/a", " ", "x=y"]
    )
).map("".join)


@QUICK
@given(text=typed)
def test_the_parser_answers_anything_typed_with_a_sentence_at_worst(text: str) -> None:
    try:
        tokens = tokenize(text)
        sub, rest = match(tokens)
        parse_args(rest, options=("--sprint", "--to"), flags=("--force", "--mine"), pairs=True)
        if rest:
            parse_user(rest[0])
        assert sub.usage
    except CadenceError as error:
        assert error.message and len(error.message) < 2000


titles = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=200)
owners = st.one_of(st.none(), st.from_regex(r"U[A-Z0-9]{2,31}", fullmatch=True))


def _story(n: int, title: str, owner: str | None, keys: str) -> Story:
    return Story(
        id=n,
        number=n,
        team="recsys",
        type="ml",
        title=title,
        owner=owner,
        points=3,
        status="open",
        created_by="U01ALICE",
        ready_keys=readiness.stored_keys([keys] if keys else []),
    )


def within_block_kit(blocks: list[dict[str, Any]]) -> None:
    assert len(blocks) <= 50
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            assert len(text["text"]) <= 3000
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= 75
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000


@QUICK
@given(
    rows=st.lists(
        st.tuples(titles, owners, st.sampled_from(["", "data_available", "eval_criteria"])), max_size=25
    )
)
def test_a_page_of_stories_stays_within_block_kit(rows: list[tuple[str, str | None, str]]) -> None:
    items = [
        StoryListing(s, None, readiness.summary(s, "ready", CONFIG))
        for s in (_story(i + 1, t, o, k) for i, (t, o, k) in enumerate(rows))
    ]
    page = StoryPage(items, total=len(items) + 100, page=1, page_size=max(len(items), 1))
    within_block_kit(message("Stories", story_list(page, title="Stories", filters={"tokens": []}))["blocks"])


@QUICK
@given(
    rows=st.lists(st.tuples(titles, owners), max_size=PLAN_SHOWN * 3),
    totals=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
)
@pytest.mark.filterwarnings("ignore")
def test_a_plan_stays_within_block_kit(rows: list[tuple[str, str | None]], totals: tuple[int, int]) -> None:
    sprint = Sprint(
        id=1,
        team="recsys",
        name="Sprint 1",
        starts_on=date(2026, 1, 5),
        ends_on=date(2026, 1, 16),
        state="active",
        created_by="U01ALICE",
    )
    planned = [
        PlannedStory(s, readiness.summary(s, "ready", CONFIG))
        for s in (_story(i + 1, t, o, "") for i, (t, o) in enumerate(rows))
    ]
    third = len(planned) // 3
    plan = Plan(
        sprint,
        planned[:third],
        planned[third : 2 * third][:PLAN_SHOWN],
        planned[2 * third :][:PLAN_SHOWN],
        totals[0] + third,
        totals[1] + len(planned) - 2 * third,
    )
    within_block_kit(message("Planning", plan_blocks(plan, "/scrum"))["blocks"])
