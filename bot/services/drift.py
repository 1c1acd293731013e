"""Drift: readings from monitors, the rules that turn them into incidents a team owns (D-n), and what
people do with an incident (acknowledge, snooze, resolve, turn it into a retraining story).

An incident is one per (team, model, metric, feature) while it is live. It is *pending* while its
breaching windows are fewer than the rule's `for`, *open* once they reach it, *acknowledged* when
someone takes it, and *resolved* after `resolve_after` windows back in range (or by hand, or by
Alertmanager). A resolved incident that breaches again within `reopen_window_hours` reopens under
the same D-n. Services never post: each change records an event, and the notifier keeps the
incident's one message up to date (bot/notify/drift.py)."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig, DriftRule, Team
from bot.services import audit, events, readiness, stories
from bot.services.errors import Conflict, Forbidden, Invalid, NotFound
from bot.services.teams import TOKEN_TEAMS
from bot.store.models import DriftIncident, DriftReading, Story
from bot.store.queries import lock_team, next_number

RANK = {"warn": 1, "critical": 2}
LIVE = ("pending", "open", "acknowledged")
SHOWN = ("open", "acknowledged")  # what people see as open incidents
RECENT = 20  # values kept on the incident for its sparkline
MAX_READINGS = 10_000  # per request
SYSTEM = "cadence"  # the actor of what the rules do by themselves
SNOOZES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24)}
UNTIL_RESOLVED = "resolved"
_KEY = re.compile(r"^[Dd]-?(\d{1,9})$")
_STORY_CRITERIA = ("eval_criteria",)  # readiness criteria an incident answers: metric and threshold


# ── readings and rules ─────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Reading:
    model: str
    metric: str
    value: float
    window_end: datetime
    feature: str = ""
    source: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def series(self) -> tuple[str, str, str]:
        return (self.model, self.metric, self.feature)


def severity_of(rule: DriftRule, value: float) -> str | None:
    """critical, warn or None (in range). `above` breaches at or above a threshold, `below` under it."""

    def breaches(threshold: float | None) -> bool:
        if threshold is None:
            return False
        return value >= threshold if rule.direction == "above" else value < threshold

    if breaches(rule.critical):
        return "critical"
    if breaches(rule.warn):
        return "warn"
    return None


def threshold_of(rule: DriftRule, severity: str | None) -> float | None:
    """The threshold a value is shown against: the one it breaches, else the first one it would."""
    if severity == "critical":
        return rule.critical
    return rule.warn if rule.warn is not None else rule.critical


def matches(rule: DriftRule, model: str, metric: str, feature: str) -> bool:
    if not (fnmatchcase(model, rule.model) and fnmatchcase(metric, rule.metric)):
        return False
    return rule.feature is None or fnmatchcase(feature, rule.feature)


def rules_for(config: AppConfig, model: str, metric: str, feature: str) -> list[DriftRule]:
    """The first matching rule of each team, in file order: several teams may watch one model."""
    found: dict[str, DriftRule] = {}
    for rule in config.drift.rules:
        if rule.team not in found and matches(rule, model, metric, feature):
            found[rule.team] = rule
    return list(found.values())


def _team(config: AppConfig, name: str) -> Team:
    team = config.team(name)
    if team is None:  # check-config refuses rules naming unknown teams
        raise NotFound(f"Team {name!r} is not configured.")
    return team


# ── ingesting ──────────────────────────────────────────────────────────────────────────────────


@dataclass
class Ingested:
    """What one batch did: readings stored (a repeat is stored once) and incidents that moved."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    unmatched: int = 0  # stored, but no rule watches them
    opened: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


@dataclass
class _Touched:
    opened: bool = False
    reopened: bool = False
    escalated: bool = False
    resolved: bool = False
    changed: bool = False


class _Batch:
    """The incidents one call touched and what happened to each, published once at the end."""

    def __init__(self) -> None:
        self.touched: dict[int, _Touched] = {}
        self.order: list[DriftIncident] = []

    def mark(self, incident: DriftIncident, **what: bool) -> None:
        assert incident.id is not None
        if incident.id not in self.touched:
            self.touched[incident.id] = _Touched()
            self.order.append(incident)
        for name, value in what.items():
            if value:
                setattr(self.touched[incident.id], name, True)

    def publish(self, session: AsyncSession, result: Ingested, now: datetime) -> None:
        for incident in self.order:
            assert incident.id is not None
            t = self.touched[incident.id]
            if incident.number is None:
                continue  # still pending: nobody hears of it yet
            if t.opened:
                events.record(session, events.DriftOpened(incident.id, reopened=t.reopened, at=now))
                result.opened.append(incident.key)
                if t.resolved:
                    result.resolved.append(incident.key)
                continue
            if t.escalated:
                events.record(session, events.DriftEscalated(incident.id))
            if t.resolved:
                events.record(
                    session,
                    events.DriftResolved(incident.id, actor=incident.resolved_by or SYSTEM),
                )
                result.resolved.append(incident.key)
            elif t.changed or t.escalated:
                if not t.escalated:
                    events.record(session, events.DriftChanged(incident.id, urgent=False))
                result.changed.append(incident.key)


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


