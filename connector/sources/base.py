"""The source plugin contract.

A source reads one system and yields `Batch`es of raw records; its mapper turns each raw record into a `Fact`.
The run loop stores the facts and advances the batch's cursor in one transaction, so a cursor never moves past
records that were not safely stored. A source never decides stages and never writes.

Every optional capability is declared here with its default, so the run loop and the CLI call it on any
source without probing: `connect` (the run's connection to a CRM; none for files), `unknown_values`,
`check` (offline, for `validate`), `check_online` (for `connector check`: log in, confirm what a run needs,
read no record) and `discover` (what the system offers; not every source can tell).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from ..context import Connection, PluginEnv, RunContext
from ..discovery import Discovery
from ..errors import ConfigError
from ..findings import Findings, offline_findings
from ..mappers.fields import ObjectMapping
from ..plugin_config import SourceConfigBase
from ..schema import Fact

__all__ = ["Batch", "Source", "SourceConfigBase", "expect_config"]

M = TypeVar("M", bound=SourceConfigBase)


@dataclass
class Batch:
    """Raw records of one object, plus what the run loop needs to store them safely.

    `cursor` is the value to save for `object` once this batch (and every batch before it) is stored; None
    keeps the previous cursor. `deleted` are record ids gone from the source. `live_ids`, when not None, is
    the complete set of ids that still exist for `object` (id reconciliation): stored facts of that object
    with other ids are deleted. `unchanged` counts records the source left out because the state already
    holds them exactly as read (counted as read and unchanged, as if mapped and found the same).
    `live_stored`: every id in `live_ids` that this read did not reject is stored once this batch is (all were
    in its batches, or left out as `unchanged`); then a count tells whether anything is gone, without listing
    every stored id.
    """

    object: str
    records: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    cursor: str | None = None
    live_ids: set[str] | None = None
    unchanged: int = 0
    live_stored: bool = False


class Source(ABC):
    name: str
    # (field, raw value) -> records carrying a picklist value the source could not give a meaning (reported
    # in the run summary, never guessed); sources that map no picklists keep this empty default
    unknown_values: Mapping[tuple[str, str], int] = MappingProxyType({})

    @classmethod
    def connect(cls, cfg: SourceConfigBase, env: PluginEnv) -> Connection | None:
        """Open the run's connection to this source's system (no network call yet); None: no connection."""
        return None

    @classmethod
    @abstractmethod
    def from_config(cls, cfg: SourceConfigBase, env: PluginEnv) -> Source:
        """Build the source from its validated config (a ConfigError for what only the run can tell)."""

    @abstractmethod
    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        """Yield batches of what changed since `cursors` (object -> cursor value), oldest first."""

    @abstractmethod
    def map(self, obj: str, raw: dict[str, Any]) -> Fact:
        """Map one raw record; raise `RecordError` for a record that cannot be mapped."""

    @abstractmethod
    def mapping_for(self, obj: str) -> ObjectMapping | None:
        """The YAML mapping that applies to `obj` (for reporting), if any."""

    def check(self) -> None:
        """An offline self-check for `connector validate` (a file source: its file exists); ConfigError."""
        return None

    def check_online(self, ctx: RunContext) -> Findings:
        """For `connector check`: log in and confirm what a run needs (API version, objects, mapped fields,
        allowance) without reading a record or writing anything. Default: the offline `check`."""
        return offline_findings(self.name, self.check)

    def discover(self, objects: Sequence[str], ctx: RunContext) -> Discovery | None:
        """For `connector discover`: the objects the system offers (described, with their fields and
        picklist meanings, when `objects` names them: ConfigError for one it lacks); None: cannot tell."""
        return None

    def close(self) -> None:
        """Release what the source holds itself (its connection belongs to the run: `PluginEnv.close`)."""
        return None


def expect_config(cfg: SourceConfigBase, model: type[M]) -> M:
    """`cfg` as the plugin's own config model: the registry pairs each `type` with one model, so another model
    here is a wiring mistake, reported like a config error rather than an AttributeError later."""
    if not isinstance(cfg, model):
        raise ConfigError(f"source {cfg.name}: a {type(cfg).__name__} is not a {model.__name__}")
    return cfg
