"""Funnel reports from the state store: counts per stage, transitions, conversion and time in stage.

Everything comes from the stage history the runs recorded, so a report needs no network. `funnel_svg` draws
the funnel as an SVG file marketers can open in any browser.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter, defaultdict
from typing import Any

from .stage_model import StageModel
from .state import StateStore


def funnel_report(store: StateStore, model: StageModel) -> dict[str, Any]:
    people = store.people()
    counts = Counter(row["stage"] for row in people.values())
    history: dict[str, list[Any]] = defaultdict(list)
    moves: Counter[str] = Counter()
    for row in store.transitions():
        history[row["person_key"]].append(row)
        moves[f"{row['from_stage'] or '(new)'}->{row['to_stage']}"] += 1

    # reached[stage]: people who were ever at or past this path stage
    reached: Counter[str] = Counter()
    days_in: dict[str, list[int]] = defaultdict(list)
    for _key, rows in history.items():
        best = -1
        for i, row in enumerate(rows):
            rank = model.rank(row["to_stage"])
            if rank is not None:
                best = max(best, rank)
            if i + 1 < len(rows):
                start = dt.date.fromisoformat(row["at"])
                end = dt.date.fromisoformat(rows[i + 1]["at"])
                days_in[row["to_stage"]].append((end - start).days)
        for rank in range(best + 1):
            reached[model.path[rank]] += 1
    conversion = {}
    for a, b in zip(model.path, model.path[1:], strict=False):
        conversion[f"{a}->{b}"] = round(reached[b] / reached[a], 3) if reached[a] else None
    return {
        "people": len(people),
        "stages": {s: counts.get(s, 0) for s in model.ordered()},
        "reached": {s: reached.get(s, 0) for s in model.path},
        "conversion": conversion,
        "avg_days_in_stage": {s: round(sum(v) / len(v), 1) for s, v in days_in.items() if v},
        "transitions": dict(moves.most_common()),
        "runs": [
            {
                "id": r["id"],
                "mode": r["mode"],
                "as_of": r["as_of"],
                "outcome": r["outcome"],
                "exit": r["exit_code"],
            }
            for r in store.runs(5)
        ],
    }


def funnel_text(report: dict[str, Any], model: StageModel, width: int = 40) -> str:
    stages = report["stages"]
    top = max(stages.values(), default=0) or 1
    lines = []
    for name in model.ordered():
        n = stages.get(name, 0)
        bar = "#" * max(1 if n else 0, round(width * n / top))
        kind = "" if name in model.path else " (detour)"
        lines.append(f"  {model.stage(name).label_for(''):<16} {n:>7}  {bar}{kind}")
    return "\n".join(lines)


def funnel_svg(report: dict[str, Any], model: StageModel, title: str = "Funnel") -> str:
    stages = report["stages"]
    top = max((stages.get(s, 0) for s in model.path), default=0) or 1
    row_h, width, left = 44, 640, 170
    rows = list(model.path) + list(model.detours)
    height = 70 + row_h * len(rows) + 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left + 190}" height="{height}" '
        'font-family="Helvetica, Arial, sans-serif">',
        f'<text x="20" y="34" font-size="20" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, name in enumerate(rows):
        n = stages.get(name, 0)
        y = 60 + i * row_h
        detour = name not in model.path
        w = max(2.0, width * n / top) if n else 2.0
        x = left + (width - w) / 2 if not detour else left
        colour = "#2f6db5" if not detour else "#b5652f"
        label = html.escape(model.stage(name).label_for(""))
        parts.append(f'<text x="20" y="{y + 26}" font-size="14">{label}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 8}" fill="{colour}" rx="3"/>'
        )
        reached = report.get("reached", {}).get(name)
        note = f"{n} now" + (f" · {reached} reached" if reached is not None else "")
        parts.append(f'<text x="{left + width + 10}" y="{y + 26}" font-size="14">{html.escape(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
