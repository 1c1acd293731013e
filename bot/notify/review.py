"""The sprint review in words: `SprintReview` rendered from the templates in templates/review/ (Slack
mrkdwn, Markdown, a self-contained HTML page) or as JSON, cut to Slack's limits, and the messages that
post it (the summary, its continuation replies, its charts).

Templates run in Jinja2's sandbox with StrictUndefined. What people typed (titles, goals, reasons,
rationales) is escaped for the target: &, < and > for Slack; Markdown's punctuation for Markdown;
HTML autoescaping for HTML. A team's own template (`templates_dir`) that fails is reported with its
file, line and what went wrong, and the built-in template is used instead (`Rendered.problem`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup
from slack_sdk.models.blocks import Block, DividerBlock

from bot.config import AppConfig, Team
from bot.notify.templates import BUILTIN_DIR
from bot.services.events import ReviewSummaryRequested
from bot.services.sprint_review import SprintReview, StoryLine, Waiver, build
from bot.slack.blocks import header, render, sections
from bot.store import outbox
from bot.store.models import Sprint
from bot.text import escape

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from bot.notify.notifier import Notifier

log = logging.getLogger(__name__)

TEMPLATES = {
    "slack": "review/summary.slack.j2",
    "md": "review/summary.md.j2",
    "html": "review/summary.html.j2",
}
FORMATS = (*TEMPLATES, "json")

# Slack's limits on one message (https://api.slack.com/reference/block-kit/blocks)
MAX_BLOCKS = 50
MAX_HEADER = 150
VERDICTS = {"approve": "approved", "request_changes": "requested changes", "reject": "rejected"}


class TemplateProblem(Exception):
    """A template that could not be rendered: where, and what went wrong."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True)
class Rendered:
    fmt: str
    text: str
    problem: str | None = None  # the team's template failed with this; the built-in one was used


# ── escaping and filters, per format ─────────────────────────────────────────────────────────


class Trusted(str):
    """Text the bot made (a mention, a formatted number): not escaped again."""


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_escape(text: str) -> str:
    """Markdown's punctuation escaped, so a title shows as typed (no emphasis, link, HTML or table)."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def _finalize_slack(value: Any) -> Any:
    if isinstance(value, Trusted):
        return value
    return escape(value) if isinstance(value, str) else value


def _finalize_md(value: Any) -> Any:
    if isinstance(value, Trusted):
        return value
    return md_escape(value) if isinstance(value, str) else value


def num(value: float | None, places: int = 3) -> str:
    """0.81234 → "0.812"; 12.0 → "12"; None → an en dash."""
    if value is None:
        return "–"
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def signed(value: float | None, places: int = 3) -> str:
    if value is None:
        return "–"
    text = num(value, places)
    return text if text.startswith("-") or text == "0" else f"+{text}"


def pct(share: float | None) -> str:
    return "–" if share is None else f"{round(share * 100)}%"


def hours(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"{round(value * 60)} min"
    return f"{num(value, 1)} h"


def _environment(fmt: str, loader: BaseLoader) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=fmt == "html",
        finalize={"slack": _finalize_slack, "md": _finalize_md}.get(fmt),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    mention: Callable[[str], str] = {
        "slack": lambda user: Trusted(f"<@{user}>"),
        "md": lambda user: f"@{user}",
        "html": lambda user: f"@{user}",
    }[fmt]
    env.filters.update(
        mention=mention,
        num=lambda value, places=3: Trusted(num(value, places)),
        signed=lambda value, places=3: Trusted(signed(value, places)),
        pct=lambda share: Trusted(pct(share)),
        hours=lambda value: Trusted(hours(value)),
        date=lambda d, fmt="%a %d %b": d.strftime(fmt),
        datetime=lambda d: d.strftime("%a %d %b %Y, %H:%M"),
        plural=lambda count, one, many=None: one if count == 1 else (many or one + "s"),
    )
    if fmt == "html":
        env.filters["safe_uri"] = lambda uri: (
            Markup(uri) if str(uri).startswith("data:image/png;base64,") else ""
        )
    return env


def _where(exc: BaseException, fallback: str) -> tuple[str, int | None]:
    """The template file and line an error happened at: Jinja puts template frames in the traceback."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.filename or exc.name or fallback, exc.lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return frame.filename, frame.lineno
    return fallback, None


# ── the context the templates get (documented in docs/templates.md) ───────────────────────────


def _story(s: StoryLine) -> dict[str, Any]:
    return dataclasses.asdict(s)


def _group(lines: tuple[StoryLine, ...]) -> dict[str, Any]:
    return {"stories": [_story(s) for s in lines], "count": len(lines), "points": SprintReview.points(lines)}


