"""The notifier: runs a unit of work and, before it commits, turns the events its services recorded
into outbox messages. A rollback therefore sends nothing, and a commit loses nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import AppConfig
from bot.notify import audit, ceremonies, drift, governance, review, sprints, stories
from bot.notify.templates import Renderer
from bot.services import events
from bot.store import outbox
from bot.store.db import unit_of_work

Handler = Callable[["Notifier", AsyncSession, Any], Awaitable[None]]


@dataclass
class Notifier:
    config: AppConfig
    sessions: async_sessionmaker[AsyncSession]
    renderer: Renderer
    clock: Clock

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work whose events become messages in the same transaction."""
        async with unit_of_work(self.sessions) as session:
            yield session
            await self.publish(session)

    async def publish(self, session: AsyncSession) -> None:
        """Queue the messages of every event recorded on `session` so far, in the order they happened,
        stamped with this notifier's clock (the sandbox's clock runs ahead of the wall's)."""
        session.info[outbox.NOW] = self.clock.now()
        while pending := events.take(session):
            for event in pending:
                await handler_for(event)(self, session, event)


# Each event and the messages it causes: a new kind of message is one handler and one line here.
HANDLERS: dict[type[events.Event], Handler] = {
    events.StoryAssigned: stories.assigned,
    events.StoryDone: sprints.story_done,
    events.SprintStarted: sprints.sprint_started,
    events.StoriesCommitted: sprints.stories_committed,
    events.SprintClosed: sprints.sprint_closed,
    events.ReadinessChanged: ceremonies.readiness_changed,
    events.StandupAnswered: ceremonies.standup_answered,
    events.CeremonyDue: ceremonies.ceremony_due,
    events.ReviewSummaryRequested: review.review_requested,
    events.ReviewRequested: governance.review_requested,
    events.ReviewDecided: governance.review_decided,
    events.ReviewWithdrawn: governance.review_withdrawn,
    events.ReviewOverdue: governance.review_overdue,
    events.DriftOpened: drift.drift_opened,
    events.DriftChanged: drift.drift_changed,
    events.DriftEscalated: drift.drift_escalated,
    events.DriftResolved: drift.drift_resolved,
    events.DriftAckOverdue: drift.drift_ack_overdue,
    events.AuditAnchored: audit.audit_anchored,
    events.AuditCheckFailed: audit.audit_check_failed,
}


def handler_for(event: events.Event) -> Handler:
    try:
        return HANDLERS[type(event)]
    except KeyError:
        raise LookupError(f"no message is defined for {type(event).__name__}") from None
