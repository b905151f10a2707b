"""The fields every source and every target config has; each plugin's config model subclasses one of these
with `type: Literal[...]` in a small module of its own (`sources/<name>/config.py`, `writers/<name>/config.py`)
that imports no transport, so the YAML validates without loading any plugin implementation.

A target's checks against the source it writes back to (`WriterConfigBase.cross_check`) run with the rest of
the config's checks: every problem of every plugin at once, each with file, line and key path.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import ClassVar, Literal

from .model import StrictModel

# (key path below the plugin's own entry, message), e.g. (("label_field", "Leads"), "...")
ConfigProblem = tuple[tuple[str | int, ...], str]


class SourceConfigBase(StrictModel):
    name: str
    type: str
    enabled: bool = True
    # whose word this source carries: a sales decision (CRM) beats a marketing signal (enrichment files)
    role: Literal["sales", "marketing"] | None = None
    default_role: ClassVar[str] = "sales"
    # a picklist value in the data that neither the stock meanings nor value_maps know: `report` counts it in
    # the summary and leaves it unset; `error` makes it a config error that ends the run before any write
    unknown_values: Literal["report", "error"] = "report"

    def effective_role(self) -> str:
        return self.role or self.default_role

    def signal_fields(self, obj: str) -> Collection[str]:
        """The fields of `obj` this source reads as signals (a target must not write its output there)."""
        return ()


class WriterConfigBase(StrictModel):
    name: str
    type: str
    enabled: bool = True
    # the configured source whose records this target labels and over whose connection it writes; None for
    # targets that address people, not records (segment files)
    source: str | None = None
    # the source types this target writes back to; empty: it takes no source
    source_types: ClassVar[frozenset[str]] = frozenset()

    def cross_check(self, sources: Mapping[str, SourceConfigBase]) -> list[ConfigProblem]:
        """Problems between this target and the configured sources (a missing source is named by the config
        loader for every target); subclasses extend it."""
        if self.source is None or self.source not in sources:
            return []
        kind = sources[self.source].type
        if self.source_types and kind not in self.source_types:
            wanted = " or ".join(sorted(self.source_types))
            return [(("source",), f"'{self.source}' is a {kind} source; this target needs a {wanted} source")]
        return []
