"""The file source: enrichment and contract files (CSV, XLSX, JSON Lines) as full snapshots.

Each file is one object, named by its path relative to the YAML file. Its cursor is a content hash, so an
unchanged file costs one read to hash and yields nothing; a changed file is read again completely and
reconciled by `live_ids`, so rows deleted from the file disappear from state too. The hash also covers this
source's config: after a mapping change the same file is read again under the new mapping.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import structlog
from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..context import RunContext
from ..errors import ConfigError
from ..mappers.fields import DEFAULT_DATE_FORMATS, ObjectMapping, fields_for_kind
from ..mappers.files import (
    FILE_KEY,
    ID_KEY,
    IDENTITY_FIELDS,
    LINE_KEY,
    FileRowSpec,
    JoinKey,
    map_file_row,
    row_id_base,
)
from ..schema import Fact, FactKind
from .base import Batch, SourceConfigBase
from .file_formats import ROW_ERROR, detect_format, read_rows, scan_file

log = structlog.get_logger(__name__)

CHUNK_ROWS = 5000
GONE = "absent"  # cursor of a file that matched once and no longer exists
DELIMITER_ALIASES = {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ",", "pipe": "|"}


class FileSourceConfig(SourceConfigBase):
    type: Literal["file"]
    default_role: ClassVar[str] = "marketing"  # enrichment files are marketing signals unless `role: sales`
    path: str  # relative to the YAML file; glob characters read every match
    format: Literal["auto", "csv", "xlsx", "jsonl"] = "auto"
    encoding: str = "auto"
    delimiter: str = "auto"
    sheet: str | None = None
    kind: FactKind = FactKind.ENRICHMENT
    join: JoinKey = "email"
    id_column: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    value_maps: dict[str, dict[str, Any]] = Field(default_factory=dict)
    constants: dict[str, Any] = Field(default_factory=dict)
    date_formats: list[str] = Field(default_factory=lambda: list(DEFAULT_DATE_FORMATS))

    @field_validator("path")
    @classmethod
    def _path_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("path must name a file (or a glob)")
        return value.strip()

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(
                f"unknown encoding '{value}' (auto, utf-8, utf-8-sig, cp1252, latin-1, …)"
            ) from None

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        value = DELIMITER_ALIASES.get(value, value)
        if value != "auto" and (len(value) != 1 or value in '"\r\n'):
            raise ValueError(f"delimiter must be auto or one character such as ; , | or tab, not {value!r}")
        return value

    @field_validator("date_formats")
    @classmethod
    def _some_formats(cls, value: list[str]) -> list[str]:
        if not value or any("%" not in fmt for fmt in value):
            raise ValueError("date_formats needs strptime formats such as '%d-%m-%Y'")
        return value

    @field_validator("fields")
    @classmethod
    def _fields_fit_kind(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # `kind` and `join` are declared before `fields`, so they are validated already (absent if invalid).
        kind, join = info.data.get("kind"), info.data.get("join")
        known = set(fields_for_kind(kind)) | set(IDENTITY_FIELDS) if kind else None
        problems = []
        for src, target in value.items():
            if not target or not target.strip():
                problems.append(f"{src}: needs a schema field name")
            elif known is not None and not target.startswith(("extra.", "xref.")) and target not in known:
                problems.append(
                    f"{src}: '{target}' is not a {kind} field (known: {', '.join(sorted(known))})"
                )
        targets = list(value.values())
        problems += [
            f"more than one column maps to {name}" for name in IDENTITY_FIELDS if targets.count(name) > 1
        ]
        if join and join not in targets:
            problems.append(f"join: {join} needs a column mapped to {join}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("value_maps", "constants")
    @classmethod
    def _targets_fit_kind(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is None:
            return value
        known = fields_for_kind(kind)
        unknown = [t for t in value if not t.startswith(("extra.", "xref.")) and t not in known]
        if unknown:
            raise ValueError(f"{', '.join(repr(t) for t in unknown)}: not a {kind} field")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FileSourceConfig:
        if self.sheet is not None and self.format not in ("auto", "xlsx"):
            raise ValueError("sheet only applies to xlsx files")
        self.object_mapping()  # the generic mapping's own checks, in case they grow beyond the ones above
        return self

    def object_mapping(self) -> ObjectMapping:
        """The value mapping; on rows that are not persons the identity columns only join: they drop out."""
        fields = dict(self.fields)
        if self.kind is not FactKind.PERSON:
            fields = {src: target for src, target in fields.items() if target not in IDENTITY_FIELDS}
        return ObjectMapping(
            kind=self.kind,
            fields=fields,
            value_maps=self.value_maps,
            constants=self.constants,
            date_formats=self.date_formats,
        )

    def column_for(self, target: str) -> str | None:
        return next((src for src, mapped in self.fields.items() if mapped == target), None)

    def fingerprint(self) -> str:
        """A short hash of everything that changes how rows map (not `enabled`)."""
        data = self.model_dump(mode="json", exclude={"enabled"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class FileSource:
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
    def from_config(cls, cfg: FileSourceConfig, env: Any) -> FileSource:
        base = getattr(getattr(env, "app", None), "base_dir", None)
        return cls(cfg, Path(base) if base else Path.cwd())

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
