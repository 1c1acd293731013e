"""Small helpers for service and store tests: transactions, stories, sprints, table snapshots."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import date, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from sqlmodel import select as select_model
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import SystemClock
from bot.config import AppConfig, Team
from bot.notify import Notifier
from bot.notify.templates import Renderer
from bot.services import readiness, sprints, stories
from bot.store.db import session_factory
from bot.store.models import AuditEvent, OutboxMessage, Sprint, Story
from tests.conftest import ALICE, make_config

E = TypeVar("E", bound=BaseException)

SPRINT_START = date(2026, 1, 5)
PLANNED = "planned in setup"  # the force reason of setup that puts a not-Ready story into a sprint


def tx(db: AsyncEngine, config: AppConfig | None = None) -> AbstractAsyncContextManager[AsyncSession]:
    """One committed transaction (rolled back if the block raises), run as the bot runs every change:
    the messages its events cause are queued in it (addressed by `config`, the test config if None)."""
    config = config or make_config()
    return Notifier(config, session_factory(db), Renderer(config.templates_dir), SystemClock()).transaction()


async def refused(db: AsyncEngine, error: type[E], call: Callable[[AsyncSession], Awaitable[Any]]) -> E:
    """Run `call` in its own transaction, expect `error`, and let the transaction roll back."""
    with pytest.raises(error) as info:
        async with tx(db) as s:
            await call(s)
    return info.value


async def snapshot(db: AsyncEngine, *, claims: bool = False) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a refused call changed nothing. Unless claims=True it leaves out
    the claimed event and trigger ids (a refused command that would change something still claims its
    trigger id, so that a replay of it is ignored)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if not claims and table.name == "slack_event":
                continue
            rows = (await conn.execute(select(table).order_by(*table.primary_key.columns))).all()
            out[table.name] = [tuple(r) for r in rows]
        await conn.rollback()
    return out


def team(config: AppConfig, name: str = "recsys") -> Team:
    found = config.team(name)
    assert found is not None
    return found


async def make_story(
    session: AsyncSession,
    config: AppConfig,
    *,
    team_name: str = "recsys",
    title: str = "Train the ranker",
    actor: str | None = None,
    **overrides: Any,
) -> Story:
    """A new story, added by `actor` (by default Alice in recsys, else the team's first lead or member);
    with sprint=…, one the gate must let in (its refusal is raised, for setup that expects the story in
    the sprint)."""
    found = team(config, team_name)
    actor = actor or (ALICE if found.includes(ALICE) else (found.leads or found.members)[0])
    added = await stories.add_story(session, config=config, team=found, title=title, actor=actor, **overrides)
    if added.refused is not None:
        raise added.refused
    return added.story


async def put_in_sprint(
    session: AsyncSession, config: AppConfig, story: Story, sprint: Sprint, *, reason: str | None = PLANNED
) -> Story:
    """Put `story` into `sprint` through the readiness gate as its team's lead would: forced with
    `reason` (which audits a not-Ready story), or with reason=None only if the story is Ready. For setup
    where who created the story matters (owner DMs) but the gate is not under test."""
    found = team(config, story.team)
    lead = found.leads[0] if found.leads else story.created_by
    await sprints.commit(
        session, config=config, team=found, keys=[story.key], actor=lead, sprint=sprint, force_reason=reason
    )
    await session.refresh(story)
    return story


async def make_planned_story(
    session: AsyncSession, config: AppConfig, sprint: Sprint, *, reason: str | None = PLANNED, **kw: Any
) -> Story:
    """make_story(**kw) into the backlog, then into `sprint` as its team's lead (see put_in_sprint)."""
    story = await make_story(session, config, **kw)
    return await put_in_sprint(session, config, story, sprint, reason=reason)


async def make_sprint(
    session: AsyncSession,
    config: AppConfig,
    *,
    team_name: str = "recsys",
    name: str = "Sprint 1",
    starts_on: date = SPRINT_START,
    days: int = 13,
    actor: str | None = None,
    goal: str | None = None,
) -> Sprint:
    """A sprint started by `actor`, by default the team's first lead (or member)."""
    found = team(config, team_name)
    actor = actor or (found.leads or found.members)[0]
    return await sprints.start_sprint(
        session,
        team=found,
        name=name,
        starts_on=starts_on,
        ends_on=starts_on + timedelta(days=days),
        actor=actor,
        goal=goal,
    )


async def answer_all(
    session: AsyncSession, config: AppConfig, story: Story, kind: str, *, actor: str | None = None
) -> readiness.Checklist:
    """Give every criterion of `kind` a value (as `actor`, by default the story's creator)."""
    actor = actor or story.created_by
    answers = {c.key: f"{c.key} answered" for c in config.criteria(kind, story.type)}
    return await readiness.record_answers(
        session, story=story, kind=kind, config=config, actor=actor, answers=answers
    )


async def get(session: AsyncSession, key: str) -> Story:
    return await stories.get_story(session, key)


async def rows(db: AsyncEngine, model: Any, *where: Any) -> list[Any]:
    """The stored rows of `model` that match every one of `where`, in primary-key (insertion) order:
    PostgreSQL, unlike SQLite, returns rows in no particular order without one."""
    async with session_factory(db)() as session:
        statement = select_model(model).order_by(*model.__table__.primary_key.columns)
        if where:
            statement = statement.where(*where)
        return list((await session.exec(statement)).all())


async def stored_story(db: AsyncEngine, number: int) -> Story:
    """The story S-`number`, which must be stored."""
    found = await rows(db, Story, Story.number == number)
    assert len(found) == 1, f"S-{number} was not stored"
    return found[0]


async def outbox_rows(db: AsyncEngine) -> list[OutboxMessage]:
    async with tx(db) as s:
        return list((await s.exec(select_model(OutboxMessage).order_by(OutboxMessage.id))).all())


async def audit_rows(db: AsyncEngine) -> list[AuditEvent]:
    async with tx(db) as s:
        return list((await s.exec(select_model(AuditEvent).order_by(AuditEvent.seq))).all())


async def execute(db: AsyncEngine, sql: str, *, types: dict[str, Any] | None = None, **params: Any) -> None:
    """Raw SQL, committed: what someone tampering with the database would do."""
    stmt = text(sql)
    if types:
        stmt = stmt.bindparams(*(bindparam(name, type_=type_) for name, type_ in types.items()))
    async with db.begin() as conn:
        await conn.execute(stmt, params)


def scraped(text: str) -> dict[str, float]:
    """A /metrics page read as Prometheus reads it: each sample as name{label="value",…} → value."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out
