"""The funnel report as one self-contained HTML file a marketer can open offline, and the funnel as SVG.

The pages come from Jinja2 templates (connector/templates/) with autoescaping on: stage labels, segment names
and config names come from the config and the data, and none of them may become markup. Pictures are inline
SVG drawn from report_charts' shapes; the page has no script and loads nothing (a Content-Security-Policy
makes a browser refuse, and log, any request it would make).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from .report_charts import Chart, funnel_chart, size_spark, stage_label, trend_chart
from .run_history import RunRecord
from .stage_model import StageModel

_ENV = Environment(
    loader=PackageLoader("connector", "templates"),
    # .j2 templates render HTML or SVG: both are escaped
    autoescape=select_autoescape(enabled_extensions=("html", "svg", "j2"), default=True),
    undefined=StrictUndefined,  # a misspelt name in a template is an error, not an empty cell
    trim_blocks=False,
    keep_trailing_newline=True,
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def render_funnel_svg(report: dict[str, Any], model: StageModel, title: str = "Funnel") -> str:
    return _ENV.get_template("funnel.svg.j2").render(chart=funnel_chart(report, model, title))


def _conversions(report: dict[str, Any], model: StageModel) -> list[dict[str, Any]]:
    out = []
    for a, b in zip(model.path, model.path[1:], strict=False):
        out.append(
            {
                "from_label": stage_label(model, a),
                "to_label": stage_label(model, b),
                "rate": _pct(report["conversion"].get(f"{a}->{b}")),
                "reached": report["reached"].get(a, 0),
                "inferred": report["entered_past"].get(a, 0),
                "observed": _pct(report["conversion_observed"].get(f"{a}->{b}")),
            }
        )
    return out


def _flow_table(
    report: dict[str, Any], model: StageModel
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    moves = report["flows"]["moves"]
    if not moves:
        return [], []
    cells = {(m["from"], m["to"]): m["count"] for m in moves}
    known = model.ordered()
    extra = sorted({s for m in moves for s in (m["from"], m["to"])} - set(known) - {"(new)"})
    columns = [s for s in known + extra if any(to == s for _, to in cells)]
    sources = [s for s in ["(new)", *known, *extra] if any(frm == s for frm, _ in cells)]
    rows = [
        {
            "label": "new" if s == "(new)" else stage_label(model, s),
            "cells": [cells.get((s, c), 0) for c in columns],
        }
        for s in sources
    ]
    return [{"label": stage_label(model, c)} for c in columns], rows


def _period(report: dict[str, Any]) -> str:
    since, until = report["flows"]["since"], report["flows"]["until"]
    if since and until:
        return f"{since} to {until}"
    if since:
        return f"since {since}"
    if until:
        return f"up to {until}"
    return "all time"


def _segments(runs: list[RunRecord]) -> list[dict[str, Any]]:
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        for seg in run.segments:
            series.setdefault((seg.target, seg.segment), []).append(
                {
                    "run": run.id,
                    "as_of": run.as_of,
                    "size": seg.size,
                    "added": seg.added,
                    "removed": seg.removed,
                    "unwritten": (seg.planned_adds - seg.added) + (seg.planned_removes - seg.removed),
                }
            )
    return [
        {
            "target": target,
            "segment": segment,
            "size": points[-1]["size"],
            "points": points,
            "spark": size_spark([p["size"] for p in points]),
        }
        for (target, segment), points in sorted(series.items())
    ]


def _money(value: float) -> str:
    return f"{value:,.0f}"


def _pipeline(runs: list[RunRecord], model: StageModel) -> dict[str, Any] | None:
    """The latest run's open pipeline per stage and the coverage of every run that measured it, with how it
    moved since the run before (from each run's summary in the state)."""
    measured = [r for r in runs if r.pipeline]
    if not measured:
        return None
    last = measured[-1].pipeline
    trend = []
    previous: float | None = None
    for run in measured:
        coverage = float(run.pipeline["coverage"])
        trend.append(
            {
                "run": run.id,
                "as_of": run.as_of,
                "period": run.pipeline["period"],
                "value": _money(run.pipeline["value"]),
                "weighted": _money(run.pipeline["weighted"]),
                "target": _money(run.pipeline["target"]),
                "coverage": _pct(coverage),
                "moved": "" if previous is None else f"{coverage - previous:+.0%}",
                "below": bool(run.pipeline.get("below")),
            }
        )
        previous = coverage
    return {
        "period": last["period"],
        "target": _money(last["target"]),
        "value": _money(last["value"]),
        "weighted": _money(last["weighted"]),
        "coverage": _pct(last["coverage"]),
        "warn_below": _pct(last["warn_below"]),
        "below": bool(last.get("below")),
        "stages": [
            {
                "label": stage_label(model, name),
                "open": s["open"],
                "value": _money(s["value"]),
                "probability": _pct(s["probability"]),
                "weighted": _money(s["weighted"]),
            }
            for name, s in last["stages"].items()
        ],
        "trend": list(reversed(trend)),
    }


def _run_rows(runs: list[RunRecord]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "as_of": r.as_of,
            "outcome": r.outcome,
            "exit_code": r.exit_code,
            "people": r.people,
            "labels_written": sum(s.get("written", 0) for s in r.labels.values()),
            "added": sum(s.added for s in r.segments),
            "removed": sum(s.removed for s in r.segments),
            "rejected": r.rejected,
        }
        for r in reversed(runs)
    ]


def render_html(
    report: dict[str, Any],
    runs: list[RunRecord],
    model: StageModel,
    *,
    config_name: str,
    as_of: dt.date | None,
) -> str:
    """The whole report page. `runs` oldest first; `as_of` is the date the state reflects (the last run's)."""
    flow_columns, flow_rows = _flow_table(report, model)
    days = report["avg_days_in_stage"]
    trend: Chart | None = trend_chart(runs, model, "People per stage after each run")
    return _ENV.get_template("report.html.j2").render(
        report=report,
        runs=runs,
        run_rows=_run_rows(runs),
        last_run=runs[-1] if runs else None,
        config_name=config_name,
        as_of=as_of.isoformat() if as_of else "(no run yet)",
        path_text=" → ".join(stage_label(model, s) for s in model.path),
        detour_text=" / ".join(stage_label(model, s) for s in model.detours) or "a detour",
        funnel=funnel_chart(report, model, "Who reached each stage"),
        conversions=_conversions(report, model),
        trend=trend,
        stages=[
            {
                "name": s,
                "label": stage_label(model, s),
                "avg_days": days.get(s),
                "now": report["stages"].get(s, 0),
            }
            for s in model.ordered()
        ],
        flows_period=_period(report),
        flow_columns=flow_columns,
        flow_rows=flow_rows,
        segments=_segments(runs),
        pipeline=_pipeline(runs, model),
    )
