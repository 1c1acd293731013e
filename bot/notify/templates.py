"""Jinja2 rendering of the messages the bot posts on its own: sandboxed, strict, escaped for Slack."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from bot.text import escape

# bot/templates is a link to the checkout's templates/; a wheel holds the files themselves (pyproject.toml).
BUILTIN_DIR = Path(__file__).resolve().parents[1] / "templates"


class Mrkdwn(str):
    """Text that is already Slack markup (a mention) and must not be escaped again."""


def _finalize(value: Any) -> Any:
    if isinstance(value, Mrkdwn):
        return value
    if isinstance(value, str):
        return escape(value)
    return value


def _relative(value: datetime, now: datetime | None = None) -> str:
    hours = round((value - (now or datetime.now(value.tzinfo))).total_seconds() / 3600)
    if hours >= 48:
        return f"in {round(hours / 24)} days"
    if hours >= 2:
        return f"in {hours} hours"
    return "soon" if hours >= 0 else "under way"


class Renderer:
    def __init__(self, templates_dir: str | None = None) -> None:
        dirs = [d for d in (templates_dir, str(BUILTIN_DIR)) if d]
        self.env = SandboxedEnvironment(
            loader=ChoiceLoader([FileSystemLoader(d) for d in dirs]),
            undefined=StrictUndefined,
            finalize=_finalize,
            autoescape=False,
        )
        self.env.filters["mention"] = lambda user_id: Mrkdwn(f"<@{user_id}>")
        self.env.filters["date"] = lambda d, fmt="%a %d %b": d.strftime(fmt)
        self.env.filters["time"] = lambda d: d.strftime("%H:%M")
        self.env.filters["datetime"] = lambda d: d.strftime("%a %d %b, %H:%M")
        self.env.filters["relative"] = _relative

    def render(self, name: str, **context: Any) -> str:
        text = self.env.get_template(name).render(**context)
        # Lines that only held template tags come out blank; Slack messages read better without them.
        return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())

    def check(self) -> list[str]:
        """Render every template with sample values; the problems, one line each."""
        problems = []
        for name, sample in SAMPLES.items():
            try:
                self.render(name, **sample)
            except TemplateError as exc:
                problems.append(f"templates/{name}: {exc}")
            except Exception as exc:  # a user's template can fail in any way; report it, don't crash
                problems.append(f"templates/{name}: {type(exc).__name__}: {exc}")
        return problems


_NOW = datetime(2026, 12, 7, 9, 30)
SAMPLES: dict[str, dict[str, Any]] = {
    "ceremonies/standup.md.j2": {
        "team": "recsys",
        "ceremony": "standup",
        "when": _NOW,
        "command": "/scrum",
        "close_at": _NOW,
        "sprint": {
            "name": "S1",
            "goal": "Ship",
            "days_left": 3,
            "starts_on": date(2026, 12, 7),
            "ends_on": date(2026, 12, 18),
            "done": 1,
            "total": 2,
            "points_done": 1,
            "points_total": 3,
        },
    },
    "ceremonies/planning.md.j2": {
        "team": "recsys",
        "ceremony": "planning",
        "when": _NOW,
        "command": "/scrum",
        "sprint": None,
        "plan": {"sprint": "S2", "ready": 1, "total": 2},
    },
    "ceremonies/review.md.j2": {
        "team": "recsys",
        "ceremony": "review",
        "when": _NOW,
        "command": "/scrum",
        "sprint": {
            "name": "S1",
            "goal": None,
            "days_left": 0,
            "done": 1,
            "total": 2,
            "points_done": 1,
            "points_total": 3,
            "starts_on": date(2026, 12, 7),
            "ends_on": date(2026, 12, 18),
        },
    },
    "ceremonies/retro.md.j2": {
        "team": "recsys",
        "ceremony": "retro",
        "when": _NOW,
        "command": "/scrum",
        "sprint": None,
    },
    "ceremonies/refinement.md.j2": {
        "team": "recsys",
        "ceremony": "refinement",
        "when": _NOW,
        "command": "/scrum",
        "sprint": None,
        "not_ready": 2,
    },
    "messages/nudge_dm.md.j2": {"sprint": "S2", "when": _NOW, "now": _NOW, "count": 2},
    "messages/readiness_summary.md.j2": {
        "sprint": "S2",
        "when": _NOW,
        "now": _NOW,
        "ready": 1,
        "total": 3,
        "waiting": [("U1", ["S-1"])],
        "unowned": ["S-2"],
        "away": ["U2"],
    },
    "messages/standup_summary.md.j2": {
        "answered": [{"user": "U1", "today": "x", "blockers": "y"}],
        "missing": ["U2"],
        "away": ["U3"],
    },
    "messages/standup_answer.md.j2": {
        "user": "U1",
        "yesterday": "a",
        "today": "b",
        "blockers": "",
        "links": "S-1",
        "late": False,
    },
}
