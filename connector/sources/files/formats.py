"""Readers for enrichment files: CSV, XLSX and JSON Lines, each yielding `(line_number, row)` lazily.

Line numbers are 1-based physical lines (CSV, JSONL) or sheet rows (XLSX), so a rejected row can be found in
an editor or a spreadsheet. A line that cannot be read as a row (malformed or non-UTF-8 JSON, JSON nested
deeper than `MAX_JSON_DEPTH`, a number beyond Python's digit limit, a repeated key, a CSV cell over 128 KiB,
more cells than the header) is yielded as `{ROW_ERROR: reason}` instead of stopping the file: the mapper
rejects it and the rest loads. Whole-file problems (no such sheet, undecodable bytes, UTF-16, duplicate
column names, not a workbook) are `ConfigError`s naming the file.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from ...errors import ConfigError

log = structlog.get_logger(__name__)

FileFormat = Literal["csv", "xlsx", "jsonl"]
ROW_ERROR = "__error__"  # key of a row that could not be read; its value is the reason
DELIMITERS = ";,\t|"
EXTENSIONS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
SNIFF_BYTES = 64 * 1024
SCAN_BLOCK = 1024 * 1024
# No real CSV cell (a name, a note, a date) comes near 128 KiB; one that does is a broken or hostile row.
MAX_CELL_CHARS = 128 * 1024
# What the csv module itself may buffer for one cell (process-wide setting, only ever raised): above
# MAX_CELL_CHARS so an oversized cell is read whole and rejected as its row, not the file's.
CSV_FIELD_LIMIT = 16 * 1024 * 1024
# JSON Lines rows are flat records; the mapper reads at most a dotted path or two into them.
MAX_JSON_DEPTH = 32
# Text in these encodings looks like cp1252 garbage with NULs to a UTF-8/cp1252 guess: say so instead.
WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
Row = dict[str, Any]


def detect_format(path: Path, configured: str = "auto") -> FileFormat:
    if configured != "auto":
        if configured not in ("csv", "xlsx", "jsonl"):
            raise ConfigError(f"{path}: unknown format '{configured}' (csv, xlsx, jsonl)")
        return configured  # type: ignore[return-value]
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise ConfigError(f"{path}: unknown extension '{path.suffix}'; set format: csv | xlsx | jsonl")
    return found


@dataclass(frozen=True)
class FileScan:
    sha256: str
    encoding: str | None  # None for binary formats (XLSX)


def scan_file(path: Path, fmt: FileFormat, encoding: str = "auto") -> FileScan:
    """Hash the file and settle its text encoding in one pass.

    The whole file is checked, not a sample: a cp1252 'é' on line 90,000 must not surface as a decode error
    after earlier chunks were already handed on. `auto` means UTF-8 (a BOM selects utf-8-sig), else cp1252.
    """
    digest = hashlib.sha256()
    text = fmt != "xlsx"
    # JSON Lines are UTF-8 by definition: a line that is not is rejected on its own (read_jsonl), the file
    # is never re-read as cp1252
    per_line = fmt == "jsonl" and encoding == "auto"
    candidates = ["utf-8"] if per_line else ["utf-8", "cp1252"] if encoding == "auto" else [encoding]
    decoders = {name: codecs.getincrementaldecoder(name)() for name in candidates} if text else {}
    failures: dict[str, str] = {}
    offset = 0
    head = b""
    try:
        with path.open("rb") as fh:
            while block := fh.read(SCAN_BLOCK):
                digest.update(block)
                if len(head) < 4:
                    head += block[:4]
                for name, decoder in list(decoders.items()):
                    try:
                        decoder.decode(block)
                    except UnicodeDecodeError as exc:
                        failures[name] = f"byte {offset + exc.start}: {exc.reason}"
                        del decoders[name]
                offset += len(block)
        for name, decoder in list(decoders.items()):
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                failures[name] = f"byte {offset + exc.start}: {exc.reason}"
                del decoders[name]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not text:
        return FileScan(digest.hexdigest(), None)
    wide = next((name for bom, name in WIDE_BOMS if head.startswith(bom)), None)
    if wide is not None and encoding == "auto":
        raise ConfigError(
            f"{path}: {wide} text (byte order mark): save it as UTF-8, or set encoding: {wide.lower()}"
        )
    if per_line:
        return FileScan(digest.hexdigest(), "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8")
    if not decoders:
        tried = "; ".join(f"{name} fails at {where}" for name, where in failures.items())
        hint = "" if encoding != "auto" else " (set encoding: to the file's encoding)"
        raise ConfigError(f"{path}: cannot decode: {tried}{hint}")
    chosen = next(iter(decoders))
    if chosen == "utf-8" and head.startswith(codecs.BOM_UTF8):
        chosen = "utf-8-sig"
    return FileScan(digest.hexdigest(), chosen)


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a CSV sample: csv.Sniffer checked against the header line, else the header's count."""
    lines = sample.splitlines()
    header = next((line for line in lines if line.strip()), "")
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        sample = sample[: max(sample.rfind("\n"), sample.rfind("\r"))]  # drop a line cut off mid-way
    try:
        found = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        found = ""
    if found and found in header:
        return found
    # The sniffer gives up on one-line files and on ragged rows; the header row alone still tells.
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_rows(
    path: Path, fmt: FileFormat, *, encoding: str | None, delimiter: str = "auto", sheet: str | None = None
) -> Iterator[tuple[int, Row]]:
    if fmt == "csv":
        return read_csv(path, encoding=encoding or "utf-8", delimiter=delimiter)
    if fmt == "xlsx":
        return read_xlsx(path, sheet=sheet)
    return read_jsonl(path, encoding=encoding or "utf-8")


