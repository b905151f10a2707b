"""Plugin registries: YAML `type` -> (config model, implementation). A new CRM is one line in each table.

Both are named by `module:Class` and imported only for the types a config uses: a config model (a small module
without transport) when the YAML is validated, an implementation when a run or `validate` builds the plugin.
A files-only config so never loads a CRM's config models, settings or client (start-up CPU; the JSON Schema
and a config naming an unknown type load every config model). A source's implementation also opens the run's
connection to its system (`Source.connect`); the targets of that source reach it through
`PluginEnv.connection`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .plugin_config import SourceConfigBase, WriterConfigBase

if TYPE_CHECKING:  # the contracts pull in the run's context; config validation does without them
    from .sources.base import Source
    from .writers.base import Writer


@dataclass(frozen=True)
class SourcePlugin:
    config_model: str  # "package.module:Class", a subclass of plugin_config.SourceConfigBase
    implementation: str  # "package.module:Class", a subclass of sources.base.Source

    @property
    def config(self) -> type[SourceConfigBase]:
        found = _load(self.config_model)
        if not (isinstance(found, type) and issubclass(found, SourceConfigBase)):
            raise TypeError(f"{self.config_model} is not a SourceConfigBase")
        return found

    def load(self) -> type[Source]:
        from .sources.base import Source

        found = _load(self.implementation)
        if not (isinstance(found, type) and issubclass(found, Source)):
            raise TypeError(f"{self.implementation} is not a Source")
        return found


@dataclass(frozen=True)
class WriterPlugin:
    config_model: str  # "package.module:Class", a subclass of plugin_config.WriterConfigBase
    implementation: str  # "package.module:Class", a subclass of writers.base.Writer

    @property
    def config(self) -> type[WriterConfigBase]:
        found = _load(self.config_model)
        if not (isinstance(found, type) and issubclass(found, WriterConfigBase)):
            raise TypeError(f"{self.config_model} is not a WriterConfigBase")
        return found

    def load(self) -> type[Writer]:
        from .writers.base import Writer

        found = _load(self.implementation)
        if not (isinstance(found, type) and issubclass(found, Writer)):
            raise TypeError(f"{self.implementation} is not a Writer")
        return found


SOURCES: dict[str, SourcePlugin] = {
    "file": SourcePlugin(
        "connector.sources.files.config:FileSourceConfig", "connector.sources.files.source:FileSource"
    ),
    "salesforce": SourcePlugin(
        "connector.sources.salesforce.config:SalesforceSourceConfig",
        "connector.sources.salesforce.source:SalesforceSource",
    ),
    "vtiger": SourcePlugin(
        "connector.sources.vtiger.config:VtigerSourceConfig", "connector.sources.vtiger.source:VtigerSource"
    ),
}

WRITERS: dict[str, WriterPlugin] = {
    "salesforce": WriterPlugin(
        "connector.writers.salesforce.config:SalesforceWriterConfig",
        "connector.writers.salesforce.writer:SalesforceWriter",
    ),
    "vtiger": WriterPlugin(
        "connector.writers.vtiger.config:VtigerWriterConfig", "connector.writers.vtiger.writer:VtigerWriter"
    ),
    "segment_files": WriterPlugin(
        "connector.writers.segment_files.config:SegmentFilesConfig",
        "connector.writers.segment_files.writer:SegmentFilesWriter",
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
