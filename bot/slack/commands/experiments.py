"""`exp …` subcommands and `audit`: experiments, their results and reviews, and an item's history."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block

from bot.services import audit, drift, experiments, governance, stories
from bot.services.errors import Invalid
from bot.slack.blocks import context, message, section
from bot.slack.blocks.audit import audit_log
from bot.slack.blocks.governance import evaluation_line
from bot.slack.commands import Reply
from bot.slack.context import Invocation
from bot.slack.parsing import parse_args, parse_user
from bot.store.models import Experiment
from bot.text import escape, plural

MAX_LISTED = 40


def _float(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Invalid(f"{option} must be a number, not {text!r}.", field=option) from None
    return experiments.check_number(value, field=option)


def _stage(exp: Experiment) -> str:
    """Where an approved review has cleared it to go: " · approved for production", or nothing."""
    return f" · approved for {exp.stage}" if exp.stage != "none" else ""


def _line(exp: Experiment) -> str:
    metric = f" · {escape(exp.metric)}" if exp.metric else ""
    return f"*{exp.key}* {escape(exp.name)} · {exp.status}{_stage(exp)}{metric}"


async def add(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(
        tokens,
        options=("--metric", "--baseline", "--target", "--hypothesis", "--owner", "--mlflow", "--dashboard"),
        flags=("--lower-is-better",),
    )
    if len(args.positionals) < 2:
        raise Invalid("Name the story and the experiment, e.g. `exp add S-3 Two-tower ranker --metric auc`.")
    baseline = _float(args.option("--baseline") or "", "--baseline") if "--baseline" in args.options else None
    target = _float(args.option("--target") or "", "--target") if "--target" in args.options else None
    owner = parse_user(args.option("--owner") or "") if args.option("--owner") else None
    links = {k: args.option(f"--{k}") or "" for k in ("mlflow", "dashboard") if args.option(f"--{k}")}
    async with inv.deps.transaction() as session:
        story = await stories.get_story(session, args.positionals[0])
        exp = await experiments.add_experiment(
            session,
            config=inv.config,
            story=story,
            name=" ".join(args.positionals[1:]),
            actor=inv.user_id,
            hypothesis=args.option("--hypothesis") or "",
            metric=args.option("--metric"),
            baseline=baseline,
            target=target,
            higher_is_better=not args.flag("--lower-is-better"),
            owner=owner,
            links=links,
        )
    text = f":test_tube: Added *{exp.key}* {escape(exp.name)} to *{story.key}* (proposed)."
    return message(f"Added {exp.key}", [section(text)])


async def list_(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens, options=("--story", "--status"))
    if args.positionals:
        raise Invalid(f"Unexpected {args.positionals[0]!r}; exp list takes only options.")
    async with inv.deps.reading() as session:
        team = inv.team()
        inv.may_read(team, "its experiments")
        story = (
            await stories.get_story(session, args.option("--story") or "") if args.option("--story") else None
        )
        found = await experiments.list_experiments(
            session, team=team.name, story=story, status=args.option("--status")
        )
    if not found:
        return message(
            "No experiments", [section(f"Team {escape(team.name)} has no experiments that match.")]
        )
    lines = [_line(e) for e in found[:MAX_LISTED]]
    blocks: list[Block] = [
        section(f"*Experiments · team {escape(team.name)}* — {plural(len(found), 'experiment')}"),
        section("\n".join(lines)),
    ]
    if len(found) > MAX_LISTED:
        blocks.append(context(f"Showing the first {MAX_LISTED}; narrow with --story or --status."))
    return message(plural(len(found), "experiment"), blocks)


async def show(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens)
    if len(args.positionals) != 1:
        raise Invalid("Name one experiment, e.g. `exp show E-3`.")
    async with inv.deps.reading() as session:
        exp = await experiments.get_experiment(session, args.positionals[0])
        inv.may_read(exp.team, "its experiments")
        rows = await experiments.results(session, exp)
        story = await experiments.story_of(session, exp)
        reviews = await governance.reviews_for(session, exp)
    links = experiments.links_of(exp)
    link_text = " · ".join(f"<{escape(url)}|{kind}>" for kind, url in links.items()) or "no links"
    recent = ", ".join(
        f"{escape(r.metric)}={r.value:.4g}" + (f" ({escape(r.run_id)})" if r.run_id else "")
        for r in rows[-8:]
    )
    review_text = (
        ", ".join(f"{r.key} {r.purpose}: {governance.STATE_WORDS[r.state]}" for r in reviews) or "none"
    )
    blocks: list[Block] = [
        section(
            f"*{exp.key}* {escape(exp.name)} · {exp.status}{_stage(exp)}\nStory *{story.key}* {escape(story.title)} · owner "
            + (f"<@{exp.owner}>" if exp.owner else "_none_")
        ),
        section(f"_Hypothesis:_ {escape(exp.hypothesis) or '–'}"),
        section(evaluation_line(experiments.evaluate(exp, rows))),
        context(f"Results: {recent or 'none yet'} · Reviews: {review_text} · {link_text}"),
    ]
    return message(f"{exp.key} {escape(exp.name)}", blocks)


async def status(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens, pairs=True)
    if len(args.positionals) != 2:
        raise Invalid(
            f"Name an experiment and a status ({', '.join(experiments.STATUSES)}), e.g. `exp status E-3 running`."
        )
    unknown = sorted(set(args.pairs) - {"reason"})
    if unknown:
        raise Invalid(f'Unexpected {unknown[0]}=…; only reason="…" goes with a status.')
    async with inv.deps.transaction() as session:
        exp = await experiments.get_experiment(session, args.positionals[0])
        moved, review = await governance.report_status(
            session,
            config=inv.config,
            experiment=exp,
            status=args.positionals[1].lower(),
            actor=inv.user_id,
            reason=args.pairs.get("reason"),
            now=inv.deps.clock.now(),
        )
    text = (
        f":arrows_counterclockwise: *{exp.key}* is now {exp.status}."
        if moved
        else f"*{exp.key}* is already {exp.status}."
    )
    if review is not None:
        text += f"\nTeam policy opened governance review *{review.key}* ({review.purpose})."
    return message(f"{exp.key} {exp.status}", [section(text)])


async def result(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens, pairs=True)
    if len(args.positionals) != 1:
        raise Invalid("Name one experiment and its metrics, e.g. `exp result E-3 auc=0.84 run=abc123`.")
    pairs = dict(args.pairs)
    run_id = pairs.pop("run", "")
    metrics = {name: _float(value, name) for name, value in pairs.items()}
    async with inv.deps.transaction() as session:
        exp = await experiments.get_experiment(session, args.positionals[0])
        await experiments.record_results(
            session,
            config=inv.config,
            experiment=exp,
            metrics=metrics,
            actor=inv.user_id,
            source="slack",
            run_id=run_id,
        )
        evaluation = experiments.evaluate(exp, await experiments.results(session, exp))
    recorded = plural(len(metrics), "result")
    return message(
        f"Recorded {recorded} for {exp.key}",
        [
            section(f":bar_chart: Recorded {recorded} for *{exp.key}*."),
            section(evaluation_line(evaluation)),
        ],
    )


async def review(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens, options=("--for",))
    if len(args.positionals) != 1:
        raise Invalid("Name one experiment, e.g. `exp review E-3 --for production`.")
    purpose = (args.option("--for") or "production").lower()
    async with inv.deps.transaction() as session:
        exp = await experiments.get_experiment(session, args.positionals[0])
        opened, created = await governance.request_review(
            session,
            config=inv.config,
            team=exp.team,
            purpose=purpose,
            actor=inv.user_id,
            source="slack",
            experiment=exp,
            now=inv.deps.clock.now(),
        )
    if not created:
        text = f"*{opened.key}* for {exp.key} ({opened.purpose}) is already waiting for a decision."
        return message(text, [section(text)])
    text = f":scales: Opened governance review *{opened.key}* for *{exp.key}* ({purpose}); the approvers are asked in their channel."
    return message(f"Opened {opened.key}", [section(text)])


async def audit_history(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens)
    if len(args.positionals) != 1:
        raise Invalid("Name one item, e.g. `audit S-4`, `audit E-2`, `audit R-1` or `audit D-3`.")
    raw = args.positionals[0].strip().upper()
    labels: dict[str, dict[str, str]] = {}
    async with inv.deps.reading() as session:
        if raw.startswith("S"):
            story = await stories.get_story(session, raw)
            key, team = story.key, story.team
            # the story's criteria by their labels, as its type is configured now
            labels = {
                k: {c.key: c.label for c in inv.config.criteria(k, story.type)} for k in ("ready", "done")
            }
        elif raw.startswith("E"):
            exp = await experiments.get_experiment(session, raw)
            key, team = exp.key, exp.team
        elif raw.startswith("R"):
            review = await governance.get_review(session, raw)
            key, team = review.key, review.team
        elif raw.startswith("D"):
            incident = await drift.get_incident(session, raw)
            key, team = incident.key, incident.team
        else:
            raise Invalid(
                f"{raw!r} is not a story, experiment, review or drift incident id (S-4, E-2, R-1, D-3)."
            )
        inv.may_read(team, "its decision history")
        rows = await audit.history(session, key)
    if not rows:
        return message(
            f"No decisions recorded for {key}", [section(f"No decisions are recorded for *{key}* yet.")]
        )
    configured = inv.config.team(team)
    zone = inv.config.team_timezone(configured) if configured else ZoneInfo(inv.config.timezone)
    return message(f"Audit log for {key}", audit_log(key, rows, zone=zone, labels=labels))