async def _store_readings(session: AsyncSession, readings: Sequence[Reading], now: datetime) -> list[Reading]:
    """Insert the readings not stored before; the ones that were new, in the order given."""
    if not readings:
        return []
    rows = [
        {
            "model": r.model,
            "metric": r.metric,
            "feature": r.feature,
            "source": r.source,
            "window_end": r.window_end.astimezone(UTC),
            "value": r.value,
            "labels": json.dumps(r.labels, sort_keys=True, separators=(",", ":")),
            "received_at": now,
        }
        for r in readings
    ]
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    table = DriftReading.__table__  # type: ignore[attr-defined]
    stmt = (
        insert(table)
        .on_conflict_do_nothing()
        .returning(table.c.model, table.c.metric, table.c.feature, table.c.source, table.c.window_end)
    )
    new: set[tuple[str, str, str, str, datetime]] = set()
    for start in range(0, len(rows), 2000):
        result = await (await session.connection()).execute(stmt, rows[start : start + 2000])
        new.update((m, k, f, s, w.astimezone(UTC)) for m, k, f, s, w in result.all())
    return [
        r for r in readings if (r.model, r.metric, r.feature, r.source, r.window_end.astimezone(UTC)) in new
    ]


async def _live(session: AsyncSession, team: str, series: tuple[str, str, str]) -> DriftIncident | None:
    model, metric, feature = series
    return (
        await session.exec(
            select(DriftIncident).where(
                DriftIncident.team == team,
                DriftIncident.model == model,
                DriftIncident.metric == metric,
                DriftIncident.feature == feature,
                DriftIncident.live == 1,
            )
        )
    ).first()


async def _reopenable(
    session: AsyncSession, config: AppConfig, team: str, series: tuple[str, str, str], now: datetime
) -> DriftIncident | None:
    """The incident of this series resolved within the reopen window, if any."""
    model, metric, feature = series
    since = now - timedelta(hours=config.drift.reopen_window_hours)
    return (
        await session.exec(
            select(DriftIncident)
            .where(
                DriftIncident.team == team,
                DriftIncident.model == model,
                DriftIncident.metric == metric,
                DriftIncident.feature == feature,
                DriftIncident.state == "resolved",
                col(DriftIncident.resolved_at) >= since,
            )
            .order_by(col(DriftIncident.resolved_at).desc())
            .limit(1)
        )
    ).first()


def _note(incident: DriftIncident, value: float, window_end: datetime, source: str) -> None:
    recent = json.loads(incident.recent)
    recent.append([window_end.astimezone(UTC).isoformat(), value])
    incident.recent = json.dumps(recent[-RECENT:], separators=(",", ":"))
    incident.value = value
    incident.last_window = window_end
    incident.source = source or incident.source


def recent_values(incident: DriftIncident) -> list[tuple[datetime, float]]:
    return [(datetime.fromisoformat(w), float(v)) for w, v in json.loads(incident.recent)]


