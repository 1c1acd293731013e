"""`story add --sprint` refused in every way it can be: any story number the answer names is a story
that was stored, and a refusal that stores nothing uses up no number."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from bot.store.db import session_factory, unit_of_work
from bot.store.models import Story
from tests.conftest import BOB, CAROL, PLATFORM
from tests.slack.helpers import ok

SPRINT = "Sprint 14"


async def stored(db) -> set[str]:  # type: ignore[no-untyped-def]
    async with unit_of_work(session_factory(db)) as s:
        return {f"S-{st.number}" for st in (await s.exec(select(Story))).all()}


@pytest.mark.parametrize(
    ("command", "who"),
    [
        (f'story add Train the ranker --sprint "{SPRINT}"', {"user": BOB}),  # not a lead: backlog
        (f'story add Train the ranker --sprint "{SPRINT}"', {}),  # a lead, not Ready: backlog
        ('story add Train the ranker --sprint "Sprint 99"', {}),  # no such sprint
        (f'story add Train the ranker --sprint "{SPRINT}" --force reason=""', {}),  # no reason
        (f'story add Train the ranker --sprint "{SPRINT}" --force reason="ok"', {"user": BOB}),
        (f'story add Train the ranker --sprint "{SPRINT}"', {"user": CAROL}),  # not a member
        (f'story add Train the ranker --sprint "{SPRINT}" --points -3', {}),
        (f'story add Train the ranker --sprint "{SPRINT}"', {"channel": PLATFORM}),  # another team's
    ],
)
async def test_a_refused_add_to_a_sprint_names_only_stored_stories(slack, db, command, who):
    await ok(slack, f'sprint start "{SPRINT}" --from 2026-12-07 --to 2026-12-18')
    await ok(slack, "story add Already here")  # S-1
    response = await slack.command(command, **who)
    text = response.json()["text"] + str(response.json().get("blocks", ""))
    named = set(re.findall(r"\bS-\d+\b", text))
    assert named <= await stored(db), (text, await stored(db))
    # a refusal that stored nothing used up no number: the next story is S-2 or S-3, never S-4
    after = (await ok(slack, "story add Next one"))["text"]
    assert re.search(r"\bS-[23]\b", after), after
