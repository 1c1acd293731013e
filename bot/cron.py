"""Cron expressions read as crontab(5) reads them, for the config check and the scheduler alike."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _crontab_days(field: str) -> str:
    """Standard crontab numbers days 0-7 from Sunday; APScheduler 3 numbers them from Monday. Spell
    numeric days (and steps over all days) out as names so that `1-5` means Monday to Friday."""
    if not any(c.isdigit() for c in field) and "/" not in field:
        return field
    names: list[str] = []
    for part in field.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if spec == "*":
            first, last = 0, 6
        elif "-" in spec and spec.replace("-", "").isdigit():
            first, last = (int(x) for x in spec.split("-", 1))
        elif spec.isdigit():
            first = last = int(spec)
            if step_text:
                last = 6
        else:
            names.append(part)  # a name or a range of names: APScheduler reads those as crontab does
            continue
        if not (0 <= first <= 7 and 0 <= last <= 7) or first > last or step < 1:
            raise ValueError(f"day of week {part!r} is out of range (0-7, Sunday is 0 or 7)")
        names += [_DAY_NAMES[d] for d in range(first, last + 1, step)]
    return ",".join(dict.fromkeys(names))


def crontab_trigger(expr: str, tz: ZoneInfo | str | None = None) -> BaseTrigger:
    """A trigger that reads a five-field expression exactly as crontab(5) does. When both the day of the
    month and the day of the week are restricted (neither begins with *), crontab runs on days matching
    either: "0 9 1 * mon" is the 1st of each month and every Monday. APScheduler's CronTrigger wants both
    to match, so that case is two triggers, one per day field, whichever comes first."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"a cron expression has 5 fields (minute hour day month weekday), not {len(fields)}")
    minute, hour, day, month, weekday = fields
    weekdays = _crontab_days(weekday)

    def cron(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week, timezone=tz
        )

    if day.startswith("*") or weekday.startswith("*"):
        return cron(day, weekdays)
    return OrTrigger([cron(day, "*"), cron("*", weekdays)])
