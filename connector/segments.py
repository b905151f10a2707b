"""Segment membership: who belongs in each marketing segment now.

A segment is a named condition over schema fields and the decided `stage`. Two suppressions apply unless the
segment says otherwise: people in a suppressed stage (sales said qualified out or lost: sales decisions beat
marketing signals) and people without consent. An opted-out person is never in a segment, whatever it says.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .conditions import Node, compile_condition
from .config import SegmentConfig
from .schema import Person


def suppression(
    person: Person, stage: str, segment: SegmentConfig, suppressed_stages: set[str]
) -> str | None:
    """Why the person is kept out of the segment, or None."""
    if person.get("opted_out") is True:
        return "opted out"
    consent = person.get("consent")
    if consent is False:
        return "no consent"
    if segment.consent == "explicit" and consent is not True:
        return "no explicit consent"
    if stage in suppressed_stages and not segment.include_suppressed:
        return f"stage {stage} is suppressed from marketing"
    return None


def in_segment(
    person: Person,
    stage: str,
    previous_stage: str | None,
    segment: SegmentConfig,
    suppressed_stages: set[str],
    as_of: dt.date,
    when: Node | None = None,
) -> bool:
    """`when`: the segment's condition compiled once by the caller (it is evaluated for every person)."""

    def get(name: str) -> Any:
        if name == "stage":
            return stage
        if name == "previous_stage":
            return previous_stage
        return person.get(name)

    if not (when or compile_condition(segment.when)).check(get, as_of, None):
        return False
    return suppression(person, stage, segment, suppressed_stages) is None
