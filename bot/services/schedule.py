"""When ceremonies happen: cron in the team's time zone, every-N-weeks, and the events derived from them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from bot.config import AppConfig, Ceremony, Team
from bot.cron import crontab_trigger

_EPOCH_MONDAY = date(1970, 1, 5)
_TICK = timedelta(microseconds=1)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Occasion:
    """One kind of scheduled event of a team: a ceremony reminder, a nudge round, a standup summary."""

    team: Team
    ceremony_name: str  # the ceremony it belongs to (standup, planning, …)
    kind: str  # what runs: the ceremony itself, "planning_nudge_24h", "standup_summary"
    ceremony: Ceremony
    offset: timedelta  # from the ceremony's own time: -24 h for a nudge, +120 min for a summary
    tz: ZoneInfo

    @cached_property
    def trigger(self) -> BaseTrigger:
        return crontab_trigger(self.ceremony.cron, self.tz)

    def next_base(self, after: datetime) -> datetime | None:
        """The first ceremony time strictly after `after` (UTC), ignoring every_weeks. When clocks go
        back, a wall-clock time happens twice; the ceremony happens at the first of the two only."""
        query = after + _TICK
        for _ in range(48):
            fire = self.trigger.get_next_fire_time(None, query)
            if fire is None:
                return None
            fire_utc = fire.astimezone(UTC)
            if fire_utc <= after or fire.astimezone(self.tz).fold == 1:
                # The repeated hour: either its second pass, or APScheduler answering with a time already
                # behind us (it does, inside that hour). Step past the hour and ask again.
                query = max(query, fire_utc) + _HOUR
                continue
            return fire_utc
        return None

    def fire_times(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """(event time, ceremony time) for events in (start, end], in UTC, ignoring every_weeks."""
        base = self.next_base(start - self.offset)
        while base is not None and base + self.offset <= end:
            yield base + self.offset, base
            base = self.next_base(base)

    def next_fire(self, after: datetime) -> datetime | None:
        base = self.next_base(after - self.offset)
        return None if base is None else base + self.offset


def occasions(config: AppConfig, team: Team) -> list[Occasion]:
    tz = config.team_timezone(team)
    out: list[Occasion] = []
    for name, ceremony in team.ceremonies.items():
        out.append(Occasion(team, name, name, ceremony, timedelta(0), tz))
        if name == "planning":
            for hours in sorted(set(ceremony.nudge_hours_before), reverse=True):
                out.append(
                    Occasion(team, name, f"planning_nudge_{hours}h", ceremony, -timedelta(hours=hours), tz)
                )
        if name == "review" and ceremony.summary_minutes_before is not None:
            offset = -timedelta(minutes=ceremony.summary_minutes_before)
            out.append(Occasion(team, name, "review_summary", ceremony, offset, tz))
        if name == "standup" and ceremony.close_after_minutes:
            offset = timedelta(minutes=ceremony.close_after_minutes)
            out.append(Occasion(team, name, "standup_summary", ceremony, offset, tz))
    return out


def week_index(day: date) -> int:
    return (day - _EPOCH_MONDAY).days // 7


LAST_WEEK_CEREMONIES = ("review", "retro")


def sprint_week(name: str, ceremony: Ceremony) -> int:
    """The week of the sprint cycle (1-based) an every-N-weeks ceremony falls in."""
    if ceremony.sprint_week is not None:
        return ceremony.sprint_week
    return ceremony.every_weeks if name in LAST_WEEK_CEREMONIES else 1


def on_week(name: str, ceremony: Ceremony, local_day: date, anchor: date | None) -> bool:
    """Every-N-weeks ceremonies follow the sprint: counted from the week the current (or latest)
    sprint starts, or from the epoch's first Monday before any sprint exists."""
    if ceremony.every_weeks <= 1:
        return True
    weeks = week_index(local_day) - week_index(anchor or _EPOCH_MONDAY)
    return weeks % ceremony.every_weeks == sprint_week(name, ceremony) - 1


def grace(config: AppConfig, ceremony: Ceremony) -> timedelta:
    minutes = ceremony.grace_minutes if ceremony.grace_minutes is not None else config.grace_minutes
    return timedelta(minutes=minutes)


def local_dm_time(local_time: str, day: date, tz: ZoneInfo) -> datetime:
    """`HH:MM` on `day` in a person's zone, as UTC."""
    hour, minute = (int(p) for p in local_time.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)
