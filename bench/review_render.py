"""The sprint review rendered for a sprint of 1,000 stories and 500 experiments, in each format,
against plain Jinja2 (no sandbox, no escaping) rendering the same templates with the same context.

    python bench/review_render.py [--runs 20] [--stories 1000] [--experiments 500]

Targets: under 200 ms a format without the charts, under 1 s with them (the HTML export embeds both).
"""

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jinja2 import Environment, FileSystemLoader  # noqa: E402

from bot.notify import review as rv  # noqa: E402
from bot.services import sprint_review as sr  # noqa: E402

WORDS = "ranker features backfill retrain evaluate canary rollout drift label pipeline schema feature store".split()


def big_review(stories: int, experiments: int, seed: int = 3) -> sr.SprintReview:
    rng = random.Random(seed)
    start = date(2026, 12, 7)

    def title() -> str:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18)))
        return text[:120].capitalize()

    lines = []
    for n in range(1, stories + 1):
        done = rng.random() < 0.7
        lines.append(
            sr.StoryLine(
                f"S-{n}",
                title(),
                rng.choice(["ml", "eng"]),
                f"U{rng.randint(1, 40):08d}",
                rng.choice([1, 2, 3, 5, 8]),
                "done" if done else rng.choice(["open", "in_progress", "blocked"]),
                start + timedelta(days=rng.randint(0, 11)) if done else None,
            )
        )
    forced = tuple(
        sr.ForcedCommit(
            s.key, s.title, "U00000001", "agreed with the product owner", ("Data contract",), start
        )
        for s in lines[:50]
    )
    waivers = tuple(
        sr.Waiver(s.key, "Validation data", "no labelled data yet", "U00000002") for s in lines[50:80]
    )
    exps = tuple(
        sr.ExperimentLine(
            f"E-{n}",
            title()[:60],
            f"S-{n}",
            "done",
            "ndcg",
            0.3 + rng.random() / 10,
            0.33,
            0.35,
            0.01,
            rng.random() < 0.5,
            True,
            3,
        )
        for n in range(1, experiments + 1)
    )
    at = datetime(2026, 12, 10, 15, tzinfo=UTC)
    return sr.SprintReview(
        team="recsys",
        sprint="2026-W50",
        goal="Ship the December ranker",
        starts_on=start,
        ends_on=start + timedelta(days=11),
        state="active",
        timezone="Europe/Berlin",
        generated_at=at,
        committed=tuple(lines[: int(stories * 0.9)]),
        carried_in=tuple(lines[:20]),
        added=tuple(lines[int(stories * 0.9) :]),
        removed=(),
        completed=tuple(s for s in lines if s.status == "done"),
        not_done=tuple(s for s in lines if s.status != "done"),
        carried_to=None,
        readiness=sr.Readiness(stories, stories - 50, forced, waivers),
        done_check=sr.DoneCheck(700, 690, waivers[:10]),
        velocity=tuple(sr.VelocityPoint(f"2026-W{40 + 2 * n}", 2000, 1900 - n) for n in range(6)),
        burndown=tuple(
            sr.BurndownPoint(start + timedelta(days=n), 3000 - n * 270, 3000 - n * 250 if n < 8 else None)
            for n in range(12)
        ),
        experiments=exps,
        decisions=tuple(
            sr.Decision(f"R-{n}", f"ranker v{n} to canary", "U00000009", "approve", "gains hold", at)
            for n in range(40)
        ),
        drift=sr.DriftLine(3, timedelta(minutes=42), 2, 1, 1, ("D-1", "D-2", "D-3")),
        blockers=tuple(sr.Blocker(f"U{n:08d}", "waiting for credentials", start) for n in range(30)),
    )


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """(first call, median, p95) in ms."""
    t = time.perf_counter()
    fn()
    first = (time.perf_counter() - t) * 1000
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return first, statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--stories", type=int, default=1000)
    parser.add_argument("--experiments", type=int, default=500)
    args = parser.parse_args()
    review = big_review(args.stories, args.experiments)
    renderer = rv.ReviewRenderer()
    plain = Environment(loader=FileSystemLoader(str(rv.BUILTIN_DIR)), trim_blocks=True, lstrip_blocks=True)
    for name in ("mention", "num", "signed", "pct", "hours", "date", "datetime", "plural"):
        plain.filters[name] = renderer._builtin["md"].filters[name]
    plain.filters["safe_uri"] = lambda uri: uri
    ctx = rv.context(review)

    def slack() -> object:
        return rv.messages(rv.slack_blocks(renderer.render(review, "slack").text), fallback="x")

    cases: list[tuple[str, Callable[[], object], float]] = [
        ("slack (render, blocks, messages)", slack, 200),
        ("md", lambda: renderer.render(review, "md"), 200),
        ("html without charts", lambda: renderer.render(review, "html"), 200),
        ("json", lambda: renderer.render(review, "json"), 200),
        ("charts (burndown + velocity)", lambda: rv.draw_charts(review), 1000),
        ("html with charts (export)", lambda: rv.export(renderer, review, "html"), 1000),
    ]
    for fmt in ("slack", "md", "html"):
        template = rv.TEMPLATES[fmt]
        cases.append(
            (f"baseline: plain Jinja2 {fmt}", lambda t=template: plain.get_template(t).render(**ctx), 0)
        )
    print(
        f"sprint review of {args.stories} stories and {args.experiments} experiments, {args.runs} runs (ms)"
    )
    print(f"{'':<36} {'first':>8} {'median':>8} {'p95':>8}  target")
    for name, fn, target in cases:
        first, median, p95 = timed(fn, args.runs)
        verdict = "" if not target else f"< {target:.0f}  {'PASS' if p95 < target else 'FAIL'}"
        print(f"{name:<36} {first:>8.1f} {median:>8.1f} {p95:>8.1f}  {verdict}")
    slack_parts = slack()
    assert isinstance(slack_parts, list)
    print(
        f"the Slack summary: {len(slack_parts)} messages (the first in the channel, the rest in its thread)"
    )
    print(
        f"rerun: python bench/review_render.py --runs {args.runs} --stories {args.stories} --experiments {args.experiments}"
    )


if __name__ == "__main__":
    main()
