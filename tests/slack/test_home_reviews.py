"""Approvers find the reviews waiting for them on their App Home, with the decision buttons."""

from bot.services import experiments, governance, stories
from tests.conftest import ALICE, CAROL
from tests.factories import answer_all, tx


async def open_review(db, config) -> str:
    async with tx(db) as session:
        added = await stories.add_story(
            session, config=config, team=config.teams[0], title="Ranker", actor=ALICE
        )
        story = added.story
        await answer_all(session, config, story, "ready")
        exp = await experiments.add_experiment(
            session, config=config, story=story, name="Two-tower", actor=ALICE
        )
        review, _ = await governance.request_review(
            session,
            config=config,
            team="recsys",
            purpose="production",
            actor=ALICE,
            source="slack",
            experiment=exp,
        )
        return review.key


def home_of(slack, user: str) -> dict:
    published = [c for c in slack.fake.of("views.publish") if c.args["user_id"] == user]
    assert published, f"no Home published for {user}"
    return published[-1].args["view"]


async def test_an_approver_sees_pending_reviews_with_buttons(slack, db, config):
    key = await open_review(db, config)
    await slack.event({"type": "app_home_opened", "user": CAROL, "tab": "home"})
    view = home_of(slack, CAROL)
    assert view["blocks"][0]["text"]["text"] == "Reviews waiting for your decision"
    assert f"*{key}* · production · E-1 Two-tower" in str(view["blocks"][1])
    assert [e["action_id"] for e in view["blocks"][2]["elements"]] == [
        "review_approve",
        "review_request_changes",
        "review_reject",
    ]
    assert all(e["value"] == key for e in view["blocks"][2]["elements"])


async def test_the_requester_and_non_approvers_see_no_review_section(slack, db, config):
    await open_review(db, config)
    await slack.event({"type": "app_home_opened", "user": ALICE, "tab": "home"})
    assert "Reviews waiting" not in str(home_of(slack, ALICE))


async def test_a_decided_review_leaves_the_approvers_home(slack, db, config):
    key = await open_review(db, config)
    await slack.click("review_approve", key, user=CAROL, from_home=True)
    await slack.submit(
        slack.last_view(), {"rationale": {"type": "plain_text_input", "value": "Solid lift"}}, user=CAROL
    )
    assert "Reviews waiting" not in str(home_of(slack, CAROL))


async def test_the_planning_view_opens_from_the_home_tab(slack, db, config):
    await slack.command('sprint start "Sprint 1" --from 2026-12-07 --to 2026-12-18')
    await slack.command('story add Train the ranker --sprint current --force reason="planned"')
    await slack.event({"type": "app_home_opened", "user": ALICE, "tab": "home"})
    buttons = [
        e
        for b in home_of(slack, ALICE)["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "open_plan_view"
    ]
    assert [b["value"] for b in buttons] == ["recsys"]
    await slack.click("open_plan_view", "recsys", from_home=True)
    view = slack.last_view()
    assert view["type"] == "modal" and "submit" not in view
    text = str(view["blocks"])
    assert "*Planning* *Sprint 1* (current)" in text and "*S-1* Train the ranker" in text


async def test_the_planning_view_of_an_unknown_team_says_so(slack, db):
    await slack.click("open_plan_view", "nosuchteam", from_home=True)
    assert not slack.fake.of("views.open")
    [dm] = slack.fake.of("chat.postMessage")
    assert "no longer configured" in dm.args["text"]
