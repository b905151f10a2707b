"""The daily API allocation as Salesforce reports it, and the share of it a run may use.

Salesforce puts `Sforce-Limit-Info: api-usage=N/M` on REST responses; the budget keeps the latest figure and
refuses a call that would push usage past `share * M`, so a run stops cleanly (BudgetExceededError) instead of
eating the allocation other integrations of the org need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import BudgetExceededError

_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")


def parse_limit_info(header: str | None) -> tuple[int, int] | None:
    """(used, allocation) from a `Sforce-Limit-Info` header value, or None when it carries no api-usage."""
    if not header:
        return None
    match = _USAGE.search(header)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


@dataclass
class ApiBudget:
    share: float | None = None  # None: no ceiling of our own (Salesforce still enforces its limit)
    used: int | None = None
    allocation: int | None = None

    def update(self, header: str | None) -> None:
        parsed = parse_limit_info(header)
        if parsed is not None:
            self.used, self.allocation = parsed

    def ceiling(self) -> float | None:
        if self.share is None or self.allocation is None:
            return None
        return self.share * self.allocation

    def remaining(self) -> int | None:
        ceiling = self.ceiling()
        if ceiling is None or self.used is None:
            return None
        return max(int(ceiling) - self.used, 0)

    def check(self, calls: int = 1) -> None:
        """Raise BudgetExceededError when `calls` more calls would cross the configured share."""
        ceiling = self.ceiling()
        if ceiling is None or self.used is None:
            return
        if self.used + calls > ceiling:
            raise BudgetExceededError(
                f"Salesforce API budget: {self.used}/{self.allocation} calls used today, "
                f"ceiling {self.share:.0%} = {int(ceiling)}; stopping before the next call"
            )
