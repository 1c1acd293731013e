"""The sandbox's demo: its people and channels, and the data seeded on the first start (a sprint under
way, stories with readiness gaps, a running experiment, a pending governance review, a drift incident).
Everything is made through the services, so the messages it causes are the bot's own."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.resources import files

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import AppConfig, Loc, Team, parse_config
from bot.notify import Notifier
from bot.services import drift, experiments, governance, readiness, sprints, stories
from bot.store.models import Story

DEMO_FILE = "demo.yaml"


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    role: str  # what the sandbox's user switcher says they are: lead, member, approver, outsider
    email: str = ""


DEMO_PEOPLE = (
    Person("U0ALICE", "Alice Moreau", "lead", "alice@example.com"),
    Person("U0BOB", "Bob Okafor", "member", "bob@example.com"),
    Person("U0DAVE", "Dave Lindqvist", "member", "dave@example.com"),
    Person("U0CAROL", "Carol Jensen", "approver", "carol@example.com"),
    Person("U0OLGA", "Olga Petrova", "outsider", "olga@example.com"),
)
DEMO_CHANNELS = {"C0RECSYS": "recsys", "C0REVIEWS": "ml-reviews"}


def demo_config() -> AppConfig:
    text = (files("bot.sandbox") / DEMO_FILE).read_text(encoding="utf-8")
    return parse_config(text, "demo.yaml (built in)")


def invented_id(kind: str, written: str) -> str:
    """An id for an email or #name of a configuration the sandbox runs on: no Slack to ask, so it makes
    one up, the same every time for the same text."""
    stem = re.sub(r"[^A-Z0-9]", "", written.split("@")[0].upper())[:9] or "X"
    return ("U0" if kind == "user" else "C0") + stem


def people_of(config: AppConfig, known: dict[str, str] | None = None) -> list[Person]:
    """Everyone the configuration names, with the role the user switcher shows, and one outsider."""
    names = {p.id: p.name for p in DEMO_PEOPLE} | (known or {})
    roles: dict[str, str] = {}
    for team in config.teams:
        for user in team.members:
            roles.setdefault(user, "member")
        for user in team.leads:
            roles[user] = "lead"
        if team.governance is not None:
            for user in team.governance.approvers:
                roles.setdefault(user, "approver")
    out = [Person(u, names.get(u, _name_from_id(u)), role) for u, role in roles.items()]
    outsider = next(p for p in DEMO_PEOPLE if p.role == "outsider")
    if outsider.id not in roles:
        out.append(outsider)
    order = {"lead": 0, "member": 1, "approver": 2, "outsider": 3}
    return sorted(out, key=lambda p: (order.get(p.role, 9), p.name))


def _name_from_id(user: str) -> str:
    """A name for an id the configuration writes (U03DAVE: Dave), for the page only."""
    stem = user[1:].lstrip("0123456789")
    return stem.capitalize() or user


def channels_of(config: AppConfig, known: dict[str, str] | None = None) -> dict[str, str]:
    """Channel id -> the name the page shows, for every channel the configuration posts to."""
    names = DEMO_CHANNELS | (known or {})
    out: dict[str, str] = {}
    for team in config.teams:
        out.setdefault(team.channel, names.get(team.channel, team.name))
        if team.governance is not None:
            out.setdefault(
                team.governance.channel, names.get(team.governance.channel, f"{team.name}-reviews")
            )
    return out


def references_with_ids(config: AppConfig) -> tuple[dict[Loc, str], dict[str, str]]:
    """Ids for the emails and #names a configuration writes (for `with_ids`), and the name the page shows
    for each: the channel's name, the email's local part."""
    from bot.integrations.slack_names import references

    ids: dict[Loc, str] = {}
    names: dict[str, str] = {}
    for ref in references(config):
        if ref.is_id:
            continue
        written = ref.written.lstrip("#")
        ids[ref.loc] = invented_id(ref.kind, written)
        names.setdefault(
            ids[ref.loc], written if ref.kind == "channel" else written.split("@")[0].capitalize()
        )
    return ids, names


# ── the data ─────────────────────────────────────────────────────────────────────────────────


async def is_seeded(session: AsyncSession) -> bool:
    return (await session.exec(select(Story.id).limit(1))).first() is not None


async def seed(notifier: Notifier, config: AppConfig, clock: Clock) -> None:
    """The demo's story for its first team: a sprint under way, stories, an experiment, a review, drift."""
    team = config.teams[0]
    lead = team.leads[0] if team.leads else team.members[0]
    others = [m for m in team.members if m != lead] or [lead]
    now = clock.now()
    async with notifier.transaction() as session:
        if await is_seeded(session):
            return
        await _seed(session, config, team, lead, others, now)