class _Evaluator:
    """Runs readings of one series through one team's rule, keeping that team's live incident."""

    def __init__(
        self,
        session: AsyncSession,
        config: AppConfig,
        rule: DriftRule,
        series: tuple[str, str, str],
        batch: _Batch,
        now: datetime,
    ) -> None:
        self.session, self.config, self.rule, self.series, self.batch, self.now = (
            session,
            config,
            rule,
            series,
            batch,
            now,
        )
        self.team = _team(config, rule.team)
        self.incident: DriftIncident | None = None

    async def _start(self) -> DriftIncident:
        """A pending incident for a first breach: a recently resolved one again, or a new one."""
        old = await _reopenable(self.session, self.config, self.team.name, self.series, self.now)
        if old is not None:
            old.live, old.state, old.breach_streak, old.ok_streak = 1, "pending", 0, 0
            self.session.add(old)
            await self.session.flush()
            return old
        model, metric, feature = self.series
        incident = DriftIncident(
            team=self.team.name,
            model=model,
            metric=metric,
            feature=feature,
            direction=self.rule.direction,
            channel=self.rule.channel or self.team.channel,
            runbook=self.rule.runbook,
        )
        self.session.add(incident)
        await self.session.flush()
        return incident

    async def _drop_pending(self, incident: DriftIncident) -> None:
        """Back in range before `for` was reached: the pending incident goes (a reopen candidate
        goes back to resolved)."""
        if incident.number is None:
            await self.session.delete(incident)
            await self.session.flush()
        else:
            incident.live, incident.state, incident.breach_streak = None, "resolved", 0
            self.session.add(incident)
        self.incident = None

    async def apply(self, reading: Reading) -> None:
        rule, incident = self.rule, self.incident
        severity = severity_of(rule, reading.value)
        if incident is None:
            if severity is None:
                return
            incident = self.incident = await self._start()
        elif incident.last_window is not None and reading.window_end <= incident.last_window:
            return  # an older window arriving late: stored, but the incident has moved on
        incident.direction, incident.runbook = rule.direction, rule.runbook or incident.runbook
        incident.threshold = threshold_of(rule, severity)
        if incident.state == "pending":
            if severity is None:
                await self._drop_pending(incident)
                return
            incident.breach_streak += 1
            incident.first_seen = incident.first_seen or reading.window_end
            self._breach(incident, reading, severity)
            if incident.breach_streak >= rule.for_windows:
                await _open(self.session, self.config, incident, self.now, self.batch)
                if severity == "critical" and rule.auto_story == "critical":
                    await _auto_story(self.session, self.config, incident, self.now)
            return
        if severity is not None:
            escalated = RANK[severity] > RANK[incident.peak_severity]
            self._breach(incident, reading, severity)
            incident.breach_streak += 1
            self.batch.mark(incident, changed=True, escalated=escalated)
            if escalated and rule.auto_story == "critical" and severity == "critical":
                await _auto_story(self.session, self.config, incident, self.now)
            return
        _note(incident, reading.value, reading.window_end, reading.source)
        incident.ok_streak += 1
        incident.breach_streak = 0
        incident.updated_at = self.now
        self.session.add(incident)
        if incident.ok_streak >= rule.resolve_after:
            windows = "window" if incident.ok_streak == 1 else f"{incident.ok_streak} windows"
            await _auto_resolve(self.session, incident, SYSTEM, f"back in range for {windows}", self.now)
            self.batch.mark(incident, resolved=True)
            self.incident = None
        else:
            self.batch.mark(incident, changed=True)

    def _breach(self, incident: DriftIncident, reading: Reading, severity: str) -> None:
        _note(incident, reading.value, reading.window_end, reading.source)
        incident.severity = severity
        if RANK[severity] > RANK[incident.peak_severity]:
            incident.peak_severity = severity
        incident.ok_streak = 0
        incident.breaching_windows += 1
        incident.last_seen = reading.window_end
        incident.updated_at = self.now
        self.session.add(incident)


async def _open(
    session: AsyncSession, config: AppConfig, incident: DriftIncident, now: datetime, batch: _Batch
) -> None:
    reopened = incident.number is not None
    if incident.number is None:
        incident.number = await next_number(session, "D")
    else:
        incident.reopened += 1
        incident.resolved_at = incident.resolved_by = incident.resolve_reason = None
        incident.acked_by = incident.acked_at = None
        incident.snoozed_until = incident.snoozed_by = None
        incident.snooze_until_resolved = False
    incident.state = "open"
    incident.opened_at = now
    incident.peak_severity = incident.severity
    incident.ack_due_at = working_deadline(
        config, _team(config, incident.team), now, config.drift.ack_timeout_hours
    )
    session.add(incident)
    await session.flush()
    await audit.record(
        session,
        actor=SYSTEM,
        action="drift.reopen" if reopened else "drift.open",
        subject=incident.key,
        payload=_evidence(incident),
        at=now,
    )
    batch.mark(incident, opened=True, reopened=reopened)


def _resolve(incident: DriftIncident, actor: str, reason: str, now: datetime) -> None:
    incident.state, incident.live = "resolved", None
    incident.resolved_at, incident.resolved_by, incident.resolve_reason = now, actor, reason[:300]
    incident.updated_at = now


async def _auto_resolve(
    session: AsyncSession, incident: DriftIncident, actor: str, reason: str, now: datetime
) -> None:
    """Resolved by the readings or by the monitor: recorded in the audit log like a person's."""
    _resolve(incident, actor, reason, now)
    session.add(incident)
    await audit.record(
        session, actor=actor, action="drift.resolve", subject=incident.key, payload={"reason": reason}, at=now
    )


def _evidence(incident: DriftIncident) -> dict[str, Any]:
    return {
        "team": incident.team,
        "model": incident.model,
        "metric": incident.metric,
        "feature": incident.feature or None,
        "severity": incident.severity,
        "value": incident.value,
        "threshold": incident.threshold,
        "direction": incident.direction,
        "breaching_windows": incident.breaching_windows,
    }


def _check_reading(i: int, r: Reading) -> None:
    where = f"readings[{i}]"
    if not math.isfinite(r.value):
        raise Invalid(f"{where}.value must be a finite number.", field=f"{where}.value")
    if r.window_end.tzinfo is None:
        raise Invalid(f"{where}.window_end needs a time zone (RFC 3339).", field=f"{where}.window_end")


