"""Messages of drift incidents: one root message per incident in its team channel, edited in place,
and short thread replies when it escalates, resolves, reopens or waits too long for someone.

Calm by construction:
- edits caused by readings are paced: at most one every `EDIT_PACE`, and a newer one folds into the
  edit still waiting, so a storm of readings for one incident makes a handful of Slack calls;
- edits caused by a person (acknowledge, snooze, story) go at once;
- a root message that has not been sent yet (held for a quiet day, or waiting its turn in the
  channel) is rewritten instead of edited;
- only escalation to critical (and a reopen at critical) is broadcast to the channel."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import drift
from bot.services.events import DriftAckOverdue, DriftChanged, DriftEscalated, DriftOpened, DriftResolved
from bot.slack.blocks import drift as blocks
from bot.slack.blocks import mention
from bot.store import outbox
from bot.store.models import DriftIncident, Story
from bot.text import escape, plural

if TYPE_CHECKING:
    from bot.notify.notifier import Notifier

EDIT_PACE = timedelta(seconds=60)


async def _incident(session: AsyncSession, incident_id: int) -> DriftIncident:
    incident = await session.get(DriftIncident, incident_id)
    if incident is None:  # changed in this very transaction, so it exists
        raise LookupError(f"drift incident {incident_id} vanished before its message was queued")
    return incident


async def _payload(n: Notifier, session: AsyncSession, incident: DriftIncident) -> dict[str, Any]:
    story = await session.get(Story, incident.story_id) if incident.story_id else None
    team = n.config.team(incident.team)
    zone = n.config.team_timezone(team) if team else n.config.team_timezone(n.config.teams[0])
    return blocks.incident_message(
        incident, zone=zone, story_key=story.key if story else None, now=n.clock.now()
    )


async def _show(n: Notifier, session: AsyncSession, incident: DriftIncident, *, urgent: bool) -> None:
    """Bring the root message up to date: rewrite it if it has not gone yet, else edit it (paced
    unless `urgent`)."""
    if incident.message_id is None:
        return
    payload = await _payload(n, session, incident)
    if await outbox.revise(
        session, incident.message_id, payload, due_now=urgent and incident.severity == "critical"
    ):
        return
    now = n.clock.now()
    due = None if urgent else max(now, (incident.edit_due_at or now) + EDIT_PACE)
    incident.edit_due_at = await outbox.edit(
        session,
        original=incident.message_id,
        channel=incident.channel,
        payload=payload,
        dedupe_key=f"drift:{incident.key}:edit:{uuid4().hex}",
        not_before=due,
    )
    if incident.edit_due_at < now:
        incident.edit_due_at = now
    session.add(incident)


async def _reply(
    session: AsyncSession, incident: DriftIncident, text: str, *, broadcast: bool = False
) -> None:
    incident.replies += 1
    session.add(incident)
    await outbox.enqueue(
        session,
        dedupe_key=f"drift:{incident.key}:reply:{incident.replies}",
        channel=incident.channel,
        payload=blocks.reply(text, broadcast=broadcast),
        thread_of=incident.message_id,
    )


def _what(incident: DriftIncident) -> str:
    return f"*{incident.key}* ({blocks.subject(incident)})"


async def drift_opened(n: Notifier, session: AsyncSession, event: DriftOpened) -> None:
    incident = await _incident(session, event.incident_id)
    if incident.message_id is None:
        key = f"drift:{incident.key}:root"
        await outbox.enqueue(
            session,
            dedupe_key=key,
            channel=incident.channel,
            payload=await _payload(n, session, incident),
            not_before=drift.hold_until(n.config, incident, event.at),
        )
        queued = await outbox.find(session, key)
        incident.message_id = queued.id if queued else None
        incident.edit_due_at = event.at
        session.add(incident)
        return
    await _show(n, session, incident, urgent=True)
    critical = incident.severity == "critical"
    await _reply(
        session,
        incident,
        f":repeat: {_what(incident)} breached again and is open again ({incident.severity}): "
        f"{escape(drift.comparison(incident))}.",
        broadcast=critical,
    )


async def drift_changed(n: Notifier, session: AsyncSession, event: DriftChanged) -> None:
    await _show(n, session, await _incident(session, event.incident_id), urgent=event.urgent)


async def drift_escalated(n: Notifier, session: AsyncSession, event: DriftEscalated) -> None:
    incident = await _incident(session, event.incident_id)
    await _show(n, session, incident, urgent=True)
    await _reply(
        session,
        incident,
        f":rotating_light: {_what(incident)} is now *{incident.severity}*: {escape(drift.comparison(incident))}.",
        broadcast=incident.severity == "critical",
    )


async def drift_resolved(n: Notifier, session: AsyncSession, event: DriftResolved) -> None:
    incident = await _incident(session, event.incident_id)
    await _show(n, session, incident, urgent=True)
    by = mention(event.actor) if event.actor[:1] in ("U", "W") else "Cadence"
    if event.actor == "alertmanager":
        by = "Alertmanager"
    why = f": {escape(incident.resolve_reason)}" if incident.resolve_reason else ""
    await _reply(session, incident, f":white_check_mark: {_what(incident)} resolved by {by}{why}.")


async def drift_ack_overdue(n: Notifier, session: AsyncSession, event: DriftAckOverdue) -> None:
    incident = await _incident(session, event.incident_id)
    team = n.config.team(incident.team)
    leads = " ".join(mention(u) for u in (team.leads if team else [])) or "Team"
    waited = ""
    if incident.opened_at is not None:
        hours = (n.clock.now() - incident.opened_at) / timedelta(hours=1)
        waited = f" for {plural(round(hours), 'hour')}"
    await _reply(
        session,
        incident,
        f":hourglass: {leads}: {_what(incident)} has been open{waited} and nobody has acknowledged it. "
        "Acknowledge, snooze or resolve it with the buttons above.",
    )
