"""The source plugin contract.

A source reads one system and yields `Batch`es of raw records; its mapper turns each raw record into a `Fact`.
The run loop stores the facts and advances the batch's cursor in one transaction, so a cursor never moves past
records that were not safely stored. A source never decides stages and never writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from ..context import RunContext
from ..mappers.fields import ObjectMapping
from ..model import StrictModel
from ..schema import Fact


class SourceConfigBase(StrictModel):
    """Fields every source config has; each plugin subclasses it with `type: Literal[...]`."""

    name: str
    type: str
    enabled: bool = True
    # whose word this source carries: a sales decision (CRM) beats a marketing signal (enrichment files)
    role: Literal["sales", "marketing"] | None = None
    default_role: ClassVar[str] = "sales"

    def effective_role(self) -> str:
        return self.role or self.default_role


@dataclass
class Batch:
    """Raw records of one object, plus what the run loop needs to store them safely.

    `cursor` is the value to save for `object` once this batch (and every batch before it) is stored; None
    keeps the previous cursor. `deleted` are record ids gone from the source. `live_ids`, when not None, is
    the complete set of ids that still exist for `object` (id reconciliation): stored facts of that object
    with other ids are deleted.
    """

    object: str
    records: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    cursor: str | None = None
    live_ids: set[str] | None = None


class Source(Protocol):
    name: str

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        """Yield batches of what changed since `cursors` (object -> cursor value), oldest first."""
        ...

    def map(self, obj: str, raw: dict[str, Any]) -> Fact:
        """Map one raw record; raise `RecordError` for a record that cannot be mapped."""
        ...

    def mapping_for(self, obj: str) -> ObjectMapping | None:
        """The YAML mapping that applies to `obj` (for reporting), if any."""
        ...

    def close(self) -> None: ...
