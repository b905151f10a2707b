"""When a task's moment comes: each trigger kind turns a person (and their latest stage transition) into the
occurrence it stands for, or None. Pure: the run's as-of date is passed in, never read from a clock.

An occurrence names the moment itself (the date, or the transition), so it stays the same on every run in
which the trigger holds: with the task and person it makes the idempotency key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..conditions import Node, evaluate
from .config import TaskConfig

# (transition id, from stage, to stage, date) of the person's latest transition
Transition = tuple[int, str | None, str, dt.date]


@dataclass(frozen=True)
class Occurrence:
    name: str  # `nurture_until=2026-11-23`, `transition=42`: part of the idempotency key
    moment: dt.date  # the date the task is about (templates: `occurrence`)


def occurrence(
    task: TaskConfig,
    get: Callable[[str], Any],
    stage: str,
    latest: Transition | None,
    as_of: dt.date,
    when: Node | None = None,
) -> Occurrence | None:
    """The occurrence of `task`'s trigger for a person on `as_of`, or None when the trigger does not hold.

    `get` reads the person's fields (and `stage`, `previous_stage`); `when`: the task's condition compiled
    once by the caller (it is evaluated for every person)."""
    trigger = task.trigger
    before, after = trigger.window()
    found: Occurrence | None = None
    if trigger.enters is not None:
        if latest is not None:
            tid, from_stage, to_stage, at = latest
            # first seen in a stage is no transition seen by anyone: after a state rebuild every person is
            # first seen, and sales must not get a task for each of them again
            if (
                to_stage == trigger.enters == stage
                and from_stage is not None
                and (trigger.from_ is None or from_stage in trigger.from_)
                and 0 <= (as_of - at).days <= after
            ):
                found = Occurrence(f"transition={tid}", at)
    else:
        if trigger.date is not None:
            fname = trigger.date.field
        elif trigger.renewal is not None:
            fname = "contract_end"
        else:
            fname = "nurture_until"
        value = get(fname)
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                value = None
        # renewal: the own contract of someone who bought (the preset's contract-renewal rule)
        renewal_ok = trigger.renewal is None or get("opportunity_won") is True
        if isinstance(value, dt.date) and renewal_ok and -before <= (as_of - value).days <= after:
            found = Occurrence(f"{fname}={value.isoformat()}", value)
    if found is None:
        return None
    if task.when is not None and not evaluate(when if when is not None else task.when, get, as_of):
        return None
    return found
