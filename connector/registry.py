"""Plugin registries: YAML `type` -> (config model, factory). A new CRM is one module and one line here.

Factories take `(config, env)`: the plugin's own validated config model and a `PluginEnv` with what every
plugin may need from the run (the whole app config, e.g. for a target that reuses a source's connection, the
shared retry policy, and where the state lives).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .retry import RetryPolicy
from .sources.base import Source, SourceConfigBase
from .writers.base import Writer, WriterConfigBase


@dataclass
class PluginEnv:
    app: Any  # connector.config.AppConfig (Any here to keep this module free of an import cycle)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    state_dir: Path = Path(".")
    environ: dict[str, str] | None = None  # None: os.environ; tests pass their own
    # per-run objects plugins may share, e.g. one logged-in CRM client for a source and the target writing
    # back to it (one session, one connection pool); emptied at the start of every run
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourcePlugin:
    config: type[SourceConfigBase]
    factory: Callable[[Any, PluginEnv], Source]


@dataclass(frozen=True)
class WriterPlugin:
    config: type[WriterConfigBase]
    factory: Callable[[Any, PluginEnv], Writer]


def source_plugins() -> dict[str, SourcePlugin]:
    from .sources import files, salesforce
    from .sources.vtiger import source as vtiger_source

    return {
        "file": SourcePlugin(files.FileSourceConfig, files.FileSource.from_config),
        "salesforce": SourcePlugin(
            salesforce.SalesforceSourceConfig, salesforce.SalesforceSource.from_config
        ),
        "vtiger": SourcePlugin(vtiger_source.VtigerSourceConfig, vtiger_source.VtigerSource.from_config),
    }


def writer_plugins() -> dict[str, WriterPlugin]:
    from .writers import salesforce as salesforce_writer
    from .writers import segment_files
    from .writers import vtiger as vtiger_writer

    return {
        "salesforce": WriterPlugin(
            salesforce_writer.SalesforceWriterConfig, salesforce_writer.SalesforceWriter.from_config
        ),
        "vtiger": WriterPlugin(vtiger_writer.VtigerWriterConfig, vtiger_writer.VtigerWriter.from_config),
        "segment_files": WriterPlugin(
            segment_files.SegmentFilesConfig, segment_files.SegmentFilesWriter.from_config
        ),
    }
