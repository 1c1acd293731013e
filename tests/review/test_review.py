"""The sprint review: what it counts, how each format shows what people typed, a team template that
breaks, a summary too long for one message, the preview and its Post button, and the automatic post
before the review ceremony, once across a restart."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.jobs.outbox_worker import OutboxWorker
from bot.notify.review import MAX_BLOCKS, ReviewRenderer, messages, slack_blocks
from bot.services import sprint_review
from bot.services.sprints import resolve_sprint
from bot.slack import ids
from bot.store.models import CeremonyRun, OutboxMessage
from tests.conftest import ALICE, FRANK, PLATFORM, RECSYS, make_config
from tests.factories import make_planned_story, make_sprint, rows, team, tx
from tests.slack.helpers import READY_ANSWERS, deliver, ok, posted, replies, shown

SPRINT_1 = '"Sprint 1" --from 2026-12-07 --to 2026-12-18'
HOSTILE = "<!channel> *bold* [x](javascript:alert(1)) <script>alert(1)</script> {{ 7*7 }} | a |"


@pytest.fixture
def worker(make_worker: Callable[..., OutboxWorker]) -> OutboxWorker:
    return make_worker()


async def review_of(db, config, clock, ref: str = "current") -> sprint_review.SprintReview:
    async with tx(db, config) as session:
        recsys = team(config)
        sprint = await resolve_sprint(session, team=recsys, ref=ref)
        return await sprint_review.build(session, config=config, team=recsys, sprint=sprint, now=clock.now())


async def planned_sprint(slack, clock) -> None:
    """Three stories: S-1 Ready and committed, S-2 forced in with a reason, S-3 added on day 3; S-1 done."""
    await ok(slack, "story add Train the ranker --points 3")
    await ok(slack, "story add Backfill features --points 5")
    await ok(slack, "story add Late request --points 2")
    await ok(slack, f"ready S-1 {READY_ANSWERS}")
    await ok(slack, f'sprint start {SPRINT_1} --goal "Ship the ranker"')
    await ok(slack, "sprint commit S-1")
    await ok(slack, 'sprint commit S-2 --force reason="the demo is on Friday"')
    clock.advance(days=2)
    await ok(slack, 'sprint commit S-3 --force reason="asked by sales"')
    await ok(
        slack,
        "dod S-1 data_lineage=warehouse.v7 model_evaluation=ndcg+3% rollback_plan=pin-v6 "
        'monitoring=n/a reason="batch job, watched by the platform team"',
    )
    await ok(slack, "story done S-1")


# ── what it counts ───────────────────────────────────────────────────────────────────────────


async def test_the_review_counts_commits_forced_commits_added_scope_and_completion(slack, db, config, clock):
    await planned_sprint(slack, clock)

    review = await review_of(db, config, clock)

    assert [s.key for s in review.committed] == ["S-1", "S-2"] and review.committed_points == 8
    assert [s.key for s in review.added] == ["S-3"] and review.added_points == 2
    assert [s.key for s in review.completed] == ["S-1"] and review.completed_points == 3
    assert [s.key for s in review.not_done] == ["S-2", "S-3"]
    assert (review.readiness.gated, review.readiness.ready) == (2, 1)  # added scope is not "at planning"
    assert [(f.key, f.by, f.reason) for f in review.readiness.forced] == [
        ("S-2", ALICE, "the demo is on Friday"),
        ("S-3", ALICE, "asked by sales"),
    ]
    assert "Data availability" in review.readiness.forced[0].missing
    assert (review.done_check.done, review.done_check.fully_met) == (1, 0)
    assert [(w.key, w.criterion, w.reason) for w in review.done_check.waivers] == [
        ("S-1", "Monitoring", "batch job, watched by the platform team")
    ]
    burndown = {p.day.isoformat(): p.remaining for p in review.burndown}
    # The app's clock is on Wednesday 9 December: nothing is known of the days after it. (Commit and done
    # times are the host's clock, so the values of the days before depend on when the test runs.)
    assert burndown["2026-12-09"] is not None and burndown["2026-12-10"] is None
    assert review.burndown[0].ideal == 8 and review.burndown[-1].ideal == 0
    assert len(review.burndown) == 12


async def test_an_empty_sprint_says_so_without_dividing_by_zero(slack, db, config, clock):
    await ok(slack, f"sprint start {SPRINT_1}")
    review = await review_of(db, config, clock)
    renderer = ReviewRenderer()
    md = renderer.render(review, "md").text
    assert "No story went through the readiness gate" in md and "No story was completed." in md
    assert "No experiment ran in this sprint." in md and "None." in md
    data = json.loads(renderer.render(review, "json").text)
    assert data["completion"] == {"stories": None, "points": None} and data["readiness"]["share"] is None
    for fmt in ("slack", "html"):
        assert renderer.render(review, fmt).problem is None


# ── what people typed, in each format ────────────────────────────────────────────────────────


async def test_hostile_text_is_shown_as_typed_and_never_run(slack, db, config, clock):
    await ok(slack, f"story add {HOSTILE} --points 1")
    await ok(slack, f'sprint start {SPRINT_1} --goal "{{{{ config }}}} <b>goal</b>"')
    await ok(slack, 'sprint commit S-1 --force reason="{% raw %}<!here>"')
    review = await review_of(db, config, clock)
    renderer = ReviewRenderer()

    slack_text = renderer.render(review, "slack").text
    assert "&lt;!channel&gt;" in slack_text and "<!channel>" not in slack_text
    assert "&lt;!here&gt;" in slack_text and "{% raw %}" in slack_text and "{{ 7*7 }}" in slack_text
    assert "49" not in slack_text

    md = renderer.render(review, "md").text
    assert r"\<script\>" in md and r"\[x\]\(javascript:alert\(1\)\)" in md and r"\| a \|" in md
    assert "<script>" not in md and r"\*bold\*" in md

    html = renderer.render(review, "html").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "&lt;b&gt;goal&lt;/b&gt;" in html and "{{ config }}" in html


# ── a team's own templates ───────────────────────────────────────────────────────────────────


def custom(tmp_path: Path, fmt: str, text: str) -> str:
    folder = tmp_path / "mine"
    (folder / "review").mkdir(parents=True, exist_ok=True)
    suffix = {"slack": "slack.j2", "md": "md.j2", "html": "html.j2"}[fmt]
    (folder / "review" / f"summary.{suffix}").write_text(text, encoding="utf-8")
    return str(folder)


async def test_a_team_template_with_a_typo_falls_back_and_names_file_line_and_name(
    slack, db, config, clock, tmp_path
):
    await ok(slack, f"sprint start {SPRINT_1}")
    review = await review_of(db, config, clock)
    folder = custom(tmp_path, "md", "# {{ team }}\n{{ sprint.nme }}\n")

    rendered = ReviewRenderer(folder).render(review, "md")

    assert rendered.problem is not None
    assert "summary.md.j2, line 2" in rendered.problem and "nme" in rendered.problem
    assert rendered.text.startswith("# Sprint review: recsys, Sprint 1")  # the built-in one
    assert ReviewRenderer(folder).check() == [rendered.problem.replace(" (sample)", "")]


async def test_a_working_team_template_is_used_and_a_syntax_error_is_located(
    slack, db, config, clock, tmp_path
):
    await ok(slack, f"sprint start {SPRINT_1}")
    review = await review_of(db, config, clock)
    good = custom(tmp_path, "slack", "# Review of {{ sprint.name }}\n{{ completed.count }} done\n")
    assert ReviewRenderer(good).render(review, "slack").text == "# Review of Sprint 1\n0 done\n"
    broken = custom(tmp_path, "html", "<p>\n{% if %}\n")
    problem = ReviewRenderer(broken).render(review, "html").problem
    assert problem is not None and "summary.html.j2, line 2" in problem


async def test_the_sandbox_keeps_template_code_away_from_python(slack, db, config, clock, tmp_path):
    await ok(slack, f"sprint start {SPRINT_1}")
    review = await review_of(db, config, clock)
    folder = custom(tmp_path, "md", "{{ team.__class__.__mro__[1].__subclasses__() }}\n")
    rendered = ReviewRenderer(folder).render(review, "md")
    assert rendered.problem is not None and "SecurityError" in rendered.problem
    assert "subclasses" not in rendered.text


# ── Slack: the preview, the button, a summary too long for one message ───────────────────────


async def test_the_preview_is_for_the_caller_and_the_button_posts_it_with_its_charts(
    slack, db, config, clock, worker
):
    await planned_sprint(slack, clock)

    preview = (await slack.command("sprint review")).json()

    assert preview["response_type"] == "ephemeral"
    assert preview["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Sprint review · recsys · Sprint 1", "emoji": True},
    }
    assert "the demo is on Friday" in shown(preview)
    [post] = next(b for b in preview["blocks"] if b["type"] == "actions")["elements"]
    assert post["action_id"] == ids.REVIEW_POST
    await deliver(worker, clock)
    assert not [m for m in posted(slack, RECSYS) if m["text"].startswith("Sprint review")]  # a preview only

    await slack.click(ids.REVIEW_POST, post["value"])
    await slack.click(ids.REVIEW_POST, post["value"])  # a double click: posted once
    await deliver(worker, clock)

    [summary] = [m for m in posted(slack, RECSYS) if m["text"].startswith("Sprint review of recsys")]
    assert summary["blocks"][0]["type"] == "header"
    uploads = slack.fake.uploaded()
    assert [(u.filename, u.channel) for u in uploads] == [("burndown.png", RECSYS), ("velocity.png", RECSYS)]
    assert all(u.content.startswith(b"\x89PNG\r\n\x1a\n") for u in uploads)
    [root] = [
        r for r in await rows(db, OutboxMessage) if r.dedupe_key.startswith("review:") and r.thread_of is None
    ]
    assert root.slack_ts and {u.thread_ts for u in uploads} == {root.slack_ts}  # in the summary's thread
    assert "Posting the review of Sprint 1" in shown(replies(slack)[-1])


async def test_an_outsider_cannot_post_a_teams_review(make_app, db, config, clock, worker):
    async with make_app(config) as alice:
        await ok(alice, f"sprint start {SPRINT_1}")
    async with make_app(config, user=FRANK, channel=PLATFORM) as frank:
        async with tx(db, config) as session:
            sprint = await resolve_sprint(session, team=team(config), ref="current")
            sprint_id = sprint.id
        before = len(await rows(db, OutboxMessage))
        await frank.click(ids.REVIEW_POST, str(sprint_id), channel=RECSYS)
        assert len(await rows(db, OutboxMessage)) == before
        assert "Only members of team recsys" in shown(replies(frank)[-1])


async def test_a_summary_too_long_for_one_message_continues_in_its_thread(slack, db, config, clock, worker):
    await ok(slack, f"sprint start {SPRINT_1}")
    async with tx(db, config) as session:
        sprint = await resolve_sprint(session, team=team(config), ref="current")
        for n in range(300):
            await make_planned_story(
                session, config, sprint, title=f"Story number {n:03d} " + "with a long title " * 8, points=1
            )
    review = await review_of(db, config, clock)
    parts = messages(slack_blocks(ReviewRenderer().render(review, "slack").text), fallback="x")
    assert len(parts) > 1
    assert all(len(p["blocks"]) <= MAX_BLOCKS for p in parts)
    every = "\n".join(b["text"]["text"] for p in parts for b in p["blocks"] if b["type"] == "section")
    assert all(len(b["text"]["text"]) <= 3000 for p in parts for b in p["blocks"] if b["type"] == "section")
    for n in range(1, 301):
        assert every.count(f"*S-{n}* Story number") == 1, f"S-{n} is not listed exactly once"

    async with tx(db, config) as session:
        await sprint_review.request_post(
            session, config=config, team=team(config), sprint_id=sprint.id, actor=ALICE, now=clock.now()
        )
    await deliver(worker, clock)
    _, *rest = [m for m in posted(slack, RECSYS) if m["text"].startswith("Sprint review of recsys")]
    assert rest and len(rest) == len(parts) - 1
    [root] = [
        r for r in await rows(db, OutboxMessage) if r.dedupe_key.startswith("review:") and r.thread_of is None
    ]
    assert {m.get("thread_ts") for m in rest} == {root.slack_ts}


# ── the automatic post, once ─────────────────────────────────────────────────────────────────

REVIEW = {"review": {"cron": "0 15 * * fri", "summary_minutes_before": 30}}


async def test_the_summary_posts_before_the_review_once_across_a_restart(
    make_app, make_jobs, db, clock, worker
):
    config = make_config(ceremonies=REVIEW)
    async with make_app(config) as slack:
        await ok(slack, f"sprint start {SPRINT_1}")
        clock.set(datetime(2026, 12, 11, 13, 30, tzinfo=UTC))  # Friday 14:30 in Berlin

        first = await make_jobs(config).run_due()
        again = await make_jobs(config).run_due()  # a second clock, or the same after a restart

        assert [r.ceremony for r in first] == ["review_summary"] and again == []
        await deliver(worker, clock)
        summaries = [m for m in posted(slack, RECSYS) if m["text"].startswith("Sprint review of recsys")]
        assert len(summaries) == 1
        assert len(slack.fake.uploaded()) == 2
        [run] = await rows(db, CeremonyRun, CeremonyRun.ceremony == "review_summary")
        assert run.note == "review of Sprint 1" and run.message_id is not None


def test_summary_minutes_before_belongs_to_the_review():
    with pytest.raises(Exception, match="summary_minutes_before belongs to the review ceremony"):
        make_config(ceremonies={"standup": {"cron": "30 9 * * mon-fri", "summary_minutes_before": 30}})


async def test_a_failed_team_template_is_told_to_the_leads_when_posted(make_app, db, clock, worker, tmp_path):
    config = make_config(templates_dir=custom(tmp_path, "slack", "{{ nope }}\n"))
    async with make_app(config) as slack:
        await ok(slack, f"sprint start {SPRINT_1}")
        async with tx(db, config) as session:
            sprint = await resolve_sprint(session, team=team(config), ref="current")
            await sprint_review.request_post(
                session, config=config, team=team(config), sprint_id=sprint.id, actor=ALICE, now=clock.now()
            )
        await deliver(worker, clock)
        [note] = posted(slack, ALICE)
        assert "built-in template" in note["text"] and "summary.slack.j2, line 1" in note["text"]
        assert "nope" in note["text"]
        assert [m for m in posted(slack, RECSYS) if m["text"].startswith("Sprint review of recsys")]


async def test_review_of_a_sprint_that_does_not_exist_is_a_warning(slack, db):
    body = (await slack.command("sprint review Nope")).json()
    assert body["text"].startswith(":warning: ") and "no sprint called 'Nope'" in body["text"]


async def test_make_sprint_factory_sprint_reviews(db, config, clock):
    async with tx(db, config) as session:
        sprint = await make_sprint(session, config, name="Factory")
        review = await sprint_review.build(
            session, config=config, team=team(config), sprint=sprint, now=clock.now()
        )
    assert review.sprint == "Factory" and review.committed == ()


async def test_dropped_stories_and_a_closed_sprints_carry_over_are_counted(slack, db, config, clock):
    for title in ("Train the ranker --points 3", "Backfill features --points 5", "Clean labels --points 2"):
        await ok(slack, f"story add {title}")
    await ok(slack, f"sprint start {SPRINT_1}")
    await ok(slack, 'sprint start "Sprint 2" --from 2026-12-21 --to 2027-01-01')
    await ok(slack, 'sprint commit S-1 S-2 S-3 --to current --force reason="planned on paper"')
    await ok(slack, "story drop S-3")
    await ok(slack, "sprint close")

    review = await review_of(db, config, clock, "Sprint 1")

    assert [s.key for s in review.committed] == ["S-1", "S-2", "S-3"]
    assert [s.key for s in review.removed] == ["S-3"]
    assert [s.key for s in review.not_done] == ["S-1", "S-2"] and review.carried_to == "Sprint 2"
    nxt = await review_of(db, config, clock, "Sprint 2")
    assert [s.key for s in nxt.carried_in] == ["S-1", "S-2"] and [s.key for s in nxt.committed] == [
        "S-1",
        "S-2",
    ]
    assert nxt.readiness.gated == 0  # carry-over is not gated again
