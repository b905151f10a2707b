"""The file source: enrichment and contract files (CSV, XLSX, JSON Lines) as full snapshots.

Each file is one object, named by its path relative to the YAML file. Its cursor is a content hash, so an
unchanged file costs one read to hash and yields nothing; a changed file is read again completely and
reconciled by `live_ids`, so rows deleted from the file disappear from state too. The hash also covers this
source's config: after a mapping change the same file is read again under the new mapping.

Within a changed file, rows the last complete read already mapped and stored, unchanged, are not mapped again
(known_rows.py): they count as live and as read-and-unchanged, and yield nothing. File sources report no
unknown picklist values (a value outside `value_maps` is left out of the fact), so skipping rows changes no
`unknown_values` count.
"""

from __future__ import annotations

import glob
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
from .known_rows import KnownRows, row_digest, stamp

log = structlog.get_logger(__name__)

CHUNK_ROWS = 5000
GONE = "absent"  # cursor of a file that matched once and no longer exists


class FileSource(Source):
    """Reads the configured file (or every file a glob matches) and maps its rows."""

    chunk_rows = CHUNK_ROWS

    def __init__(self, cfg: FileSourceConfig, base_dir: Path, state_dir: Path | None = None) -> None:
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
        self.known = KnownRows.beside_state(state_dir, cfg.name)
        # ids of the rows `map` turned into facts since the last batch went out: only those are recorded as
        # stored (a rejected row must be mapped again next time)
        self._mapped: set[str] = set()

    @classmethod
    def from_config(cls, cfg: SourceConfigBase, env: PluginEnv) -> FileSource:
        return cls(expect_config(cfg, FileSourceConfig), env.base_dir, env.state_dir)

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
            yield from self._read_file(obj, path, cursors.get(obj), keep=not ctx.dry_run)
        # A file that matched before and is gone now: its rows are gone too.
        for obj in sorted(set(cursors) - set(current)):
            if cursors[obj] != GONE:
                log.info("files.read.gone", source=self.name, file=obj)
                yield Batch(object=obj, cursor=GONE, live_ids=set())
                if not ctx.dry_run:
                    self.known.drop(obj)

    def _read_file(self, obj: str, path: Path, previous: str | None, *, keep: bool) -> Iterator[Batch]:
        """`keep`: the state keeps what is read (not a plan), so the row record may change with it.

        Code after each `yield` runs once the run loop has stored that batch (it asks for the next one only
        after its transaction committed), so the rows mapped by then are in the state."""
        fmt = detect_format(path, self.cfg.format)
        scan = scan_file(path, fmt, self.cfg.encoding)
        cursor = f"{scan.sha256}/{self._fingerprint}"
        if cursor == previous:
            log.info("files.read.unchanged", source=self.name, file=obj)
            return
        record_stamp = stamp(self._fingerprint)
        known = self.known.load(obj, previous, record_stamp) or frozenset()
        recorded = bytearray()  # digests of rows the state holds after this read
        sent: dict[str, bytes] = {}  # row id -> digest of the rows in the batch out for storing
        skipped = unchanged = 0  # rows left out: since the last batch, in the whole file
        live: set[str] = set()
        seen: dict[str, int] = {}  # rows per id so far: a repeat is numbered
        records: list[dict[str, Any]] = []
        total = 0
        rows = read_rows(
            path, fmt, encoding=scan.encoding, delimiter=self.cfg.delimiter, sheet=self.cfg.sheet
        )
        for line, row in rows:
            if total == 0 and fmt != "jsonl":
                self._check_columns(obj, row)
            base = row_id_base(row, self.spec)
            if base is None:
                # no key to know it by: named by its line so its rejection can still be kept and replaced
                row_id = f"line-{line}"
            else:
                repeat = seen.get(base, 0) + 1  # a plain dict: Counter's += calls __missing__ per new key
                seen[base] = repeat
                row_id = base if repeat == 1 else f"{base}#{repeat}"
            live.add(row_id)
            total += 1
            digest = row_digest(row_id, row)
            if digest in known:
                recorded += digest
                skipped += 1
                unchanged += 1
                continue
            row[FILE_KEY] = obj
            row[LINE_KEY] = line
            row[ID_KEY] = row_id
            sent[row_id] = digest
            records.append(row)
            if len(records) >= self.chunk_rows:
                yield from self._send(
                    Batch(object=obj, records=records, unchanged=skipped), sent, recorded, keep
                )
                records, sent, skipped = [], {}, 0
        log.info(
            "files.read.file",
            source=self.name,
            file=obj,
            rows=total,
            unchanged=unchanged,
            format=fmt,
            encoding=scan.encoding,
        )
        # every row of the file went out in a batch or was left out as stored already (known_rows.py)
        final = Batch(
            object=obj, records=records, cursor=cursor, live_ids=live, unchanged=skipped, live_stored=True
        )
        yield from self._send(final, sent, recorded, keep)
        if keep:
            self.known.save(obj, cursor, record_stamp, bytes(recorded))

    def _send(self, batch: Batch, sent: dict[str, bytes], recorded: bytearray, keep: bool) -> Iterator[Batch]:
        """Yield one batch; once stored, record the digests of its rows that mapped."""
        if keep:
            # from the first batch that may reach the state on, the old record no longer describes it
            self.known.drop(batch.object)
        self._mapped.clear()
        yield batch
        for row_id in self._mapped:
            digest = sent.get(row_id)
            if digest is not None:
                recorded += digest
        self._mapped.clear()

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
        fact = map_file_row(obj, raw, self.spec)
        self._mapped.add(fact.ref.id)
        return fact

    def mapping_for(self, obj: str) -> ObjectMapping | None:
        return self.mapping

    def close(self) -> None:
        return None
