"""A read-only picture of a journey: server-rendered SVG, one box per step, arrows for next / yes / no.

Layout: the first step at the top left; a step's next goes below it; a branch puts its yes path below it
and its no path side by side to the right, each path as wide as the branches it holds. A step reached
again (paths joining, or a loop back) is drawn once and the arrow goes to where it already is. Steps no
path reaches are drawn below the rest, so nothing the marketer made disappears.

Every text in the picture (labels come from message and segment names) is escaped.
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from campaigns.journeys.steps_form import names_load, step_labels

BOX_W, BOX_H = 232, 74
COL, ROW = 268, 118
PAD = 24
COLOURS = {
    "send": "#417690",
    "wait": "#8a8a8a",
    "wait_until": "#8a8a8a",
    "branch": "#c78f00",
    "coupon": "#70bf2b",
    "points": "#70bf2b",
    "attribute": "#8e5bb5",
    "exit": "#ba2121",
}
LINE_CHARS = 34


def _layout(steps: list[dict]) -> dict[str, tuple[int, int]]:
    by_key = {step["key"]: step for step in steps if step.get("key")}
    where: dict[str, tuple[int, int]] = {}

    def place(key, col: int, row: int) -> int:
        """Place ``key``'s path at (col, row); return the first column right of everything placed."""
        if key not in by_key or key in where:
            return col
        where[key] = (col, row)
        step = by_key[key]
        if step.get("kind") == "branch":
            after_yes = max(place(step.get("yes"), col, row + 1), col + 1)
            return max(place(step.get("no"), after_yes, row + 1), after_yes)
        return max(place(step.get("next"), col, row + 1), col + 1)

    if steps:
        place(steps[0].get("key"), 0, 0)
    for step in steps:  # unreachable steps: below the rest
        if step.get("key") and step["key"] not in where:
            place(step["key"], 0, max((row for _c, row in where.values()), default=-1) + 1)
    return where


def _lines(text: str) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > LINE_CHARS and line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    if len(lines) > 2:
        lines = [lines[0], (lines[1][: LINE_CHARS - 1] + "…")]
    return [line[: LINE_CHARS + 4] for line in lines]


def journey_diagram_svg(steps: list[dict], counts: dict[str, dict] | None = None, *, title: str = "") -> SafeString:
    """The SVG of ``steps``, each box showing its label and, from ``counts``, people waiting and passed."""
    counts = counts or {}
    labels = step_labels(steps, names_load(steps))
    where = _layout(steps)
    if not where:
        return mark_safe(
            '<svg xmlns="http://www.w3.org/2000/svg" class="journey-diagram" width="320" height="60" role="img" '
            'aria-label="Journey diagram"><text x="12" y="34" font-size="14" fill="#666">No steps yet.</text></svg>'
        )
    cols = max(col for col, _row in where.values()) + 1
    rows = max(row for _col, row in where.values()) + 1
    width, height = PAD * 2 + (cols - 1) * COL + BOX_W + 60, PAD * 2 + (rows - 1) * ROW + BOX_H + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="journey-diagram" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title or "Journey diagram")}" '
        'font-family="system-ui, sans-serif">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]

    def box(key):
        col, row = where[key]
        return PAD + col * COL, PAD + row * ROW

    def arrow(source: str, target: str | None, side: str = "") -> None:
        sx, sy = box(source)
        if not target or target not in where:
            # the path ends here
            x = sx + BOX_W / 2 + (-40 if side == "yes" else 40 if side == "no" else 0)
            parts.append(
                f'<text x="{x:.0f}" y="{sy + BOX_H + 18}" font-size="11" fill="#666" text-anchor="middle">'
                f"{escape(side + ' → ' if side else '→ ')}end</text>"
            )
            return
        tx, ty = box(target)
        start_x = sx + BOX_W / 2 + (-30 if side == "yes" else 30 if side == "no" else 0)
        end_x = tx + BOX_W / 2
        if ty > sy:
            mid = sy + BOX_H + (ty - sy - BOX_H) / 2
            path = f"M{start_x:.0f},{sy + BOX_H} V{mid:.0f} H{end_x:.0f} V{ty - 2}"
        else:  # back up the page: round the right-hand side of both boxes
            out = max(sx, tx) + BOX_W + 28
            path = f"M{sx + BOX_W},{sy + BOX_H / 2:.0f} H{out} V{ty + BOX_H / 2:.0f} H{tx + BOX_W + 2}"
        parts.append(
            f'<path class="edge edge-{escape(side or "next")}" d="{path}" fill="none" stroke="#555" '
            'stroke-width="1.4" marker-end="url(#arrow)"/>'
        )
        if side:
            parts.append(
                f'<text x="{start_x + 4:.0f}" y="{sy + BOX_H + 14}" font-size="11" fill="#333">{escape(side)}</text>'
            )

    for step in steps:
        key = step.get("key")
        if key not in where:
            continue
        if step.get("kind") == "branch":
            arrow(key, step.get("yes"), "yes")
            arrow(key, step.get("no"), "no")
        elif step.get("kind") != "exit":
            arrow(key, step.get("next"))

    for step in steps:
        key = step.get("key")
        if key not in where:
            continue
        x, y = box(key)
        colour = COLOURS.get(step.get("kind"), "#555")
        figures = counts.get(key) or {}
        parts.append(f'<g class="step" data-key="{escape(key)}">')
        parts.append(
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#fff" stroke="{colour}" '
            'stroke-width="1.5"/>'
        )
        parts.append(f'<rect x="{x}" y="{y}" width="6" height="{BOX_H}" rx="3" fill="{colour}"/>')
        for number, line in enumerate(_lines(labels.get(key, key))):
            parts.append(
                f'<text class="label" x="{x + 14}" y="{y + 20 + number * 17}" font-size="13" fill="#222">'
                f"{escape(line)}</text>"
            )
        parts.append(
            f'<text class="counts" x="{x + 14}" y="{y + BOX_H - 10}" font-size="12" fill="#444">'
            f"{int(figures.get('waiting', 0))} waiting · {int(figures.get('passed', 0))} passed</text>"
        )
        parts.append(f"<title>{escape(labels.get(key, key))}</title></g>")
    parts.append("</svg>")
    return mark_safe("".join(parts))
