from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import openpyxl
import pytest

from connector.errors import ConfigError
from connector.sources.files.formats import (
    ROW_ERROR,
    detect_format,
    read_csv,
    read_jsonl,
    read_rows,
    read_xlsx,
    scan_file,
    sniff_delimiter,
)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("delimiter", [";", ",", "\t", "|"])
def test_delimiter_is_detected(tmp_path: Path, delimiter: str) -> None:
    text = delimiter.join(["E-mail", "Naam", "Bedrag"]) + "\r\n"
    text += delimiter.join(["ann@x.nl", "Ann", "1.5"]) + "\r\n"
    text += delimiter.join(["bob@x.nl", "Bob", "2"]) + "\r\n"
    path = write(tmp_path, "a.csv", text.encode())
    rows = list(read_csv(path, encoding="utf-8"))
    assert rows == [
        (2, {"E-mail": "ann@x.nl", "Naam": "Ann", "Bedrag": "1.5"}),
        (3, {"E-mail": "bob@x.nl", "Naam": "Bob", "Bedrag": "2"}),
    ]


def test_semicolon_wins_over_decimal_commas_in_the_data() -> None:
    sample = "naam;bedrag;score\nJan;1,5;7,2\nPiet;2,5;8,1\nKees;3;9\n"
    assert sniff_delimiter(sample) == ";"


def test_single_line_sample_falls_back_to_the_header_count() -> None:
    assert sniff_delimiter("a;b;c") == ";"
    assert sniff_delimiter("a|b|c\n") == "|"
    assert sniff_delimiter("only_one_column\nx\n") == ","


def test_configured_delimiter_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"a,b;c\n1,2;3\n")
    assert list(read_csv(path, encoding="utf-8", delimiter=";")) == [(2, {"a,b": "1,2", "c": "3"})]


def test_utf8_with_bom_is_detected_and_the_bom_is_not_in_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "\ufeffE-mail;Naam\nann@x.nl;Zoë\n".encode())
    scan = scan_file(path, "csv")
    assert scan.encoding == "utf-8-sig"
    assert list(read_csv(path, encoding=scan.encoding)) == [(2, {"E-mail": "ann@x.nl", "Naam": "Zoë"})]


def test_utf8_without_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "E-mail;Naam\nann@x.nl;Müller €\n".encode())
    scan = scan_file(path, "csv")
    assert scan.encoding == "utf-8"
    assert next(read_csv(path, encoding=scan.encoding))[1]["Naam"] == "Müller €"


def test_cp1252_is_the_fallback(tmp_path: Path) -> None:
    # the non-ASCII bytes sit past the first megabyte: the whole file is checked, not a sample
    filler = "".join(f"p{i}@x.nl;Jansen\n" for i in range(80_000))
    path = write(tmp_path, "a.csv", ("E-mail;Naam\n" + filler + "m@x.nl;Müller €\n").encode("cp1252"))
    assert path.stat().st_size > 1024 * 1024
    scan = scan_file(path, "csv")
    assert scan.encoding == "cp1252"
    rows = list(read_csv(path, encoding=scan.encoding))
    assert rows[-1] == (80_002, {"E-mail": "m@x.nl", "Naam": "Müller €"})


def test_scan_hashes_the_whole_file(tmp_path: Path) -> None:
    data = b"a;b\n" + b"1;2\n" * 500_000
    path = write(tmp_path, "a.csv", data)
    assert scan_file(path, "csv").sha256 == hashlib.sha256(data).hexdigest()


def test_configured_encoding_that_does_not_fit_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "E-mail;Naam\nm@x.nl;Müller\n".encode("cp1252"))
    with pytest.raises(ConfigError, match=r"a\.csv: cannot decode: utf-8 fails at byte 20"):
        scan_file(path, "csv", "utf-8")


def test_bytes_no_candidate_decodes_are_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"E-mail;Naam\nm@x.nl;\x81\x8d\n")  # undefined in cp1252, invalid UTF-8
    with pytest.raises(ConfigError, match="set encoding"):
        scan_file(path, "csv")


def test_line_numbers_are_physical_lines(tmp_path: Path) -> None:
    data = b'\n\nE-mail;Notitie\nann@x.nl;"twee\nregels"\n\nbob@x.nl;kort\n'
    path = write(tmp_path, "a.csv", data)
    rows = list(read_csv(path, encoding="utf-8"))
    assert rows == [
        (4, {"E-mail": "ann@x.nl", "Notitie": "twee\nregels"}),
        (7, {"E-mail": "bob@x.nl", "Notitie": "kort"}),
    ]


