"""The writer contract, as check functions: each raises AssertionError when the writer breaks it.

Like source_checks.py, a check takes a harness and `make` (a retry policy -> the writer), so test_mutants.py
runs the very same checks against broken doubles.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping

from connector.context import RunContext
from connector.errors import UnreachableError
from connector.plan import LabelChange, Member, SegmentChange
from connector.retry import RetryPolicy
from connector.writers.base import Writer, WriteResult

from .harnesses import SEGMENT, WriterHarness

MakeWriter = Callable[[RetryPolicy], Writer]


def policy(attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, sleep=lambda s: None)


def ctx() -> RunContext:
    now = dt.datetime.now(dt.UTC)
    return RunContext(as_of=now.date(), started_at=now)


def labels_for(people: list[Member], label: str) -> list[LabelChange]:
    return [LabelChange(p.person_key, p.refs[0], None, label) for p in people]


def counted(h: WriterHarness, call: Callable[[], WriteResult]) -> tuple[WriteResult, int | None]:
    """The call's result and the API calls the system counted during it (None: the system counts none)."""
    before = h.write_calls()
    result = call()
    after = h.write_calls()
    return result, None if before is None or after is None else after - before


def check_calls_reported(result: WriteResult, made: int | None, what: str) -> None:
    # the run's API budget and `plan`'s estimates rest on each call reporting the calls it made
    if made is not None:
        assert result.calls == made, f"{what}: reported {result.calls} calls, the system counted {made}"


def check_labels_land(h: WriterHarness, make: MakeWriter) -> None:
    """Labels written land on the records; replaying the same batch changes nothing in the system."""
    people = h.people(3)
    writer = make(policy())
    changes = labels_for(people, "Prospect")
    result, made = counted(h, lambda: writer.write_labels(changes, ctx()))
    assert result.failed == {}, result.failed
    assert result.unreachable is None
    assert h.labelled([c.ref for c in changes]) == {str(c.ref): "Prospect" for c in changes}
    check_calls_reported(result, made, "labels")

    again, made_again = counted(h, lambda: writer.write_labels(changes, ctx()))
    assert again.failed == {}, again.failed
    assert h.labelled([c.ref for c in changes]) == {str(c.ref): "Prospect" for c in changes}
    check_calls_reported(again, made_again, "the replayed labels")
    if made is not None and made_again is not None:
        assert made_again <= made, f"the replay made more calls ({made_again}) than the first write ({made})"


def check_segment_adds_and_removes(h: WriterHarness, make: MakeWriter) -> None:
    """Members added are held once each; a replay of the adds duplicates nobody; removed members leave and
    the others stay."""
    a, b, c = h.people(3)
    writer = make(policy())
    added, made = counted(
        h, lambda: writer.sync_segment(SegmentChange(SEGMENT, [a, b, c], [a, b, c], []), ctx())
    )
    assert added.failed == {}, added.failed
    assert h.members(SEGMENT) == Counter({a.person_key: 1, b.person_key: 1, c.person_key: 1})
    check_calls_reported(added, made, "segment adds")

    replay, made = counted(
        h, lambda: writer.sync_segment(SegmentChange(SEGMENT, [a, b, c], [a, b, c], []), ctx())
    )
    assert replay.failed == {}, replay.failed
    assert h.members(SEGMENT) == Counter({a.person_key: 1, b.person_key: 1, c.person_key: 1}), "replay"
    check_calls_reported(replay, made, "replayed segment adds")

    # the run loop hands back what the adds said they created (a writer may delete only its own rows)
    created = {k: v for k, v in added.created.items() if k == b.person_key}
    removed, made = counted(
        h, lambda: writer.sync_segment(SegmentChange(SEGMENT, [a, c], [], [b], created), ctx())
    )
    assert removed.failed == {}, removed.failed
    assert h.members(SEGMENT) == Counter({a.person_key: 1, c.person_key: 1}), "after removing one member"
    check_calls_reported(removed, made, "segment removes")