def read_csv(path: Path, *, encoding: str, delimiter: str = "auto") -> Iterator[tuple[int, Row]]:
    """Rows of a CSV file keyed by its (first non-empty) header row; cell values stay strings."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    with path.open("r", encoding=encoding, newline="") as fh:
        if delimiter == "auto":
            delimiter = sniff_delimiter(fh.read(SNIFF_BYTES))
            fh.seek(0)
        log.debug("files.csv.open", file=str(path), encoding=encoding, delimiter=delimiter)
        reader = csv.reader(fh, delimiter=delimiter)
        header: list[str] | None = None
        named = False  # every header cell has a name: a row is the header zipped with its cells
        last_line = 0
        while True:
            line = (
                last_line + 1
            )  # line_num counts physical lines, so a quoted multi-line cell keeps its start
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # the module gives up on this row and carries on at the next physical line
                last_line = reader.line_num
                yield line, {ROW_ERROR: f"unreadable CSV row: {exc}"}
                continue
            last_line = reader.line_num
            # per row of a file of millions: the checks run at C speed, the cell-by-cell form only on a hit
            if not "".join(cells).strip():  # no cell holds more than white space
                continue
            if cells and max(map(len, cells)) > MAX_CELL_CHARS:
                oversized = next(i for i, cell in enumerate(cells, 1) if len(cell) > MAX_CELL_CHARS)
                yield line, {ROW_ERROR: f"cell {oversized} is over {MAX_CELL_CHARS // 1024} KiB"}
                continue
            if header is None:
                header = _header(path, cells)
                named = all(header)
                continue
            if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header) :]):
                yield line, {ROW_ERROR: f"{len(cells)} cells but the header has {len(header)}"}
                continue
            if named:
                yield line, dict(zip(header, cells, strict=False))
            else:
                yield line, {name: value for name, value in zip(header, cells, strict=False) if name}


def read_xlsx(path: Path, *, sheet: str | None = None) -> Iterator[tuple[int, Row]]:
    """Rows of one sheet (the first unless named), streamed in read-only mode; dates come as datetimes."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zip, XML and openpyxl's own errors: any of them means the file is unreadable
        raise ConfigError(f"{path}: not a readable XLSX workbook: {type(exc).__name__}: {exc}") from None
    number = 0
    try:
        if sheet is None:
            ws = book.worksheets[0]
        elif sheet in book.sheetnames:
            ws = book[sheet]
        else:
            raise ConfigError(f"{path}: no sheet '{sheet}' (sheets: {', '.join(book.sheetnames)})")
        header: list[str] | None = None
        for number, values in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue
            if header is None:
                header = _header(path, ["" if v is None else str(v) for v in values])
                continue
            row = {name: _cell(value) for name, value in zip(header, values, strict=False) if name}
            yield number, row
    except ConfigError:
        raise
    except Exception as exc:
        # openpyxl converts cells while streaming (a date serial out of range raises OverflowError); the
        # stream cannot be resumed past it, so the file is unreadable
        raise ConfigError(
            f"{path}: not a readable XLSX workbook after row {number}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        book.close()


def _cell(value: Any) -> Any:
    # Excel stores every number as a float: an id typed as 12345 must not become "12345.0".
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dt.time):
        return value.isoformat()
    return value


def read_jsonl(path: Path, *, encoding: str) -> Iterator[tuple[int, Row]]:
    """One JSON object per line; a line that is not one becomes an error row, blank lines are skipped."""
    # surrogateescape: bytes the encoding refuses survive as lone surrogates, so one bad line is that
    # line's error instead of a decode error for the whole file
    with path.open("r", encoding=encoding, errors="surrogateescape", newline=None) as fh:
        for number, line in enumerate(fh, start=1):
            text = line.strip()
            if number == 1:
                text = text.lstrip("\ufeff")
            if not text:
                continue
            value, problem = _json_object(text)
            yield number, ({ROW_ERROR: problem} if problem else value)


def _json_object(text: str) -> tuple[Row, str | None]:
    """The line as a JSON object, or the reason it is not one."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return {}, f"not UTF-8 (at column {exc.start + 1})"
    try:
        value = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        return {}, f"invalid JSON: {exc.msg} at column {exc.colno}"
    except ValueError as exc:  # an int beyond Python's digit limit, NaN / Infinity, a repeated key
        return {}, f"invalid JSON: {str(exc).split(';')[0]}"
    except RecursionError:
        return {}, f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels"
    if not isinstance(value, dict):
        return {}, f"a JSON {type(value).__name__} where an object was expected"
    if _depth(value) > MAX_JSON_DEPTH:
        return {}, f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels"
    return value, None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in pairs:
        if key in row:
            raise ValueError(f"key {key!r} twice in one object")  # which one was meant cannot be known
        row[key] = value
    return row


def _depth(value: Any) -> int:
    """Nesting depth without recursion (the row is checked before anything walks it recursively)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _header(path: Path, cells: list[str]) -> list[str]:
    names = [cell.strip().lstrip("\ufeff").strip() for cell in cells]
    first: dict[str, int] = {}
    for index, name in enumerate(names, start=1):
        if name in first:
            # a mapping cannot say which of the two it means: guessing would load the wrong values
            raise ConfigError(
                f"{path}: columns {first[name]} and {index} are both named '{name}' (rename one of them)"
            )
        if name:
            first[name] = index
    return names
