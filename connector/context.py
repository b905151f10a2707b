"""What a run hands to its plugins: `RunContext` to every call (the as-of date, the run's start, the API call
counter), `PluginEnv` to every factory (where things live, the retry policy, the run's CRM connections)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from .plugin_config import SourceConfigBase
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .config import AppConfigBase


@dataclass
class RunContext:
    as_of: dt.date
    started_at: dt.datetime  # timezone-aware UTC; cursors never pass it
    dry_run: bool = False
    run_id: int | None = None  # the run's row in the state (None: a plan); segment files' change log shows it
    api_calls: Counter[str] = field(default_factory=Counter)  # per system name

    def __post_init__(self) -> None:
        if self.started_at.tzinfo is None:
            raise ValueError("RunContext.started_at must be timezone-aware")

    def count_call(self, system: str, n: int = 1) -> None:
        self.api_calls[system] += n


class Connection(Protocol):
    """One configured CRM as a run reaches it (`connector/crm/<system>/connection.py`): opened once per run
    for a source of that system and shared by that source and every target writing back to it."""

    name: str  # the source's name

    def close(self) -> None: ...


C = TypeVar("C", bound=Connection)


@dataclass
class PluginEnv:
    """What a plugin factory may use besides its own config: the run's settings and its CRM connections.

    Connections are opened on first request, one per source (by the source's plugin, `Source.connect`), and
    closed by `close()` when the run ends; a target reaches its source's system through `connection()`, never
    by reading the source's config.
    """

    sources: Sequence[SourceConfigBase] = ()
    base_dir: Path = field(default_factory=Path.cwd)  # the config file's folder: relative paths start here
    state_dir: Path | None = None  # where the state lives (caches beside it); None: keep no files
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    environ: Mapping[str, str] | None = None  # None: os.environ; tests pass their own
    segment_targets: Mapping[str, Sequence[str]] = field(default_factory=dict)  # segment -> its targets
    _connections: dict[str, Connection | None] = field(default_factory=dict, init=False, repr=False)

    def source_config(self, name: str) -> SourceConfigBase | None:
        return next((s for s in self.sources if s.name == name), None)

    def segments_for(self, target: str) -> list[str]:
        """Names of the configured segments that go to `target`."""
        return [seg for seg, targets in self.segment_targets.items() if target in targets]

    def connection(self, source: str, kind: type[C]) -> C | None:
        """The run's connection to the system of source `source`, if that source exists and is of `kind`."""
        cfg = self.source_config(source)
        if cfg is None:
            return None
        if source not in self._connections:
            from .registry import load_source  # the registry imports plugin modules: only at run time

            self._connections[source] = load_source(cfg.type).connect(cfg, self)
        conn = self._connections[source]
        return conn if isinstance(conn, kind) else None

    def close(self) -> None:
        """Close every connection opened (the end of a run); a failure to close one hides nothing else."""
        opened, self._connections = self._connections, {}
        for conn in opened.values():
            if conn is not None:
                conn.close()


def plugin_env(
    config: AppConfigBase, *, environ: Mapping[str, str] | None = None, policy: RetryPolicy | None = None
) -> PluginEnv:
    """The environment every plugin of `config` is built in (a run's, `validate`'s and `forget`'s alike)."""
    return PluginEnv(
        sources=config.sources,
        base_dir=config.base_dir,
        state_dir=config.state_path().parent,
        policy=policy or RetryPolicy(),
        environ=environ,
        segment_targets={s.name: tuple(s.targets) for s in config.segments},
    )
