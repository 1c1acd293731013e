"""`sprint …` subcommands."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bot.notify.review import MAX_BLOCKS, messages, renderer_for, slack_blocks
from bot.services import sprint_review, sprints
from bot.services.errors import Invalid
from bot.slack import ids
from bot.slack.blocks import actions, button, context, message, section
from bot.slack.blocks.sprints import (
    close_report,
    plan_blocks,
    sprint_board,
    sprint_heading,
    sprint_label,
    story_keys,
)
from bot.slack.commands import Reply
from bot.slack.context import Invocation
from bot.slack.parsing import parse_args
from bot.text import escape


async def start(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens, options=("--from", "--to", "--goal"))
    if not args.positionals:
        raise Invalid(
            'Give the sprint a name, e.g. `sprint start "Sprint 14" --from 2026-12-07 --to 2026-12-18`.'
        )
    for option in ("--from", "--to"):
        if not args.option(option):
            raise Invalid(f"{option} is required (YYYY-MM-DD).", field=option)
    starts_on = sprints.parse_date(args.option("--from") or "", option="--from")
    ends_on = sprints.parse_date(args.option("--to") or "", option="--to")
    team = inv.team()
    today = inv.today(team)
    async with inv.deps.transaction() as session:
        sprint = await sprints.start_sprint(
            session,
            team=team,
            name=" ".join(args.positionals),
            starts_on=starts_on,
            ends_on=ends_on,
            goal=args.option("--goal"),
            actor=inv.user_id,
            today=today,
        )
    role = "the current sprint" if sprint.state == "active" else "the next sprint"
    text = f":runner: Created {escape(sprint.name)} as {role} of team {team.name}.\n{sprint_heading(sprint)}"
    if sprint.starts_on < today:
        ago = (today - sprint.starts_on).days
        text += f"\n:warning: It started {ago} day{'s' if ago != 1 else ''} ago ({sprint.starts_on}); check the dates if that is a typo."
    return message(f"{escape(sprint.name)} created as {role}.", [section(text)])


async def current(inv: Invocation, tokens: list[str]) -> Reply:
    if tokens:
        raise Invalid(f"Unexpected {tokens[0]!r}; `sprint current` takes no arguments.")
    async with inv.deps.reading() as session:
        team = inv.team()
        inv.may_read(team, "its sprints")
        sprint = await sprints.resolve_sprint(session, team=team, ref="current")
        view = await sprints.overview(session, config=inv.config, team=team, sprint=sprint)
    return message(f"Sprint {escape(sprint.name)}", sprint_board(view, today=inv.today(team)))


async def plan(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens)
    team = inv.team()
    inv.may_read(team, "its sprints")
    ref = " ".join(args.positionals) or None

    def read(session: Session) -> sprints.Plan:
        return sprints.plan_of(session, config=inv.config, team=team, sprint=ref)

    def render(result: sprints.Plan) -> dict[str, Any]:
        return message(f"Planning {escape(result.sprint.name)}", plan_blocks(result, inv.command))

    return await inv.deps.answer(team.name, ("sprint plan", ref), read, render)


async def commit(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens, options=("--to", "--sprint"), flags=("--force",), pairs=True)
    unknown = sorted(set(args.pairs) - {"reason"})
    if unknown:
        raise Invalid(f'Unexpected {unknown[0]}=…; only reason="…" goes with --force.')
    if "reason" in args.pairs and not args.flag("--force"):
        raise Invalid('reason="…" goes with --force.')
    if args.flag("--force") and "reason" not in args.pairs:
        raise Invalid('--force needs a reason, e.g. --force reason="agreed with the PO".', field="reason")
    team = inv.team()
    async with inv.deps.transaction() as session:
        sprint = None
        ref = args.option("--to") or args.option("--sprint")  # --sprint: the older spelling
        if ref:
            sprint = await sprints.resolve_sprint(session, team=team, ref=ref)
        result = await sprints.commit(
            session,
            config=inv.config,
            team=team,
            keys=args.positionals,
            actor=inv.user_id,
            sprint=sprint,
            force_reason=args.pairs.get("reason") if args.flag("--force") else None,
            today=inv.today(team),
        )
    label = sprint_label(result.sprint, inv.today(team))
    text = f":inbox_tray: Committed {story_keys(result.added)} to {label}."
    if result.scope_added:
        text += "\nThe sprint is under way: recorded as scope added (the sprint review shows it)."
    if result.moved_from:
        moves = ", ".join(f"{key} from {escape(name)}" for key, name in result.moved_from.items())
        text += f"\nMoved out of another sprint: {moves}."
    if result.forced:
        text += f"\n:warning: Forced although not Ready (audited): {story_keys(result.forced)}."
    return message(f"Committed {story_keys(result.added)}", [section(text)])


async def close(inv: Invocation, tokens: list[str]) -> Reply:
    if tokens:
        raise Invalid(
            f"Unexpected {tokens[0]!r}; `sprint close` closes the current sprint and takes no arguments."
        )
    team = inv.team()
    async with inv.deps.transaction() as session:
        report = await sprints.close_sprint(session, team=team, actor=inv.user_id)
    blocks = close_report(report)
    if team.announce.close:
        blocks.append(context(f"Posted in <#{team.channel}> for the team."))
    return message(f"Sprint {escape(report.closed.name)} closed", blocks)


async def review(inv: Invocation, tokens: list[str]) -> Reply:
    """`sprint review [NAME]`: the sprint review, shown to the caller first, with a button to post it."""
    args = parse_args(tokens)
    team = inv.team()
    inv.may_read(team, "its sprints")
    async with inv.deps.transaction() as session:
        sprint = await sprints.resolve_sprint(session, team=team, ref=" ".join(args.positionals) or "current")
        summary = await sprint_review.build(
            session, config=inv.config, team=team, sprint=sprint, now=inv.deps.clock.now()
        )
    rendered = renderer_for(inv.config.templates_dir).render(summary, "slack", command=inv.command)
    parts = messages(
        slack_blocks(rendered.text), fallback=f"Sprint review of {team.name}: {escape(sprint.name)}"
    )
    shown = parts[0]["blocks"][: MAX_BLOCKS - 3]
    notes = []
    if len(parts) > 1 or len(parts[0]["blocks"]) > len(shown):
        notes.append(
            f"This preview shows the first part; posted, the rest follows in {len(parts) - 1 or 1} "
            "thread repl" + ("y" if len(parts) <= 2 else "ies") + ", with the charts."
        )
    else:
        notes.append("Posted, the burndown and velocity charts follow in its thread.")
    if rendered.problem:
        notes.append(
            f":warning: Your team's template failed, so this is the built-in one: {escape(rendered.problem)}"
        )
    extra = [
        context(" ".join(notes)).to_dict(),
        actions(button("Post to the team channel", ids.REVIEW_POST, str(sprint.id), "primary")).to_dict(),
    ]
    return {"response_type": "ephemeral", "text": parts[0]["text"], "blocks": [*shown, *extra]}


async def post_review(inv: Invocation, value: str) -> Reply:
    """The preview's button: post the review of that sprint to the team channel, as it stands now."""
    if not value.isdigit():
        raise Invalid("This button does not name a sprint; run `sprint review` again.")
    team = inv.team()
    async with inv.deps.transaction() as session:
        sprint = await sprint_review.request_post(
            session,
            config=inv.config,
            team=team,
            sprint_id=int(value),
            actor=inv.user_id,
            now=inv.deps.clock.now(),
        )
    text = f":outbox_tray: Posting the review of {escape(sprint.name)} to <#{team.channel}>."
    return message(f"Posting the review of {sprint.name}", [section(text)])