def test_row_with_more_cells_than_the_header_is_an_error_row(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"a;b\n1;2;3\n4;5\n6\n")
    rows = list(read_csv(path, encoding="utf-8"))
    assert rows[0] == (2, {ROW_ERROR: "3 cells but the header has 2"})
    assert rows[1] == (3, {"a": "4", "b": "5"})
    assert rows[2] == (4, {"a": "6"})  # short rows load; the missing cells are simply empty


def test_a_duplicate_column_name_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    # which of the two columns a mapping means cannot be known; empty header cells may repeat
    path = write(tmp_path, "a.csv", b"a;b;;a;\n1;2;;3;\n")
    with pytest.raises(ConfigError, match=r"a\.csv: columns 1 and 4 are both named 'a'"):
        list(read_csv(path, encoding="utf-8"))


def test_csv_is_read_lazily(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"a;b\n" + b"1;2\n" * 1000)
    rows = read_csv(path, encoding="utf-8")
    assert next(rows) == (2, {"a": "1", "b": "2"})
    rows.close()  # type: ignore[attr-defined]


def make_xlsx(path: Path) -> None:
    book = openpyxl.Workbook()
    first = book.active
    first.title = "Contracten"
    first.append(["E-mail", "Provider", "Einddatum", "Klantnummer"])
    first.append(["ann@x.nl", "Eneco", dt.datetime(2026, 12, 31), 12345])
    first.append([None, None, None, None])
    first.append(["bob@x.nl", "Essent", "31-01-2027", 2.5])
    other = book.create_sheet("Bezoeken")
    other.append(["Mail", "Visits"])
    other.append(["cid@x.nl", 7])
    book.save(path)


def test_xlsx_first_sheet_with_dates_as_datetimes(tmp_path: Path) -> None:
    path = tmp_path / "c.xlsx"
    make_xlsx(path)
    rows = list(read_xlsx(path))
    assert rows == [
        (
            2,
            {
                "E-mail": "ann@x.nl",
                "Provider": "Eneco",
                "Einddatum": dt.datetime(2026, 12, 31),
                "Klantnummer": 12345,
            },
        ),
        (4, {"E-mail": "bob@x.nl", "Provider": "Essent", "Einddatum": "31-01-2027", "Klantnummer": 2.5}),
    ]


def test_xlsx_named_sheet_and_missing_sheet(tmp_path: Path) -> None:
    path = tmp_path / "c.xlsx"
    make_xlsx(path)
    assert list(read_xlsx(path, sheet="Bezoeken")) == [(2, {"Mail": "cid@x.nl", "Visits": 7})]
    with pytest.raises(ConfigError, match="no sheet 'Nope' \\(sheets: Contracten, Bezoeken\\)"):
        list(read_xlsx(path, sheet="Nope"))


def test_not_a_workbook_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "c.xlsx", b"E-mail;Naam\n")
    with pytest.raises(ConfigError, match="not a readable XLSX"):
        list(read_xlsx(path))


def test_jsonl_with_a_malformed_line(tmp_path: Path) -> None:
    data = b'{"email": "ann@x.nl", "visits": 3}\n\n{"email": "bob@x.nl", visits: 4}\n[1, 2]\n{"email": "cid@x.nl"}\n'
    path = write(tmp_path, "v.jsonl", data)
    rows = list(read_jsonl(path, encoding="utf-8"))
    assert rows[0] == (1, {"email": "ann@x.nl", "visits": 3})
    assert rows[1][0] == 3 and rows[1][1][ROW_ERROR].startswith("invalid JSON: Expecting property name")
    assert rows[2] == (4, {ROW_ERROR: "a JSON list where an object was expected"})
    assert rows[3] == (5, {"email": "cid@x.nl"})


def test_format_by_extension(tmp_path: Path) -> None:
    assert detect_format(Path("a.CSV")) == "csv"
    assert detect_format(Path("a.tsv")) == "csv"
    assert detect_format(Path("a.xlsx")) == "xlsx"
    assert detect_format(Path("a.jsonl")) == "jsonl"
    assert detect_format(Path("a.dat"), "csv") == "csv"
    with pytest.raises(ConfigError, match="set format"):
        detect_format(Path("a.dat"))


def test_read_rows_dispatches_on_format(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", b"a|b\n1|2\n")
    assert list(read_rows(path, "csv", encoding="utf-8")) == [(2, {"a": "1", "b": "2"})]
