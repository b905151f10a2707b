"""The segment file writer: one CSV per segment for marketers, plus who joined and left in the last change.

`<segment>.csv` always holds the whole segment in a stable order, replaced atomically (a reader never sees a
half-written file) and only when its bytes would differ, so a run without changes touches nothing.
`<segment>.changes.csv` lists the members added and removed by the latest run that changed the segment.
Defaults suit Excel in NL/BE: `;` opens as columns directly, the UTF-8 BOM makes accents show.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import structlog

from ...context import PluginEnv, RunContext
from ...errors import ConfigError, RecordError
from ...plan import LabelChange, Member, SegmentChange
from ...plugin_config import WriterConfigBase
from ...schema import RecordRef
from ..base import Writer, WriteResult, expect_config
from .config import CHANGES_SUFFIX, FORMULA_START, SegmentFilesConfig, check_segment_name, segment_file_stem

log = structlog.get_logger(__name__)


class SegmentFilesWriter(Writer):
    # every segment every run: member details may change without a membership change
    publishes_snapshots = True

    def __init__(self, cfg: SegmentFilesConfig, base_dir: Path) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.base_dir = base_dir
        directory = Path(cfg.directory).expanduser()
        self.directory = directory if directory.is_absolute() else base_dir / directory
        if self.directory.exists() and not self.directory.is_dir():
            raise ConfigError(f"targets.{cfg.name}.directory: {self.directory} exists and is not a directory")

    @classmethod
    def from_config(cls, cfg: WriterConfigBase, env: PluginEnv) -> SegmentFilesWriter:
        cfg = expect_config(cfg, SegmentFilesConfig)
        for name in env.segments_for(cfg.name):
            check_segment_name(name)
        return cls(cfg, env.base_dir)

    def path_for(self, segment: str) -> Path:
        return self.directory / f"{segment_file_stem(segment)}.csv"

    def changes_path_for(self, segment: str) -> Path:
        return self.directory / f"{segment_file_stem(segment)}{CHANGES_SUFFIX}"

    # -- writer contract ----------------------------------------------------------------------------------

    def write_labels(self, changes: list[LabelChange], ctx: RunContext) -> WriteResult:
        return WriteResult()

    def sync_segment(self, change: SegmentChange, ctx: RunContext) -> WriteResult:
        path = self.path_for(change.segment)
        changes_path = self.changes_path_for(change.segment)
        shown = self._shown(path)
        note = f"{change.segment}: +{len(change.adds)} -{len(change.removes)} → {shown}"
        if ctx.dry_run:
            return WriteResult(notes=[f"{note} (dry run: not written)"])

        content = self._render(self.cfg.columns, ((None, m) for m in sorted_members(change.members)))
        delta = [("added", m) for m in sorted_members(change.adds)]
        delta += [("removed", m) for m in sorted_members(change.removes)]
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            wrote = write_if_changed(path, content)
            # No adds or removes: the previous changes file still tells what the last change was.
            if delta:
                write_if_changed(changes_path, self._render(["change", *self.cfg.columns], delta))
        except OSError as exc:
            reason = f"cannot write {shown}: {exc.strerror or exc}"
            log.error("segment_files.write.failed", target=self.name, segment=change.segment, error=reason)
            failed = {
                m.person_key: RecordError(reason, code="WRITE_FAILED") for m in change.adds + change.removes
            }
            return WriteResult(failed=failed, notes=[f"{change.segment}: {reason}"])
        log.info(
            "segment_files.sync",
            target=self.name,
            segment=change.segment,
            members=len(change.members),
            adds=len(change.adds),
            removes=len(change.removes),
            rewritten=wrote,
        )
        return WriteResult(notes=[note if wrote or delta else f"{note} (unchanged)"])

    def estimate_calls(self, labels: int, adds: int, removes: int) -> int:
        return 0

    def close(self) -> None:
        return None

    # -- rendering ----------------------------------------------------------------------------------------

    def _render(self, columns: Sequence[str], rows: Iterable[tuple[str | None, Member]]) -> bytes:
        out = io.StringIO(newline="")
        writer = csv.writer(out, delimiter=self.cfg.delimiter, lineterminator="\r\n")
        writer.writerow(columns)
        for change, member in rows:
            cells = [change if col == "change" else _cell(member, col) for col in columns]
            if self.cfg.escape_formulas:
                cells = [_defuse(cell) for cell in cells]
            writer.writerow(cells)
        return out.getvalue().encode(self.cfg.encoding, errors="replace")

    def _shown(self, path: Path) -> str:
        try:
            return path.relative_to(self.base_dir).as_posix()
        except ValueError:
            return str(path)


def sorted_members(members: Iterable[Member]) -> list[Member]:
    """Stable order: by e-mail (members without one last), then person key."""
    return sorted(members, key=lambda m: (m.email is None, (m.email or "").lower(), m.person_key))


def _cell(member: Member, column: str) -> str:
    if column == "refs":
        return " ".join(str(ref) for ref in sorted(member.refs, key=RecordRef.__str__))
    value = getattr(member, column)
    return "" if value is None else str(value)


def _defuse(cell: str | None) -> str | None:
    if cell and cell.startswith(FORMULA_START):
        return "'" + cell
    return cell


def write_if_changed(path: Path, content: bytes) -> bool:
    """Replace `path` with `content` atomically, unless it already holds exactly these bytes."""
    mode = 0o644  # mkstemp's 0600 would hide the file from the marketers it is for
    with contextlib.suppress(FileNotFoundError):
        current = path.stat()
        mode = stat.S_IMODE(current.st_mode)
        if current.st_size == len(content) and path.read_bytes() == content:
            return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)
    return True


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened, hence best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        # some filesystems cannot fsync a directory; the rename still stands
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
