"""The sprint review's charts: real PNGs of the expected size, the same bytes for the same sprint, and
nothing in a name or an empty sprint that breaks them."""

from __future__ import annotations

import base64
import struct
from datetime import date, timedelta

from bot.notify import charts
from bot.services.sprint_review import BurndownPoint, VelocityPoint

DAY = date(2026, 12, 7)


def size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def burndown(days: int = 12, known: int = 6) -> list[BurndownPoint]:
    return [
        BurndownPoint(DAY + timedelta(days=n), 20 - n * 20 / (days - 1), 20 - 2 * n if n < known else None)
        for n in range(days)
    ]


def test_burndown_and_velocity_are_800_by_400_pngs_and_repeatable():
    first = charts.burndown_png(burndown(), title="Burndown · recsys · Sprint 1")
    assert size(first) == (800, 400)
    assert charts.burndown_png(burndown(), title="Burndown · recsys · Sprint 1") == first
    velocity = [VelocityPoint(f"Sprint {n}", 20, 15 + n) for n in range(6)]
    assert size(charts.velocity_png(velocity, title="Velocity")) == (800, 400)


def test_empty_sprints_and_many_sprints_still_draw():
    assert size(charts.burndown_png([], title="nothing")) == (800, 400)
    assert size(charts.burndown_png(burndown(known=0), title="not started")) == (800, 400)
    assert size(charts.velocity_png([], title="no sprints")) == (800, 400)
    many = [VelocityPoint(f"2026-W{n:02d}", 30, n) for n in range(30)]
    assert size(charts.velocity_png(many, title="thirty sprints", average=12.5)) == (800, 400)


def test_names_are_shown_as_typed_not_as_mathtext():
    hostile = [VelocityPoint("$\\frac{a}{b}$", 3, 2), VelocityPoint("<script>" + "x" * 80, 5, 5)]
    assert size(charts.velocity_png(hostile, title="$x^2$ {{ 7*7 }}")) == (800, 400)


def test_data_uri_carries_the_png():
    png = charts.velocity_png([], title="v")
    uri = charts.data_uri(png)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == png