async def ingest(
    session: AsyncSession, *, config: AppConfig, readings: Sequence[Reading], now: datetime
) -> Ingested:
    """Store a batch of readings (each (model, metric, feature, source, window) once) and run the
    new ones, oldest window first, through the rules of every team that watches them."""
    if len(readings) > MAX_READINGS:
        raise Invalid(f"At most {MAX_READINGS} readings a request; this one has {len(readings)}.")
    for i, r in enumerate(readings):
        _check_reading(i, r)
    _check_token_scope(config, [(r.series, None) for r in readings])
    result = Ingested(received=len(readings))
    unique = list(
        {(*r.series, r.source, r.window_end.astimezone(UTC)): r for r in reversed(readings)}.values()
    )
    new = await _store_readings(session, unique[::-1], now)
    result.stored = len(new)
    result.duplicates = len(readings) - len(new)
    by_series: dict[tuple[str, str, str], list[Reading]] = defaultdict(list)
    for r in new:
        by_series[r.series].append(r)
    batch = _Batch()
    watched = {s: rules_for(config, *s) for s in by_series}
    teams = sorted({rule.team for rules in watched.values() for rule in rules})
    for team in teams:
        await lock_team(session, team)
    # The live incidents of these teams, in one query: few at any time, whatever the history.
    live = {
        (i.team, i.model, i.metric, i.feature): i
        for i in (
            await session.exec(
                select(DriftIncident).where(DriftIncident.live == 1, col(DriftIncident.team).in_(teams))
            )
        ).all()
    }
    for series, rs in by_series.items():
        if not watched[series]:
            result.unmatched += len(rs)
            continue
        rs.sort(key=lambda r: r.window_end)
        for rule in watched[series]:
            evaluator = _Evaluator(session, config, rule, series, batch, now)
            evaluator.incident = live.get((rule.team, *series))
            for r in rs:
                await evaluator.apply(r)
    await session.flush()
    batch.publish(session, result, now)
    return result


# ── alerts from Alertmanager ───────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Alert:
    """A monitor's own alert (Alertmanager): firing or resolved, deduplicated by its fingerprint."""

    fingerprint: str
    firing: bool
    model: str
    metric: str
    starts_at: datetime
    feature: str = ""
    value: float | None = None
    severity: str | None = None  # warn | critical, from the alert's labels
    team: str | None = None
    summary: str | None = None
    runbook: str | None = None
    source: str = "alertmanager"


@dataclass
class AlertsApplied:
    opened: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _check_token_scope(config: AppConfig, series: Sequence[tuple[tuple[str, str, str], str | None]]) -> None:
    """An API token scoped to teams reports only what those teams watch (or, for an alert, name)."""
    scope = TOKEN_TEAMS.get()
    if scope is None:
        return
    teams = {rule.team for s, _ in series for rule in rules_for(config, *s)} | {t for _, t in series if t}
    outside = sorted(teams - scope)
    if outside:
        raise Forbidden(f"This API token may not report what team {', '.join(outside)} watches.")


async def apply_alerts(
    session: AsyncSession, *, config: AppConfig, alerts: Sequence[Alert], now: datetime
) -> AlertsApplied:
    """Open, update or resolve incidents from a monitor's alerts. The monitor already decided that
    the alert fires (its own `for`), so a firing alert opens an incident at once; a value, when the
    alert carries one, is stored as a reading and judged against the team's rule."""
    _check_token_scope(config, [((a.model, a.metric, a.feature), a.team) for a in alerts])
    out = AlertsApplied()
    batch = _Batch()
    readings = [
        Reading(a.model, a.metric, a.value, a.starts_at, a.feature, a.source, {"fingerprint": a.fingerprint})
        for a in alerts
        if a.value is not None and math.isfinite(a.value)
    ]
    await _store_readings(session, readings, now)
    for alert in alerts:
        await _apply_alert(session, config, alert, now, batch, out)
    await session.flush()
    result = Ingested()
    batch.publish(session, result, now)
    out.opened += result.opened
    out.changed += result.changed
    out.resolved += result.resolved
    return out


