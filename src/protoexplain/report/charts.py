"""Layouts of the small charts drawn as inline SVG by the templates (``charts.html.j2``).

Python computes every coordinate (in pixels of the SVG's own view box); the templates only write
the elements, so the pages need no JavaScript, no figure files and no matplotlib per page.
Labels stay data: the templates escape them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

POSITIVE, NEGATIVE = "#3b6ea8", "#c0504d"
SPLIT_COLOURS = ("#3b6ea8", "#d9822b", "#5a9e5a", "#8c6bb1")
LABEL_WIDTH = 90.0
PLOT_WIDTH = 300.0
VALUE_WIDTH = 46.0
ROW_HEIGHT = 22.0
AXIS_HEIGHT = 34.0


@dataclass(frozen=True)
class Tick:
    """An axis tick at ``position`` (pixels) labelled ``text``."""

    position: float
    text: str


@dataclass(frozen=True)
class Bar:
    """One horizontal bar from ``x0`` to ``x1`` with an optional interval ``low``–``high``."""

    y: float
    height: float
    x0: float
    x1: float
    colour: str
    value: float
    text_x: float
    anchor: str
    series: str
    low: float | None = None
    high: float | None = None
    interval: tuple[float, float] | None = None


@dataclass(frozen=True)
class BarChart:
    """Grouped horizontal bars: one row per group (label at ``label_y``), one bar per series."""

    width: float
    height: float
    label_x: float
    plot_left: float
    plot_right: float
    plot_bottom: float
    zero: float
    rows: list[tuple[str, float]]
    bars: list[Bar]
    ticks: list[Tick]
    axis_label: str
    legend: list[tuple[str, str]]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k apart) covering ``[low, high]``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    values = np.arange(first, high + step * 1e-9, step)
    return [0.0 if abs(v) < step * 1e-9 else float(v) for v in values]


def tick_text(value: float) -> str:
    """A tick label: ``0.5``, ``-2``, ``1e+03``."""
    return f"{value:.3g}"


def _range(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    low, high = min([0.0, *finite]), max([0.0, *finite])
    if high == low:
        high = low + 1.0
    return low, high


def bar_chart(
    groups: Sequence[str],
    series: Mapping[str, Mapping[str, tuple[float, float | None, float | None]]],
    axis_label: str,
    *,
    sign_colours: bool = False,
) -> BarChart:
    """Layout of grouped bars: ``series`` maps a series name (a split) to group →
    ``(value, low, high)`` (``low``/``high`` ``None`` when there is no interval).

    Groups are drawn top to bottom in the given order. ``sign_colours`` colours each bar by its
    sign instead of by its series.
    """
    names = list(series)
    every = [x for s in series.values() for triple in s.values() for x in triple
             if x is not None]
    low, high = _range(every)
    ticks = nice_ticks(low, high)
    low, high = min([low, *ticks]), max([high, *ticks])
    left = LABEL_WIDTH + VALUE_WIDTH
    right = left + PLOT_WIDTH

    def x_of(value: float) -> float:
        return round(left + (value - low) / (high - low) * PLOT_WIDTH, 1)

    band = ROW_HEIGHT * 0.8 / max(len(names), 1)
    rows, bars = [], []
    for g, group in enumerate(groups):
        top = 6.0 + g * ROW_HEIGHT
        rows.append((group, round(top + ROW_HEIGHT / 2, 1)))
        for k, name in enumerate(names):
            triple = series[name].get(group)
            if triple is None or triple[0] is None or not math.isfinite(triple[0]):
                continue
            value, lo, hi = triple
            x0, x1 = sorted((x_of(0.0), x_of(value)))
            has_interval = lo is not None and hi is not None and math.isfinite(lo) \
                and math.isfinite(hi)
            reach = x_of(max(value, hi)) if has_interval and value >= 0 else x1
            floor = x_of(min(value, lo)) if has_interval and value < 0 else x0
            colour = ((POSITIVE if value >= 0 else NEGATIVE) if sign_colours
                      else SPLIT_COLOURS[k % len(SPLIT_COLOURS)])
            bars.append(Bar(
                y=round(top + ROW_HEIGHT * 0.1 + k * band, 1), height=round(band, 1),
                x0=x0, x1=x1, colour=colour, value=float(value),
                text_x=round(reach + 3, 1) if value >= 0 else round(floor - 3, 1),
                anchor="start" if value >= 0 else "end", series=name,
                low=lo if has_interval else None, high=hi if has_interval else None,
                interval=(x_of(lo), x_of(hi)) if has_interval else None,
            ))
    bottom = 6.0 + len(groups) * ROW_HEIGHT
    return BarChart(
        width=right + VALUE_WIDTH, height=bottom + AXIS_HEIGHT, label_x=LABEL_WIDTH - 4,
        plot_left=left,
        plot_right=right, plot_bottom=bottom, zero=x_of(0.0), rows=rows, bars=bars,
        ticks=[Tick(x_of(v), tick_text(v)) for v in ticks], axis_label=axis_label,
        legend=([(name, SPLIT_COLOURS[k % len(SPLIT_COLOURS)]) for k, name in enumerate(names)]
                if len(names) > 1 and not sign_colours else []),
    )


@dataclass(frozen=True)
class Line:
    """One series of a line chart: its points ``(x, y, strength, value)`` and the polygon of its
    interval band."""

    series: str
    colour: str
    points: list[tuple[float, float, float, float]]
    band: list[tuple[float, float]]


@dataclass(frozen=True)
class LineChart:
    """Score against strength for one characteristic."""

    title: str
    width: float
    height: float
    left: float
    right: float
    top: float
    bottom: float
    zero: float | None
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]


def line_chart(
    title: str,
    series: Mapping[str, Sequence[tuple[float, float, float, float]]],
    *,
    width: float = 220.0,
    height: float = 170.0,
) -> LineChart:
    """Layout of one dose–response chart: ``series`` maps a split to ``(strength, value, low,
    high)`` tuples (any order; drawn by strength)."""
    left, right, top, bottom = 44.0, width - 8.0, 20.0, height - 30.0
    points = [p for rows in series.values() for p in rows]
    xs = [p[0] for p in points]
    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_high == x_low:
        x_high = x_low + 1.0
    y_low, y_high = _range([v for p in points for v in p[1:] if math.isfinite(v)])
    y_ticks = nice_ticks(y_low, y_high, 4)
    y_low, y_high = min([y_low, *y_ticks]), max([y_high, *y_ticks])

    def x_of(value: float) -> float:
        return round(left + (value - x_low) / (x_high - x_low) * (right - left), 1)

    def y_of(value: float) -> float:
        return round(bottom - (value - y_low) / (y_high - y_low) * (bottom - top), 1)

    lines = []
    for k, (name, rows) in enumerate(series.items()):
        ordered = sorted(rows)
        finite = [r for r in ordered if all(math.isfinite(v) for v in r[2:])]
        band = ([(x_of(s), y_of(hi)) for s, _, _, hi in finite]
                + [(x_of(s), y_of(lo)) for s, _, lo, _ in reversed(finite)])
        lines.append(Line(name, SPLIT_COLOURS[k % len(SPLIT_COLOURS)],
                          [(x_of(s), y_of(v), s, v) for s, v, _, _ in ordered], band))
    strengths = sorted(set(xs))
    return LineChart(
        title=title, width=width, height=height, left=left, right=right, top=top,
        bottom=bottom, zero=y_of(0.0) if y_low <= 0 <= y_high else None, lines=lines,
        x_ticks=[Tick(x_of(s), tick_text(s)) for s in strengths],
        y_ticks=[Tick(y_of(v), tick_text(v)) for v in y_ticks],
    )


def ordered_groups(values: Mapping[str, float], extra: Sequence[str] = ()) -> list[str]:
    """Group names by value, largest first (missing or NaN last), then ``extra`` names."""
    order = sorted(values, key=lambda k: (not math.isfinite(values[k]), -np.nan_to_num(values[k])))
    return order + [name for name in extra if name not in order]
