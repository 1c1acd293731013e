"""Drift incidents: the one message each incident has in its team channel (edited in place as it
moves), its thread replies, and the answers of `/scrum drift`. Pure builders."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block, ButtonElement, Option, StaticSelectElement

from bot.services import drift
from bot.slack import ids
from bot.slack.blocks import actions, button, context, local_time, mention, render, section, team_time
from bot.store.models import DriftIncident, DriftReading
from bot.text import escape, plural

ICONS = {"warn": ":warning:", "critical": ":rotating_light:"}
SNOOZE_CHOICES = (("1h", "Snooze 1 hour"), ("24h", "Snooze 24 hours"), ("resolved", "Snooze until resolved"))


def subject(incident: DriftIncident) -> str:
    """`recsys-ranker · psi on user_age`, escaped for mrkdwn."""
    on = f" on {incident.feature}" if incident.feature else ""
    return escape(f"{incident.model} · {incident.metric}{on}")


def _state_line(incident: DriftIncident, zone: ZoneInfo, now: datetime | None) -> str:
    if incident.state == "resolved":
        by = (
            mention(incident.resolved_by)
            if incident.resolved_by and incident.resolved_by[:1] in "UW"
            else "Cadence"
        )
        why = f": {escape(incident.resolve_reason)}" if incident.resolve_reason else ""
        when = local_time(incident.resolved_at, zone) if incident.resolved_at else ""
        return f":white_check_mark: *Resolved* by {by} {when}{why}"
    if incident.state == "acknowledged":
        line = f":eyes: *Acknowledged* by {mention(incident.acked_by)}"
    else:
        line = ":bell: *Open*, not acknowledged yet"
    if incident.snooze_until_resolved:
        line += f" · :zzz: snoozed until resolved by {mention(incident.snoozed_by)}"
    elif incident.snoozed_until is not None and (now is None or incident.snoozed_until > now):
        line += f" · :zzz: snoozed until {local_time(incident.snoozed_until, zone)} by {mention(incident.snoozed_by)}"
    return line


def _seen(incident: DriftIncident, zone: ZoneInfo) -> str:
    first = team_time(incident.first_seen, zone) if incident.first_seen else "–"
    last = team_time(incident.last_seen, zone) if incident.last_seen else "–"
    return f"First seen {first} · last seen {last}"


def incident_blocks(
    incident: DriftIncident, *, zone: ZoneInfo, story_key: str | None, now: datetime | None = None
) -> list[Block]:
    values = [v for _, v in drift.recent_values(incident)]
    severity = incident.severity if incident.state != "resolved" else incident.peak_severity
    head = f"{ICONS.get(severity, ':warning:')} *{incident.key}* · *{severity}* drift · {subject(incident)}"
    lines = [
        f"Latest: *{escape(drift.comparison(incident))}* · "
        f"{plural(incident.breaching_windows, 'breaching window')}",
        _seen(incident, zone),
    ]
    if values:
        lines.append(f"`{drift.sparkline(values)}` last {plural(len(values), 'value')}")
    blocks: list[Block] = [section(head + "\n" + "\n".join(lines)), section(_state_line(incident, zone, now))]
    extra = []
    if story_key:
        extra.append(f"Retraining story *{story_key}*")
    if incident.source:
        extra.append(f"source {escape(incident.source)}")
    if incident.reopened:
        extra.append(f"reopened {plural(incident.reopened, 'time')}")
    if extra:
        blocks.append(context(" · ".join(extra)))
    buttons: list[Any] = []
    key = incident.key
    if incident.state == "open":
        buttons.append(button("Acknowledge", ids.DRIFT_ACK, key, "primary"))
    if incident.state in drift.SHOWN:
        buttons.append(
            StaticSelectElement(
                action_id=ids.DRIFT_SNOOZE,
                placeholder="Snooze…",
                options=[Option(value=f"{key}|{v}", text=t) for v, t in SNOOZE_CHOICES],
            )
        )
    buttons.append(
        button(f"Show {story_key}" if story_key else "Create retraining story", ids.DRIFT_STORY, key)
    )
    if incident.runbook:
        buttons.append(
            ButtonElement(text="Runbook", action_id=ids.DRIFT_RUNBOOK, url=incident.runbook, value=key)
        )
    blocks.append(actions(*buttons))
    return blocks


def incident_message(
    incident: DriftIncident, *, zone: ZoneInfo, story_key: str | None, now: datetime | None = None
) -> dict[str, Any]:
    text = f"{incident.key} {incident.severity} drift: {incident.model} {incident.metric}" + (
        f" on {incident.feature}" if incident.feature else ""
    )
    if incident.state == "resolved":
        text += " (resolved)"
    return {
        "text": escape(text),
        "blocks": render(incident_blocks(incident, zone=zone, story_key=story_key, now=now)),
    }


def reply(text: str, *, broadcast: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": text}
    if broadcast:
        payload["reply_broadcast"] = True
    return payload


def incident_list(incidents: list[DriftIncident], *, zone: ZoneInfo, command: str) -> list[Block]:
    """`/scrum drift`: the open incidents, worst first."""
    if not incidents:
        return [section(":white_check_mark: No open drift incidents.")]
    worst = sorted(incidents, key=lambda i: (-drift.RANK[i.severity], -(i.number or 0)))
    lines = []
    for i in worst:
        who = f"acknowledged by {mention(i.acked_by)}" if i.state == "acknowledged" else "*not acknowledged*"
        lines.append(
            f"{ICONS[i.severity]} *{i.key}* {subject(i)} · {escape(drift.comparison(i))} · {who}"
            + (" · :zzz:" if i.snooze_until_resolved or i.snoozed_until else "")
        )
    blocks: list[Block] = [section(f"*{plural(len(incidents), 'open drift incident')}*\n" + "\n".join(lines))]
    blocks.append(context(f"`{command} drift show D-n` for one incident's history"))
    return blocks


def incident_detail(
    incident: DriftIncident,
    readings: list[DriftReading],
    *,
    zone: ZoneInfo,
    story_key: str | None,
    now: datetime | None = None,
) -> list[Block]:
    """`drift show D-n`: the incident as posted, without buttons, and its latest readings."""
    blocks = incident_blocks(incident, zone=zone, story_key=story_key, now=now)[:-1]
    if readings:
        rows = [
            f"{team_time(r.window_end, zone)} · {r.value:.4g}"
            + (f" · {escape(r.source)}" if r.source else "")
            for r in readings
        ]
        blocks.append(section("*Latest readings*\n" + "\n".join(rows)))
    return blocks