async def _apply_alert(
    session: AsyncSession, config: AppConfig, alert: Alert, now: datetime, batch: _Batch, out: AlertsApplied
) -> None:
    series = (alert.model, alert.metric, alert.feature)
    rules = rules_for(config, *series)
    teams: list[tuple[Team, DriftRule | None]] = [(_team(config, r.team), r) for r in rules]
    if not teams and alert.team:
        team = config.team(alert.team)
        if team is None:
            out.skipped.append(
                f"alert {alert.fingerprint} ({alert.model} {alert.metric}) names team {alert.team!r}, "
                "which is not configured"
            )
            return
        teams = [(team, None)]
    if not teams:
        out.skipped.append(
            f"alert {alert.fingerprint} ({alert.model} {alert.metric}) matches no drift rule and has "
            "no team label"
        )
        return
    for team, rule in teams:
        await lock_team(session, team.name)
        incident = await _live(session, team.name, series)
        if not alert.firing:
            if incident is None or incident.state == "pending":
                continue  # nothing open for it (already resolved, or never opened)
            await _auto_resolve(
                session, incident, "alertmanager", alert.summary or "resolved in Alertmanager", now
            )
            batch.mark(incident, resolved=True)
            continue
        severity = (severity_of(rule, alert.value) if rule and alert.value is not None else None) or (
            alert.severity or "warn"
        )
        if incident is None:
            incident = await _reopenable(session, config, team.name, series, now)
            if incident is not None:
                incident.live = 1
            else:
                incident = DriftIncident(
                    team=team.name,
                    model=alert.model,
                    metric=alert.metric,
                    feature=alert.feature,
                    direction=rule.direction if rule else "above",
                    channel=(rule.channel if rule else None) or team.channel,
                    runbook=alert.runbook or (rule.runbook if rule else None),
                )
            opening = True
        else:
            opening = incident.state == "pending"
        repeat = incident.fingerprint == alert.fingerprint and not opening
        incident.fingerprint = alert.fingerprint
        incident.threshold = threshold_of(rule, severity) if rule else incident.threshold
        if (
            alert.value is not None
            and math.isfinite(alert.value)
            and (not repeat or alert.value != incident.value)
        ):
            # a repeat notification carrying a new value (Prometheus re-evaluated it) moves the value
            # and the sparkline, not the count of breaching windows
            _note(incident, alert.value, now if repeat else alert.starts_at, alert.source)
        incident.source = alert.source
        if not repeat:
            incident.breaching_windows += 1
            incident.first_seen = incident.first_seen or alert.starts_at
        incident.last_seen = max(filter(None, (incident.last_seen, alert.starts_at)))
        escalated = not opening and RANK[severity] > RANK[incident.peak_severity]
        if escalated:
            incident.peak_severity = severity
        changed = incident.severity != severity or not repeat
        incident.severity = severity
        incident.updated_at = now
        session.add(incident)
        await session.flush()
        if opening:
            await _open(session, config, incident, now, batch)
        else:
            batch.mark(incident, changed=changed, escalated=escalated)
        if (
            severity == "critical"
            and rule is not None
            and rule.auto_story == "critical"
            and (opening or escalated)
        ):
            await _auto_story(session, config, incident, now)


# ── people acting on an incident ───────────────────────────────────────────────────────────────


def parse_key(text: str) -> int:
    m = _KEY.match(text.strip())
    if not m:
        raise Invalid(f"{text!r} is not a drift incident; write it as D-12.")
    return int(m.group(1))


async def get_incident(session: AsyncSession, key: str) -> DriftIncident:
    number = parse_key(key)
    incident = (await session.exec(select(DriftIncident).where(DriftIncident.number == number))).first()
    if incident is None:
        raise NotFound(f"There is no drift incident D-{number}.")
    return incident


async def incident_by_id(session: AsyncSession, incident_id: int) -> DriftIncident:
    incident = await session.get(DriftIncident, incident_id)
    if incident is None or incident.number is None:
        raise NotFound("That drift incident does not exist (any more).")
    return incident


def check_member(config: AppConfig, incident: DriftIncident, actor: str) -> Team:
    team = _team(config, incident.team)
    if not team.includes(actor):
        raise Forbidden(f"Only members and leads of team {team.name} can act on {incident.key}.")
    return team


async def _refresh(session: AsyncSession, incident: DriftIncident) -> DriftIncident:
    await session.refresh(incident)
    return incident


def _who(actor: str | None) -> str:
    return f"<@{actor}>" if actor and actor[:1] in ("U", "W") else (actor or "someone")


async def acknowledge(
    session: AsyncSession, *, config: AppConfig, incident: DriftIncident, actor: str, now: datetime
) -> DriftIncident:
    """Someone takes the incident: no more reminders. Repeating it changes nothing and says who has it."""
    check_member(config, incident, actor)
    moved = await session.exec(
        update(DriftIncident)
        .where(col(DriftIncident.id) == incident.id, col(DriftIncident.state) == "open")
        .values(state="acknowledged", acked_by=actor, acked_at=now, updated_at=now)
    )
    incident = await _refresh(session, incident)
    if moved.rowcount != 1:
        if incident.state == "acknowledged":
            raise Conflict(f"{incident.key} was already acknowledged by {_who(incident.acked_by)}.")
        raise Conflict(f"{incident.key} is {incident.state}; there is nothing to acknowledge.")
    await audit.record(session, actor=actor, action="drift.acknowledge", subject=incident.key, at=now)
    events.record(session, events.DriftChanged(incident.id, urgent=True))  # type: ignore[arg-type]
    return incident


def snooze_until(choice: str, now: datetime) -> datetime | None:
    """`1h`, `24h` or `resolved` (None: until it resolves)."""
    choice = choice.strip().lower()
    if choice in ("resolved", "until-resolved", "until_resolved"):
        return None
    if choice in SNOOZES:
        return now + SNOOZES[choice]
    raise Invalid(f"Snooze for 1h, 24h or until resolved (write resolved), not {choice!r}.", field="snooze")


