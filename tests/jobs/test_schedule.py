"""When ceremonies happen: occasions, fire times, DST, every-N-weeks and local DM times (pure unit tests)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import Ceremony
from bot.services.schedule import (
    grace,
    local_dm_time,
    occasions,
    on_week,
    sprint_week,
    week_index,
)
from tests.conftest import make_config

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module")
def config():
    """recsys's two-week sprint in Berlin (its standup with 15 min grace, 90 for the rest), platform's
    standup in New York."""
    return make_config(
        grace_minutes=90,
        ceremonies={
            "standup": {"cron": "30 9 * * mon-fri", "close_after_minutes": 120, "grace_minutes": 15},
            "planning": {"cron": "0 10 * * mon", "every_weeks": 2, "nudge_hours_before": [2, 24]},
            "review": {"cron": "0 15 * * fri", "every_weeks": 2},
            "retro": {"cron": "0 16 * * fri", "every_weeks": 2, "sprint_week": 1},
        },
        platform={"timezone": "America/New_York", "ceremonies": {"standup": {"cron": "0 10 * * mon-fri"}}},
    )


def by_kind(config, team_name="recsys"):
    team = config.team(team_name)
    assert team is not None
    return {o.kind: o for o in occasions(config, team)}


def test_occasions_of_standup_and_planning(config):
    occs = by_kind(config)
    assert sorted(occs) == sorted(
        [
            "standup",
            "standup_summary",
            "planning",
            "planning_nudge_24h",
            "planning_nudge_2h",
            "review",
            "retro",
        ]
    )
    assert occs["standup"].offset == timedelta(0)
    assert occs["standup_summary"].offset == timedelta(minutes=120)
    assert occs["planning"].offset == timedelta(0)
    assert occs["planning_nudge_24h"].offset == -timedelta(hours=24)
    assert occs["planning_nudge_2h"].offset == -timedelta(hours=2)
    for kind, name in [
        ("standup", "standup"),
        ("standup_summary", "standup"),
        ("planning", "planning"),
        ("planning_nudge_24h", "planning"),
        ("planning_nudge_2h", "planning"),
        ("review", "review"),
    ]:
        assert occs[kind].ceremony_name == name
        assert occs[kind].tz == BERLIN
    # nudge rounds come earliest first
    kinds = [o.kind for o in occasions(config, config.team("recsys")) if o.ceremony_name == "planning"]
    assert kinds == ["planning", "planning_nudge_24h", "planning_nudge_2h"]


def test_no_summary_without_close_after_and_team_timezone_wins(config):
    occs = by_kind(config, "platform")
    assert list(occs) == ["standup"]
    assert occs["standup"].tz == NEW_YORK


def test_duplicate_nudge_hours_give_one_round():
    cfg = make_config(ceremonies={"planning": {"cron": "0 10 * * mon", "nudge_hours_before": [24, 24, 2]}})
    kinds = [o.kind for o in occasions(cfg, cfg.teams[0])]
    assert kinds == ["planning", "planning_nudge_24h", "planning_nudge_2h"]


def test_fire_times_in_a_window(config):
    occs = by_kind(config)
    # Mon 7 .. Wed 9 Dec 2026; Berlin is UTC+1 in December
    start, end = utc(2026, 12, 7, 0, 0), utc(2026, 12, 9, 23, 59)
    assert list(occs["standup"].fire_times(start, end)) == [
        (utc(2026, 12, 7, 8, 30), utc(2026, 12, 7, 8, 30)),
        (utc(2026, 12, 8, 8, 30), utc(2026, 12, 8, 8, 30)),
        (utc(2026, 12, 9, 8, 30), utc(2026, 12, 9, 8, 30)),
    ]
    assert [at for at, _ in occs["standup_summary"].fire_times(start, end)] == [
        utc(2026, 12, 7, 10, 30),
        utc(2026, 12, 8, 10, 30),
        utc(2026, 12, 9, 10, 30),
    ]
    # the nudges of Monday's planning (09:00 UTC): 24 h and 2 h before; every_weeks is not applied here
    assert list(occs["planning_nudge_24h"].fire_times(utc(2026, 12, 5), utc(2026, 12, 14, 12))) == [
        (utc(2026, 12, 6, 9, 0), utc(2026, 12, 7, 9, 0)),
        (utc(2026, 12, 13, 9, 0), utc(2026, 12, 14, 9, 0)),
    ]
    assert list(occs["planning_nudge_2h"].fire_times(utc(2026, 12, 5), utc(2026, 12, 8))) == [
        (utc(2026, 12, 7, 7, 0), utc(2026, 12, 7, 9, 0))
    ]


def test_fire_times_window_is_open_at_start_closed_at_end(config):
    standup = by_kind(config)["standup"]
    at = utc(2026, 12, 7, 8, 30)
    assert list(standup.fire_times(at, at)) == []
    assert list(standup.fire_times(at - timedelta(microseconds=1), at)) == [(at, at)]
    assert list(standup.fire_times(at - timedelta(hours=1), at - timedelta(microseconds=1))) == []
    summary = by_kind(config)["standup_summary"]
    assert list(summary.fire_times(at, at + timedelta(minutes=120))) == [(at + timedelta(minutes=120), at)]


def test_next_fire(config):
    occs = by_kind(config)
    now = utc(2026, 12, 7, 6, 0)
    assert occs["standup"].next_fire(now) == utc(2026, 12, 7, 8, 30)
    assert occs["standup_summary"].next_fire(now) == utc(2026, 12, 7, 10, 30)
    assert occs["planning_nudge_2h"].next_fire(now) == utc(2026, 12, 7, 7, 0)
    # Sunday's 24 h nudge for today's planning has passed: the next one is a week later
    assert occs["planning_nudge_24h"].next_fire(now) == utc(2026, 12, 13, 9, 0)
    # strictly after
    assert occs["standup"].next_fire(utc(2026, 12, 7, 8, 30)) == utc(2026, 12, 8, 8, 30)
    # Friday evening: next standup is Monday
    assert occs["standup"].next_fire(utc(2026, 12, 11, 9, 0)) == utc(2026, 12, 14, 8, 30)


def test_autumn_dst_change_keeps_the_local_time(config):
    """Berlin leaves summer time on Sun 25 Oct 2026: 09:30 local is 07:30 UTC before, 08:30 UTC after."""
    standup = by_kind(config)["standup"]
    times = [at for at, _ in standup.fire_times(utc(2026, 10, 22, 12), utc(2026, 10, 27, 12))]
    assert times == [utc(2026, 10, 23, 7, 30), utc(2026, 10, 26, 8, 30), utc(2026, 10, 27, 8, 30)]
    assert all(t.astimezone(BERLIN).strftime("%H:%M") == "09:30" for t in times)
    # the summary is 120 real minutes after the standup on both sides of the change
    summaries = [
        at
        for at, _ in by_kind(config)["standup_summary"].fire_times(
            utc(2026, 10, 22, 12), utc(2026, 10, 27, 12)
        )
    ]
    assert summaries == [utc(2026, 10, 23, 9, 30), utc(2026, 10, 26, 10, 30), utc(2026, 10, 27, 10, 30)]


def test_spring_dst_change_keeps_the_local_time(config):
    """Berlin enters summer time on Sun 29 Mar 2026."""
    standup = by_kind(config)["standup"]
    times = [at for at, _ in standup.fire_times(utc(2026, 3, 26, 12), utc(2026, 3, 30, 12))]
    assert times == [utc(2026, 3, 27, 8, 30), utc(2026, 3, 30, 7, 30)]


def test_nudge_offsets_are_real_hours_across_dst(config):
    # planning Mon 26 Oct 2026 10:00 CET = 09:00 UTC, the day after the change
    nudge = by_kind(config)["planning_nudge_24h"]
    assert list(nudge.fire_times(utc(2026, 10, 24), utc(2026, 10, 26))) == [
        (utc(2026, 10, 25, 9, 0), utc(2026, 10, 26, 9, 0))
    ]


def test_numeric_day_of_week_follows_crontab():
    cfg = make_config(ceremonies={"standup": {"cron": "30 9 * * 1-5"}})
    (standup,) = occasions(cfg, cfg.teams[0])
    days = [
        at.astimezone(BERLIN).strftime("%a")
        for at, _ in standup.fire_times(utc(2026, 12, 6), utc(2026, 12, 13))
    ]
    assert days == ["Mon", "Tue", "Wed", "Thu", "Fri"]


def dates_of(cron: str, start: datetime, end: datetime) -> list[str]:
    cfg = make_config(ceremonies={"standup": {"cron": cron}})
    (standup,) = occasions(cfg, cfg.teams[0])
    return [f"{at.astimezone(BERLIN):%a %d %b}" for at, _ in standup.fire_times(start, end)]


def test_day_of_month_and_day_of_week_together_mean_either_as_in_crontab():
    """crontab(5): when both day fields are restricted, a day matching either runs the job. December
    2026: the 1st is a Tuesday, the 15th a Tuesday; its Mondays are the 7th, 14th, 21st and 28th."""
    assert dates_of("0 9 1,15 * mon", utc(2026, 11, 30, 12), utc(2026, 12, 31)) == [
        "Tue 01 Dec",
        "Mon 07 Dec",
        "Mon 14 Dec",
        "Tue 15 Dec",
        "Mon 21 Dec",
        "Mon 28 Dec",
    ]


@pytest.mark.parametrize(
    ("cron", "end", "expected"),
    [
        ("0 9 1 * *", date(2026, 12, 14), ["Tue 01 Dec"]),  # the day of the week unrestricted: the 1st only
        (
            "0 9 * * fri",
            date(2026, 12, 14),
            ["Fri 04 Dec", "Fri 11 Dec"],
        ),  # the day of the month unrestricted
        # a field beginning with * counts as unrestricted, so both must match: a 1st, 8th, 15th … that is a
        # Friday; the first after 30 Nov 2026 are 1 and 8 Jan 2027
        ("0 9 */7 * fri", date(2027, 1, 14), ["Fri 01 Jan", "Fri 08 Jan"]),
    ],
)
def test_one_restricted_day_field_alone_decides(cron, end, expected):
    assert dates_of(cron, utc(2026, 11, 30, 12), utc(end.year, end.month, end.day)) == expected


def test_sprint_week_defaults_and_override(config):
    team = config.team("recsys")
    assert sprint_week("planning", team.ceremonies["planning"]) == 1
    assert sprint_week("review", team.ceremonies["review"]) == 2
    assert sprint_week("retro", team.ceremonies["retro"]) == 1  # sprint_week: 1 overrides the default
    assert sprint_week("review", Ceremony(cron="0 15 * * fri", every_weeks=3)) == 3
    assert sprint_week("refinement", Ceremony(cron="0 14 * * wed", every_weeks=3)) == 1


def test_on_week_follows_the_sprint_anchor(config):
    team = config.team("recsys")
    planning, review, retro = (team.ceremonies[n] for n in ("planning", "review", "retro"))
    anchor = date(2026, 12, 9)  # a sprint starting on a Wednesday: its week is Mon 7 Dec
    # planning: the week the sprint starts, then every second week
    assert on_week("planning", planning, date(2026, 12, 7), anchor)
    assert not on_week("planning", planning, date(2026, 12, 14), anchor)
    assert on_week("planning", planning, date(2026, 12, 21), anchor)
    # review defaults to the last week of the 2-week cycle
    assert not on_week("review", review, date(2026, 12, 11), anchor)
    assert on_week("review", review, date(2026, 12, 18), anchor)
    assert not on_week("review", review, date(2026, 12, 25), anchor)
    # retro with sprint_week 1 goes with the first week
    assert on_week("retro", retro, date(2026, 12, 11), anchor)
    assert not on_week("retro", retro, date(2026, 12, 18), anchor)
    # every week when every_weeks is 1
    assert on_week("standup", team.ceremonies["standup"], date(2026, 12, 14), anchor)
    # weeks before the anchor count the same way
    assert on_week("planning", planning, date(2026, 11, 23), anchor)
    assert not on_week("planning", planning, date(2026, 11, 30), anchor)


def test_on_week_without_a_sprint_counts_from_the_epoch_monday(config):
    planning = config.team("recsys").ceremonies["planning"]
    first = date(1970, 1, 5)
    assert week_index(first) == 0
    assert week_index(date(2026, 12, 7)) % 2 == 0
    assert on_week("planning", planning, date(2026, 12, 7), None)
    assert not on_week("planning", planning, date(2026, 12, 14), None)


def test_week_index_groups_monday_to_sunday():
    assert week_index(date(2026, 12, 7)) == week_index(date(2026, 12, 13))
    assert week_index(date(2026, 12, 14)) == week_index(date(2026, 12, 7)) + 1


def test_grace_per_ceremony_or_global(config):
    team = config.team("recsys")
    assert grace(config, team.ceremonies["standup"]) == timedelta(minutes=15)
    assert grace(config, team.ceremonies["planning"]) == timedelta(minutes=90)
    default = make_config()  # no grace_minutes
    assert grace(default, Ceremony(cron="0 9 * * *")) == timedelta(minutes=120)
    assert grace(default, Ceremony(cron="0 9 * * *", grace_minutes=0)) == timedelta(0)


def test_local_dm_time():
    assert local_dm_time("09:00", date(2026, 12, 7), NEW_YORK) == utc(2026, 12, 7, 14, 0)
    assert local_dm_time("09:00", date(2026, 12, 7), BERLIN) == utc(2026, 12, 7, 8, 0)
    assert local_dm_time("09:00", date(2026, 7, 7), NEW_YORK) == utc(2026, 7, 7, 13, 0)
    assert local_dm_time("23:45", date(2026, 12, 7), ZoneInfo("Asia/Tokyo")) == utc(2026, 12, 7, 14, 45)
    # around New York's change (Sun 1 Nov 2026): the local hour stays 09:00
    assert local_dm_time("09:00", date(2026, 10, 30), NEW_YORK) == utc(2026, 10, 30, 13, 0)
    assert local_dm_time("09:00", date(2026, 11, 2), NEW_YORK) == utc(2026, 11, 2, 14, 0)
    assert local_dm_time("09:00", date(2026, 12, 7), NEW_YORK).tzinfo == UTC
