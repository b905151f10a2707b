"""What every run did, read back from the run rows the state keeps (one JSON summary per run).

`connector runs` lists it, and the HTML report draws its trends from it: people per stage after each run, label
changes, segment sizes with the adds and removes actually written, and rejected records. Only `run` leaves a
row (`plan` writes nothing), so the history is exactly what changed the CRMs and the segment files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .state import StateStore

# SQLite reads LIMIT -1 as "no limit": every run row
ALL_RUNS = -1


@dataclass(frozen=True)
class SegmentRun:
    """One segment of one target after one run. `size` is who is in it now as far as connector knows: the
    members before the run plus the adds and less the removes that were written (a run held by the guard or
    stopped early wrote none of its planned changes)."""

    target: str
    segment: str
    size: int
    added: int
    removed: int
    planned_adds: int
    planned_removes: int
    failed: int


@dataclass(frozen=True)
class RunRecord:
    id: int
    mode: str
    as_of: str
    started_at: str
    finished_at: str | None
    outcome: str
    exit_code: int | None
    people: int | None
    stages: dict[str, int]  # empty when the run decided no stage (no baseline, a crash before deciding)
    labels: dict[str, dict[str, int]]  # target -> changes found, written, failed
    segments: list[SegmentRun] = field(default_factory=list)
    rejected: int = 0
    rejected_pending: int = 0
    errors: list[str] = field(default_factory=list)
    # the open pipeline against the revenue target (coverage.py); empty for runs without `pipeline:` configured
    pipeline: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _segment_runs(summary: dict[str, Any]) -> list[SegmentRun]:
    out = []
    for target, segments in sorted((summary.get("segments") or {}).items()):
        for segment, stats in sorted(segments.items()):
            adds, removes = int(stats.get("adds", 0)), int(stats.get("removes", 0))
            # "added"/"removed" are present only when the writer was called: absent means nothing was written
            added, removed = int(stats.get("added", 0)), int(stats.get("removed", 0))
            before = int(stats.get("members", 0)) - adds + removes
            out.append(
                SegmentRun(
                    target=target,
                    segment=segment,
                    size=before + added - removed,
                    added=added,
                    removed=removed,
                    planned_adds=adds,
                    planned_removes=removes,
                    failed=int(stats.get("failed", 0)),
                )
            )
    return out


def run_history(store: StateStore, limit: int = ALL_RUNS) -> list[RunRecord]:
    """The runs, oldest first (the newest `limit` of them, or all)."""
    records = []
    for row in reversed(store.runs(limit)):
        try:
            summary = json.loads(row["summary"]) if row["summary"] else {}
        except ValueError:
            summary = {}  # a row whose summary never got written (killed mid-run): outcome and dates still tell
        people = summary.get("people") or {}
        rejected = summary.get("rejected") or {}
        records.append(
            RunRecord(
                id=int(row["id"]),
                mode=str(row["mode"]),
                as_of=str(row["as_of"]),
                started_at=str(row["started_at"]),
                finished_at=row["finished_at"],
                # a run row without an outcome never finished: the process died before it could say
                outcome=str(row["outcome"] or "unfinished"),
                exit_code=row["exit_code"],
                people=people.get("total") if isinstance(people, dict) else None,
                stages={k: int(v) for k, v in (summary.get("stages") or {}).items()},
                labels={
                    t: {k: int(v) for k, v in stats.items() if isinstance(v, int)}
                    for t, stats in (summary.get("labels") or {}).items()
                },
                segments=_segment_runs(summary),
                rejected=int(rejected.get("count", 0)),
                rejected_pending=int(rejected.get("pending", 0)),
                errors=[str(e) for e in summary.get("errors") or []],
                pipeline=summary.get("pipeline") or {},
            )
        )
    return records
