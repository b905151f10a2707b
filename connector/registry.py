"""Plugin registries: YAML `type` -> (config model, implementation). A new CRM is one line in each table.

The config models are imported here (small modules without transport: the YAML validates without loading a
plugin); an implementation is named by `module:Class` and imported only when a run or `validate` builds it.
A source's implementation also opens the run's connection to its system (`Source.connect`); the targets of
that source reach it through `PluginEnv.connection`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .plugin_config import SourceConfigBase, WriterConfigBase
from .sources.files.config import FileSourceConfig
from .sources.salesforce.config import SalesforceSourceConfig
from .sources.vtiger.config import VtigerSourceConfig
from .writers.salesforce.config import SalesforceWriterConfig
from .writers.segment_files.config import SegmentFilesConfig
from .writers.vtiger.config import VtigerWriterConfig

if TYPE_CHECKING:  # the contracts pull in the run's context; config validation does without them
    from .sources.base import Source
    from .writers.base import Writer


@dataclass(frozen=True)
class SourcePlugin:
    config: type[SourceConfigBase]
    implementation: str  # "package.module:Class", a subclass of sources.base.Source

    def load(self) -> type[Source]:
        from .sources.base import Source

        found = _load(self.implementation)
        if not (isinstance(found, type) and issubclass(found, Source)):
            raise TypeError(f"{self.implementation} is not a Source")
        return found


@dataclass(frozen=True)
class WriterPlugin:
    config: type[WriterConfigBase]
    implementation: str  # "package.module:Class", a subclass of writers.base.Writer

    def load(self) -> type[Writer]:
        from .writers.base import Writer

        found = _load(self.implementation)
        if not (isinstance(found, type) and issubclass(found, Writer)):
            raise TypeError(f"{self.implementation} is not a Writer")
        return found


SOURCES: dict[str, SourcePlugin] = {
    "file": SourcePlugin(FileSourceConfig, "connector.sources.files.source:FileSource"),
    "salesforce": SourcePlugin(
        SalesforceSourceConfig, "connector.sources.salesforce.source:SalesforceSource"
    ),
    "vtiger": SourcePlugin(VtigerSourceConfig, "connector.sources.vtiger.source:VtigerSource"),
}

WRITERS: dict[str, WriterPlugin] = {
    "salesforce": WriterPlugin(
        SalesforceWriterConfig, "connector.writers.salesforce.writer:SalesforceWriter"
    ),
    "vtiger": WriterPlugin(VtigerWriterConfig, "connector.writers.vtiger.writer:VtigerWriter"),
    "segment_files": WriterPlugin(
        SegmentFilesConfig, "connector.writers.segment_files.writer:SegmentFilesWriter"
    ),
}


def source_plugins() -> dict[str, SourcePlugin]:
    return SOURCES


def writer_plugins() -> dict[str, WriterPlugin]:
    return WRITERS


def load_source(kind: str) -> type[Source]:
    return SOURCES[kind].load()


def load_writer(kind: str) -> type[Writer]:
    return WRITERS[kind].load()


def _load(spec: str) -> object:
    module, _, name = spec.partition(":")
    return vars(importlib.import_module(module))[name]
