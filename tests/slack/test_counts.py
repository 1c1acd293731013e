"""Numbers people read agree with their nouns: one story, one point, one experiment, one answer."""

from __future__ import annotations

from tests.conftest import ALICE
from tests.slack.helpers import ok, shown
from tests.slack_driver import SlackDriver

SPRINT = 'sprint start "Sprint 1" --from 2026-12-07 --to 2026-12-18'


async def one_story_of_one_point(slack: SlackDriver) -> None:
    await ok(slack, SPRINT)
    await ok(slack, 'story add Fix login --type eng --points 1 --sprint current --force reason="agreed"')


async def test_the_planning_gate_and_the_glance_with_one_story(slack, db):
    await one_story_of_one_point(slack)

    plan = shown(await ok(slack, "sprint plan"))
    assert "0 of 1 story Ready · 1 point committed" in plan
    assert "1 stories" not in plan and "1 points" not in plan

    glance = shown(await ok(slack, "sprint current"))
    assert "0/1 story done · 0/1 point · 0/1 Ready or done" in glance


async def test_the_close_report_with_a_velocity_of_one(slack, db):
    await one_story_of_one_point(slack)
    await ok(slack, "dod S-1 code_review=PR-1 tests=unit")
    await ok(slack, "story done S-1")

    report = shown(await ok(slack, "sprint close"))
    assert "Velocity: 1 point (1 story done)." in report


async def test_the_home_tab_with_one_story(slack, db):
    await one_story_of_one_point(slack)
    await slack.event({"type": "app_home_opened", "user": ALICE, "channel": "D01ALICE", "tab": "home"})
    [view] = [c.args["view"] for c in slack.fake.of("views.publish")]
    text = shown(view)
    assert "0/1 story done · 0/1 point · 0/1 Ready or done" in text


async def test_one_answer_recorded(slack, db):
    await ok(slack, "story add Fix login --type eng")
    body = await ok(slack, "ready S-1 dependencies=none")
    assert body["text"] == "Recorded 1 answer for S-1"
    assert ":pencil: Recorded 1 answer for *S-1*." in shown(body)
