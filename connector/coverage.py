"""Is the funnel full enough? The open pipeline per stage, weighted by the chance each stage's deals are won,
against the revenue target of the current period (seed 001's reason to keep a funnel).

Computed after the stages are decided, into the run summary's `pipeline` section, so every run row in the state
carries its own figures: the report draws how coverage moved per run from them, and the metrics file carries
the latest. Open value is the person field `opportunity_open_amount` (open deals only: a won deal is revenue
already, not pipeline) of everyone with an open opportunity, grouped by the stage that person is in now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from .coverage_config import PipelineConfig, period_of
from .stage_model import StageModel

log = structlog.get_logger(__name__)


def probabilities(config: PipelineConfig, model: StageModel) -> dict[str, float]:
    """The chance per stage: the stage model's defaults (the preset's) with the config's on top."""
    return {**model.probabilities, **config.probabilities}


def pipeline_figures(
    config: PipelineConfig,
    model: StageModel,
    people: Iterable[tuple[str, Mapping[str, Any]]],
    as_of: dt.date,
) -> dict[str, Any]:
    """`people`: (stage decided, person values) pairs. Amounts are rounded to cents: they are money."""
    chances = probabilities(config, model)
    value: dict[str, float] = {}
    deals: dict[str, int] = {}
    for stage, values in people:
        if not values.get("opportunity_open"):
            continue
        amount = values.get("opportunity_open_amount")
        if not isinstance(amount, int | float) or isinstance(amount, bool):
            amount = 0.0
        value[stage] = value.get(stage, 0.0) + float(amount)
        deals[stage] = deals.get(stage, 0) + 1
    stages = {}
    for stage in model.ordered():
        if stage not in value and not chances.get(stage):
            continue  # a stage that holds no deal and counts for nothing would only clutter the report
        chance = chances.get(stage, 0.0)
        stages[stage] = {
            "open": deals.get(stage, 0),
            "value": round(value.get(stage, 0.0), 2),
            "probability": chance,
            "weighted": round(value.get(stage, 0.0) * chance, 2),
        }
    period = period_of(config.period, as_of)
    target = config.targets.get(period, config.target)
    weighted = round(sum(s["weighted"] for s in stages.values()), 2)
    coverage = round(weighted / target, 4)
    return {
        "period": period,
        "target": target,
        "stages": stages,
        "value": round(sum(s["value"] for s in stages.values()), 2),
        "weighted": weighted,
        "coverage": coverage,
        "warn_below": config.warn_below,
        "below": coverage < config.warn_below,
    }


def warn_if_short(figures: Mapping[str, Any]) -> None:
    """Tell the account managers to step up: one warning line that names the gap (no person, no secret)."""
    if not figures.get("below"):
        return
    log.warning(
        "pipeline.coverage_low",
        coverage=figures["coverage"],
        warn_below=figures["warn_below"],
        period=figures["period"],
        target=figures["target"],
        weighted=figures["weighted"],
        short_by=round(figures["target"] * figures["warn_below"] - figures["weighted"], 2),
        hint="the open pipeline will not meet the revenue target: account managers need more deals",
    )
