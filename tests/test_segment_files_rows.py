"""The segment-file row index as stored (rows.py): compact, read back exactly, refused when damaged."""

from __future__ import annotations

import pytest

from connector.writers.segment_files.rows import RowIndex


@pytest.mark.parametrize(
    ("keys", "emails", "sizes"),
    [
        ([], [], []),
        (["P1", "P2", "P3"], ["ann@acme.example", None, ""], [10, 20, 4_000_000]),
        (["Pé"], ["zoë@exämple.test"], [7]),
    ],
)
def test_an_index_reads_back_as_it_was_written(
    keys: list[str], emails: list[str | None], sizes: list[int]
) -> None:
    index = RowIndex("ab12", 9, keys, emails, sizes)
    data = index.to_bytes()
    assert data.startswith(b"connector segment rows")  # not JSON: read and written at C speed
    back = RowIndex.from_bytes(data)
    assert (back.file, back.header, back.keys, back.emails, back.sizes) == ("ab12", 9, keys, emails, sizes)


def test_an_index_whose_keys_hold_a_separator_is_kept_as_json() -> None:
    index = RowIndex("ab12", 9, ["P\x001", "P2"], ["\x01", None], [1, 2])
    back = RowIndex.from_bytes(index.to_bytes())
    assert (back.keys, back.emails, back.sizes) == (["P\x001", "P2"], ["\x01", None], [1, 2])


def test_a_damaged_index_is_refused() -> None:
    data = RowIndex("ab12", 9, ["P1", "P2"], ["a@x.example", None], [10, 20]).to_bytes()
    for broken in (data[:-3], data + b"\x00", data.replace(b'"rows":2', b'"rows":3')):
        with pytest.raises(ValueError):
            RowIndex.from_bytes(broken)
