"""Charts drawn on the server as SVG: no script, nothing to load, labels escaped.

Each series and bar is labelled where it is drawn (the value at the end of a bar, a line's name at its
last point), so nobody has to match colours against a legend.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#4a5568")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _number(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def bar_chart(
    *, title: str, items: Sequence[tuple[str, float]], unit: str = "", width: int = 560, compare: Sequence[float] = ()
) -> SafeString:
    """Horizontal bars, one per ``(label, value)``, the value written at the end of each bar.

    ``compare`` (same order) draws the previous period as a thin grey bar under each, labelled "prev".
    """
    bar_height, gap, label_width = 18, 10, 170
    rows = list(items)
    height = 28 + max(len(rows), 1) * (bar_height + gap + (8 if compare else 0))
    biggest = max([abs(float(value or 0)) for _, value in rows] + [abs(float(v or 0)) for v in compare] + [1e-9])
    span = width - label_width - 90
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="results-chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" {FONT}><title>{escape(title)}</title>'
        f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>'
    ]
    if not rows:
        parts.append('<text x="0" y="40" fill="#666">No data in this period.</text>')
    y = 26
    for index, (label, value) in enumerate(rows):
        value = float(value or 0)
        length = max(span * abs(value) / biggest, 1)
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end">{escape(str(label)[:28])}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" fill="{PALETTE[0]}"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 13}">{escape(_number(value))}{escape(unit)}</text>'
        )
        y += bar_height + 2
        if compare:
            previous = float(compare[index] or 0)
            plength = max(span * abs(previous) / biggest, 1)
            parts.append(
                f'<rect x="{label_width}" y="{y}" width="{plength:.1f}" height="5" fill="#a0aec0"/>'
                f'<text x="{label_width + plength + 4:.1f}" y="{y + 6}" font-size="9" fill="#4a5568">'
                f"prev {escape(_number(previous))}{escape(unit)}</text>"
            )
            y += 8
        y += gap
    parts.append("</svg>")
    return mark_safe("".join(parts))


def line_chart(
    *,
    title: str,
    days: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    unit: str = "%",
    lines: Sequence[tuple[str, float]] = (),
    width: int = 640,
    height: int = 220,
) -> SafeString:
    """One line per series over ``days``, its name written at its last point; ``lines`` are labelled
    horizontal thresholds (e.g. the 0.1 % and 0.3 % complaint limits)."""
    left, right, top, bottom = 44, 150, 24, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [float(v) for _, points in series for v in points if v is not None]
    top_value = max([*values, *(value * 1.2 for _, value in lines), 1e-9])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="results-chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" {FONT}><title>{escape(title)}</title>'
        f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>'
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>'
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="10">{escape(_number(top_value))}'
        f"{escape(unit)}</text>"
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="10">0</text>'
    ]

    def x_at(index: int) -> float:
        return left + (plot_w * index / (len(days) - 1) if len(days) > 1 else plot_w / 2)

    def y_at(value: float) -> float:
        return top + plot_h - plot_h * value / top_value

    if days:
        parts.append(f'<text x="{left}" y="{height - 6}" font-size="10">{escape(days[0])}</text>')
        parts.append(
            f'<text x="{left + plot_w}" y="{height - 6}" font-size="10" text-anchor="end">{escape(days[-1])}</text>'
        )
    else:
        parts.append(f'<text x="{left + 8}" y="{top + 30}" fill="#666">No data in this period.</text>')
    for label, value in lines:
        y = y_at(value)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#c53030" '
            'stroke-dasharray="4 3"/>'
            f'<text x="{left + plot_w + 4}" y="{y + 4:.1f}" fill="#c53030" font-size="10">{escape(label)}</text>'
        )
    for index, (label, points) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        coords = [(x_at(i), y_at(float(v))) for i, v in enumerate(points) if v is not None]
        if not coords:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        last_x, last_y = coords[-1]
        parts.append(
            f'<text x="{last_x + 4:.1f}" y="{last_y + 4 + 11 * index:.1f}" fill="{colour}" font-size="11">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def score_chart(
    *,
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    low: float = -100,
    high: float = 100,
    width: int = 640,
    height: int = 240,
) -> SafeString:
    """A score on a fixed scale (NPS: -100 to +100) at each of ``labels``, each point with its value
    written above it; a label without a value (no answers) is marked "none" on the zero line and breaks
    the line there."""
    left, right, top, bottom = 44, 24, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    span = (high - low) or 1

    def x_at(index: int) -> float:
        return left + (plot_w * index / (len(labels) - 1) if len(labels) > 1 else plot_w / 2)

    def y_at(value: float) -> float:
        return top + plot_h - plot_h * (min(max(value, low), high) - low) / span

    def anchor(index: int) -> str:
        # The first and last labels hang inwards so neither is cut at the chart's edge.
        if len(labels) > 1 and index == 0:
            return "start"
        return "end" if len(labels) > 1 and index == len(labels) - 1 else "middle"

    zero = y_at(0) if low < 0 < high else top + plot_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="results-chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" {FONT}><title>{escape(title)}</title>'
        f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>'
        f'<line x1="{left}" y1="{zero:.1f}" x2="{left + plot_w}" y2="{zero:.1f}" stroke="#999"/>'
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="10">{escape(_number(high))}</text>'
        f'<text x="{left - 4}" y="{zero + 4:.1f}" text-anchor="end" font-size="10">0</text>'
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="10">{escape(_number(low))}</text>'
    ]
    if not labels:
        parts.append(f'<text x="{left + 8}" y="{top + 30}" fill="#666">No data in this period.</text>')
    step = max(1, len(labels) // 8)  # at most about eight axis labels, so they never overlap
    for index, label in enumerate(labels):
        if index % step == 0 or index == len(labels) - 1:
            parts.append(
                f'<text x="{x_at(index):.1f}" y="{height - 8}" font-size="10" text-anchor="{anchor(index)}">'
                f"{escape(str(label))}</text>"
            )
    run: list[tuple[float, float]] = []
    runs = [run]
    for index, value in enumerate(values):
        if value is None:
            parts.append(
                f'<text x="{x_at(index):.1f}" y="{zero - 6:.1f}" font-size="9" fill="#666" '
                f'text-anchor="{anchor(index)}">none</text>'
            )
            run = []
            runs.append(run)
            continue
        x, y = x_at(index), y_at(float(value))
        run.append((x, y))
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{PALETTE[0]}"/>'
            f'<text x="{x:.1f}" y="{y - 7:.1f}" font-size="10" text-anchor="middle">'
            f"{escape(_number(float(value)))}</text>"
        )
    for points in runs:
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="2" points="{path}"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
