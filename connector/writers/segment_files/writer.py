"""The segment file writer: one file per segment for marketers, plus the log of who joined and left.

`<segment>.csv` (or `.xlsx`, `format:`) always holds the whole segment in a stable order, with the configured
`columns:`, replaced atomically (a reader never sees a half-written file) and only when its bytes would differ,
so a run without changes touches nothing. `<segment>.changes.csv|xlsx` is a history: one row per add or remove
with the run's date and id, kept for `history_days` (history.py). Defaults suit Excel in NL/BE: `;` opens as
columns directly, the UTF-8 BOM makes accents show; `excel: english` suits English locales (tables.py).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import itertools
import os
import stat
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import structlog

from ...atomic_file import replace_atomically
from ...context import PluginEnv, RunContext
from ...erasure_config import CrmAction
from ...errors import ConfigError, RecordError
from ...plan import LabelChange, Member, Reorderable, SegmentChange
from ...plugin_config import WriterConfigBase
from ...schema import RecordRef
from ..base import ErasureRequest, ErasureResult, Writer, WriteResult, expect_config
from .config import CHANGES_STEM_SUFFIX, SegmentFilesConfig, check_segment_name, segment_file_stem
from .history import file_date, history_header, merged_history
from .published import Published, PublishedFiles, digest, file_digest
from .rows import RowEncoder, RowIndex, RowIndexes, RowKey, full_render, patchable_encoding, patched
from .tables import Cell, csv_text, is_formula_like, read_csv, read_xlsx, render_csv, render_xlsx

log = structlog.get_logger(__name__)


class SegmentFilesWriter(Writer):
    # every segment every run: member details may change without a membership change
    publishes_snapshots = True

    def __init__(self, cfg: SegmentFilesConfig, base_dir: Path, state_dir: Path | None = None) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.base_dir = base_dir
        # what the last runs wrote (published.py): an unchanged segment is then not rendered again
        self.published = PublishedFiles.beside_state(state_dir, cfg.name)
        # where each member's row sits in those files (rows.py): a touched segment is patched, not re-rendered
        where = self.published.path
        self.rows = RowIndexes(None if where is None else where.with_name(f"{where.stem}.rows"))
        self._config_digest = digest(cfg.model_dump_json().encode("utf-8"))
        directory = Path(cfg.directory).expanduser()
        self.directory = directory if directory.is_absolute() else base_dir / directory
        if self.directory.exists() and not self.directory.is_dir():
            raise ConfigError(f"targets.{cfg.name}.directory: {self.directory} exists and is not a directory")
        self.segments: tuple[str, ...] = ()  # the configured segments written here (erasure visits each file)

    @classmethod
    def from_config(cls, cfg: WriterConfigBase, env: PluginEnv) -> SegmentFilesWriter:
        cfg = expect_config(cfg, SegmentFilesConfig)
        for name in env.segments_for(cfg.name):
            check_segment_name(name)
        writer = cls(cfg, env.base_dir, env.state_dir)
        writer.segments = tuple(env.segments_for(cfg.name))
        return writer

    def path_for(self, segment: str) -> Path:
        return self.directory / f"{segment_file_stem(segment)}{self.cfg.suffix}"

    def changes_path_for(self, segment: str) -> Path:
        return self.directory / f"{segment_file_stem(segment)}{CHANGES_STEM_SUFFIX}{self.cfg.suffix}"

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

        columns = self.cfg.columns
        day = ctx.started_at.astimezone(dt.UTC).date()
        keep_from = day - dt.timedelta(days=self.cfg.history_days)
        delta = _Delta(day, ctx.run_id, change, self._cells)
        before = self.published.get(path)
        if before is not None and before.config != self._config_digest:
            before = None
        unchanged = before is not None and not change.touched and not delta
        try:
            # the file still holds what was published, and nobody in it changed: rendering gives the same bytes
            if unchanged and before is not None and file_digest(path) == before.file:
                file_sha, wrote, patch = before.file, False, False
            else:
                self.published.drop(path)
                self.directory.mkdir(parents=True, exist_ok=True)
                content, rows, patch = self._segment_bytes(change, before, path, delta)
                file_sha, wrote = digest(content), write_if_changed(path, content)
                if rows is None:
                    self.rows.drop(path)
                else:
                    rows.file = file_sha
                    self.rows.save(path, rows)
            changes_sha, oldest = (before.changes, before.oldest) if before is not None else (None, None)
            # every run, not only with adds or removes: rows past the retention leave even when nothing changes
            if delta or changes_path.exists():
                kept = (
                    unchanged
                    and before is not None
                    and (before.oldest is None or before.oldest >= keep_from)
                    and before.changes is not None
                    and file_digest(changes_path) == before.changes
                )
                if not kept:
                    self.published.drop(path)
                    appended = self._appended_log(changes_path, before, delta, keep_from)
                    if appended is not None:
                        log_bytes, oldest = appended
                    else:
                        # the rows kept from the log, then this run's, walked once (a first run adds everyone)
                        kept_rows = self._history(changes_path, columns, keep_from)
                        header = history_header(columns)
                        log_bytes = self._log_render(f"{change.segment} changes", header, kept_rows, delta)
                        days = [d for d in (_oldest_day(kept_rows), delta.oldest()) if d is not None]
                        oldest = min(days, default=None)
                    write_if_changed(changes_path, log_bytes)
                    changes_sha = digest(log_bytes)
            else:
                changes_sha, oldest = None, None
            self.published.set(path, Published(file_sha, changes_sha, oldest, self._config_digest))
        except OSError as exc:
            reason = f"cannot write {shown}: {exc.strerror or exc}"
            log.error("segment_files.write.failed", target=self.name, segment=change.segment, error=reason)
            failed = {
                m.person_key: RecordError(reason, code="WRITE_FAILED")
                for m in (*change.adds, *change.removes)
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
            patched=patch,
        )
        return WriteResult(notes=[note if wrote or delta else f"{note} (unchanged)"])

    def estimate_calls(self, labels: int, adds: int, removes: int) -> int:
        return 0

    def close(self) -> None:
        return None

    def erase(self, request: ErasureRequest, action: CrmAction, ctx: RunContext) -> ErasureResult:
        """The files are connector's own output: the people's rows leave every segment file and change log,
        whatever the CRM action. A file that cannot be rewritten raises OSError: the erasure stops before the
        state forgets who to look for, and `forget` can simply be run again."""
        keys, emails = set(request.person_keys), set(request.emails)
        removed = sum(self.forget_rows(segment, keys, emails) for segment in self.segments)
        return ErasureResult(done={"file_rows": removed} if removed else {})

    def forget_rows(self, segment: str, keys: set[str], emails: set[str]) -> int:
        """Erasure: drop every row of `segment`'s file and change log whose cells hold one of these person
        keys or e-mails (whichever `columns:` shows); returns how many rows went."""
        # the row index names people by key and e-mail, erased ones among them: gone, the next run renders whole
        self.rows.drop(self.path_for(segment))
        removed = 0
        for path, title in (
            (self.path_for(segment), segment),
            (self.changes_path_for(segment), f"{segment} changes"),
        ):
            if not path.exists():
                continue
            header: list[str]
            rows: Sequence[Mapping[str, Cell]]
            if self.cfg.format == "xlsx":
                header, rows = read_xlsx(path)
            else:
                header, rows = read_csv(path, self.cfg.csv_delimiter, self.cfg.encoding)
            kept = [
                row for row in rows if not any(_names_one_of(cell, keys, emails) for cell in row.values())
            ]
            if len(kept) != len(rows):
                removed += len(rows) - len(kept)
                write_if_changed(
                    path, self._render(title, header, [[row.get(n) for n in header] for row in kept])
                )
        return removed

    # -- rendering ----------------------------------------------------------------------------------------

    def _cells(self, member: Member) -> list[Cell]:
        if self.cfg.format == "csv":
            # text now, with formulas defused here: rows read back from the change log are text already
            return list(self._csv_cells(member))
        return [_cell(member, col) for col in self.cfg.columns]

    def _csv_cells(self, member: Member) -> list[str]:
        return [self._csv_cell(_cell(member, col)) for col in self.cfg.columns]

    def _segment_bytes(
        self, change: SegmentChange, before: Published | None, path: Path, delta: _Delta
    ) -> tuple[bytes, RowIndex | None, bool]:
        """The segment file's new bytes, its row index (CSV in a stateless encoding) and whether it was
        patched: the rows of members added, removed or described differently, when the diff step names them
        and the file is still what was published; else every member rendered."""
        columns = self.cfg.columns
        if self.cfg.format != "csv" or not patchable_encoding(self.cfg.encoding):
            cells = [self._cells(m) for m in sorted_members(change.members)]
            return self._render(change.segment, columns, cells), None, False
        if before is not None and change.redescribed is not None:
            done = self._patched(change, change.redescribed, before, path)
            if done is not None:
                return (*done, True)
        rows: Iterable[tuple[RowKey, list[str]]] = (
            (_row_key(m), self._csv_cells(m)) for m in sorted_members(change.members)
        )
        if delta and len(change.adds) == len(change.members):
            # everyone is an add (a first run): the change log's rows are made in this same walk; walking the
            # adds again would describe every member a second time (the full path from the state)
            rows = delta.logging(rows, RowEncoder(self.cfg.csv_delimiter, self.cfg.encoding), columns)
        content, index = self._render_indexed(change.segment, columns, rows)
        return content, index, False

    def _patched(
        self, change: SegmentChange, redescribed: Sequence[Member], before: Published, path: Path
    ) -> tuple[bytes, RowIndex] | None:
        try:
            content = path.read_bytes()
        except OSError:
            return None
        if digest(content) != before.file:
            return None  # deleted or saved over by hand: rendered whole, as it was published
        index = self.rows.load(path, before.file)
        if index is None or index.content_size() != len(content):
            return None
        fresh = [*change.adds, *redescribed]
        drop = {m.person_key for m in (*fresh, *change.removes)}
        out, rows = patched(
            content,
            index,
            self.cfg.columns,
            drop,
            [(_row_key(m), self._csv_cells(m)) for m in fresh],
            self.cfg.csv_delimiter,
            self.cfg.encoding,
        )
        if len(rows) != len(change.members):  # the file and the state disagree on who is in: start over
            log.warning(
                "segment_files.patch.mismatch",
                target=self.name,
                segment=change.segment,
                rows=len(rows),
                members=len(change.members),
            )
            return None
        return out, rows

    def _appended_log(
        self, path: Path, before: Published | None, delta: _Delta, keep_from: dt.date
    ) -> tuple[bytes, dt.date | None] | None:
        """The change log with this run's rows appended, when nothing in it falls out of retention and it
        still holds what was published (then a full merge gives the same bytes); None otherwise."""
        if (
            not delta
            or before is None
            or before.changes is None
            or (before.oldest is not None and before.oldest < keep_from)
            or self.cfg.format != "csv"
            or not patchable_encoding(self.cfg.encoding)
        ):
            return None
        try:
            content = path.read_bytes()
        except OSError:
            return None
        if digest(content) != before.changes:
            return None
        encoder = RowEncoder(self.cfg.csv_delimiter, self.cfg.encoding)
        encoder.header(history_header(self.cfg.columns))
        added = delta.encoded(encoder, self.cfg.decimal_mark)
        days = [d for d in (before.oldest, delta.oldest()) if d is not None]
        return content + added, min(days, default=None)

    def _csv_cell(self, cell: Cell) -> str:
        text = csv_text(cell, self.cfg.decimal_mark)
        if self.cfg.escape_formulas and isinstance(cell, str) and is_formula_like(text):
            return "'" + text
        return text

    def _render(self, title: str, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
        if self.cfg.format == "xlsx":
            return render_xlsx(header, rows, title, self.cfg.escape_formulas)
        texts = ([csv_text(cell, self.cfg.decimal_mark) for cell in row] for row in rows)
        return render_csv(header, texts, self.cfg.csv_delimiter, self.cfg.encoding)

    def _log_render(
        self, title: str, header: Sequence[str], kept: Sequence[Sequence[Cell]], delta: _Delta
    ) -> bytes:
        """The change log rendered whole: the rows kept from it, then this run's (`_render`'s bytes)."""
        if delta.added is None:
            return self._render(title, header, itertools.chain(kept, delta))
        # the adds were encoded row by row as the segment file was walked (CSV in a stateless encoding: a
        # row's bytes depend on its own cells only, rows.py), so the rest is encoded row by row too
        encoder = RowEncoder(self.cfg.csv_delimiter, self.cfg.encoding)
        mark = self.cfg.decimal_mark
        head = encoder.header(header)
        rows = b"".join(encoder.row([csv_text(cell, mark) for cell in row]) for row in kept)
        return head + rows + delta.encoded(encoder, mark)

    def _render_indexed(
        self, title: str, header: Sequence[str], rows: Iterable[tuple[RowKey, Sequence[str]]]
    ) -> tuple[bytes, RowIndex]:
        """A CSV segment file rendered whole (the bytes `_render` gives), with its row index."""
        return full_render(header, rows, self.cfg.csv_delimiter, self.cfg.encoding)

    def _history(self, path: Path, columns: Sequence[str], keep_from: dt.date) -> list[list[Cell]]:
        """The rows of the change log still within retention (this run's rows follow them: `_Delta`)."""
        previous: Sequence[Mapping[str, Cell]] = []
        if path.exists():
            try:
                if self.cfg.format == "xlsx":
                    previous = read_xlsx(path)[1]
                else:
                    previous = read_csv(path, self.cfg.csv_delimiter, self.cfg.encoding)[1]
            except (ValueError, KeyError, zipfile.BadZipFile, csv.Error) as exc:
                # saved over by another program, say: keep it for whoever wants it, and start a new log
                aside = path.with_name(f"{path.name}.unreadable-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}")
                os.replace(path, aside)
                log.warning(
                    "segment_files.changes.unreadable",
                    file=self._shown(path),
                    moved_to=aside.name,
                    error=str(exc),
                )
                return merged_history(history_header(columns), [], keep_from, [], keep_from)
        fallback = file_date(path) if previous else keep_from
        return merged_history(history_header(columns), previous, fallback, [], keep_from)

    def _shown(self, path: Path) -> str:
        try:
            return path.relative_to(self.base_dir).as_posix()
        except ValueError:
            return str(path)


class _Delta:
    """This run's change-log rows (added, then removed, each in file order), made as they are walked: on a
    first run every member is an add, and the full path describes them from the state a batch at a time."""

    def __init__(
        self, day: dt.date, run_id: int | None, change: SegmentChange, cells: Callable[[Member], list[Cell]]
    ) -> None:
        self.day, self.run_id, self.change, self.cells = day, run_id, change, cells
        # the "added" rows as a CSV log encodes them, when `logging` made them during the segment file's walk
        self.added: bytearray | None = None

    def __len__(self) -> int:
        return len(self.change.adds) + len(self.change.removes)

    def __iter__(self) -> Iterator[list[Cell]]:
        for kind, group in (("added", self.change.adds), ("removed", self.change.removes)):
            for m in sorted_members(group):
                yield [self.day, self.run_id, kind, *self.cells(m)]

    def logging(
        self, rows: Iterable[tuple[RowKey, list[str]]], encoder: RowEncoder, columns: Sequence[str]
    ) -> Iterator[tuple[RowKey, list[str]]]:
        """`rows` (the segment file's, every member an add, in file order: the adds' own order) passed on,
        each also encoded as its "added" log row; `added` is set once they have all been walked."""
        encoder.header(history_header(columns))  # the encoder's state after the header: no second BOM
        head = [csv_text(self.day, "."), csv_text(self.run_id, "."), "added"]
        out = bytearray()
        for key, cells in rows:
            out += encoder.row([*head, *cells])
            yield key, cells
        self.added = out

    def encoded(self, encoder: RowEncoder, mark: str) -> bytes:
        """This run's rows as `encoder` (past the log's header) encodes them: the adds made during the file's
        walk when there, else described and encoded now."""
        if self.added is None:
            return b"".join(encoder.row([csv_text(cell, mark) for cell in row]) for row in self)
        removed = (
            encoder.row([csv_text(cell, mark) for cell in (self.day, self.run_id, "removed", *self.cells(m))])
            for m in sorted_members(self.change.removes)
        )
        return bytes(self.added) + b"".join(removed)

    def oldest(self) -> dt.date | None:
        """The day of every row, when there is one (a change log's oldest day)."""
        return self.day if len(self) else None


def sorted_members(members: Iterable[Member]) -> Iterable[Member]:
    """Stable order: by e-mail (members without one last), then person key. The full path's members come
    from the state a batch at a time, sorted there (full_plan.StateMembers): walked, never gathered."""
    if isinstance(members, Reorderable):
        return members.ordered("files")
    return sorted(members, key=lambda m: (m.email is None, (m.email or "").lower(), m.person_key))


def _row_key(member: Member) -> RowKey:
    return RowKey(member.person_key, None if member.email is None else member.email.lower())


def _oldest_day(history: Sequence[Sequence[Cell]]) -> dt.date | None:
    """The oldest day of a change log's rows (its first column, a date once merged_history has run)."""
    days = [row[0] for row in history if isinstance(row[0], dt.date)]
    return min(days, default=None)


def _cell(member: Member, column: str) -> Cell:
    if column == "refs":
        return " ".join(str(ref) for ref in sorted(member.refs, key=RecordRef.__str__))
    value = getattr(member, column) if column in MEMBER_FIELDS else member.values.get(column)
    if value is None or isinstance(value, str | int | float | bool | dt.date):
        return value
    return str(value)


def _names_one_of(cell: object, keys: set[str], emails: set[str]) -> bool:
    if not isinstance(cell, str):
        return False
    text = cell.strip().lstrip("'")  # a CSV cell may carry the formula-defusing quote
    return text in keys or text.lower() in emails


# what every `Member` carries itself (also when built without `values`)
MEMBER_FIELDS = frozenset({"person_key", "email", "first_name", "last_name", "company", "stage", "label"})


def write_if_changed(path: Path, content: bytes) -> bool:
    """Replace `path` with `content` atomically, unless it already holds exactly these bytes."""
    mode = 0o644  # mkstemp's 0600 would hide the file from the marketers it is for
    with contextlib.suppress(FileNotFoundError):
        current = path.stat()
        mode = stat.S_IMODE(current.st_mode)
        if current.st_size == len(content) and path.read_bytes() == content:
            return False
    replace_atomically(path, content, mode=mode, durable=True)
    return True
