"""`drift …` subcommands, and what the buttons on an incident's message do (the same service calls)."""

from __future__ import annotations

from typing import Any

from bot.services import drift, readiness, stories
from bot.services.errors import Invalid
from bot.slack.blocks import drift as blocks
from bot.slack.blocks import message, section
from bot.slack.blocks.stories import story_card
from bot.slack.commands import Reply
from bot.slack.context import Invocation
from bot.slack.parsing import parse_args, unescape
from bot.store.models import DriftIncident
from bot.text import escape


def _one_key(tokens: list[str], example: str) -> str:
    args = parse_args(tokens)
    if len(args.positionals) != 1:
        raise Invalid(f"Name one incident, e.g. `{example}`.")
    return args.positionals[0]


def _zone(inv: Invocation, incident: DriftIncident) -> Any:
    team = inv.config.team(incident.team)
    return inv.config.team_timezone(team) if team else inv.config.team_timezone(inv.config.teams[0])


async def list_(inv: Invocation, tokens: list[str]) -> Reply:
    if tokens:
        raise Invalid("`drift` takes no arguments; `drift show D-n` shows one incident.")
    team = inv.team()
    inv.may_read(team, "its drift incidents")
    async with inv.deps.reading() as session:
        found = await drift.list_incidents(session, team=team.name, state="open")
    zone = inv.config.team_timezone(team)
    return message(
        f"{len(found)} open drift incidents",
        blocks.incident_list(found, zone=zone, command=inv.command),
    )


async def show(inv: Invocation, tokens: list[str]) -> Reply:
    key = _one_key(tokens, "drift show D-3")
    async with inv.deps.reading() as session:
        incident = await drift.get_incident(session, key)
        inv.may_read(incident.team, "its drift incidents")
        rows = await drift.readings_of(
            session, model=incident.model, metric=incident.metric, feature=incident.feature, limit=20
        )
        story = await _story_key(session, incident)
    return message(
        f"{incident.key} {incident.model} {incident.metric}",
        blocks.incident_detail(
            incident, rows, zone=_zone(inv, incident), story_key=story, now=inv.deps.clock.now()
        ),
    )


async def _story_key(session: Any, incident: DriftIncident) -> str | None:
    if incident.story_id is None:
        return None
    from bot.store.models import Story

    story = await session.get(Story, incident.story_id)
    return story.key if story else None


async def acknowledge(inv: Invocation, key: str) -> Reply:
    async with inv.deps.transaction() as session:
        incident = await drift.get_incident(session, key)
        await drift.acknowledge(
            session, config=inv.config, incident=incident, actor=inv.user_id, now=inv.deps.clock.now()
        )
    text = f":eyes: You acknowledged *{incident.key}*; no more reminders. Its message shows it."
    return message(f"You acknowledged {incident.key}", [section(text)])


async def snooze(inv: Invocation, key: str, choice: str) -> Reply:
    async with inv.deps.transaction() as session:
        incident = await drift.get_incident(session, key)
        incident = await drift.snooze(
            session,
            config=inv.config,
            incident=incident,
            actor=inv.user_id,
            choice=choice,
            now=inv.deps.clock.now(),
        )
    until = (
        "until it resolves"
        if incident.snooze_until_resolved
        else f"until {blocks.team_time(incident.snoozed_until, _zone(inv, incident))}"
        if incident.snoozed_until
        else ""
    )
    return message(
        f"Snoozed {incident.key}",
        [section(f":zzz: *{incident.key}* is snoozed {until}: no reminders till then.")],
    )


async def resolve(inv: Invocation, key: str, reason: str | None) -> Reply:
    async with inv.deps.transaction() as session:
        incident = await drift.get_incident(session, key)
        await drift.resolve(
            session,
            config=inv.config,
            incident=incident,
            actor=inv.user_id,
            reason=reason,
            now=inv.deps.clock.now(),
        )
    return message(f"Resolved {incident.key}", [section(f":white_check_mark: *{incident.key}* is resolved.")])


async def story(inv: Invocation, key: str, link: str | None = None) -> Reply:
    async with inv.deps.transaction() as session:
        incident = await drift.get_incident(session, key)
        made = await drift.create_story(
            session,
            config=inv.config,
            incident=incident,
            actor=inv.user_id,
            now=inv.deps.clock.now(),
            link=link,
        )
        s = made.story
        ready = await readiness.checklist(session, s, "ready", inv.config)
        done = await readiness.checklist(session, s, "done", inv.config)
        sprint_name = await stories.sprint_name(session, s)
    head = (
        f":hammer_and_wrench: Created *{s.key}* {escape(s.title)} in the backlog from *{incident.key}*; "
        "its owner is asked for the readiness criteria it still lacks."
        if made.created
        else f"*{incident.key}* already has its retraining story, *{s.key}*."
    )
    return message(
        f"{s.key} {s.title}",
        [section(head), *story_card(s, sprint_name=sprint_name, ready=ready, done=done)],
    )


async def ack_cmd(inv: Invocation, tokens: list[str]) -> Reply:
    return await acknowledge(inv, _one_key(tokens, "drift ack D-3"))


async def snooze_cmd(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens)
    if len(args.positionals) != 2:
        raise Invalid(
            "Name the incident and for how long, e.g. `drift snooze D-3 24h` (1h, 24h or resolved)."
        )
    return await snooze(inv, args.positionals[0], args.positionals[1])


async def resolve_cmd(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens, pairs=True)
    unknown = sorted(set(args.pairs) - {"reason"})
    if not args.positionals or unknown:
        raise Invalid(
            'Name the incident and why, e.g. `drift resolve D-3 reason="retrained on December data"`.'
        )
    reason = args.pairs.get("reason") or unescape(" ".join(args.positionals[1:])) or None
    return await resolve(inv, args.positionals[0], reason)


async def story_cmd(inv: Invocation, tokens: list[str]) -> Reply:
    return await story(inv, _one_key(tokens, "drift story D-3"))
