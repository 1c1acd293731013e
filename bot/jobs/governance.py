"""Posting review requests, decisions and SLA reminders: everything goes through the outbox."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import AppConfig
from bot.services import governance
from bot.services.governance import STATE_WORDS, Decision
from bot.slack.blocks import governance as blocks
from bot.slack.blocks.ceremonies import plain
from bot.store import outbox
from bot.store.db import unit_of_work
from bot.store.models import Experiment, Review
from bot.text import escape

log = logging.getLogger(__name__)


def _is_person(actor: str) -> bool:
    return actor[:1] in ("U", "W") and actor[1:].isalnum()


async def announce(session: AsyncSession, *, config: AppConfig, review: Review) -> None:
    """Queue the request to the team's governance channel and remember its message for later edits."""
    _, gov = governance.governance_of(config, review.team)
    ev = await governance.evidence(session, config=config, review=review)
    key = f"review:{review.key}:request"
    await outbox.enqueue(session, dedupe_key=key, channel=gov.channel, payload=blocks.review_request(ev))
    queued = await outbox.find(session, key)
    review.message_id = queued.id if queued else None
    session.add(review)


async def after_decision(session: AsyncSession, *, config: AppConfig, result: Decision) -> None:
    """Edit the request in place (buttons gone once closed) and tell the requester what was decided."""
    review = result.review
    _, gov = governance.governance_of(config, review.team)
    ev = await governance.evidence(session, config=config, review=review)
    payload = blocks.review_closed(ev) if review.state != "pending" else blocks.review_request(ev)
    if review.message_id is not None:
        await outbox.edit(
            session,
            original=review.message_id,
            channel=gov.channel,
            payload=payload,
            dedupe_key=f"review:{review.key}:update:{result.decision.approver}",
        )
    if result.closed_now and _is_person(review.requested_by):
        d = result.decision
        why = f"\n> {escape(d.rationale)}" if d.rationale else ""
        text = f"Your review *{review.key}* ({escape(review.subject)}) was {STATE_WORDS[review.state]} by <@{d.approver}>.{why}"
        await outbox.enqueue(
            session,
            dedupe_key=f"review:{review.key}:notify",
            channel=review.requested_by,
            payload=plain(text),
        )


@dataclass
class GovernanceJobs:
    config: AppConfig
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock

    async def remind_overdue(self, now: datetime | None = None) -> list[Review]:
        """One reminder per review pending past its SLA, in the request's thread."""
        now = now or self.clock.now()
        reminded = []
        async with unit_of_work(self.sessions) as session:
            for review in await governance.overdue(session, config=self.config, now=now):
                if not await governance.mark_reminded(session, review, now):
                    continue
                _, gov = governance.governance_of(self.config, review.team)
                decided = {d.approver for d in await governance.decisions(session, review)}
                waiting_on = [u for u in gov.approvers if u != review.requested_by and u not in decided]
                who = " ".join(f"<@{u}>" for u in waiting_on)
                text = f":hourglass: {who} *{review.key}* ({escape(review.subject)}) is still waiting for a decision."
                await outbox.enqueue(
                    session,
                    dedupe_key=f"review:{review.key}:reminder",
                    channel=gov.channel,
                    payload={**plain(text), "reply_broadcast": True},
                    thread_of=review.message_id,
                )
                reminded.append(review)
        for review in reminded:
            log.info("reminded approvers of %s", review.key)
        return reminded


async def status_changed(
    session: AsyncSession,
    *,
    config: AppConfig,
    experiment: Experiment,
    actor: str,
    now: datetime | None = None,
) -> Review | None:
    """After an experiment's status moved: open and post the review the team's policy asks for, if any."""
    review = await governance.review_for_status(
        session, config=config, experiment=experiment, actor=actor, now=now
    )
    if review is not None:
        await announce(session, config=config, review=review)
    return review
