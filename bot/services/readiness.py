"""Definition of Ready and Definition of Done: checklists derived from config and recorded answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, false, or_, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig, CriteriaKeys, Criterion
from bot.services import audit, events
from bot.services.errors import Conflict, Invalid
from bot.services.teams import require_member
from bot.store.db import unit_of_work
from bot.store.models import CriterionValue, Story, StoryRow
from bot.store.queries import constant, insert_ignore, position
from bot.store.types import utcnow

KINDS = ("ready", "done")
KIND_NAMES = {"ready": "Definition of Ready", "done": "Definition of Done"}
MAX_ANSWER = 2000

log = logging.getLogger("bot.readiness")


@dataclass(frozen=True)
class CriterionStatus:
    criterion: Criterion
    value: str | None = None
    na_reason: str | None = None
    set_by: str | None = None
    set_at: datetime | None = None

    @property
    def waived(self) -> bool:
        return self.na_reason is not None

    @property
    def satisfied(self) -> bool:
        return self.waived or bool(self.value and self.value.strip())


@dataclass(frozen=True)
class Checklist:
    story_key: str
    kind: str
    items: tuple[CriterionStatus, ...]

    @property
    def missing(self) -> list[Criterion]:
        return [i.criterion for i in self.items if not i.satisfied]

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def answered(self) -> int:
        return sum(1 for i in self.items if i.satisfied)

    @property
    def total(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Readiness:
    """A checklist as a list of stories shows it: which criteria are satisfied, without their values
    (read from the story row's stored keys, so a page of a long backlog costs no query of its own). It
    names no story: stories of one type with the same criteria met share one (Weigher)."""

    kind: str
    criteria: tuple[Criterion, ...]
    satisfied: frozenset[str]
    missing: tuple[Criterion, ...]  # asked several times a row by the views: worked out once (Weigher)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def answered(self) -> int:
        return len(self.criteria) - len(self.missing)

    @property
    def total(self) -> int:
        return len(self.criteria)


def summary(story: Story | StoryRow, kind: str, config: AppConfig) -> Readiness:
    """A story's readiness from the satisfied keys its row carries (Story.ready_keys, done_keys)."""
    return Weigher(config, kind)(story)


class Weigher:
    """`summary` for the many rows of one list or plan: each combination of story type and stored keys
    (rows repeat a few) is worked out once, and its rows share that one Readiness."""

    def __init__(self, config: AppConfig, kind: str) -> None:
        self._config, self._kind = config, kind
        self._seen: dict[tuple[str, str], Readiness] = {}

    def __call__(self, story: Story | StoryRow) -> Readiness:
        stored = (story.ready_keys if self._kind == "ready" else story.done_keys) or ""
        found = self._seen.get((story.type, stored))
        if found is None:
            criteria = tuple(self._config.criteria(self._kind, story.type))
            satisfied = satisfied_keys(stored)
            missing = tuple(c for c in criteria if c.key not in satisfied)
            found = self._seen[(story.type, stored)] = Readiness(self._kind, criteria, satisfied, missing)
        return found


def _keys_column(kind: str) -> Any:
    return col(Story.ready_keys) if kind == "ready" else col(Story.done_keys)


def stored_keys(satisfied: Iterable[str]) -> str:
    """Satisfied criterion keys as a story row keeps them (Story.ready_keys, done_keys): in key order,
    each between commas (",data_contract,eval_criteria,"), or "" for none. The commas on both ends let
    SQL ask for ",key," in the stored text as it is, with no text built per row (lacking_for)."""
    keys = sorted(satisfied)
    return f",{','.join(keys)}," if keys else ""


def satisfied_keys(stored: str) -> frozenset[str]:
    """The keys `stored_keys` wrote."""
    return frozenset(stored.strip(",").split(",")) if stored else frozenset()


async def refresh_lacking(session: AsyncSession, story: Story, config: AppConfig) -> None:
    """Sets an existing story's ready_lacking, after its keys or type changed in this transaction, from
    its row as the database holds it now, with the expression `reconcile` uses (add_story sets a new
    story's from `summary`). Computed in the UPDATE rather than from the object in hand: when one
    person's answers and another's change of type land at once, the second UPDATE waits for the first
    and reads the row the first left (PostgreSQL takes the row's lock; SQLite has one writer), so the
    column agrees with both."""
    await session.flush()
    lacking = lacking_for("ready", config.criteria_keys("ready"))
    found = await session.exec(
        update(Story)
        .where(col(Story.id) == story.id)
        .values(ready_lacking=lacking)
        .returning(col(Story.ready_lacking))
    )
    set_committed_value(story, "ready_lacking", bool(found.scalar_one()))


async def reconcile(session: AsyncSession, config: AppConfig) -> int:
    """Brings every story's ready_lacking in line with the criteria `config` asks for, and says how many
    changed. Run when a process starts: the column depends on the configuration, and a criterion added to
    or taken from a story type changes it for stories nobody touched (and a migration does not know the
    configuration). A start with the configuration unchanged reads the stories and writes none."""
    lacking = lacking_for("ready", config.criteria_keys("ready"))
    done = await session.exec(
        update(Story).where(col(Story.ready_lacking) != lacking).values(ready_lacking=lacking)
    )
    return int(done.rowcount)


async def reconcile_on_start(sessions: async_sessionmaker[AsyncSession], config: AppConfig) -> bool:
    """`reconcile` in a transaction of its own, as `serve` and `clock` run it once the schema is current.
    False, logged, when the database cannot be reached or is not migrated yet: the web process starts
    without its database (what it receives waits or is refused until it is back) and tries again later
    (reconcile_until_done)."""
    try:
        async with unit_of_work(sessions) as session:
            changed = await reconcile(session, config)
    except (DBAPIError, OSError) as error:
        log.warning("could not bring ready_lacking in line with the configuration yet: %s", error)
        return False
    if changed:
        log.info("ready_lacking brought in line with the configuration on %d stories", changed)
    return True


async def reconcile_until_done(
    sessions: async_sessionmaker[AsyncSession], config: AppConfig, *, pause: float = 5.0
) -> None:
    """reconcile_on_start, every `pause` seconds until it has run."""
    while True:
        if await reconcile_on_start(sessions, config):
            return
        await asyncio.sleep(pause)


_Answer = tuple[str | None, str | None, str | None, datetime | None]  # value, na_reason, set_by, set_at


def _build(story: Story, kind: str, config: AppConfig, answers: dict[str, _Answer]) -> Checklist:
    items = []
    for criterion in config.criteria(kind, story.type):
        answer = answers.get(criterion.key)
        items.append(CriterionStatus(criterion) if answer is None else CriterionStatus(criterion, *answer))
    return Checklist(story.key, kind, tuple(items))


async def checklists(
    session: AsyncSession, stories: list[Story], kind: str, config: AppConfig
) -> dict[int, Checklist]:
    """Checklists for many stories with one query, keyed by story id."""
    ids = [s.id for s in stories if s.id is not None]
    answers: dict[int, dict[str, _Answer]] = {i: {} for i in ids}
    if ids:
        # Plain columns, not ORM objects: lists of hundreds of stories stay cheap.
        result = await session.exec(
            # sqlmodel types select() for at most 4 columns (fastapi/sqlmodel#271); this one takes 6.
            select(  # type: ignore[call-overload]
                CriterionValue.story_id,
                CriterionValue.key,
                CriterionValue.value,
                CriterionValue.na_reason,
                CriterionValue.set_by,
                CriterionValue.set_at,
            ).where(col(CriterionValue.story_id).in_(ids), CriterionValue.kind == kind)
        )
        for story_id, key, value, na_reason, set_by, set_at in result:
            answers[story_id][key] = (value, na_reason, set_by, set_at)
    return {s.id: _build(s, kind, config, answers[s.id]) for s in stories if s.id is not None}


Needs = CriteriaKeys  # per story type, the criteria keys of a kind it asks for (AppConfig.criteria_keys)


@lru_cache(maxsize=64)
def lacking_for(kind: str, needs: Needs) -> ColumnElement[bool]:
    """SQL for "the story lacks a criterion of `kind` that its type asks for" (`needs`, from the
    configuration), from the keys the story row carries (kept by record_answers): what refresh_lacking and
    reconcile write into Story.ready_lacking, which lists, plans and counts read. Built once per
    configuration: SQLAlchemy expressions are immutable and can be shared."""
    stored = _keys_column(kind)  # each key between commas (stored_keys): ",key," is found as it is
    clauses = []
    for story_type, keys in needs:
        if keys:
            absent = [position(stored, constant(f",{key},")) == constant(0) for key in keys]
            clauses.append(and_(col(Story.type) == constant(story_type), or_(*absent)))
    return or_(*clauses) if clauses else false()


async def checklist(session: AsyncSession, story: Story, kind: str, config: AppConfig) -> Checklist:
    return (await checklists(session, [story], kind, config))[story.id]  # type: ignore[index]


def _check_keys(story: Story, kind: str, config: AppConfig, keys: Iterable[str]) -> None:
    valid = [c.key for c in config.criteria(kind, story.type)]
    for key in keys:
        if key not in valid:
            known = ", ".join(valid) or "none are configured"
            raise Invalid(
                f"{key!r} is not a {KIND_NAMES[kind]} criterion for {story.type} stories. Known: {known}.",
                field=key,
            )


@dataclass(frozen=True)
class Entry:
    """What a form holds for one criterion: an answer, a waiver (n/a and its reason), or nothing."""

    value: str | None = None
    na_reason: str | None = None  # "" when n/a was written without a reason


async def apply_form(
    session: AsyncSession,
    *,
    story: Story,
    kind: str,
    config: AppConfig,
    actor: str,
    entries: dict[str, Entry],
) -> Checklist | None:
    """Record a checklist form as the person left it: a blank clears an answer or waiver, n/a needs a
    reason, and criteria left as they were are not touched. None when nothing changed."""
    require_member(config, story.team, actor, doing=f"change {story.key}")
    current = {i.criterion.key: i for i in (await checklist(session, story, kind, config)).items}
    answers: dict[str, str] = {}
    waivers: dict[str, str] = {}
    clear: list[str] = []
    for key, entry in entries.items():
        was = current.get(key)
        if was is None:
            continue  # a criterion removed from the configuration since the form opened
        if entry.na_reason is not None:
            if not entry.na_reason:
                raise Invalid('Say why it does not apply: "n/a: <reason>".', field=key)
            if entry.na_reason != was.na_reason:
                waivers[key] = entry.na_reason
        elif entry.value:
            if entry.value != was.value:
                answers[key] = entry.value
        elif was.value is not None or was.waived:
            clear.append(key)
    if not (answers or waivers or clear):
        return None
    return await record_answers(
        session,
        story=story,
        kind=kind,
        config=config,
        actor=actor,
        answers=answers,
        waivers=waivers,
        clear=clear,
    )


async def record_answers(
    session: AsyncSession,
    *,
    story: Story,
    kind: str,
    config: AppConfig,
    actor: str,
    answers: dict[str, str] | None = None,
    waivers: dict[str, str] | None = None,
    clear: Iterable[str] = (),
) -> Checklist:
    """Set criteria to values, waive them (n/a) with a reason, or clear them. Every waiver is audited."""
    require_member(config, story.team, actor, doing=f"change {story.key}")
    answers, waivers, clear = dict(answers or {}), dict(waivers or {}), set(clear)
    if kind not in KINDS:
        raise Invalid(f"unknown checklist {kind!r}")
    if story.closed:
        raise Conflict(f"{story.key} is already {story.status}; its checklists are closed.")
    if not answers and not waivers and not clear:
        raise Invalid('Give at least one criterion, as key=value or key=n/a reason="…".')
    _check_keys(story, kind, config, [*answers, *waivers, *clear])
    both = sorted((set(answers) & set(waivers)) | (clear & (set(answers) | set(waivers))))
    if both:
        raise Invalid(f"{both[0]} is given both a value and n/a; choose one.", field=both[0])
    for key, value in answers.items():
        if not value.strip():
            raise Invalid(f"{key} needs a value (or key=n/a with a reason).", field=key)
        if len(value) > MAX_ANSWER:
            raise Invalid(
                f"{key} is {len(value)} characters long; keep it to {MAX_ANSWER} at most.", field=key
            )
    for key, reason in waivers.items():
        if not reason.strip():
            raise Invalid(
                f'Marking {key} n/a needs a reason, e.g. {key}=n/a reason="no PII involved".', field=key
            )
        if len(reason) > MAX_ANSWER:
            raise Invalid(
                f"The reason for {key} is too long; keep it to {MAX_ANSWER} characters at most.", field=key
            )

    now = utcnow()
    this_story = (col(CriterionValue.story_id) == story.id, col(CriterionValue.kind) == kind)
    if clear:
        await session.exec(
            delete(CriterionValue).where(*this_story, col(CriterionValue.key).in_(list(clear)))
        )
    for key, (new_value, new_reason) in {
        **{k: (v.strip(), None) for k, v in answers.items()},
        **{k: (None, r.strip()) for k, r in waivers.items()},
    }.items():
        # Insert, or update the answer that is there: two people answering at once both succeed.
        fields = {"value": new_value, "na_reason": new_reason, "set_by": actor, "set_at": now}
        if not await insert_ignore(
            session, CriterionValue, {"story_id": story.id, "kind": kind, "key": key, **fields}
        ):
            await session.exec(
                update(CriterionValue).where(*this_story, col(CriterionValue.key) == key).values(**fields)
            )
        if new_reason is not None:
            await audit.record(
                session,
                actor=actor,
                action=f"{kind}.waive",
                subject=story.key,
                payload={"criterion": key, "reason": new_reason},
                at=now,
            )
    satisfied = (
        await session.exec(select(CriterionValue.key).where(*this_story).order_by(col(CriterionValue.key)))
    ).all()
    if kind == "ready":
        story.ready_keys = stored_keys(satisfied)
    else:
        story.done_keys = stored_keys(satisfied)
    story.updated_at = now
    session.add(story)
    await session.flush()
    if kind == "ready":
        await refresh_lacking(session, story, config)
    events.record(session, events.ReadinessChanged(story.id, kind, actor))  # type: ignore[arg-type]
    return await checklist(session, story, kind, config)
