"""The planning records: what the diff step (diffing.py) decides must change, handed to each writer.

They live apart from the writers so that the engine and the diff step import no plugin: a writer receives
these and answers with a `WriteResult` (writers/base.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .schema import RecordRef


class Target(Protocol):
    """What the diff step knows of a target (every `writers.base.Writer` is one): whose records it labels."""

    name: str
    source: str | None  # the source whose records it labels; None: it addresses people, not records
    label_objects: frozenset[str]  # that source's objects that carry a stage label


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
    # the person's schema values (`contract_end`, `competitor`, ...) and `extra.<name>` values, for targets
    # that show more than the fields above (segment files' `columns:`); typed as the schema says (dates as dates)
    values: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass
class SegmentChange:
    segment: str
    members: list[Member]  # everyone in the segment now, in stable order
    adds: list[Member]
    removes: list[Member]
    # person key -> the target records connector created for that membership (from state), for the removes:
    # a writer that can tell its own records from hand-made ones deletes only these
    created: dict[str, tuple[str, ...]] = field(default_factory=dict)
