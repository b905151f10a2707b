"""What a run hands to every source and writer: the as-of date, the run's start, the API call counter."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RunContext:
    as_of: dt.date
    started_at: dt.datetime  # timezone-aware UTC; cursors never pass it
    dry_run: bool = False
    api_calls: Counter[str] = field(default_factory=Counter)  # per system name

    def __post_init__(self) -> None:
        if self.started_at.tzinfo is None:
            raise ValueError("RunContext.started_at must be timezone-aware")

    def count_call(self, system: str, n: int = 1) -> None:
        self.api_calls[system] += n
