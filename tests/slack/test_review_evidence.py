"""A review request shows the story's Definition of Done as evidence, whatever the story's type."""

from bot.services import experiments, governance, readiness
from bot.slack.blocks.governance import review_request
from tests.conftest import ALICE
from tests.factories import answer_all, make_story, tx


async def test_an_engineering_story_shows_its_own_done_criteria(db, config):
    async with tx(db) as s:
        story = await make_story(s, config, story_type="eng", title="Serve the ranker")
        await readiness.record_answers(
            s,
            story=story,
            kind="done",
            config=config,
            actor=ALICE,
            answers={"code_review": "PR #42 <merged>"},
        )
        await answer_all(s, config, story, "ready")
        exp = await experiments.add_experiment(s, config=config, story=story, name="Canary", actor=ALICE)
        review, _ = await governance.request_review(
            s, config=config, team="recsys", purpose="canary", actor=ALICE, source="slack", experiment=exp
        )
        text = str(review_request(await governance.evidence(s, config=config, review=review))["blocks"])
    assert "*Code review:* PR #42 &lt;merged&gt;" in text
    assert "*Tests:* _missing_" in text
