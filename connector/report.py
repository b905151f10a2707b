"""Funnel reports from the state store: counts per stage, transitions, conversion and time in stage.

Everything comes from the stage history the runs recorded, so a report needs no network. `funnel_svg` draws
the funnel as an SVG file marketers can open in any browser; report_html.py makes the whole HTML report.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from .stage_model import StageModel
from .state import StateStore

BEFORE_PATH = "(before the path)"  # a detour entered before any path stage was seen (new -> qualified out)


def funnel_report(
    store: StateStore, model: StageModel, since: dt.date | None = None, until: dt.date | None = None
) -> dict[str, Any]:
    """The funnel from the stage history. Flows count the transitions dated `since`..`until` (inclusive;
    either open when None)."""
    people = store.people()
    counts = Counter(row["stage"] for row in people.values())
    history: dict[str, list[Any]] = defaultdict(list)
    moves: Counter[str] = Counter()
    flows: Counter[tuple[str, str]] = Counter()
    for row in store.transitions():
        history[row["person_key"]].append(row)
        moves[f"{row['from_stage'] or '(new)'}->{row['to_stage']}"] += 1
        at = dt.date.fromisoformat(row["at"])
        if (since is None or at >= since) and (until is None or at <= until):
            flows[(row["from_stage"] or "(new)", row["to_stage"])] += 1

    # reached[stage]: people who were ever at or past this path stage. Someone first seen past a stage (a
    # contact who arrives as a prospect) is counted as having passed it: `entered_past` says how many such
    # inferred passages each figure holds, and `conversion_observed` leaves them out.
    reached: Counter[str] = Counter()
    entered_past: Counter[str] = Counter()
    seen_at_or_before: Counter[str] = Counter()  # reached the stage and first seen there or earlier
    went_on_seen: Counter[str] = Counter()  # of those, reached the next stage too
    detours: dict[str, Counter[str]] = defaultdict(Counter)  # furthest path stage -> detour -> people
    days_in: dict[str, list[int]] = defaultdict(list)
    for _key, rows in history.items():
        best = -1
        entry: int | None = None
        left_for: set[tuple[str, str]] = set()
        for i, row in enumerate(rows):
            rank = model.rank(row["to_stage"])
            if rank is not None:
                best = max(best, rank)
                if entry is None:
                    entry = rank
            elif row["to_stage"] in model.detours:
                left_for.add((model.path[best] if best >= 0 else BEFORE_PATH, row["to_stage"]))
            if i + 1 < len(rows):
                start = dt.date.fromisoformat(row["at"])
                end = dt.date.fromisoformat(rows[i + 1]["at"])
                days_in[row["to_stage"]].append((end - start).days)
        for where, detour in left_for:
            detours[where][detour] += 1
        for rank in range(best + 1):
            stage = model.path[rank]
            reached[stage] += 1
            if entry is not None and entry > rank:
                entered_past[stage] += 1
            else:
                seen_at_or_before[stage] += 1
                if best > rank:
                    went_on_seen[stage] += 1
    conversion = {}
    observed = {}
    for a, b in zip(model.path, model.path[1:], strict=False):
        conversion[f"{a}->{b}"] = round(reached[b] / reached[a], 3) if reached[a] else None
        observed[f"{a}->{b}"] = (
            round(went_on_seen[a] / seen_at_or_before[a], 3) if seen_at_or_before[a] else None
        )
    return {
        "people": len(people),
        "stages": {s: counts.get(s, 0) for s in model.ordered()},
        "reached": {s: reached.get(s, 0) for s in model.path},
        "entered_past": {s: entered_past.get(s, 0) for s in model.path},
        "conversion": conversion,
        "conversion_observed": observed,
        "detours": {
            where: {d: detours[where][d] for d in model.detours if detours[where][d]}
            for where in [BEFORE_PATH, *model.path]
            if where in detours
        },
        "avg_days_in_stage": {s: round(sum(v) / len(v), 1) for s, v in days_in.items() if v},
        "transitions": dict(moves.most_common()),
        "flows": {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "moves": [{"from": a, "to": b, "count": n} for (a, b), n in flows.most_common()],
        },
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
    """The funnel of `report` as an SVG file: the picture the HTML report shows (report_charts draws it)."""
    from .report_html import render_funnel_svg  # jinja2: only the commands that draw need it (start-up CPU)

    return render_funnel_svg(report, model, title)
