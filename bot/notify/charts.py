"""The sprint review's charts as PNG bytes: the burndown of a sprint and the velocity of the last
sprints. Drawn with matplotlib's object API on the Agg canvas (no pyplot, so no global figure state
and nothing tied to a display or a thread); matplotlib is imported on first use, it is slow to load."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.services.sprint_review import BurndownPoint, VelocityPoint

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SIZE = (8.0, 4.0)  # inches; at DPI this is 800 by 400 pixels
DPI = 100
# Okabe-Ito colours: told apart by people with any common colour-vision deficiency
BLUE, ORANGE, GREY, GREEN = "#0072B2", "#E69F00", "#999999", "#009E73"


def _figure() -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    return fig, fig.add_subplot()


def _png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})  # no version stamp: same input, same bytes
    return out.getvalue()


def _text(value: str) -> str:
    """Text shown as typed: `$` would start mathtext."""
    return value.replace("$", r"\$")


def _empty(ax: Any, note: str) -> None:
    ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, color=GREY, fontsize=14)
    ax.set_xticks([])
    ax.set_yticks([])


def burndown_png(points: Sequence[BurndownPoint], *, title: str, unit: str = "points") -> bytes:
    """Remaining work per day (solid, up to the last day known) against the ideal line (dashed)."""
    fig, ax = _figure()
    ax.set_title(_text(title), loc="left")
    if not points or (max(p.ideal for p in points) <= 0 and not any(p.remaining for p in points)):
        _empty(ax, f"No {unit} committed")
        return _png(fig)
    xs = list(range(len(points)))
    ax.plot(xs, [p.ideal for p in points], linestyle="--", color=GREY, label="ideal")
    known = [(x, p.remaining) for x, p in zip(xs, points, strict=True) if p.remaining is not None]
    if known:
        ax.plot(
            [x for x, _ in known],
            [r for _, r in known],
            marker="o",
            color=BLUE,
            linewidth=2,
            label="remaining",
        )
    step = max(1, len(points) // 12)
    ax.set_xticks(xs[::step], [p.day.strftime("%a %-d") for p in points][::step])
    ax.set_ylabel(unit)
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper right", frameon=False)
    return _png(fig)


def velocity_png(points: Sequence[VelocityPoint], *, title: str, average: float | None = None) -> bytes:
    """Committed and completed points per sprint, oldest first, with the average of completed (by
    default over all of them; the review passes the average of the finished sprints)."""
    fig, ax = _figure()
    ax.set_title(_text(title), loc="left")
    if not points:
        _empty(ax, "No sprints yet")
        return _png(fig)
    xs = list(range(len(points)))
    width = 0.38
    committed = ax.bar(
        [x - width / 2 for x in xs], [p.committed for p in points], width, color=GREY, label="committed"
    )
    completed = ax.bar(
        [x + width / 2 for x in xs], [p.completed for p in points], width, color=GREEN, label="completed"
    )
    if len(points) <= 12:
        ax.bar_label(committed, fontsize=8)
        ax.bar_label(completed, fontsize=8)
    if average is None:
        average = sum(p.completed for p in points) / len(points)
    ax.axhline(average, linestyle=":", color=ORANGE, label=f"average completed {average:.1f}")
    labels = [_text(p.sprint if len(p.sprint) <= 14 else p.sprint[:13] + "…") for p in points]
    ax.set_xticks(
        xs, labels, rotation=30 if len(points) > 6 else 0, ha="right" if len(points) > 6 else "center"
    )
    ax.set_ylabel("points")
    top = max([p.committed for p in points] + [p.completed for p in points] + [average, 1])
    ax.set_ylim(0, top * 1.3)  # room above the bars for the legend
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", frameon=False, fontsize=8, ncols=3)
    return _png(fig)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
