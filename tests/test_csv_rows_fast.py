"""read_csv's per-row checks run at C speed (a joined strip, a max of lengths, a zip when every column has a
name): on random files they keep, skip and refuse exactly the rows the cell-by-cell rules did."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import ConfigError
from connector.sources.files import formats
from connector.sources.files.formats import ROW_ERROR, read_csv

LIMIT = 6  # MAX_CELL_CHARS for the test, so over-long cells are easy to make


def reference(text: str) -> list[tuple[int, dict[str, Any]]]:
    """The rules as they read cell by cell before (header checks aside: both share _header)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";")
    out: list[tuple[int, dict[str, Any]]] = []
    header: list[str] | None = None
    last = 0
    for cells in reader:
        line, last = last + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        oversized = next((i for i, cell in enumerate(cells, 1) if len(cell) > LIMIT), None)
        if oversized is not None:
            out.append((line, {ROW_ERROR: f"cell {oversized} is over {LIMIT // 1024} KiB"}))
            continue
        if header is None:
            header = [cell.strip().lstrip("\ufeff").strip() for cell in cells]
            continue
        if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header) :]):
            out.append((line, {ROW_ERROR: f"{len(cells)} cells but the header has {len(header)}"}))
            continue
        out.append((line, {name: value for name, value in zip(header, cells, strict=False) if name}))
    return out


cells = st.one_of(
    st.sampled_from(["", " ", "\t", "\u00a0", "a", " b ", "x" * (LIMIT + 1), "1,5", "é"]),
    st.text(alphabet="ab \t", max_size=LIMIT + 2),
)
rows = st.lists(cells, min_size=0, max_size=5)
header = st.lists(st.sampled_from(["a", "b", "c", "", " "]), min_size=1, max_size=4, unique=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header, st.lists(rows, max_size=8))
def test_rows_read_as_the_cell_by_cell_rules(
    monkeypatch: pytest.MonkeyPatch, names: list[str], body: list[list[str]]
) -> None:
    monkeypatch.setattr(formats, "MAX_CELL_CHARS", LIMIT)
    text = "".join(";".join(row) + "\n" for row in [names, *body])
    with tempfile.TemporaryDirectory(prefix="cpu-rows-") as folder:
        path = Path(folder) / "rows.csv"
        path.write_text(text, encoding="utf-8", newline="")
        try:
            got = list(read_csv(path, encoding="utf-8", delimiter=";"))
        except ConfigError:
            return  # a header naming one column twice (" " and "" both name none): refused before any row
    assert got == reference(text)
