"""Every source plugin passes the source contract (source_checks.py) over its own system."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import source_checks as checks
from .harnesses import SourceHarness

pytestmark = pytest.mark.e2e


def test_first_read_hands_over_every_record_mapped(source_harness: SourceHarness) -> None:
    checks.check_first_read(source_harness, source_harness.build)


def test_incremental_read_rereads_the_cursor_instant_and_nothing_else(source_harness: SourceHarness) -> None:
    checks.check_incremental_overlap(source_harness, source_harness.build)


def test_deletions_are_reported(source_harness: SourceHarness) -> None:
    checks.check_deletions(source_harness, source_harness.build)


def test_an_unmappable_record_is_kept_with_its_reason_and_the_rest_goes_on(
    source_harness: SourceHarness, tmp_path: Path
) -> None:
    checks.check_rejects_kept(source_harness, source_harness.build, tmp_path)


def test_an_unreachable_system_is_unreachable_after_the_policy(source_harness: SourceHarness) -> None:
    if source_harness.never_unreachable is not None:
        pytest.skip(source_harness.never_unreachable)
    checks.check_unreachable(source_harness, source_harness.build)