def _waivers(waivers: tuple[Waiver, ...]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(w) for w in waivers]


def context(
    review: SprintReview, *, charts: dict[str, str | None] | None = None, command: str = "/scrum"
) -> dict[str, Any]:
    """What every review template is given; plain dicts, lists, numbers, strings and dates."""
    zone = ZoneInfo(review.timezone)
    planned = review.committed_points + review.added_points - SprintReview.points(review.removed)
    committed_count = len(review.committed) + len(review.added)
    median = review.drift.median_time_to_ack
    return {
        "team": review.team,
        "command": command,
        "generated_at": review.generated_at.astimezone(zone),
        "sprint": {
            "name": review.sprint,
            "goal": review.goal,
            "starts_on": review.starts_on,
            "ends_on": review.ends_on,
            "state": review.state,
            "timezone": review.timezone,
            "days": (review.ends_on - review.starts_on).days + 1,
        },
        "committed": _group(review.committed),
        "carried_in": _group(review.carried_in),
        "added": _group(review.added),
        "removed": _group(review.removed),
        "completed": _group(review.completed),
        "not_done": {**_group(review.not_done), "to": review.carried_to},
        "completion": {
            "stories": len(review.completed) / committed_count if committed_count else None,
            "points": review.completed_points / planned if planned > 0 else None,
        },
        "velocity": {
            "sprints": [dataclasses.asdict(v) for v in review.velocity],
            "average": review.average_velocity,
        },
        "readiness": {
            "gated": review.readiness.gated,
            "ready": review.readiness.ready,
            "share": review.readiness.ready_share,
            "forced": [
                {**dataclasses.asdict(f), "missing": list(f.missing)} for f in review.readiness.forced
            ],
            "waivers": _waivers(review.readiness.waivers),
        },
        "done": {
            "count": review.done_check.done,
            "fully_met": review.done_check.fully_met,
            "share": review.done_check.share,
            "waivers": _waivers(review.done_check.waivers),
        },
        "experiments": [dataclasses.asdict(e) for e in review.experiments],
        "decisions": [
            {
                **dataclasses.asdict(d),
                "at": d.at.astimezone(zone),
                "verdict_label": VERDICTS.get(d.verdict, d.verdict),
            }
            for d in review.decisions
        ],
        "drift": {
            "opened": review.drift.opened,
            "median_hours_to_ack": median / timedelta(hours=1) if median is not None else None,
            "stories_created": review.drift.stories_created,
            "stories_open": review.drift.stories_open,
            "still_open": review.drift.still_open,
            "incidents": list(review.drift.incidents),
        },
        "blockers": [dataclasses.asdict(b) for b in review.blockers],
        "charts": {"burndown": None, "velocity": None, **(charts or {})},
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(type(value).__name__)


def as_json(review: SprintReview, *, command: str = "/scrum") -> str:
    data = context(review, command=command)
    data.pop("charts")
    return json.dumps(data, default=_json_default, indent=2, ensure_ascii=False) + "\n"


# ── rendering ────────────────────────────────────────────────────────────────────────────────


class ReviewRenderer:
    """Renders a review in each format: the team's templates first (`templates_dir/review/…`), the
    built-in ones when a team has none — or when theirs fails."""

    def __init__(self, templates_dir: str | None = None) -> None:
        self.custom_dir = Path(templates_dir) if templates_dir else None
        builtin = FileSystemLoader(str(BUILTIN_DIR))
        loader: BaseLoader = (
            ChoiceLoader([FileSystemLoader(str(self.custom_dir)), builtin]) if self.custom_dir else builtin
        )
        self._envs = {fmt: _environment(fmt, loader) for fmt in TEMPLATES}
        self._builtin = {fmt: _environment(fmt, builtin) for fmt in TEMPLATES}

    def has_custom(self, fmt: str) -> bool:
        return self.custom_dir is not None and (self.custom_dir / TEMPLATES[fmt]).is_file()

    def _render(self, env: SandboxedEnvironment, fmt: str, ctx: dict[str, Any], label: str) -> str:
        try:
            return env.get_template(TEMPLATES[fmt]).render(**ctx)
        except TemplateError as exc:
            file, line = _where(exc, label)
            where = f"{file}, line {line}" if line else file
            raise TemplateProblem(where, f"{type(exc).__name__}: {exc.message or exc}") from exc
        except Exception as exc:  # a team's template can fail in any way (a filter given a wrong type)
            file, line = _where(exc, label)
            where = f"{file}, line {line}" if line else file
            raise TemplateProblem(where, f"{type(exc).__name__}: {exc}") from exc

    def check(self) -> list[str]:
        """The team's review templates rendered with a sample review; each problem, one line."""
        problems = []
        for fmt in TEMPLATES:
            if self.has_custom(fmt):
                label = str(self.custom_dir / TEMPLATES[fmt]) if self.custom_dir else TEMPLATES[fmt]
                try:
                    self._render(self._envs[fmt], fmt, context(sample()), label)
                except TemplateProblem as problem:
                    problems.append(str(problem))
        return problems

    def render(
        self,
        review: SprintReview,
        fmt: str,
        *,
        charts: dict[str, str | None] | None = None,
        command: str = "/scrum",
    ) -> Rendered:
        if fmt == "json":
            return Rendered(fmt, as_json(review, command=command))
        if fmt not in TEMPLATES:
            raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
        ctx = context(review, charts=charts, command=command)
        if not self.has_custom(fmt):
            return Rendered(fmt, self._render(self._builtin[fmt], fmt, ctx, f"templates/{TEMPLATES[fmt]}"))
        label = str(self.custom_dir / TEMPLATES[fmt]) if self.custom_dir else TEMPLATES[fmt]
        try:
            return Rendered(fmt, self._render(self._envs[fmt], fmt, ctx, label))
        except TemplateProblem as problem:
            log.warning("the team's review template failed, using the built-in one: %s", problem)
            text = self._render(self._builtin[fmt], fmt, ctx, f"templates/{TEMPLATES[fmt]}")
            return Rendered(fmt, text, problem=str(problem))


# ── Slack: mrkdwn cut into blocks and messages ───────────────────────────────────────────────


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_blocks(text: str) -> list[dict[str, Any]]:
    """The Slack template's output as blocks: `# title` lines are headers, `---` lines dividers, the
    text between them sections (a blank line starts a new one; a long one is split between lines,
    never cut)."""
    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.extend(sections("\n".join(para), most=10_000))
        para.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped == "---":
            flush()
            blocks.append(DividerBlock())
        elif stripped.startswith("# "):
            flush()
            title = _unescape(stripped[2:].strip())
            if len(title) > MAX_HEADER:  # too long for a header: a bold section says it all
                blocks.extend(sections(f"*{stripped[2:].strip()}*"))
            else:
                blocks.append(header(title))
        elif not stripped:
            flush()
        else:
            para.append(line.rstrip())
    flush()
    while blocks and isinstance(blocks[-1], DividerBlock):
        blocks.pop()
    return render(blocks)


def messages(blocks: list[dict[str, Any]], *, fallback: str) -> list[dict[str, Any]]:
    """The blocks as messages of at most MAX_BLOCKS: the first is the summary, the rest its thread."""
    if not blocks:
        return [{"text": fallback, "blocks": []}]
    chunks = [blocks[i : i + MAX_BLOCKS] for i in range(0, len(blocks), MAX_BLOCKS)]
    out = []
    for n, chunk in enumerate(chunks, start=1):
        suffix = f" (part {n} of {len(chunks)})" if len(chunks) > 1 else ""
        out.append({"text": fallback + suffix, "blocks": chunk})
    return out


# ── a sample, for `cadence check-config` and the docs ────────────────────────────────────────


def sample() -> SprintReview:
    """A small review with something in every part, to render custom templates against."""
    from bot.services import sprint_review as sr

    day = date(2026, 12, 7)
    story = sr.StoryLine("S-1", "Retrain the ranker on December clicks", "ml", "U01ALICE", 3, "done", day)
    open_story = sr.StoryLine("S-2", "Feature store backfill", "eng", "U02BOB", 5, "in_progress")
    waiver = sr.Waiver("S-1", "Data contract", "internal data only", "U01ALICE")
    return sr.SprintReview(
        team="recsys",
        sprint="2026-W50",
        goal="Ship the December ranker",
        starts_on=day,
        ends_on=day + timedelta(days=11),
        state="active",
        timezone="Europe/Berlin",
        generated_at=datetime(2026, 12, 18, 14, 0, tzinfo=ZoneInfo("UTC")),
        committed=(story, open_story),
        carried_in=(open_story,),
        added=(),
        removed=(),
        completed=(story,),
        not_done=(open_story,),
        carried_to=None,
        readiness=sr.Readiness(
            1,
            0,
            (sr.ForcedCommit("S-1", story.title, "U01ALICE", "demo on Friday", ("Data contract",), day),),
            (waiver,),
        ),
        done_check=sr.DoneCheck(1, 1, ()),
        velocity=(sr.VelocityPoint("2026-W48", 8, 6), sr.VelocityPoint("2026-W50", 8, 3)),
        burndown=tuple(
            sr.BurndownPoint(day + timedelta(days=n), 8 - n * 8 / 11, 8 - n if n < 6 else None)
            for n in range(12)
        ),
        experiments=(
            sr.ExperimentLine(
                "E-1", "ranker v7", "S-1", "done", "ndcg", 0.352, 0.33, 0.35, 0.022, True, True, 4
            ),
        ),
        decisions=(
            sr.Decision(
                "R-1",
                "ranker v7 to canary",
                "U09CAROL",
                "approve",
                "offline gains hold",
                datetime(2026, 12, 10, 15, 0, tzinfo=ZoneInfo("UTC")),
            ),
        ),
        drift=sr.DriftLine(1, timedelta(minutes=42), 1, 0, 0, ("D-1",)),
        blockers=(
            sr.Blocker("U02BOB", "waiting for the feature store credentials", day + timedelta(days=2)),
        ),
    )


# ── charts, and the whole review in one format ───────────────────────────────────────────────


def draw_charts(review: SprintReview) -> dict[str, bytes]:
    """The burndown and velocity PNGs (matplotlib; imported on first use, it is slow to load)."""
    from bot.notify import charts

    return {
        "burndown": charts.burndown_png(review.burndown, title=f"Burndown · {review.team} · {review.sprint}"),
        "velocity": charts.velocity_png(
            review.velocity, title=f"Velocity · {review.team}", average=review.average_velocity
        ),
    }


def export(
    renderer: ReviewRenderer,
    review: SprintReview,
    fmt: str,
    *,
    with_charts: bool = True,
    command: str = "/scrum",
) -> Rendered:
    """The review as a file's content: HTML gets its charts embedded, so the page stands alone."""
    uris: dict[str, str | None] | None = None
    if fmt == "html" and with_charts:
        from bot.notify.charts import data_uri

        uris = {name: data_uri(png) for name, png in draw_charts(review).items()}
    return renderer.render(review, fmt, charts=uris, command=command)


# ── the messages that post it ────────────────────────────────────────────────────────────────


@lru_cache(maxsize=8)
def renderer_for(templates_dir: str | None) -> ReviewRenderer:
    """One renderer per templates folder: Jinja compiles each template once and keeps it."""
    return ReviewRenderer(templates_dir)


async def post_review(
    session: AsyncSession,
    *,
    config: AppConfig,
    team: Team,
    review: SprintReview,
    key: str,
    charts: bool = True,
) -> int | None:
    """Queue the review in the team channel: the summary, its continuation as thread replies when it is
    longer than one message, and the charts uploaded in the thread; a team template that failed is
    reported to the team's leads. The dedupe `key` makes a second call for the same occasion a no-op.
    Returns the summary's outbox id."""
    rendered = renderer_for(config.templates_dir).render(review, "slack", command=config.command)
    fallback = f"Sprint review of {review.team}: {escape(review.sprint)}"
    parts = messages(slack_blocks(rendered.text), fallback=fallback)
    if not await outbox.enqueue(session, dedupe_key=key, channel=team.channel, payload=parts[0]):
        return None  # posted for this occasion already
    root = await outbox.find(session, key)
    root_id = root.id if root else None
    for n, part in enumerate(parts[1:], start=2):
        await outbox.enqueue(
            session, dedupe_key=f"{key}:part{n}", channel=team.channel, payload=part, thread_of=root_id
        )
    if charts:
        pngs = await asyncio.to_thread(draw_charts, review)  # matplotlib off the event loop (object API)
        await outbox.enqueue_upload(
            session,
            dedupe_key=f"{key}:charts",
            channel=team.channel,
            files=[
                ("burndown.png", f"Burndown of {review.sprint}", pngs["burndown"]),
                ("velocity.png", f"Velocity of team {review.team}", pngs["velocity"]),
            ],
            initial_comment=f"Burndown and velocity of {review.sprint}",
            thread_of=root_id,
        )
    if rendered.problem:
        note = (
            f":warning: The sprint review of {escape(review.sprint)} was posted with the built-in template, "
            f"because the team's own failed: {escape(rendered.problem)}"
        )
        for lead in team.leads:
            await outbox.enqueue(
                session, dedupe_key=f"{key}:template:{lead}", channel=lead, payload={"text": note}
            )
    return root_id


async def review_requested(n: Notifier, session: AsyncSession, event: ReviewSummaryRequested) -> None:
    """`Post to channel` under a preview: the review as it stands now."""
    sprint = await session.get(Sprint, event.sprint_id)
    team = n.config.team(sprint.team) if sprint else None
    if sprint is None or team is None:
        return
    review = await build(session, config=n.config, team=team, sprint=sprint, now=event.at)
    stamp = event.at.strftime("%Y%m%dT%H%M")
    await post_review(session, config=n.config, team=team, review=review, key=f"review:{sprint.id}:{stamp}")