async def snooze(
    session: AsyncSession,
    *,
    config: AppConfig,
    incident: DriftIncident,
    actor: str,
    choice: str,
    now: datetime,
) -> DriftIncident:
    """No reminders until a time (or until it resolves). The same snooze again changes nothing."""
    check_member(config, incident, actor)
    until = snooze_until(choice, now)
    if incident.state not in SHOWN:
        raise Conflict(f"{incident.key} is {incident.state}; there is nothing to snooze.")
    if until is None and incident.snooze_until_resolved:
        raise Conflict(
            f"{incident.key} is already snoozed until it resolves (by {_who(incident.snoozed_by)})."
        )
    if (
        until is not None
        and incident.snoozed_until is not None
        and incident.snoozed_until >= until - timedelta(minutes=1)
    ):
        raise Conflict(
            f"{incident.key} is already snoozed until {incident.snoozed_until:%Y-%m-%d %H:%M} UTC "
            f"(by {_who(incident.snoozed_by)})."
        )
    values: dict[str, Any] = {"snoozed_by": actor, "updated_at": now}
    if until is None:
        values["snooze_until_resolved"] = True
    else:
        values["snoozed_until"] = until
        values["ack_due_at"] = max(until, incident.ack_due_at or until)
    moved = await session.exec(
        update(DriftIncident)
        .where(col(DriftIncident.id) == incident.id, col(DriftIncident.state).in_(SHOWN))
        .values(**values)
    )
    incident = await _refresh(session, incident)
    if moved.rowcount != 1:
        raise Conflict(f"{incident.key} is {incident.state}; there is nothing to snooze.")
    await audit.record(
        session,
        actor=actor,
        action="drift.snooze",
        subject=incident.key,
        payload={"until": until.isoformat() if until else UNTIL_RESOLVED},
        at=now,
    )
    events.record(session, events.DriftChanged(incident.id, urgent=True))  # type: ignore[arg-type]
    return incident


async def resolve(
    session: AsyncSession,
    *,
    config: AppConfig,
    incident: DriftIncident,
    actor: str,
    reason: str | None,
    now: datetime,
) -> DriftIncident:
    """Close it by hand (a retrain shipped, a false alarm). A second time says who resolved it."""
    check_member(config, incident, actor)
    reason = (reason or "").strip() or "resolved by hand"
    if len(reason) > 300:
        raise Invalid("Keep the reason to 300 characters at most.", field="reason")
    moved = await session.exec(
        update(DriftIncident)
        .where(col(DriftIncident.id) == incident.id, col(DriftIncident.state).in_(SHOWN))
        .values(
            state="resolved",
            live=None,
            resolved_at=now,
            resolved_by=actor,
            resolve_reason=reason,
            updated_at=now,
        )
    )
    incident = await _refresh(session, incident)
    if moved.rowcount != 1:
        if incident.state == "resolved":
            raise Conflict(f"{incident.key} was already resolved by {_who(incident.resolved_by)}.")
        raise Conflict(f"{incident.key} has not opened yet; there is nothing to resolve.")
    await audit.record(
        session, actor=actor, action="drift.resolve", subject=incident.key, payload={"reason": reason}, at=now
    )
    events.record(session, events.DriftResolved(incident.id, actor=actor))  # type: ignore[arg-type]
    return incident


@dataclass(frozen=True)
class StoryForIncident:
    story: Story
    created: bool  # False: the incident already had it


def story_title(incident: DriftIncident) -> str:
    on = f" on {incident.feature}" if incident.feature else ""
    return f"Retrain {incident.model}: {incident.metric} drift{on}"[:200]


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"


def comparison(incident: DriftIncident) -> str:
    """The breach in words: `0.31 against the critical threshold 0.2 (higher is worse)`."""
    if incident.threshold is None:
        return _fmt(incident.value)
    worse = "higher" if incident.direction == "above" else "lower"
    return f"{_fmt(incident.value)} against {_fmt(incident.threshold)} ({worse} is worse)"


def story_details(incident: DriftIncident, link: str | None) -> str:
    where = f"{incident.metric} on {incident.feature}" if incident.feature else incident.metric
    values = ", ".join(f"{w:%Y-%m-%d %H:%M}Z {_fmt(v)}" for w, v in recent_values(incident)[-10:])
    lines = [
        f"From drift incident {incident.key}" + (f": {link}" if link else "") + ".",
        f"{incident.model} {where}: {comparison(incident)}, {incident.severity} "
        f"(peak {incident.peak_severity}).",
        f"Breaching windows: {incident.breaching_windows}; first seen "
        f"{_stamp(incident.first_seen)}, last seen {_stamp(incident.last_seen)}.",
        f"Source: {incident.source or 'readings'}.",
    ]
    if values:
        lines.append(f"Latest values: {values}.")
    return "\n".join(lines)


