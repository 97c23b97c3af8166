"""Stacked bar charts of counts per hour, as SVG geometry the templates draw: a y axis with
its counts, an x axis with the hours, the total above each bar, and a legend with each series'
total. Colours are CSS classes, never values here: an incident state's colour is set once, in
receivers/static/dashboard.css (``.state-<state>``), and is the same on the list's badges,
these charts and the timeline; a source gets a colour no state uses (``.source-<source>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from engine.events import SOURCES
from engine.lifecycle import STATES
from engine.store.reporting import Bucket

__all__ = ["Chart", "series_class", "stacked"]

WIDTH, HEIGHT = 480, 200
LEFT, RIGHT, TOP, BOTTOM = 30, 8, 16, 24
"""The plot's margins: the y axis' counts on the left, the hours below, the totals above."""
LABEL_EVERY = 6
"""An hour label every this many bars (counted back from the current hour)."""


class Bar(msgspec.Struct, frozen=True):
    """One series' part of one bar."""

    x: float
    y: float
    w: float
    h: float
    css: str
    title: str


class Label(msgspec.Struct, frozen=True):
    """A text at (x, y)."""

    x: float
    y: float
    text: str


class Chart(msgspec.Struct, frozen=True, kw_only=True):
    """What the template draws: the plot's box, the bars, the axes' ticks and labels, the
    totals above the bars and the legend (series, its CSS class, its total)."""

    width: int
    height: int
    left: int
    top: int
    right: float
    bottom: float
    bars: list[Bar]
    y_ticks: list[Label]
    x_ticks: list[Label]
    totals: list[Label]
    legend: list[tuple[str, str, int]]
    total: int


def series_class(series: str) -> str:
    """The CSS class that colours ``series``: a state's, a source's, or the neutral one."""
    if series in STATES:
        return f"state-{series}"
    if series in SOURCES:
        return f"source-{series}"
    return "series-other"


def _hour(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%H:00")


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _ticks(peak: int) -> list[int]:
    """Round counts from 0 to at least ``peak``, at most five: 0 1 2 3, 0 5 10 15, ..."""
    step = 1
    while peak / step > 4:
        for factor in (2, 2.5, 2):  # 1, 2, 5, 10, 20, 50, ...
            step = int(step * factor)
            if peak / step <= 4:
                break
    top = -(-max(peak, 1) // step) * step
    return list(range(0, top + 1, step))


def stacked(buckets: Sequence[Bucket], *, start_ms: int, bucket_ms: int,
            count: int) -> Chart:
    """``count`` bars of ``bucket_ms`` from ``start_ms``, each stacking its series' counts
    (series in name order, the same order in every bar and in the legend)."""
    order = sorted({b.series for b in buckets})
    rank = {s: i for i, s in enumerate(order)}
    per_bar: dict[int, list[Bucket]] = {}
    for b in buckets:
        index = (b.start_ms - start_ms) // bucket_ms
        if 0 <= index < count:
            per_bar.setdefault(index, []).append(b)
    totals = {i: sum(b.count for b in bs) for i, bs in per_bar.items()}
    ticks = _ticks(max(totals.values(), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    bottom = TOP + plot_h
    slot = plot_w / count
    scale = plot_h / ticks[-1]
    bars, labels = [], []
    for index, parts in sorted(per_bar.items()):
        x = LEFT + index * slot + slot * 0.15
        below = 0
        for b in sorted(parts, key=lambda b: rank[b.series]):
            h = b.count * scale
            bars.append(Bar(round(x, 1), round(bottom - below - h, 1), round(slot * 0.7, 1),
                            round(h, 1), series_class(b.series),
                            f"{_when(b.start_ms)}: {b.series} {b.count}"))
            below += h
        labels.append(Label(round(x + slot * 0.35, 1), round(bottom - below - 3, 1),
                            str(totals[index])))
    y_ticks = [Label(LEFT - 4, round(bottom - v * scale, 1), str(v)) for v in ticks]
    x_ticks = [Label(round(LEFT + i * slot + slot / 2, 1), HEIGHT - 8,
                     _hour(start_ms + i * bucket_ms))
               for i in range(count) if (count - 1 - i) % LABEL_EVERY == 0]
    sums = {s: 0 for s in order}
    for b in buckets:
        if 0 <= (b.start_ms - start_ms) // bucket_ms < count:
            sums[b.series] += b.count
    return Chart(width=WIDTH, height=HEIGHT, left=LEFT, top=TOP, right=WIDTH - RIGHT,
                 bottom=bottom, bars=bars, y_ticks=y_ticks, x_ticks=x_ticks, totals=labels,
                 legend=[(s, series_class(s), sums[s]) for s in order],
                 total=sum(sums.values()))
