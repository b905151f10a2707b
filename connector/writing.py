"""The write step of a run: each target gets its label and segment changes, and the state records exactly
what went through (labels written, memberships, the records a membership created, events) and keeps what was
refused, with its reason, for the next run."""

from __future__ import annotations

from collections import Counter
from typing import Any

import structlog

from .context import RunContext
from .diffing import Plan
from .errors import RecordError, UnreachableError
from .events.feed import EventFeed
from .full_plan import member_keys
from .outcome import Summary
from .plan import SegmentChange
from .progress import progress
from .reading import reject_reason
from .state import StateStore
from .writers.base import Writer, WriteResult

log = structlog.get_logger(__name__)


def write_target(
    store: StateStore,
    writer: Writer,
    plan: Plan,
    ctx: RunContext,
    summary: Summary,
    run_id: int,
    rejected_now: Counter[str],
    predicted: dict[str, RecordError],
    feed: EventFeed | None,
) -> None:
    """Hand `writer` its part of `plan` (labels, then segments) and record in the state what went through and
    what was refused; a writer that lost its system part way stops here with UnreachableError."""
    changes = plan.labels.get(writer.name, [])
    segments = plan.segments.get(writer.name, [])
    # what preflight knows the target refuses is not sent: kept rejected with the reason instead
    to_send = [c for c in changes if str(c.ref) not in predicted]
    # the whole plan first: a writer may carry a record's label and segment changes in one call
    store.check_writable(len(changes) + sum(len(c.adds) + len(c.removes) for c in segments))
    writer.begin_writes(to_send, segments, ctx)
    if changes:
        stats = summary.labels[writer.name]
        with progress(f"{writer.name}: labels", total=len(to_send), unit="record") as bar:
            result = writer.write_labels(to_send, ctx) if to_send else WriteResult()
            bar.update(len(to_send))
        result.failed.update(predicted)
        done = [c for c in changes if str(c.ref) not in result.failed]
        with store.transaction():
            store.set_labels(writer.name, [(c.ref, c.person_key, c.new) for c in done], run_id)
            store.clear_rejected("write", writer.name, [str(c.ref) for c in done])
            for item, exc in result.failed.items():
                store.reject(
                    "write", writer.name, item, reject_reason(exc), run_id, obj="label", code=exc.code
                )
                rejected_now[f"{writer.name}: {exc.code or 'rejected'}"] += 1
        stats["written"] = len(done)
        stats["failed"] = len(result.failed)
        summary.notes.extend(result.notes)
        log.info(
            "writer.labels.done",
            target=writer.name,
            written=len(done),
            failed=len(result.failed),
            calls=result.calls,
        )
        _stop_if_unreachable(result)
    members = sum(len(c.adds) + len(c.removes) for c in segments)
    with progress(f"{writer.name}: segments", total=members, unit="member") as bar:
        _sync_segments(store, writer, segments, ctx, summary, run_id, rejected_now, bar, feed)


def _sync_segments(
    store: StateStore,
    writer: Writer,
    segments: list[SegmentChange],
    ctx: RunContext,
    summary: Summary,
    run_id: int,
    rejected_now: Counter[str],
    bar: Any,
    feed: EventFeed | None,
) -> None:
    for change in segments:
        # writers that publish the whole segment (files) also want unchanged segments: names and stages
        # of members may have changed, and an empty segment still gets its (empty) file
        if not change.adds and not change.removes and not writer.publishes_snapshots:
            continue
        store.check_writable(len(change.adds) + len(change.removes))
        result = writer.sync_segment(change, ctx)
        added = [k for k in member_keys(change.adds) if k not in result.failed]
        removed = [m.person_key for m in change.removes if m.person_key not in result.failed]
        with store.transaction():
            store.add_members(writer.name, change.segment, added, ctx.as_of, run_id)
            store.remove_members(writer.name, change.segment, removed)
            store.set_membership_records(writer.name, change.segment, result.created)
            if feed is not None:
                feed.segment_changed(
                    store,
                    writer.name,
                    change.segment,
                    [m for m in change.adds if m.person_key not in result.failed],
                    [m for m in change.removes if m.person_key not in result.failed],
                    ctx.as_of,
                    run_id,
                )
            store.clear_rejected("write", writer.name, [f"{change.segment}:{k}" for k in added + removed])
            for item, exc in result.failed.items():
                store.reject(
                    "write",
                    writer.name,
                    f"{change.segment}:{item}",
                    reject_reason(exc),
                    run_id,
                    obj="segment",
                    code=exc.code,
                )
                rejected_now[f"{writer.name}: {exc.code or 'rejected'}"] += 1
        seg_stats = summary.segments[writer.name][change.segment]
        seg_stats["added"] = len(added)
        seg_stats["removed"] = len(removed)
        seg_stats["failed"] = len(result.failed)
        summary.notes.extend(result.notes)
        log.info(
            "writer.segment.done",
            target=writer.name,
            segment=change.segment,
            added=len(added),
            removed=len(removed),
            failed=len(result.failed),
            calls=result.calls,
        )
        bar.update(len(change.adds) + len(change.removes))
        _stop_if_unreachable(result)


def _stop_if_unreachable(result: WriteResult) -> None:
    """A writer that lost its system part way returns what it did (recorded above) and says so: from here on
    it is the same as a writer raising `UnreachableError` (this target stops, the others go on, exit 4)."""
    if result.unreachable:
        raise UnreachableError(result.unreachable)