def _stamp(when: datetime | None) -> str:
    return "?" if when is None else f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _eval_answer(incident: DriftIncident) -> str:
    where = f"{incident.metric} on {incident.feature}" if incident.feature else incident.metric
    if incident.threshold is None:
        return f"{where} of {incident.model} back in range (from {incident.key})"
    back = "below" if incident.direction == "above" else "at or above"
    return (
        f"{where} of {incident.model} {back} {_fmt(incident.threshold)} on new windows (from {incident.key})"
    )


async def create_story(
    session: AsyncSession,
    *,
    config: AppConfig,
    incident: DriftIncident,
    actor: str,
    now: datetime,
    link: str | None = None,
) -> StoryForIncident:
    """The retraining story: an ml story in the team's backlog with the evidence and the readiness
    criteria the incident answers. A second call gives the same story."""
    team = check_member(config, incident, actor) if actor != SYSTEM else _team(config, incident.team)
    await lock_team(session, team.name)
    incident = await _refresh(session, incident)
    if incident.story_id is not None:
        story = await session.get(Story, incident.story_id)
        if story is not None:
            return StoryForIncident(story, created=False)
    if incident.number is None:
        raise Conflict("That incident has not opened yet.")
    owner = actor if actor != SYSTEM else (team.leads[0] if team.leads else None)
    story_type = "ml" if "ml" in config.story_types else stories.default_type(config)
    added = await stories.add_story(
        session,
        config=config,
        team=team,
        title=story_title(incident),
        actor=actor,
        story_type=story_type,
        owner=owner,
    )
    story = added.story
    story.details = story_details(incident, link)
    session.add(story)
    answers = {
        c.key: _eval_answer(incident)
        for c in config.criteria("ready", story_type)
        if c.key in _STORY_CRITERIA
    }
    if answers:
        await readiness.record_answers(
            session, story=story, kind="ready", config=config, actor=actor, answers=answers
        )
    incident.story_id = story.id
    incident.updated_at = now
    session.add(incident)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="drift.story",
        subject=incident.key,
        payload={"story": story.key},
        at=now,
    )
    events.record(session, events.DriftChanged(incident.id, urgent=True))  # type: ignore[arg-type]
    return StoryForIncident(story, created=True)


async def _auto_story(
    session: AsyncSession, config: AppConfig, incident: DriftIncident, now: datetime
) -> None:
    if incident.story_id is None:
        await create_story(session, config=config, incident=incident, actor=SYSTEM, now=now)


# ── reading incidents ──────────────────────────────────────────────────────────────────────────

STATES = ("open", "acknowledged", "resolved", "all")


async def list_incidents(
    session: AsyncSession, *, team: str | None = None, state: str = "open", limit: int = 100
) -> list[DriftIncident]:
    """`open` means open or acknowledged (what still needs someone); newest first."""
    if state not in STATES:
        raise Invalid(f"state must be one of {', '.join(STATES)}, not {state!r}.", field="state")
    query = select(DriftIncident).where(col(DriftIncident.number).is_not(None))
    if state == "open":
        query = query.where(col(DriftIncident.state).in_(SHOWN))
    elif state != "all":
        query = query.where(DriftIncident.state == state)
    if team is not None:
        query = query.where(DriftIncident.team == team)
    query = query.order_by(col(DriftIncident.number).desc()).limit(limit)
    return list((await session.exec(query)).all())


async def readings_of(
    session: AsyncSession,
    *,
    model: str | None = None,
    metric: str | None = None,
    feature: str | None = None,
    limit: int = 100,
) -> list[DriftReading]:
    """Stored readings, newest window first, whether a rule watches them or not."""
    query = select(DriftReading)
    if model is not None:
        query = query.where(DriftReading.model == model)
    if metric is not None:
        query = query.where(DriftReading.metric == metric)
    if feature is not None:
        query = query.where(DriftReading.feature == feature)
    query = query.order_by(col(DriftReading.window_end).desc(), col(DriftReading.id).desc()).limit(limit)
    return list((await session.exec(query)).all())


def sparkline(values: Iterable[float]) -> str:
    """The values as bars, lowest to highest: ▁▂▃▄▅▆▇█."""
    bars = "▁▂▃▄▅▆▇█"
    vs = list(values)
    if not vs:
        return ""
    lo, hi = min(vs), max(vs)
    if hi == lo:
        return bars[3] * len(vs)
    return "".join(bars[round((v - lo) / (hi - lo) * (len(bars) - 1))] for v in vs)


async def open_counts(session: AsyncSession) -> dict[str, int]:
    """Open (or acknowledged) incidents by severity, for /metrics."""
    rows = (
        await session.exec(select(DriftIncident.severity).where(col(DriftIncident.state).in_(SHOWN)))
    ).all()
    counts = {"warn": 0, "critical": 0}
    for severity in rows:
        counts[severity] = counts.get(severity, 0) + 1
    return counts


# ── the clock: quiet days, reminders, retention ──────────────────────────────────────────────


