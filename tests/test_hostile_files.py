"""Hostile enrichment files: one bad row is one rejected row (file, line, reason), kept and retried; the
rest of the file loads. Whole-file problems (duplicate columns, UTF-16) are a config error naming the file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from spine_helpers import AS_OF, CONFIG_YAML, CONTRACTS_CSV, VISITS_JSONL, Project

from connector.outcome import EXIT_CONFIG, EXIT_PARTIAL
from connector.pipeline import Runner, Summary
from connector.sources.files.formats import read_csv, read_jsonl

pytestmark = pytest.mark.reliability("Hostile input")

MAX_CELL_CHARS = 128 * 1024
AFTER = "hank@newco.example;TeleCorp;01-04-2027\n"  # a good row after the bad one: it must still load


def run(project: Project, as_of: dt.date = AS_OF) -> Summary:
    return Runner(project.config()).execute("run", as_of)


def people(project: Project) -> set[str]:
    """E-mails of the people the last run kept."""
    rows = project.query("SELECT merge_key FROM identity WHERE merge_key LIKE 'email:%'")
    return {key[len("email:") :] for (key,) in rows}


def assert_one_rejected_and_retried(project: Project, where: str, *words: str) -> None:
    summary = run(project)
    assert (summary.outcome, summary.exit_code) == ("partial", EXIT_PARTIAL), summary.errors
    ((reason,),) = project.query("SELECT reason FROM rejected")
    assert reason.startswith(f"{where}: "), reason
    for word in words:
        assert word in reason
    summary = run(project)  # kept in state and tried again, still rejected, still not a crash
    assert (summary.exit_code, summary.rejected["pending"]) == (EXIT_PARTIAL, 1)
    ((attempts,),) = project.query("SELECT attempts FROM rejected")
    assert attempts == 2


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (f"gert@bad.example;{'x' * (MAX_CELL_CHARS + 1)};01-03-2027\n", ("cell 2", "over 128 KiB")),
        ("gert\x07@bad.example;TeleCorp;01-03-2027\n", ("is not an e-mail address", "U+0007")),
        ("gert\x00@bad.example;TeleCorp;01-03-2027\n", ("is not an e-mail address", "U+0000")),
        ('=HYPERLINK("x")@y.nl;TeleCorp;01-03-2027\n', ("is not an e-mail address",)),
    ],
    ids=["cell-over-128KiB", "control-character", "nul", "hyperlink-formula"],
)
def test_a_hostile_csv_row_is_one_rejected_row(project: Project, row: str, words: tuple[str, ...]) -> None:
    project.write("data/contracts.csv", CONTRACTS_CSV + row + AFTER)
    assert_one_rejected_and_retried(project, "data/contracts.csv:4", *words)
    assert {"frank@newco.example", "hank@newco.example"} <= people(project)  # before and after it


def test_a_quoted_cell_over_the_limit_spanning_lines_is_one_rejected_row(project: Project) -> None:
    cell = '"' + ("y" * 1000 + "\n") * 140 + '"'  # 140 KiB over 141 physical lines, one cell
    project.write("data/contracts.csv", CONTRACTS_CSV + f"gert@bad.example;{cell};01-03-2027\n" + AFTER)
    assert_one_rejected_and_retried(project, "data/contracts.csv:4", "over 128 KiB")
    assert "hank@newco.example" in people(project)


VISITS_WITH_SCORE = CONFIG_YAML.replace(
    "fields: {email: email, visits: web_visits, last: last_visit}",
    "fields: {email: email, visits: web_visits, last: last_visit, score: review_score}",
)
# a UTF-8 e-mail after the bad line: read as cp1252 (the old fallback) it would be another address
GOOD_VISIT = '{"email": "ivö@newco.example", "visits": 2, "score": 7.5}\n'.encode()


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b'{"email": "gus@x.example", "visits": ' + b"1" * 5000 + b"}", ("invalid JSON", "4300 digits")),
        (b'{"email": "gus@x.example", "visits": "' + b"1" * 5000 + b'"}', ("visits -> web_visits",)),
        (b'{"email": "gus@x.example", "visits": "' + b"9" * 400 + b'"}', ("visits -> web_visits",)),
        (b'{"email": "gus@x.example", "visits": ' + b"9" * 400 + b"}", ("visits -> web_visits",)),
        (b'{"email": "gus@x.example", "score": NaN}', ("invalid JSON", "NaN")),
        (b'{"email": "gus@x.example", "score": "NaN"}', ("score -> review_score", "not a finite number")),
        (b'{"email": "gus@x.example", "score": "-Infinity"}', ("score -> review_score",)),
        (b'{"email": "gus@x.example", "score": 1e999}', ("score -> review_score", "not a finite number")),
        (b'{"email": "gus@x.example", "visits": ' + b"[" * 5000 + b"]" * 5000 + b"}", ("nested",)),
        (b'{"email": "gus@x.example", "last": "caf\xe9"}', ("not UTF-8",)),
        (b'{"email": "gus@x.example", "email": "other@x.example"}', ("key 'email' twice",)),
    ],
    ids=[
        "5000-digit-number",
        "5000-digit-string",
        "400-digit-string",
        "400-digit-number",
        "json-NaN",
        "NaN-string",
        "Infinity-string",
        "1e999",
        "nested-5000-deep",
        "invalid-utf8",
        "duplicate-key",
    ],
)
def test_a_hostile_jsonl_line_is_one_rejected_row(
    project: Project, line: bytes, words: tuple[str, ...]
) -> None:
    project.write("connector.yaml", VISITS_WITH_SCORE)
    (project.root / "data/visits.jsonl").write_bytes(VISITS_JSONL.encode() + line + b"\n" + GOOD_VISIT)
    assert_one_rejected_and_retried(project, "data/visits.jsonl:3", *words)
    assert {"ann@acme.example", "ivö@newco.example"} <= people(project)


def test_duplicate_column_names_are_a_config_error_naming_the_file(project: Project) -> None:
    project.write(
        "data/contracts.csv", "E-mail;Provider;E-mail;Einddatum\nbob@globex.example;T;x@y.nl;01-03-2027\n"
    )
    summary = run(project)
    assert summary.exit_code == EXIT_CONFIG
    (error,) = summary.errors
    assert "contracts.csv" in error and "columns 1 and 3 are both named 'E-mail'" in error


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_or_utf32_with_a_bom_is_a_config_error_naming_the_file(project: Project, encoding: str) -> None:
    text = "\ufeff" + CONTRACTS_CSV if encoding != "utf-16" else CONTRACTS_CSV  # utf-16 writes its own BOM
    (project.root / "data/contracts.csv").write_bytes(text.encode(encoding))
    summary = run(project)
    assert summary.exit_code == EXIT_CONFIG
    (error,) = summary.errors
    assert "contracts.csv" in error and "UTF-" in error and "byte order mark" in error


def test_utf16_is_read_when_configured(project: Project) -> None:
    project.write(
        "connector.yaml",
        CONFIG_YAML.replace("path: data/contracts.csv", "path: data/contracts.csv\n    encoding: utf-16"),
    )
    (project.root / "data/contracts.csv").write_bytes(CONTRACTS_CSV.encode("utf-16"))
    summary = run(project)
    assert summary.exit_code == 0, summary.errors
    assert "frank@newco.example" in people(project)


def test_csv_reader_yields_the_oversized_cell_as_an_error_row_and_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("a;b\n1;" + "x" * (200 * 1024) + "\n2;ok\n", encoding="utf-8")
    rows = list(read_csv(path, encoding="utf-8", delimiter=";"))
    assert rows == [(2, {"__error__": "cell 2 is over 128 KiB"}), (3, {"a": "2", "b": "ok"})]


def test_a_cell_beyond_what_the_csv_module_takes_is_an_error_row_too(tmp_path: Path) -> None:
    # past the raised csv.field_size_limit the module itself refuses; that too is one row, and reading goes on
    import csv

    path = tmp_path / "huge.csv"
    path.write_text("a;b\n1;" + "x" * (csv.field_size_limit() + 1) + "\n2;ok\n", encoding="utf-8")
    rows = list(read_csv(path, encoding="utf-8", delimiter=";"))
    assert rows[0][0] == 2 and "__error__" in rows[0][1]
    assert rows[1] == (3, {"a": "2", "b": "ok"})


def test_jsonl_reader_keeps_going_after_every_kind_of_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    path.write_bytes(b"[[[[" * 3000 + b"\n" + b"\xff\xfe\n" + b'{"a": 1e5}\n')
    rows = list(read_jsonl(path, encoding="utf-8"))
    assert [n for n, _ in rows] == [1, 2, 3]
    assert "__error__" in rows[0][1] and "__error__" in rows[1][1]
    assert rows[2] == (3, {"a": 1e5})