async def _seed(
    session: AsyncSession, config: AppConfig, team: Team, lead: str, others: list[str], now: datetime
) -> None:
    today = now.astimezone(config.team_timezone(team)).date()
    monday = today - timedelta(days=today.weekday())
    sprint = await sprints.start_sprint(
        session,
        team=team,
        name="Sprint 14",
        starts_on=monday,
        ends_on=monday + timedelta(days=11),
        actor=lead,
        goal="Ship ranker v2 behind a flag",
    )
    ready_ml = {
        "data_available": "clicks_2026_11 (v3) in the lake",
        "feature_stability": "Feature set frozen at fs-2026.11",
        "reproducible_env": "Image ranker-train:2026.11.2",
        "eval_criteria": "AUC on last week's holdout, baseline 0.81, target 0.83",
        "data_contract": "events.v4, owned by the tracking team",
        "validation_dataset": "Last 7 days, split by user",
    }
    plan = [
        # title, type, owner, points, readiness answers, into the sprint, started
        ("Retrain the ranker on November clicks", "ml", others[0], 5, ready_ml, True, True),
        (
            "Canary rollout for ranker v2",
            "eng",
            lead,
            3,
            {"acceptance_criteria": "5% of traffic for 2 days, no CTR drop", "dependencies": "none"},
            True,
            False,
        ),
        (
            "Data contract for the search events stream",
            "ml",
            others[-1],
            3,
            {"data_available": "search_events (v1)", "reproducible_env": "Image ranker-train:2026.11.2"},
            False,
            False,
        ),
        ("Freeze the user embeddings in the feature store", "ml", lead, 2, {}, False, False),
        ("Dashboards for click-through drift", "eng", others[0], None, {}, False, False),
    ]
    keys: list[str] = []
    for title, kind, owner, points, answers, _, _ in plan:
        added = await stories.add_story(
            session, config=config, team=team, title=title, actor=lead, story_type=kind, owner=owner,
            points=points, today=today,
        )  # fmt: skip
        keys.append(added.story.key)
        if answers:
            await readiness.record_answers(
                session, story=added.story, kind="ready", config=config, actor=owner, answers=answers
            )
    into = [key for key, step in zip(keys, plan, strict=True) if step[5]]
    # committed at planning, on the sprint's first day
    await sprints.commit(
        session, config=config, team=team, keys=into, actor=lead, sprint=sprint, today=monday
    )
    for key, step in zip(keys, plan, strict=True):
        if step[6]:
            await stories.start_story(
                session, config=config, story=await stories.get_story(session, key), actor=step[2]
            )
    story = await stories.get_story(session, keys[0])
    experiment = await experiments.add_experiment(
        session,
        config=config,
        story=story,
        name="ranker-v2-recency",
        actor=others[0],
        hypothesis="Recency features lift AUC on returning users",
        metric="auc",
        baseline=0.81,
        target=0.83,
    )
    await experiments.set_status(
        session, config=config, experiment=experiment, status="running", actor=others[0]
    )
    if team.governance is not None:
        await governance.request_review(
            session,
            config=config,
            team=team.name,
            purpose="production",
            actor=others[0],
            source="slack",
            experiment=experiment,
        )
    if not config.drift.rules:
        return
    readings = [
        drift.Reading("recsys-ranker", "psi", value, now - timedelta(hours=hours), feature="user_age")
        for hours, value in ((3, 0.06), (2, 0.14), (1, 0.27))
    ]
    await drift.ingest(session, config=config, readings=readings, now=now)
