"""Message templates: escaped for Slack, strict, sandboxed, overridable, checkable."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from bot.notify.review import TEMPLATES, ReviewRenderer, sample
from bot.notify.templates import BUILTIN_DIR, SAMPLES, Renderer
from tests.conftest import make_config
from tests.factories import outbox_rows


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_every_sample_names_a_shipped_template():
    shipped = {str(p.relative_to(BUILTIN_DIR)) for p in BUILTIN_DIR.rglob("*.j2")}
    # the sprint review's templates get a whole review, not a sample of names: see ReviewRenderer.check
    review = {name for name in shipped if name.startswith("review/")}
    assert review == set(TEMPLATES.values())
    assert set(SAMPLES) == shipped - review


def test_the_built_in_review_templates_render_the_sample_review():
    renderer = ReviewRenderer()
    for fmt in TEMPLATES:
        rendered = renderer.render(sample(), fmt)
        assert rendered.problem is None and "recsys" in rendered.text


def test_user_text_is_escaped_but_mentions_are_not(tmp_path):
    write(
        tmp_path, "messages/probe.md.j2", "{{ title }} by {{ user | mention }} for {{ names | join(', ') }}"
    )
    out = Renderer(str(tmp_path)).render(
        "messages/probe.md.j2",
        title="<!channel> & <https://evil.example|click>",
        user="U01ALICE",
        names=["a<b", "c&d"],
    )
    assert (
        out == "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt; by <@U01ALICE> for a&lt;b, c&amp;d"
    )


def test_shipped_template_escapes_user_text():
    out = Renderer().render(
        "messages/readiness_summary.md.j2",
        sprint="<!here> Sprint & co",
        when=datetime(2026, 12, 8, 10, 0),
        now=datetime(2026, 12, 7, 10, 0),
        ready=1,
        total=2,
        waiting=[("U02BOB", ["S-1"])],
        unowned=[],
        away=[],
    )
    assert "*Readiness for &lt;!here&gt; Sprint &amp; co*" in out
    assert "<!here>" not in out
    assert "Waiting on <@U02BOB> (S-1)." in out
    assert "(planning in 24 hours): 1 of 2 stories Ready." in out


def test_standup_summary_escapes_answers():
    out = Renderer().render(
        "messages/standup_summary.md.j2",
        answered=[{"user": "U01ALICE", "today": "fix <!channel> & ship", "blockers": "a > b"}],
        missing=[],
        away=[],
    )
    assert "fix &lt;!channel&gt; &amp; ship" in out
    assert ":construction: *Blocked:* a &gt; b" in out
    assert "<@U01ALICE>" in out
    assert "<!channel>" not in out


def test_typo_fails_loudly(tmp_path):
    write(tmp_path, "ceremonies/standup.md.j2", "Standup for {{ teem }}")
    renderer = Renderer(str(tmp_path))
    with pytest.raises(UndefinedError):
        renderer.render("ceremonies/standup.md.j2", team="recsys")
    # also a missing attribute of something that exists
    write(tmp_path, "messages/attr.md.j2", "{{ sprint.nmae }}")
    with pytest.raises(UndefinedError):
        renderer.render("messages/attr.md.j2", sprint={"name": "S1"})


def test_missing_context_fails_in_shipped_template():
    with pytest.raises(UndefinedError):
        Renderer().render("messages/nudge_dm.md.j2", sprint="S2", when=datetime(2026, 12, 7, 10))


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ team.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_sandbox_blocks_python_internals(tmp_path, source):
    write(tmp_path, "messages/evil.md.j2", source)
    with pytest.raises(SecurityError):
        Renderer(str(tmp_path)).render("messages/evil.md.j2", team="recsys")


def test_override_comes_before_the_builtin(tmp_path):
    write(tmp_path, "ceremonies/standup.md.j2", "Custom standup for {{ team }}")
    renderer = Renderer(str(tmp_path))
    ctx = dict(SAMPLES["ceremonies/standup.md.j2"])
    assert renderer.render("ceremonies/standup.md.j2", **ctx) == "Custom standup for recsys"
    # templates without an override still come from the built-in folder
    retro = renderer.render("ceremonies/retro.md.j2", **SAMPLES["ceremonies/retro.md.j2"])
    assert retro.startswith(":thinking_face: *Retrospective for team recsys*")
    # and without templates_dir the built-in one is used
    assert (
        Renderer()
        .render("ceremonies/standup.md.j2", **ctx)
        .startswith(":sunrise: *Standup time, team recsys!*")
    )


def test_blank_lines_are_dropped():
    out = Renderer().render(
        "ceremonies/standup.md.j2",
        team="recsys",
        ceremony="standup",
        when=datetime(2026, 12, 7, 9, 30),
        command="/scrum",
        close_at=None,
        sprint=None,
    )
    assert out == ":sunrise: *Standup time, team recsys!* Share yesterday, today and anything blocking you."


def test_filters():
    out_dir = Renderer()
    env = out_dir.env
    assert env.filters["date"](date(2026, 12, 18)) == "Fri 18 Dec"
    assert env.filters["time"](datetime(2026, 12, 7, 9, 5)) == "09:05"
    assert env.filters["datetime"](datetime(2026, 12, 7, 9, 5)) == "Mon 07 Dec, 09:05"
    rel = env.filters["relative"]
    now = datetime(2026, 12, 7, 10, 0)
    assert rel(datetime(2026, 12, 10, 10, 0), now) == "in 3 days"
    assert rel(datetime(2026, 12, 8, 10, 0), now) == "in 24 hours"
    assert rel(datetime(2026, 12, 7, 12, 0), now) == "in 2 hours"
    assert rel(datetime(2026, 12, 7, 10, 30), now) == "soon"
    assert rel(datetime(2026, 12, 7, 8, 0), now) == "under way"


def test_check_is_clean_for_shipped_templates():
    assert Renderer().check() == []


def test_check_lists_a_broken_override(tmp_path):
    write(tmp_path, "ceremonies/review.md.j2", "Review for {{ teem }}")
    write(tmp_path, "messages/nudge_dm.md.j2", "{% if count %}unclosed")
    problems = Renderer(str(tmp_path)).check()
    assert len(problems) == 2
    review = next(p for p in problems if p.startswith("templates/ceremonies/review.md.j2: "))
    assert "teem" in review
    assert any(p.startswith("templates/messages/nudge_dm.md.j2: ") for p in problems)


def test_a_good_override_passes_check(tmp_path):
    write(tmp_path, "ceremonies/retro.md.j2", "Retro for {{ team }} at {{ when | datetime }}")
    assert Renderer(str(tmp_path)).check() == []


def test_syntax_error_raises_on_render(tmp_path):
    write(tmp_path, "ceremonies/retro.md.j2", "{% for x in %}")
    with pytest.raises(TemplateSyntaxError):
        Renderer(str(tmp_path)).render("ceremonies/retro.md.j2", **SAMPLES["ceremonies/retro.md.j2"])


def test_check_lists_an_override_that_fails_at_runtime(tmp_path):
    write(tmp_path, "messages/nudge_dm.md.j2", "{{ count + sprint }} {{ when | relative('soon') }}")
    problems = Renderer(str(tmp_path)).check()
    assert len(problems) == 1
    assert problems[0].startswith("templates/messages/nudge_dm.md.j2: ")


async def test_jobs_render_with_the_configured_templates_dir(db, make_jobs, fake_slack, tmp_path):
    fake_slack.reset()
    write(tmp_path, "ceremonies/standup.md.j2", "Custom standup for {{ team }} & {{ ceremony }}")
    config = make_config(
        timezone="UTC",
        templates_dir=str(tmp_path),
        ceremonies={"standup": {"cron": "30 9 * * mon-fri"}, "retro": {"cron": "30 9 * * mon"}},
    )
    jobs = make_jobs(config)
    made = await jobs.run_due(datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
    assert sorted(r.ceremony for r in made) == ["retro", "standup"]
    texts = {r.dedupe_key: json.loads(r.payload)["text"] for r in await outbox_rows(db)}
    by_kind = {r.ceremony: texts[f"run:{r.id}"] for r in made}
    assert by_kind["standup"] == "Custom standup for recsys & standup"
    assert by_kind["retro"].startswith(":thinking_face: *Retrospective for team recsys*")


@pytest.mark.parametrize(
    ("total", "points_total", "stories", "points"),
    [(1, 1, "1 of 1 story done", "1 of 1 point."), (2, 3, "1 of 2 stories done", "1 of 3 points.")],
)
def test_the_sprint_review_reminder_counts_agree_with_their_nouns(total, points_total, stories, points):
    sprint = {**SAMPLES["ceremonies/review.md.j2"]["sprint"], "total": total, "points_total": points_total}
    out = Renderer().render(
        "ceremonies/review.md.j2", **{**SAMPLES["ceremonies/review.md.j2"], "sprint": sprint}
    )
    assert f"Sprint *S1*: {stories}, {points}" in out


@pytest.mark.parametrize(("total", "says"), [(1, "0 of 1 story Ready."), (4, "0 of 4 stories Ready.")])
def test_the_planning_reminder_counts_agree_with_their_nouns(total, says):
    context = {**SAMPLES["ceremonies/planning.md.j2"], "plan": {"sprint": "S2", "ready": 0, "total": total}}
    assert f"Planning *S2*: {says}" in Renderer().render("ceremonies/planning.md.j2", **context)
