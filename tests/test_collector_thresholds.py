"""The `connector` process raises the cyclic garbage collector's thresholds before it runs a command: a run
holds hundreds of thousands of live objects, and at Python's default (700 allocations) the collector walked
them over and over (a fifth of a first run's CPU). Cycles are still collected."""

from __future__ import annotations

from process_probe import at_exit

from connector.entry import COLLECTOR_THRESHOLDS


def test_a_command_runs_with_the_raised_thresholds() -> None:
    (thresholds, enabled), _ = at_exit("[gc.get_threshold(), gc.isenabled()]", "--help", imports="gc")
    assert tuple(thresholds) == COLLECTOR_THRESHOLDS
    assert thresholds[0] > 700  # above Python's default
    assert enabled  # raised, not switched off: reference cycles are still freed
