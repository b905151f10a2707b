"""The source contract, as check functions: each raises AssertionError when the source breaks it.

A check takes a harness and `make`, which builds the source from a retry policy (normally `harness.build`; a
mutant wraps it), so test_mutants.py can run the very same checks against broken doubles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.context import RunContext
from connector.errors import ConfigError, UnreachableError
from connector.reading import new_stats, raw_id, read_source
from connector.retry import RetryPolicy
from connector.sources.base import Source
from connector.state import StateStore

from .harnesses import SourceHarness

MakeSource = Callable[[RetryPolicy], Source]
ATTEMPTS = 3


def policy(attempts: int = ATTEMPTS) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, sleep=lambda s: None)


@dataclass
class Reading:
    """What one `read` handed over, as the run loop would see it."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> raw record (the last one read)
    handed: list[str] = field(default_factory=list)  # ids in order, repeats included
    deleted: set[str] = field(default_factory=set)
    live_ids: set[str] | None = None
    cursors: dict[str, str] = field(default_factory=dict)

    @property
    def ids(self) -> set[str]:
        return set(self.handed)


def read(src: Source, obj: str, cursors: Mapping[str, str], ctx: RunContext) -> Reading:
    out = Reading(cursors=dict(cursors))
    for batch in src.read(dict(cursors), ctx):
        if batch.object == obj:
            for raw in batch.records:
                rid = raw_id(raw)
                out.records[rid] = raw
                out.handed.append(rid)
            out.deleted.update(batch.deleted)
            if batch.live_ids is not None:
                out.live_ids = set(batch.live_ids)
        if batch.cursor is not None:
            out.cursors[batch.object] = batch.cursor
    return out


def last_name(src: Source, obj: str, raw: dict[str, Any]) -> Any:
    return src.map(obj, raw).values.get("last_name")


def check_first_read(h: SourceHarness, make: MakeSource) -> None:
    """The first read (no cursor) hands over every record, each mapped with a ref naming this source."""
    ids = h.seed(["Ames", "Baker", "Cole"])
    src = make(policy())
    first = read(src, h.object, {}, h.run_context())
    assert first.ids == set(ids), f"first read: {sorted(first.ids)} != {sorted(ids)}"
    assert len(first.handed) == len(ids), f"first read handed a record twice: {first.handed}"
    assert first.cursors.get(h.object), "the first read left no cursor for the next run"
    for rid, name in zip(ids, ["Ames", "Baker", "Cole"], strict=True):
        fact = src.map(h.object, first.records[rid])
        assert (fact.ref.source, fact.ref.object, fact.ref.id) == (h.source_name, h.object, rid), fact.ref
        assert fact.values.get("last_name") == name, fact.values


def check_incremental_overlap(h: SourceHarness, make: MakeSource) -> None:
    """A record changed at the cursor instant after a read is read again (not lost); records that did not
    change are not read again beyond the overlap; a read with nothing new reads nothing beyond it."""
    ids = h.seed(["Ames", "Baker", "Cole", "Dunn"])
    src = make(policy())
    first = read(src, h.object, {}, h.run_context())
    assert first.ids == set(ids), f"first read: {sorted(first.ids)} != {sorted(ids)}"

    late = ids[0]  # read by the first run, then changed with the newest instant that run saw
    h.change(late, "Ames-Late")
    second = read(src, h.object, first.cursors, h.run_context())
    assert late in second.ids, f"the record changed at the cursor instant was lost: {sorted(second.ids)}"
    assert last_name(src, h.object, second.records[late]) == "Ames-Late"
    extra = second.ids - {late} - h.may_reread(changed=True)
    assert not extra, f"records that did not change were read again: {sorted(extra)}"

    third = read(src, h.object, second.cursors, h.run_context())
    extra = third.ids - h.may_reread(changed=False)
    assert not extra, f"nothing changed, yet these were read again: {sorted(extra)}"


def check_deletions(h: SourceHarness, make: MakeSource) -> None:
    """A record deleted in the system is reported: in `deleted`, or missing from a complete `live_ids`."""
    ids = h.seed(["Ames", "Baker", "Cole"])
    src = make(policy())
    first = read(src, h.object, {}, h.run_context())
    gone = ids[1]
    h.delete(gone)
    second = read(src, h.object, first.cursors, h.run_context())
    by_live_ids = second.live_ids is not None and gone not in second.live_ids
    assert gone in second.deleted or by_live_ids, (
        f"deletion of {gone} not reported (deleted={sorted(second.deleted)}, live_ids={second.live_ids})"
    )
    assert gone not in second.ids, "a deleted record was handed over as live"
    if second.live_ids is not None:
        assert second.live_ids >= set(ids) - {gone}, "live_ids left out records that still exist"


def check_rejects_kept(h: SourceHarness, make: MakeSource, state_dir: Path) -> None:
    """A record that cannot be mapped is rejected with its reason and kept in state; the rest of the batch
    is stored and the cursor moves (through `read_source`, as a run reads)."""
    ids = h.seed(["Ames", "Baker"])
    bad = h.add_unmappable("Zed")
    src = make(policy())
    store = StateStore(state_dir / "state.sqlite")
    try:
        ctx = h.run_context()
        run_id = store.begin_run("run", ctx.as_of, ctx.started_at)
        stats, rejected_now = new_stats(), Counter[str]()
        read_source(store, src, ctx, stats, run_id, rejected_now)
        kept = {row["item"]: row for row in store.rejected("read", h.source_name)}
        item = f"{h.object}:{bad}"
        assert item in kept, f"the unmappable record was not kept in state: {sorted(kept)}"
        assert kept[item]["reason"], "a reject without its reason"
        assert stats["rejected"] == 1 and sum(rejected_now.values()) == 1, (stats, rejected_now)
        assert store.fact_ids(h.source_name, h.object) == set(ids), "the rest of the batch was not stored"
        assert store.cursors(h.source_name).get(h.object), "the cursor did not move past the batch"
    finally:
        store.close()


def check_unreachable(h: SourceHarness, make: MakeSource) -> None:
    """A system that stays down ends the read with `UnreachableError` (never a crash, never a ConfigError),
    after spending the policy's attempts."""
    h.seed(["Ames"])
    src = make(policy())
    h.go_down()
    try:
        read(src, h.object, {}, h.run_context())
    except UnreachableError:
        pass
    except ConfigError as exc:
        raise AssertionError(f"an unreachable system was reported as a config error: {exc}") from exc
    except Exception as exc:  # anything else would crash the run
        raise AssertionError(f"an unreachable system crashed the read: {exc!r}") from exc
    else:
        raise AssertionError("the read of an unreachable system ended as if it had worked")
    attempts = h.attempts_while_down()
    assert attempts == ATTEMPTS, f"{attempts} calls refused: the policy's {ATTEMPTS} attempts were not spent"
