"""A segment's change log: one row per add or remove, with the run's date and id, kept for `history_days`.

The log is the `<segment>.changes.csv|xlsx` file itself (the writer has no other memory): each run reads the
rows it holds, drops those older than the retention, and appends its own adds and removes. Rows are matched to
columns by header name, so adding a column to `columns:` leaves older rows with that cell empty. A file from
before the log kept dates (`change;email;...`, only the last change) is taken over with its rows dated by the
file's own modification time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from .config import HISTORY_COLUMNS

C = TypeVar("C")


def merged_history(
    header: Sequence[str],
    previous: Sequence[Mapping[str, C]],
    fallback_date: dt.date,
    new_rows: Sequence[Sequence[C]],
    keep_from: dt.date,
) -> list[list[C | str | dt.date | None]]:
    """The log's rows after this run, oldest first: `previous` (rows read back, by header name) still within
    retention, then `new_rows` (already in `header` order). A previous row without a readable date counts as
    `fallback_date`."""
    kept: list[list[C | str | dt.date | None]] = []
    for row in previous:
        day = _date_of(row.get("date"), fallback_date)
        if day < keep_from:
            continue
        cells: list[C | str | dt.date | None] = [row.get(name) for name in header]
        cells[header.index("date")] = day
        kept.append(cells)
    kept.extend(list(row) for row in new_rows)
    return kept


def _date_of(value: object, fallback: dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return fallback
    return fallback


def file_date(path: Path) -> dt.date:
    """The day (UTC) a file was last written: the date of rows from a log that kept none."""
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC).date()


def history_header(columns: Sequence[str]) -> list[str]:
    return [*HISTORY_COLUMNS, *columns]
