"""Messages of governance reviews: the request with its buttons, its edits as approvers decide,
the requester's answer, and the one reminder when a review passes its SLA."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import governance
from bot.services.events import ReviewDecided, ReviewOverdue, ReviewRequested, ReviewWithdrawn
from bot.services.governance import STATE_WORDS
from bot.slack.blocks import governance as blocks
from bot.slack.blocks.ceremonies import plain
from bot.store import outbox
from bot.store.models import Review
from bot.text import escape

if TYPE_CHECKING:
    from bot.notify.notifier import Notifier


def _is_person(actor: str) -> bool:
    return actor[:1] in ("U", "W") and actor[1:].isalnum()


async def _review(session: AsyncSession, review_id: int) -> Review:
    review = await session.get(Review, review_id)
    if review is None:  # recorded in this very transaction, so it exists
        raise LookupError(f"review {review_id} vanished before its message was queued")
    return review


async def review_requested(n: Notifier, session: AsyncSession, event: ReviewRequested) -> None:
    """The request goes to the team's governance channel; the review remembers it for later edits."""
    review = await _review(session, event.review_id)
    _, gov = governance.governance_of(n.config, review.team)
    ev = await governance.evidence(session, config=n.config, review=review)
    key = f"review:{review.key}:request"
    await outbox.enqueue(session, dedupe_key=key, channel=gov.channel, payload=blocks.review_request(ev))
    queued = await outbox.find(session, key)
    review.message_id = queued.id if queued else None
    session.add(review)


async def review_decided(n: Notifier, session: AsyncSession, event: ReviewDecided) -> None:
    """Edit the request in place (buttons gone once closed) and tell the requester what was decided."""
    review = await _review(session, event.review_id)
    _, gov = governance.governance_of(n.config, review.team)
    ev = await governance.evidence(session, config=n.config, review=review)
    payload = blocks.review_closed(ev) if review.state != "pending" else blocks.review_request(ev)
    if review.message_id is not None:
        await outbox.edit(
            session,
            original=review.message_id,
            channel=gov.channel,
            payload=payload,
            dedupe_key=f"review:{review.key}:update:{event.approver}",
        )
    if event.closed_now and _is_person(review.requested_by):
        d = next(d for d in ev.decisions if d.approver == event.approver)
        why = f"\n> {escape(d.rationale)}" if d.rationale else ""
        text = f"Your review *{review.key}* ({escape(review.subject)}) was {STATE_WORDS[review.state]} by <@{d.approver}>.{why}"
        await outbox.enqueue(
            session,
            dedupe_key=f"review:{review.key}:notify",
            channel=review.requested_by,
            payload=plain(text),
        )


async def review_withdrawn(n: Notifier, session: AsyncSession, event: ReviewWithdrawn) -> None:
    """The request edited to say it was withdrawn (no buttons), and the requester told why."""
    review = await _review(session, event.review_id)
    _, gov = governance.governance_of(n.config, review.team)
    ev = await governance.evidence(session, config=n.config, review=review)
    if review.message_id is not None:
        await outbox.edit(
            session,
            original=review.message_id,
            channel=gov.channel,
            payload=blocks.review_closed(ev),
            dedupe_key=f"review:{review.key}:withdrawn",
        )
    if _is_person(review.requested_by) and ev.experiment is not None:
        text = (
            f"Your review *{review.key}* ({escape(review.subject)}) was withdrawn: "
            f"{ev.experiment.key} {ev.experiment.status}, so there is nothing to promote."
        )
        await outbox.enqueue(
            session,
            dedupe_key=f"review:{review.key}:withdrawn:notify",
            channel=review.requested_by,
            payload=plain(text),
        )


async def review_overdue(n: Notifier, session: AsyncSession, event: ReviewOverdue) -> None:
    """One reminder in the request's thread, naming the approvers who have not decided."""
    review = await _review(session, event.review_id)
    _, gov = governance.governance_of(n.config, review.team)
    waiting_on = governance.waiting_on(n.config, review, await governance.decisions(session, review))
    who = " ".join(f"<@{u}>" for u in waiting_on)
    text = f":hourglass: {who} *{review.key}* ({escape(review.subject)}) is still waiting for a decision."
    await outbox.enqueue(
        session,
        dedupe_key=f"review:{review.key}:reminder",
        channel=gov.channel,
        payload={**plain(text), "reply_broadcast": True},
        thread_of=review.message_id,
    )
