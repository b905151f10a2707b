"""The planning records: what the diff step (diffing.py) decides must change, handed to each writer.

They live apart from the writers so that the engine and the diff step import no plugin: a writer receives
these and answers with a `WriteResult` (writers/base.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, overload, runtime_checkable

from .schema import RecordRef


class Target(Protocol):
    """What the diff step knows of a target (every `writers.base.Writer` is one): whose records it labels."""

    name: str
    source: str | None  # the source whose records it labels; None: it addresses people, not records
    label_objects: frozenset[str]  # that source's objects that carry a stage label


@dataclass(frozen=True, slots=True)  # a first run holds one per labelled record until the write
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
    # the person's schema values (`contract_end`, `competitor`, ...) and `extra.<name>` values, for targets
    # that show more than the fields above (segment files' `columns:`); typed as the schema says (dates as dates)
    values: Mapping[str, Any] = field(default_factory=dict, hash=False)


class LazyMembers(Sequence[Member]):
    """A segment's members, built on first use. An incremental run knows how many people a segment holds
    from the state alone; describing every one of them means decoding their stored snapshots, which only a
    writer that publishes the whole list needs, and only when something in it changed."""

    def __init__(self, count: int, load: Callable[[], list[Member]]) -> None:
        self._count = count
        self._load: Callable[[], list[Member]] | None = load
        self._members: list[Member] = []

    def _all(self) -> list[Member]:
        if self._load is not None:
            self._members, self._load = self._load(), None
        return self._members

    @property
    def loaded(self) -> bool:
        return self._load is None

    def __len__(self) -> int:
        return self._count if self._load is not None else len(self._members)

    def __iter__(self) -> Iterator[Member]:
        return iter(self._all())

    @overload
    def __getitem__(self, index: int) -> Member: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Member]: ...

    def __getitem__(self, index: int | slice) -> Member | Sequence[Member]:
        return self._all()[index]


@runtime_checkable
class Reorderable(Protocol):
    """Members that walk themselves in a named order (full_plan.StateMembers: sorted by the state, so a writer
    never gathers them to sort): "plan" is the diff step's order, "files" the segment files'."""

    def ordered(self, order: str) -> Sequence[Member]: ...


@dataclass
class SegmentChange:
    segment: str
    members: Sequence[Member]  # everyone in the segment now, in stable order (a list, LazyMembers, or
    # full_plan.StateMembers: described from the state a batch at a time on each walk, never all at once)
    adds: Sequence[Member]  # a list, or StateMembers on the full path (a first run adds everyone)
    removes: list[Member]
    # person key -> the target records connector created for that membership (from state), for the removes:
    # a writer that can tell its own records from hand-made ones deletes only these
    created: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # False when the diff step knows every member is described exactly as when this target last took the
    # segment (no add, no remove, no member whose values or stage changed since): a writer that publishes
    # the whole list may then leave what it published alone. True whenever it cannot tell (a full run).
    touched: bool = True
    # The members still in the segment whose stage or values changed since this target last took it (adds
    # and removes aside): with `adds` and `removes`, everything that differs from what was published, so a
    # writer may patch what it published instead of describing every member. None whenever it cannot tell.
    redescribed: Sequence[Member] | None = None
