"""Deliberately broken plugins: a real plugin wrapped so that it breaks one clause of the contract.

test_mutants.py runs the contract checks against these and expects each check to fail: a suite that passes
everything proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from connector.context import PluginEnv, RunContext
from connector.errors import ConfigError, RecordError, UnreachableError
from connector.mappers.fields import ObjectMapping
from connector.plan import LabelChange, SegmentChange
from connector.plugin_config import SourceConfigBase, WriterConfigBase
from connector.reading import raw_id
from connector.schema import Fact
from connector.sources.base import Batch, Source
from connector.writers.base import Writer, WriteResult

# -- sources -------------------------------------------------------------------------------------------------


class SourceDouble(Source):
    """Passes everything through to the real source; subclasses break one thing."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.name = inner.name

    @classmethod
    def from_config(cls, cfg: SourceConfigBase, env: PluginEnv) -> Source:
        raise NotImplementedError("a double wraps a source built by its harness")

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        return self.inner.read(cursors, ctx)

    def map(self, obj: str, raw: dict[str, Any]) -> Fact:
        return self.inner.map(obj, raw)

    def mapping_for(self, obj: str) -> ObjectMapping | None:
        return self.inner.mapping_for(obj)

    def close(self) -> None:
        self.inner.close()


class ForgetsRereads(SourceDouble):
    """Never hands over a record twice: what an exclusive lower bound does to a record changed again at the
    cursor instant (it is lost)."""

    def __init__(self, inner: Source) -> None:
        super().__init__(inner)
        self.handed: set[tuple[str, str]] = set()

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        for batch in self.inner.read(cursors, ctx):
            fresh = [r for r in batch.records if (batch.object, raw_id(r)) not in self.handed]
            self.handed.update((batch.object, raw_id(r)) for r in fresh)
            batch.records = fresh
            yield batch


class DropsPageEnds(SourceDouble):
    """Loses the last record of every batch (an off-by-one at a page end)."""

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        for batch in self.inner.read(cursors, ctx):
            batch.records = batch.records[:-1]
            yield batch


class IgnoresCursors(SourceDouble):
    """Reads everything every time."""

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        return self.inner.read({}, ctx)


class HidesDeletions(SourceDouble):
    """Reports no deletion, by id or by live ids."""

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        for batch in self.inner.read(cursors, ctx):
            batch.deleted, batch.live_ids = [], None
            yield batch


class DropsBadRecords(SourceDouble):
    """Leaves out the records it cannot map instead of handing them over to be rejected and kept."""

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        for batch in self.inner.read(cursors, ctx):
            batch.records = [r for r in batch.records if self._maps(batch.object, r)]
            yield batch

    def _maps(self, obj: str, raw: dict[str, Any]) -> bool:
        try:
            self.inner.map(obj, raw)
        except RecordError:
            return False
        return True


class ConfigErrorWhenDown(SourceDouble):
    """Calls an outage a config error (exit 2 instead of 4: the on-call engineer looks at the wrong thing)."""

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        try:
            yield from self.inner.read(cursors, ctx)
        except UnreachableError as exc:
            raise ConfigError(f"{self.name}: check the url: {exc}") from exc


class CrashesWhenDown(SourceDouble):
    """Lets an outage escape as an unexpected exception (exit 1)."""

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        try:
            yield from self.inner.read(cursors, ctx)
        except UnreachableError as exc:
            raise RuntimeError(str(exc)) from exc


# -- writers -------------------------------------------------------------------------------------------------


class WriterDouble(Writer):
    """Passes everything through to the real writer; subclasses break one thing."""

    def __init__(self, inner: Writer) -> None:
        self.inner = inner
        self.name = inner.name
        self.source = inner.source
        self.label_objects = inner.label_objects
        self.publishes_snapshots = inner.publishes_snapshots

    @classmethod
    def from_config(cls, cfg: WriterConfigBase, env: PluginEnv) -> Writer:
        raise NotImplementedError("a double wraps a writer built by its harness")

    def write_labels(self, changes: list[LabelChange], ctx: RunContext) -> WriteResult:
        return self.inner.write_labels(changes, ctx)

    def sync_segment(self, change: SegmentChange, ctx: RunContext) -> WriteResult:
        return self.inner.sync_segment(change, ctx)

    def estimate_calls(self, labels: int, adds: int, removes: int) -> int:
        return self.inner.estimate_calls(labels, adds, removes)

    def close(self) -> None:
        self.inner.close()


class WritesTwice(WriterDouble):
    """Sends every write twice and reports only the second."""

    def write_labels(self, changes: list[LabelChange], ctx: RunContext) -> WriteResult:
        self.inner.write_labels(changes, ctx)
        return self.inner.write_labels(changes, ctx)

    def sync_segment(self, change: SegmentChange, ctx: RunContext) -> WriteResult:
        self.inner.sync_segment(change, ctx)
        return self.inner.sync_segment(change, ctx)


class ReportsFailuresAsWritten(WriterDouble):
    """Reports success for records the system refused (the run would never retry them)."""

    def write_labels(self, changes: list[LabelChange], ctx: RunContext) -> WriteResult:
        return self._clean(self.inner.write_labels(changes, ctx))

    def sync_segment(self, change: SegmentChange, ctx: RunContext) -> WriteResult:
        return self._clean(self.inner.sync_segment(change, ctx))

    @staticmethod
    def _clean(result: WriteResult) -> WriteResult:
        return WriteResult(calls=result.calls, notes=result.notes, created=result.created)


class IgnoresRemoves(WriterDouble):
    """Adds members but never takes anyone out (a snapshot writer: publishes those who left as members)."""

    def sync_segment(self, change: SegmentChange, ctx: RunContext) -> WriteResult:
        members = change.members + change.removes
        kept = SegmentChange(change.segment, members, change.adds, [], change.created)
        return self.inner.sync_segment(kept, ctx)


class DropsSegmentsFromThePlan(WriterDouble):
    """Handed the whole plan first, passes on only its labels, then answers each segment as if written."""

    def begin_writes(self, labels: list[LabelChange], segments: list[SegmentChange], ctx: RunContext) -> None:
        self.inner.begin_writes(labels, [], ctx)

    def sync_segment(self, change: SegmentChange, ctx: RunContext) -> WriteResult:
        return WriteResult()


class LosesWritesOnOutage(WriterDouble):
    """Raises on an outage although part of the call was written (those writes go unrecorded)."""

    def write_labels(self, changes: list[LabelChange], ctx: RunContext) -> WriteResult:
        return self._raise(self.inner.write_labels(changes, ctx))

    def sync_segment(self, change: SegmentChange, ctx: RunContext) -> WriteResult:
        return self._raise(self.inner.sync_segment(change, ctx))

    @staticmethod
    def _raise(result: WriteResult) -> WriteResult:
        if result.unreachable is not None:
            raise UnreachableError(result.unreachable)
        return result