def _hm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def is_working_day(config: AppConfig, team: Team, day: date) -> bool:
    return day.weekday() < 5 and day not in team.holidays


def working_deadline(config: AppConfig, team: Team, start: datetime, hours: float) -> datetime:
    """When `hours` of the team's working time (its working hours on working days, in its time
    zone) have passed since `start`."""
    tz = config.team_timezone(team)
    begin, end = _hm(config.drift.working_hours.start), _hm(config.drift.working_hours.end)
    left = timedelta(hours=hours)
    cursor = start.astimezone(tz)
    for _ in range(800):
        day = cursor.date()
        if is_working_day(config, team, day):
            opens = datetime.combine(day, begin, tzinfo=tz)
            closes = datetime.combine(day, end, tzinfo=tz)
            frm = max(cursor, opens)
            if frm < closes:
                if frm + left <= closes:
                    return (frm + left).astimezone(UTC)
                left -= closes - frm
        cursor = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start + timedelta(hours=hours)  # no working day in two years: fall back to wall time


def hold_until(config: AppConfig, incident: DriftIncident, now: datetime) -> datetime | None:
    """Quiet days: a warn-level incident that opens on a team holiday or weekend posts at the start
    of the next working day; a critical one posts at once (None)."""
    if incident.severity == "critical":
        return None
    team = _team(config, incident.team)
    tz = config.team_timezone(team)
    local = now.astimezone(tz)
    if is_working_day(config, team, local.date()):
        return None
    day = local.date() + timedelta(days=1)
    while not is_working_day(config, team, day):
        day += timedelta(days=1)
    return datetime.combine(day, _hm(config.drift.working_hours.start), tzinfo=tz).astimezone(UTC)


async def overdue(session: AsyncSession, *, now: datetime) -> list[DriftIncident]:
    """Open incidents nobody acknowledged in time and not snoozed."""
    query = select(DriftIncident).where(
        DriftIncident.state == "open",
        col(DriftIncident.ack_due_at) <= now,
        col(DriftIncident.snooze_until_resolved).is_(False),
    )
    return [i for i in (await session.exec(query)).all() if i.snoozed_until is None or i.snoozed_until <= now]


async def mark_reminded(
    session: AsyncSession, *, config: AppConfig, incident: DriftIncident, now: datetime
) -> bool:
    """Claim one reminder (compare-and-set on the due time): the next is `repeat_interval` away."""
    moved = await session.exec(
        update(DriftIncident)
        .where(
            col(DriftIncident.id) == incident.id,
            col(DriftIncident.state) == "open",
            col(DriftIncident.ack_due_at) == incident.ack_due_at,
        )
        .values(
            ack_due_at=now + timedelta(hours=config.drift.repeat_interval_hours),
            reminders=col(DriftIncident.reminders) + 1,
        )
    )
    if moved.rowcount != 1:
        return False
    events.record(session, events.DriftAckOverdue(incident.id))  # type: ignore[arg-type]
    return True


async def prune(session: AsyncSession, *, config: AppConfig, now: datetime) -> int:
    """Delete readings whose window ended more than `retention_days` ago; incidents are kept."""
    cutoff = now - timedelta(days=config.drift.retention_days)
    result = await session.exec(delete(DriftReading).where(col(DriftReading.window_end) < cutoff))
    return int(result.rowcount or 0)


# ── for the sprint review ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class SprintDrift:
    opened: int
    median_time_to_ack: timedelta | None
    stories_created: int
    stories_open: int
    still_open: int  # of the incidents opened, those not resolved yet
    incidents: tuple[str, ...]


async def sprint_stats(session: AsyncSession, *, team: str, starts: datetime, ends: datetime) -> SprintDrift:
    """A team's drift over a sprint: incidents opened in [starts, ends), the median time from
    opening to acknowledgement, retraining stories from them, and how many of those are still open."""
    rows = list(
        (
            await session.exec(
                select(DriftIncident).where(
                    DriftIncident.team == team,
                    col(DriftIncident.opened_at) >= starts,
                    col(DriftIncident.opened_at) < ends,
                    col(DriftIncident.number).is_not(None),
                )
            )
        ).all()
    )
    waits = [(i.acked_at - i.opened_at) for i in rows if i.acked_at and i.opened_at]
    story_ids = [i.story_id for i in rows if i.story_id is not None]
    open_stories = 0
    if story_ids:
        found = (await session.exec(select(Story).where(col(Story.id).in_(story_ids)))).all()
        open_stories = sum(1 for s in found if not s.closed)
    median = timedelta(seconds=statistics.median(w.total_seconds() for w in waits)) if waits else None
    return SprintDrift(
        opened=len(rows),
        median_time_to_ack=median,
        stories_created=len(story_ids),
        stories_open=open_stories,
        still_open=sum(1 for i in rows if i.state != "resolved"),
        incidents=tuple(i.key for i in sorted(rows, key=lambda i: i.number or 0)),
    )
