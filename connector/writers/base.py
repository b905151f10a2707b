"""The writer plugin contract.

The run loop computes what must change (labels that differ from the last label written, segment members to add
and remove) and hands only that to a writer. A writer reports which items failed; every other item counts as
written and is recorded in state. Replaying a batch must change nothing in the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..context import RunContext
from ..errors import RecordError
from ..model import StrictModel
from ..schema import RecordRef


class WriterConfigBase(StrictModel):
    """Fields every target config has; each plugin subclasses it with `type: Literal[...]`."""

    name: str
    type: str
    enabled: bool = True


@dataclass(frozen=True)
class LabelChange:
    person_key: str
    ref: RecordRef
    old: str | None
    new: str


@dataclass(frozen=True)
class Member:
    """A person as a segment member, with the records the target system holds for them."""

    person_key: str
    refs: tuple[RecordRef, ...]
    email: str | None
    first_name: str | None
    last_name: str | None
    company: str | None
    stage: str
    label: str


@dataclass
class SegmentChange:
    segment: str
    members: list[Member]  # everyone in the segment now, in stable order
    adds: list[Member]
    removes: list[Member]
    # person key -> the target records connector created for that membership (from state), for the removes:
    # a writer that can tell its own records from hand-made ones deletes only these
    created: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class WriteResult:
    """Items that failed, keyed by `str(ref)` for labels and by person key for segment members.

    `unreachable` says the target system stopped answering part way through the call (the reason, as an
    `UnreachableError` would give it). `failed` then holds every item that was not written, each with a
    RecordError of code "UNREACHABLE", and everything else was written: the run loop records both, then
    stops this target as unreachable (exit 4). Returning this instead of raising keeps the writes that did
    land. A writer may still raise `UnreachableError` when it wrote nothing in the call.
    """

    failed: dict[str, RecordError] = field(default_factory=dict)
    calls: int = 0
    notes: list[str] = field(default_factory=list)
    unreachable: str | None = None
    # person key -> the target records this call created for the person's membership (CampaignMember Ids);
    # the run loop keeps them in state, replacing what it held for that membership
    created: dict[str, tuple[str, ...]] = field(default_factory=dict)


class Writer(Protocol):
    name: str
    # the configured source whose records this writer labels; None for writers that address people, not records
    source: str | None
    # objects of that source that carry a stage label (e.g. {"Lead", "Contact"}); empty: the writer takes no labels
    label_objects: frozenset[str]
    # A writer may also set `publishes_snapshots = True` (read with getattr, default False): it then gets
    # every segment each run, changed or not: it publishes the whole member list (files), or mirrors a target
    # strictly and must catch members added there by hand (strict Salesforce campaigns).

    def write_labels(self, changes: list[LabelChange], ctx: RunContext) -> WriteResult: ...

    def sync_segment(self, change: SegmentChange, ctx: RunContext) -> WriteResult: ...

    def estimate_calls(self, labels: int, adds: int, removes: int) -> int:
        """API calls a run with these many changes would make (for `plan`)."""
        ...

    def close(self) -> None: ...
