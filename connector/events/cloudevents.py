"""Events as CloudEvents 1.0 (structured JSON mode): one per stage transition and per segment add or remove.

An event's id is derived from what it reports (the transition row, the membership change), never drawn at
random: a re-delivery, or a replay of the JSON Lines file, carries the same id, so receivers deduplicate on it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..schema import RecordRef

SPEC_VERSION = "1.0"
STAGE_CHANGED = "connector.stage.changed"
SEGMENT_ADDED = "connector.segment.added"
SEGMENT_REMOVED = "connector.segment.removed"
# the namespace of connector's event ids (uuid5): fixed forever, or ids of the same transition would change
ID_NAMESPACE = uuid.UUID("6f0c1a52-8f57-4c1e-9a43-6c1d5e0b7a21")


def event_id(*parts: object) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join("" if p is None else str(p) for p in parts)))


def _envelope(
    source: str, kind: str, ident: str, subject: str, time: dt.datetime, data: dict[str, Any]
) -> dict[str, Any]:
    if time.tzinfo is None:
        raise ValueError("event time must be timezone-aware")
    return {
        "specversion": SPEC_VERSION,
        "id": ident,
        "source": source,
        "type": kind,
        "subject": subject,
        "time": time.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": data,
    }


def stage_changed(
    *,
    source: str,
    transition_id: int,
    person_key: str,
    from_stage: str | None,
    to_stage: str,
    rule: str | None,
    matched: Sequence[str],
    refs: Sequence[RecordRef],
    labels: Mapping[str, str],
    as_of: dt.date,
    time: dt.datetime,
) -> dict[str, Any]:
    # the transition row id alone would repeat after a state rebuild; with what it says it stays unique
    ident = event_id("stage", transition_id, person_key, from_stage, to_stage, as_of.isoformat())
    data = {
        "from": from_stage,
        "to": to_stage,
        "rule": rule,
        "matched": list(matched),
        "records": sorted(str(r) for r in refs),
        "labels": dict(sorted(labels.items())),
        "as_of": as_of.isoformat(),
    }
    return _envelope(source, STAGE_CHANGED, ident, person_key, time, data)


def segment_changed(
    *,
    source: str,
    added: bool,
    target: str,
    segment: str,
    person_key: str,
    stage: str,
    label: str,
    refs: Sequence[RecordRef],
    as_of: dt.date,
    run_id: int,
    time: dt.datetime,
) -> dict[str, Any]:
    kind = SEGMENT_ADDED if added else SEGMENT_REMOVED
    # one run changes a membership at most once per target and segment
    ident = event_id(kind, target, segment, person_key, as_of.isoformat(), run_id)
    data = {
        "segment": segment,
        "target": target,
        "stage": stage,
        "labels": {target: label},
        "records": sorted(str(r) for r in refs),
        "as_of": as_of.isoformat(),
    }
    return _envelope(source, kind, ident, person_key, time, data)


def encode(event: Mapping[str, Any]) -> str:
    """The one serialisation of an event, kept in the outbox: every delivery sends these exact bytes."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
