"""Tables as marketers open them: rows of typed cells rendered as CSV or XLSX bytes, and read back.

A cell is text, a number, a truth value, a date or empty. CSV turns each into text the chosen Excel locale reads
back as the same type (ISO dates, the locale's decimal mark); XLSX keeps the types (real date cells), with a
bold header row that stays in view (frozen panes) and a filter on it. Both are byte-identical for identical
rows, so a run that changes nothing rewrites nothing.

Formula safety: spreadsheets run a cell starting with = + - @ (and tab / CR) as a formula, and CRM data is not
trusted. In CSV such text gets a leading `'` (`escape_formulas`); in XLSX the cell is stored as text with the
quote prefix Excel itself sets when someone types `'=...`, so the value stays exactly as the CRM holds it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from .config import FORMULA_START

Cell = str | int | float | bool | dt.date | None
Row = Sequence[Cell]

DATE_FORMAT = "yyyy-mm-dd"
# XLSX is a zip whose entries carry a time stamp, and openpyxl stamps the document's properties with the time
# of saving: both are fixed so that the same rows give the same bytes (then the file is not rewritten).
ZIP_STAMP = (1980, 1, 1, 0, 0, 0)
DOC_STAMP = dt.datetime(2000, 1, 1, tzinfo=dt.UTC).replace(tzinfo=None)  # openpyxl takes naive UTC


def is_formula_like(text: str) -> bool:
    return text.startswith(FORMULA_START)


def csv_text(cell: Cell, decimal_mark: str) -> str:
    """How a cell reads in a CSV: ISO dates (Excel reads them in every locale), numbers with the locale's mark."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, dt.date):
        return cell.isoformat()
    if isinstance(cell, float):
        text = str(int(cell)) if cell.is_integer() else repr(cell)
        return text.replace(".", decimal_mark)
    return str(cell)


def render_csv(header: Sequence[str], rows: Iterable[Sequence[str]], delimiter: str, encoding: str) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding, errors="replace")


def read_csv(path: Path, delimiter: str, encoding: str) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a CSV this module wrote (text cells, as in the file)."""
    text = path.read_bytes().decode(encoding, errors="replace")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = [dict(row) for row in reader]
    return list(reader.fieldnames or []), rows


def render_xlsx(header: Sequence[str], rows: Iterable[Row], title: str, escape_formulas: bool) -> bytes:
    # openpyxl is imported where it is used: a CSV-only config never pays for it at start-up
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook()
    ws = wb.active
    ws.title = _sheet_title(title)
    ws.append(list(header))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row_number, row in enumerate(rows, start=2):
        for column, value in enumerate(row, start=1):
            if value is None:
                continue
            cell = ws.cell(row=row_number, column=column)
            if isinstance(value, str):
                # assigning a str starting with '=' would make openpyxl store a formula: set the type by hand
                cell.value = value
                cell.data_type = "s"
                if escape_formulas and is_formula_like(value):
                    cell.quotePrefix = True
            else:
                cell.value = value
                if isinstance(value, dt.date):
                    cell.number_format = DATE_FORMAT
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{ws.max_row}"
    for column, name in enumerate(header, start=1):
        ws.column_dimensions[get_column_letter(column)].width = max(12, len(name) + 4)
    wb.properties.created = wb.properties.modified = DOC_STAMP
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).write_data()  # not save_workbook: it stamps the time of saving
    return _fixed_zip_stamps(buffer.getvalue())


def read_xlsx(path: Path) -> tuple[list[str], list[dict[str, Cell]]]:
    """The header and rows of an XLSX this module wrote, typed (date cells as dates)."""
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        values = ws.iter_rows(values_only=True)
        header = [str(name) if name is not None else "" for name in next(values, ())]
        rows = [
            {name: _typed(value) for name, value in zip(header, row, strict=False)}
            for row in values
            if any(value is not None for value in row)
        ]
    finally:
        wb.close()
    return header, rows


def _typed(value: object) -> Cell:
    if isinstance(value, dt.datetime):  # openpyxl reads every date cell as a datetime
        return value.date()
    if value is None or isinstance(value, str | int | float | bool | dt.date):
        return value
    return str(value)


def _sheet_title(name: str) -> str:
    # Excel refuses these characters and more than 31 characters in a sheet's name
    cleaned = "".join("-" if ch in "[]:*?/\\" else ch for ch in name).strip("'")
    return cleaned[:31] or "segment"


def _fixed_zip_stamps(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dest:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_STAMP)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dest.writestr(fixed, source.read(info.filename))
    return out.getvalue()
