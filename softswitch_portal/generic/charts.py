"""Charts as inline SVG, drawn on the server: no JavaScript library, nothing fetched from a CDN.

``svg_chart(points)`` takes ``[(label, value), ...]`` in x order and returns a
bar or line chart scaled to its values, with a zero line, a few round y
ticks, thinned x labels, and each value in a tooltip (the SVG ``<title>``,
which browsers show on hover). The drawing scales to its container's width.
"""

import math
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

WIDTH, HEIGHT = 600, 170
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 22
MAX_X_LABELS = 10


def nice_step(span, ticks=4):
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` intervals over ``span``."""
    if span <= 0:
        return 1
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * power:
            return multiple * power
    return 10 * power


def compact(value):
    """A y-axis label: 1.2k, 3.4M; plain below a thousand."""
    magnitude = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}" if magnitude < 1 else f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def _n(coordinate):
    # format_html escapes its arguments into strings, so numbers are formatted before.
    return f"{coordinate:.1f}"


def _number(value):
    if value is None:
        return 0.0
    return float(value) if isinstance(value, Decimal | int | float) else float(str(value))


def svg_chart(points, *, kind="bar", title="", unit="", color="accent"):
    """An inline SVG chart of ``points`` = [(label, value)], or a note when there is nothing to draw."""
    points = [(str(label), value) for label, value in points]
    if not points or all(value in (None, 0) for _, value in points):
        return format_html('<p class="chart-empty">{}</p>', f"No {title.lower() or 'data'} in this period.")
    values = [_number(value) for _, value in points]
    low, high = min(0.0, *values), max(0.0, *values)
    step = nice_step(high - low)
    low = math.floor(low / step) * step
    high = math.ceil(high / step) * step if high > 0 else 0.0
    if high == low:
        high = low + step
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value):
        return TOP + plot_h * (high - value) / (high - low)

    parts = []
    tick = low
    while tick <= high + step / 1000:
        ty = y(tick)
        parts.append(
            format_html(
                '<line class="grid{}" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>',
                " zero" if abs(tick) < step / 1000 else "",
                LEFT,
                WIDTH - RIGHT,
                _n(ty),
                _n(ty),
                LEFT - 6,
                _n(ty + 4),
                compact(tick),
            )
        )
        tick += step

    band = plot_w / len(points)
    every = max(1, math.ceil(len(points) / MAX_X_LABELS))
    zero_y = y(0)
    suffix = f" {unit}" if unit else ""
    marks, line = [], []
    for index, ((label, raw), value) in enumerate(zip(points, values, strict=True)):
        centre = LEFT + band * (index + 0.5)
        tooltip = f"{label}: {'—' if raw is None else raw}{suffix}"
        if kind == "bar":
            bar_w = max(1.0, band * 0.72)
            top, bottom = sorted((y(value), zero_y))
            marks.append(
                format_html(
                    '<rect class="bar{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
                    " negative" if value < 0 else "",
                    _n(centre - bar_w / 2),
                    _n(top),
                    _n(bar_w),
                    _n(max(bottom - top, 0.5)),
                    tooltip,
                )
            )
        else:
            line.append(f"{centre:.1f},{y(value):.1f}")
            marks.append(
                format_html(
                    '<circle class="dot" cx="{}" cy="{}" r="3"><title>{}</title></circle>',
                    _n(centre),
                    _n(y(value)),
                    tooltip,
                )
            )
        if index % every == 0:
            marks.append(
                format_html(
                    '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>', _n(centre), HEIGHT - 8, label
                )
            )
    if line:
        parts.append(format_html('<polyline class="line" points="{}"/>', " ".join(line)))
    return format_html(
        '<svg class="chart chart-{} chart-{}" viewBox="0 0 {} {}" role="img" aria-label="{}">{}{}</svg>',
        kind,
        color,
        WIDTH,
        HEIGHT,
        title,
        mark_safe("".join(parts)),
        format_html_join("", "{}", ((mark,) for mark in marks)),
    )
