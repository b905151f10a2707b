"""The file source: enrichment and contract files (CSV, XLSX, JSON Lines) as full snapshots.

Each file is one object, named by its path relative to the YAML file. Its cursor is a content hash, so an
unchanged file costs one read to hash and yields nothing; a changed file is read again completely and
reconciled by `live_ids`, so rows deleted from the file disappear from state too. The hash also covers this
source's config: after a mapping change the same file is read again under the new mapping.
"""

from __future__ import annotations

import glob
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import structlog

from ...context import PluginEnv, RunContext
from ...errors import ConfigError
from ...mappers.fields import ObjectMapping
from ...mappers.files import (
    FILE_KEY,
    ID_KEY,
    LINE_KEY,
    FileRowSpec,
    map_file_row,
    row_id_base,
)
from ...plugin_config import SourceConfigBase
from ...schema import Fact
from ..base import Batch, Source, expect_config
from .config import FileSourceConfig
from .formats import ROW_ERROR, detect_format, read_rows, scan_file

log = structlog.get_logger(__name__)

CHUNK_ROWS = 5000
GONE = "absent"  # cursor of a file that matched once and no longer exists


class FileSource(Source):
    """Reads the configured file (or every file a glob matches) and maps its rows."""

    chunk_rows = CHUNK_ROWS

    def __init__(self, cfg: FileSourceConfig, base_dir: Path) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.base_dir = base_dir
        self.mapping = cfg.object_mapping()
        self.spec = FileRowSpec(
            source=cfg.name,
            kind=cfg.kind,
            join=cfg.join,
            mapping=self.mapping,
            email_column=cfg.column_for("email"),
            external_id_column=cfg.column_for("external_id"),
            id_column=cfg.id_column,
        )
        self._fingerprint = cfg.fingerprint()

    @classmethod
    def from_config(cls, cfg: SourceConfigBase, env: PluginEnv) -> FileSource:
        return cls(expect_config(cfg, FileSourceConfig), env.base_dir)

    # -- reading ------------------------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """The files to read now; a plain path that does not exist is a config error."""
        pattern = Path(self.cfg.path).expanduser()
        full = pattern if pattern.is_absolute() else self.base_dir / pattern
        if glob.has_magic(self.cfg.path):
            matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True))
            found = [p for p in matches if p.is_file()]
            if not found:
                log.warning("files.glob.empty", source=self.name, pattern=str(full))
            return found
        if not full.is_file():
            what = "is not a file" if full.exists() else "not found"
            raise ConfigError(f"sources.{self.name}.path: {self.cfg.path} ({full}) {what}")
        return [full]

    def check(self) -> None:
        """For `connector validate`: the configured file must exist (no rows are read)."""
        self.files()

    def object_name(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.base_dir.resolve()).as_posix()
        except ValueError:
            return path.resolve().as_posix()

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        paths = self.files()
        current = {self.object_name(p): p for p in paths}
        for obj, path in current.items():
            yield from self._read_file(obj, path, cursors.get(obj))
        # A file that matched before and is gone now: its rows are gone too.
        for obj in sorted(set(cursors) - set(current)):
            if cursors[obj] != GONE:
                log.info("files.read.gone", source=self.name, file=obj)
                yield Batch(object=obj, cursor=GONE, live_ids=set())

    def _read_file(self, obj: str, path: Path, previous: str | None) -> Iterator[Batch]:
        fmt = detect_format(path, self.cfg.format)
        scan = scan_file(path, fmt, self.cfg.encoding)
        cursor = f"{scan.sha256}/{self._fingerprint}"
        if cursor == previous:
            log.info("files.read.unchanged", source=self.name, file=obj)
            return
        live: set[str] = set()
        seen: Counter[str] = Counter()
        records: list[dict[str, Any]] = []
        total = 0
        rows = read_rows(
            path, fmt, encoding=scan.encoding, delimiter=self.cfg.delimiter, sheet=self.cfg.sheet
        )
        for line, row in rows:
            if total == 0 and fmt != "jsonl":
                self._check_columns(obj, row)
            row[FILE_KEY] = obj
            row[LINE_KEY] = line
            base = row_id_base(row, self.spec)
            if base is None:
                # no key to know it by: named by its line so its rejection can still be kept and replaced
                row_id = f"line-{line}"
            else:
                seen[base] += 1
                row_id = base if seen[base] == 1 else f"{base}#{seen[base]}"
            row[ID_KEY] = row_id
            live.add(row_id)
            records.append(row)
            total += 1
            if len(records) >= self.chunk_rows:
                yield Batch(object=obj, records=records)
                records = []
        log.info(
            "files.read.file", source=self.name, file=obj, rows=total, format=fmt, encoding=scan.encoding
        )
        yield Batch(object=obj, records=records, cursor=cursor, live_ids=live)

    def _check_columns(self, obj: str, first_row: Mapping[str, Any]) -> None:
        # A renamed or mistyped column would otherwise reject every row one by one; name it once instead.
        # (CSV and XLSX rows carry every header column, so the first row shows the header.)
        if ROW_ERROR in first_row:
            return
        wanted = list(self.cfg.fields) + ([self.cfg.id_column] if self.cfg.id_column else [])
        missing = [column for column in wanted if column not in first_row]
        if missing:
            raise ConfigError(
                f"sources.{self.name}: {obj} has no column {', '.join(repr(c) for c in missing)} "
                f"(columns: {', '.join(repr(c) for c in first_row)})"
            )

    # -- mapping ------------------------------------------------------------------------------------------

    def map(self, obj: str, raw: dict[str, Any]) -> Fact:
        return map_file_row(obj, raw, self.spec)

    def mapping_for(self, obj: str) -> ObjectMapping | None:
        return self.mapping

    def close(self) -> None:
        return None
