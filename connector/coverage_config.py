"""The `pipeline:` config: the revenue target the open pipeline must cover, and the chance a deal is won per stage.

Seed 001 keeps a funnel to see whether it still holds enough to meet the revenue target. The figures are drawn by
connector/coverage.py; the probabilities default to the stage model's (each preset ships its own), and the ones
written here override them stage by stage.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import Field, field_validator

from .model import StrictModel
from .suggest import did_you_mean

Period = Literal["month", "quarter", "year"]
PERIOD_KEYS = {
    "month": re.compile(r"^\d{4}-(0[1-9]|1[0-2])$"),
    "quarter": re.compile(r"^\d{4}-Q[1-4]$"),
    "year": re.compile(r"^\d{4}$"),
}
PERIOD_EXAMPLES = {"month": "2027-01", "quarter": "2027-Q1", "year": "2027"}


class PipelineConfig(StrictModel):
    # revenue to win per period, in the currency of the opportunity amounts
    target: float = Field(gt=0)
    period: Period = "quarter"
    # a different target for named periods (`2027-Q1: 600000`); other periods use `target`
    targets: dict[str, float] = Field(default_factory=dict)
    # stage -> chance (0..1) that an open deal of a person in that stage is won; overrides the stage model's
    probabilities: dict[str, float] = Field(default_factory=dict)
    # `run` warns when the weighted pipeline covers less than this share of the target (1.0: exactly the target)
    warn_below: float = Field(default=1.0, ge=0)

    @field_validator("probabilities")
    @classmethod
    def _chances(cls, value: dict[str, float]) -> dict[str, float]:
        for stage, chance in value.items():
            if not 0 <= chance <= 1:
                raise ValueError(f"probability of '{stage}' must be between 0 and 1, not {chance}")
        return value

    @field_validator("targets")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for period, amount in value.items():
            if amount <= 0:
                raise ValueError(f"target of '{period}' must be above 0, not {amount}")
        return value


def period_of(period: Period, day: dt.date) -> str:
    """The key of the period `day` falls in: `2026-11`, `2026-Q4` or `2026`."""
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return str(day.year)


def pipeline_problems(raw: Any, stage_names: list[str]) -> list[tuple[tuple[Any, ...], str]]:
    """Stages and period keys in the raw `pipeline:` mapping that do not exist, each with its location."""
    if not isinstance(raw, dict):
        return []
    problems: list[tuple[tuple[Any, ...], str]] = []
    probabilities = raw.get("probabilities")
    for stage in probabilities if isinstance(probabilities, dict) else []:
        if stage_names and stage not in stage_names:
            hint = did_you_mean(str(stage), stage_names) or f" (stages: {', '.join(stage_names)})"
            problems.append((("probabilities", stage), f"unknown stage '{stage}'{hint}"))
    period = raw.get("period", "quarter")
    targets = raw.get("targets")
    if period in PERIOD_KEYS and isinstance(targets, dict):
        for key in targets:
            if not PERIOD_KEYS[period].match(str(key)):
                problems.append(
                    (("targets", key), f"'{key}' is not a {period} (write it like {PERIOD_EXAMPLES[period]})")
                )
    return problems
