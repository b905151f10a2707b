"""Pydantic base for every config model: unknown keys are errors, never silently ignored."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def check_name(value: str) -> str:
    """A name connector uses in files, state rows and metrics labels; ValueError (a config error) else."""
    if not NAME_PATTERN.match(value):
        raise ValueError(f"'{value}' must match {NAME_PATTERN.pattern}")
    return value


class StrictModel(BaseModel):
    # allow_inf_nan: YAML's .nan / .inf are never a meaningful setting (a NaN share compares false to every limit)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