def check_one_failure_fails_alone(h: WriterHarness, make: MakeWriter) -> None:
    """A record gone from the system fails alone, reported in `failed`; everything else is written."""
    people = h.people(3)
    broken = people[1]
    h.break_record(broken)
    writer = make(policy())
    if h.label_object is not None:
        changes = labels_for(people, "Customer")
        result = writer.write_labels(changes, ctx())
        assert set(result.failed) == {str(broken.refs[0])}, f"labels failed: {sorted(result.failed)}"
        fine = [c.ref for c in changes if c.ref != broken.refs[0]]
        assert h.labelled(fine) == {str(ref): "Customer" for ref in fine}
    others = [p for p in people if p is not broken]
    result = writer.sync_segment(SegmentChange(SEGMENT, people, people, []), ctx())
    assert set(result.failed) == {broken.person_key}, f"segment adds failed: {sorted(result.failed)}"
    held = h.members(SEGMENT)
    assert all(held[p.person_key] == 1 for p in others), f"the others were not all added: {held}"


def check_plan_handed_first(h: WriterHarness, make: MakeWriter) -> None:
    """Handed its whole plan first (`begin_writes`, as the run loop does), a writer answers each label change
    and segment member as it would without: everything lands once, and the calls its results report add up
    to those the system counted over the whole batch."""
    people = h.people(3)
    writer = make(policy())
    run = ctx()
    labels = labels_for(people, "Prospect") if h.label_object is not None else []
    change = SegmentChange(SEGMENT, people, people, [])
    before = h.write_calls()
    writer.begin_writes(labels, [change], run)
    results = [writer.write_labels(labels, run)] if labels else []
    results.append(writer.sync_segment(change, run))
    after = h.write_calls()
    assert all(r.failed == {} for r in results), [r.failed for r in results]
    assert all(r.unreachable is None for r in results)
    if labels:
        landed = h.labelled([c.ref for c in labels])
        assert landed == {str(c.ref): "Prospect" for c in labels}, f"labels not landed: {landed}"
    held = h.members(SEGMENT)
    assert held == Counter({p.person_key: 1 for p in people}), f"members not landed once each: {held}"
    if before is not None and after is not None:
        reported = sum(r.calls for r in results)
        assert reported == after - before, (
            f"the batch reported {reported} calls, the system counted {after - before}"
        )


def check_outage_mid_labels(h: WriterHarness, make: MakeWriter) -> None:
    """The system stops answering part way through labels: what was written is reported as written, the
    rest as failed (`WriteResult.unreachable`); or `UnreachableError` when nothing at all was written."""
    people = h.people(h.outage_batch)
    writer = make(policy())
    # the writer checks its label field on its first write: that happens while the system answers
    writer.write_labels(labels_for(people[:1], "Lead"), ctx())
    h.go_down_after_writes(1)
    items = {str(p.refs[0]): p.refs[0] for p in people}
    _check_outage(
        items,
        lambda: {k for k, ref in items.items() if h.label_of(ref) == "Customer"},
        lambda: writer.write_labels(labels_for(people, "Customer"), ctx()),
    )


def check_outage_mid_segment(h: WriterHarness, make: MakeWriter) -> None:
    """The same for segment adds (a writer without write calls of its own finds its folder gone)."""
    people = h.people(h.outage_batch)
    writer = make(policy())
    h.go_down_after_writes(0 if h.never_fails_alone else 1)
    items = {p.person_key: p for p in people}
    _check_outage(
        items,
        lambda: {k for k in items if h.members(SEGMENT)[k]},
        lambda: writer.sync_segment(SegmentChange(SEGMENT, people, people, []), ctx()),
    )


def _check_outage(
    items: Mapping[str, object], landed: Callable[[], set[str]], call: Callable[[], WriteResult]
) -> None:
    try:
        result = call()
    except UnreachableError as exc:
        written = landed()
        assert not written, f"UnreachableError after {len(written)} items were written: they are lost ({exc})"
        return
    written = landed()
    assert set(result.failed) == set(items) - written, (
        f"{len(written)} written, {len(result.failed)} reported failed: "
        f"written but reported failed {sorted(written & set(result.failed))[:3]}, "
        f"not written and not reported {sorted(set(items) - written - set(result.failed))[:3]}"
    )
    assert result.failed, "the outage failed nothing"
    if result.unreachable is not None:
        assert {e.code for e in result.failed.values()} == {"UNREACHABLE"}, result.failed
