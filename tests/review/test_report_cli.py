"""`cadence report sprint …` as an operator runs it, on a SQLite file: each format to standard output or
a file, and the team chosen for them when the sprint's name is ambiguous."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from bot.clock import SystemClock
from bot.notify.notifier import Notifier
from bot.notify.templates import Renderer
from bot.services import sprints
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade
from tests.conftest import config_yaml, make_config
from tests.factories import make_planned_story, team

ROOT = Path(__file__).resolve().parents[2]


async def seeded(tmp_path: Path) -> tuple[str, str]:
    """A SQLite file where recsys and platform both have a "Sprint 1", recsys with one story in it."""
    url = f"sqlite:///{tmp_path}/cadence.db"
    config_path = tmp_path / "config.yaml"
    config_path.write_text(config_yaml(), encoding="utf-8")
    config = make_config()
    engine = create_engine(url)
    await upgrade(engine)
    notifier = Notifier(config, session_factory(engine), Renderer(None), SystemClock())
    async with notifier.transaction() as session:
        for name in ("recsys", "platform"):
            await sprints.start_sprint(
                session,
                team=team(config, name),
                name="Sprint 1",
                starts_on=date(2026, 12, 7),
                ends_on=date(2026, 12, 18),
                actor="U01ALICE" if name == "recsys" else "U04FRANK",
            )
    async with notifier.transaction() as session:
        sprint = await sprints.resolve_sprint(session, team=team(config), ref="Sprint 1")
        await make_planned_story(session, config, sprint, title="Train <the> ranker", points=3)
    await engine.dispose()
    return url, str(config_path)


def report(url: str, config: str, *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CADENCE_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "report", "sprint", *args],
        capture_output=True,
        text=True,
        env={**base, "DATABASE_URL": url, "CADENCE_CONFIG": config, "PYTHONIOENCODING": "utf-8"},
        cwd=ROOT,
        timeout=120,
    )


async def test_each_format_for_the_one_team_named(tmp_path):
    url, config = await seeded(tmp_path)
    md = report(url, config, "Sprint", "1", "--team", "recsys", "--format", "md")
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("# Sprint review: recsys, Sprint 1") and r"Train \<the\> ranker" in md.stdout
    data = json.loads(report(url, config, "Sprint 1", "--team", "recsys", "--format", "json").stdout)
    assert data["committed"]["count"] == 1 and data["committed"]["points"] == 3
    slack = report(url, config, "Sprint 1", "--team", "recsys", "--format", "slack").stdout
    assert "Train &lt;the&gt; ranker" in slack

    out = tmp_path / "review.html"
    html = report(url, config, "current", "--team", "recsys", "--format", "html", "--out", str(out))
    assert html.returncode == 0 and html.stdout == "" and "wrote the review of recsys Sprint 1" in html.stderr
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "Train &lt;the&gt; ranker" in page
    assert page.count('src="data:image/png;base64,') == 2  # the charts travel inside the page


async def test_an_ambiguous_or_unknown_sprint_or_team_is_refused(tmp_path):
    url, config = await seeded(tmp_path)
    both = report(url, config, "Sprint 1", "--format", "md")
    assert both.returncode == 2 and "recsys, platform" in both.stderr and "--team" in both.stderr
    nobody = report(url, config, "Sprint 9")
    assert nobody.returncode == 1 and "No team has a sprint 'Sprint 9'" in nobody.stderr
    stranger = report(url, config, "current", "--team", "search")
    assert stranger.returncode == 2 and "not a configured team" in stranger.stderr
