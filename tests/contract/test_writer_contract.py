"""Every writer plugin passes the writer contract (writer_checks.py) over its own system."""

from __future__ import annotations

import pytest

from . import writer_checks as checks
from .harnesses import WriterHarness

pytestmark = pytest.mark.e2e


def test_labels_land_and_a_replay_changes_nothing(writer_harness: WriterHarness) -> None:
    if writer_harness.label_object is None:
        pytest.skip(f"{writer_harness.id} takes no labels (its label_objects is empty)")
    checks.check_labels_land(writer_harness, writer_harness.build)


def test_segment_members_are_added_once_and_removed(writer_harness: WriterHarness) -> None:
    checks.check_segment_adds_and_removes(writer_harness, writer_harness.build)


def test_a_plan_handed_first_is_answered_part_by_part(writer_harness: WriterHarness) -> None:
    checks.check_plan_handed_first(writer_harness, writer_harness.build)


def test_one_failing_record_fails_alone(writer_harness: WriterHarness) -> None:
    if writer_harness.never_fails_alone is not None:
        pytest.skip(writer_harness.never_fails_alone)
    checks.check_one_failure_fails_alone(writer_harness, writer_harness.build)


def test_an_outage_mid_labels_reports_what_was_written(writer_harness: WriterHarness) -> None:
    if writer_harness.label_object is None:
        pytest.skip(f"{writer_harness.id} takes no labels (its label_objects is empty)")
    checks.check_outage_mid_labels(writer_harness, writer_harness.build)


def test_an_outage_mid_segment_reports_what_was_written(writer_harness: WriterHarness) -> None:
    checks.check_outage_mid_segment(writer_harness, writer_harness.build)
