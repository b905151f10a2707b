"""Geometry of the report's pictures: the funnel, the stage trend and the segment sizes, as plain shapes.

Only coordinates and words are decided here; the SVG markup comes from one template (templates/svg.j2), which
escapes every word, so a stage label or segment name from the config can never become markup. The funnel
drawn here is the one `report --svg` writes and the HTML report shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .run_history import RunRecord
from .stage_model import StageModel

PATH_COLOUR = "#2f6db5"
DETOUR_COLOUR = "#b5652f"
INK = "#222222"
MUTED = "#666666"
# distinguishable on screen and in grey print (Okabe-Ito), one per path stage; detours reuse it darker
PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"]


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    content: str
    size: int = 14
    bold: bool = False
    fill: str = INK
    anchor: str = "start"


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str = ""  # a tooltip in the browser


@dataclass(frozen=True)
class Line:
    points: list[tuple[float, float]]
    stroke: str
    title: str = ""


@dataclass
class Chart:
    width: int
    height: int
    title: str
    texts: list[Text] = field(default_factory=list)
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def stage_label(model: StageModel, name: str) -> str:
    return model.stage(name).label_for("") if name in {s.name for s in model.stages} else name


def funnel_chart(report: dict[str, Any], model: StageModel, title: str) -> Chart:
    """Bars as wide as the people who reached each path stage (so the funnel only narrows), the conversion to
    the next stage between them, and beside each stage the detours people took from there."""
    reached: dict[str, int] = report.get("reached", {})
    stages: dict[str, int] = report.get("stages", {})
    entered_past: dict[str, int] = report.get("entered_past", {})
    observed: dict[str, float | None] = report.get("conversion_observed", {})
    detours: dict[str, dict[str, int]] = report.get("detours", {})
    top = max((reached.get(s, 0) for s in model.path), default=0) or 1
    left, bar_area, row_h, bar_h = 190, 440, 64, 36
    chart = Chart(width=left + bar_area + 420, height=0, title=title)
    chart.texts.append(Text(20, 34, title, size=20, bold=True))
    y = 60.0
    footnotes: list[str] = []
    for i, name in enumerate(model.path):
        n = reached.get(name, 0)
        w = max(2.0, bar_area * n / top)
        label = stage_label(model, name)
        chart.texts.append(Text(20, y + 24, label, size=15, bold=True))
        chart.rects.append(
            Rect(left + (bar_area - w) / 2, y, w, bar_h, PATH_COLOUR, title=f"{label}: {n} reached")
        )
        chart.texts.append(
            Text(left + bar_area + 16, y + 16, f"{n} reached · {stages.get(name, 0)} there now")
        )
        taken = detours.get(name, {})
        if taken:
            side = ", ".join(f"{stage_label(model, d)} {k}" for d, k in taken.items())
            chart.texts.append(
                Text(left + bar_area + 16, y + 34, f"→ left for {side}", 13, fill=DETOUR_COLOUR)
            )
        if i + 1 < len(model.path):
            nxt = model.path[i + 1]
            rate = report.get("conversion", {}).get(f"{name}->{nxt}")
            mark = ""
            if entered_past.get(name):
                mark = "*" * (len(footnotes) + 1)
                footnotes.append(
                    f"{mark} {entered_past[name]} of the {n} counted at {label} were first seen further along "
                    f"and are assumed to have passed it; of those seen at {label}: "
                    f"{_pct(observed.get(f'{name}->{nxt}'))} went on"
                )
            chart.texts.append(
                Text(
                    left + bar_area / 2,
                    y + bar_h + 19,
                    f"↓ {_pct(rate)}{mark} went on to {stage_label(model, nxt)}",
                    13,
                    fill=MUTED,
                    anchor="middle",
                )
            )
        y += row_h
    now_in = [f"{stage_label(model, d)} {stages.get(d, 0)}" for d in model.detours]
    if now_in:
        chart.texts.append(Text(20, y + 8, "Now in a detour: " + ", ".join(now_in), 14, fill=DETOUR_COLOUR))
        y += 24
    early = {w: d for w, d in detours.items() if w not in model.path}
    for d in early.values():
        side = ", ".join(f"{stage_label(model, k)} {n}" for k, n in d.items())
        chart.texts.append(Text(20, y + 8, f"Left before reaching the path: {side}", 13, fill=DETOUR_COLOUR))
        y += 22
    for note in footnotes:
        chart.texts.append(Text(20, y + 8, note, 12, fill=MUTED))
        y += 20
    chart.height = int(y + 16)
    return chart


def trend_chart(runs: list[RunRecord], model: StageModel, title: str) -> Chart | None:
    """People per stage after each run that decided stages, one line per stage."""
    points = [r for r in runs if r.stages]
    if not points:
        return None
    left, top_y, plot_w, plot_h = 70, 50, 700, 260
    chart = Chart(width=left + plot_w + 220, height=top_y + plot_h + 70, title=title)
    chart.texts.append(Text(20, 28, title, size=18, bold=True))
    names = model.ordered()
    peak = max((r.stages.get(s, 0) for r in points for s in names), default=0) or 1
    step = plot_w / max(1, len(points) - 1)

    def xy(i: int, n: int) -> tuple[float, float]:
        return (left + i * step if len(points) > 1 else left + plot_w / 2, top_y + plot_h - plot_h * n / peak)

    for tick in (0, peak // 2, peak):
        chart.texts.append(Text(left - 8, xy(0, tick)[1] + 4, str(tick), 12, fill=MUTED, anchor="end"))
    chart.rects.append(Rect(left, top_y + plot_h, plot_w, 1, MUTED))
    every = max(1, len(points) // 8)  # at most about eight dates under the axis, so they never overlap
    for i, r in enumerate(points):
        if i % every == 0 or i == len(points) - 1:
            chart.texts.append(
                Text(xy(i, 0)[0], top_y + plot_h + 20, r.as_of, 11, fill=MUTED, anchor="middle")
            )
    for k, name in enumerate(names):
        colour = PALETTE[k % len(PALETTE)] if name in model.path else DETOUR_COLOUR
        label = stage_label(model, name)
        series = [xy(i, r.stages.get(name, 0)) for i, r in enumerate(points)]
        chart.lines.append(Line(series, colour, title=label))
        ly = top_y + 14 + 20 * k
        chart.rects.append(Rect(left + plot_w + 24, ly - 10, 14, 10, colour))
        last = points[-1].stages.get(name, 0)
        chart.texts.append(Text(left + plot_w + 44, ly, f"{label} ({last})", 13))
    return chart


def size_spark(sizes: list[int | None]) -> Chart:
    """A small line of a segment's size per run (gaps where the size is unknown)."""
    w, h = 160, 36
    chart = Chart(width=w, height=h, title="size per run")
    known = [s for s in sizes if s is not None]
    peak = max(known, default=0) or 1
    step = (w - 8) / max(1, len(sizes) - 1)
    pts = [(4 + i * step, h - 4 - (h - 8) * s / peak) for i, s in enumerate(sizes) if s is not None]
    if len(pts) == 1:
        pts.append((pts[0][0] + 1, pts[0][1]))
    if pts:
        chart.lines.append(Line(pts, PATH_COLOUR))
    return chart
