from __future__ import annotations

import csv
import datetime as dt
import io
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connector.context import PluginEnv, RunContext
from connector.errors import ConfigError
from connector.plan import LabelChange, Member, SegmentChange
from connector.registry import writer_plugins
from connector.schema import RecordRef
from connector.writers.segment_files.config import SegmentFilesConfig
from connector.writers.segment_files.writer import SegmentFilesWriter


def ctx(dry_run: bool = False, run_id: int | None = 1, days_later: int = 0) -> RunContext:
    started = dt.datetime(2026, 1, 15, 6, tzinfo=dt.UTC) + dt.timedelta(days=days_later)
    return RunContext(as_of=started.date(), started_at=started, dry_run=dry_run, run_id=run_id)


def member(key: str, email: str | None, first: str = "Ann", stage: str = "prospect") -> Member:
    return Member(
        person_key=key,
        refs=(RecordRef("sf", "Contact", key.upper()),),
        email=email,
        first_name=first,
        last_name="Müller",
        company="Acme BV",
        stage=stage,
        label=stage.title(),
    )


def writer(
    base: Path, segments: dict[str, tuple[str, ...]] | None = None, **overrides: Any
) -> SegmentFilesWriter:
    data = {"name": "marketing_files", "type": "segment_files", "directory": "out/segments", **overrides}
    cfg = SegmentFilesConfig.model_validate(data)
    return SegmentFilesWriter.from_config(cfg, PluginEnv(base_dir=base, segment_targets=segments or {}))


def rows(path: Path, delimiter: str = ";") -> list[dict[str, str]]:
    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


ANN = member("p1", "ann@x.nl", "Ann")
BOB = member("p2", "Bob@x.nl", "Bob")
NOMAIL = member("p0", None, "Nomail")
ANN2 = member("p3", "ann@x.nl", "Ann two")


def test_writes_members_in_stable_order_with_bom_and_semicolons(tmp_path: Path) -> None:
    w = writer(tmp_path)
    change = SegmentChange(
        "renewal", members=[NOMAIL, BOB, ANN2, ANN], adds=[NOMAIL, BOB, ANN2, ANN], removes=[]
    )
    result = w.sync_segment(change, ctx())
    path = tmp_path / "out" / "segments" / "renewal.csv"
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfemail;first_name;last_name;company;stage;label;person_key\r\n")
    assert [r["person_key"] for r in rows(path)] == ["p1", "p3", "p2", "p0"]
    assert rows(path)[0] == {
        "email": "ann@x.nl",
        "first_name": "Ann",
        "last_name": "Müller",
        "company": "Acme BV",
        "stage": "prospect",
        "label": "Prospect",
        "person_key": "p1",
    }
    assert result.notes == ["renewal: +4 -0 → out/segments/renewal.csv"]
    assert result.failed == {} and result.calls == 0
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)

    # the same members in another order give the same bytes
    shuffled = SegmentChange("renewal", members=[ANN, ANN2, NOMAIL, BOB], adds=[], removes=[])
    before = path.stat().st_mtime_ns
    os.utime(path, ns=(before - 10**9, before - 10**9))
    again = w.sync_segment(shuffled, ctx())
    assert path.read_bytes() == data
    assert path.stat().st_mtime_ns == before - 10**9  # byte-identical: not rewritten
    assert again.notes == ["renewal: +0 -0 → out/segments/renewal.csv (unchanged)"]


def test_changes_file_is_a_history_with_run_id_and_date_kept_for_history_days(tmp_path: Path) -> None:
    w = writer(tmp_path, history_days=30)
    changes = tmp_path / "out" / "segments" / "winback.changes.csv"
    w.sync_segment(SegmentChange("winback", [ANN, BOB], adds=[ANN, BOB], removes=[]), ctx(run_id=7))
    first = [("2026-01-15", "7", "added", "p1"), ("2026-01-15", "7", "added", "p2")]
    assert [(r["date"], r["run_id"], r["change"], r["person_key"]) for r in rows(changes)] == first
    assert changes.read_bytes().startswith(b"\xef\xbb\xbfdate;run_id;change;email;first_name;")

    # a later change adds its rows below: the log is not overwritten
    w.sync_segment(
        SegmentChange("winback", [BOB, NOMAIL], adds=[NOMAIL], removes=[ANN]), ctx(run_id=8, days_later=20)
    )
    second = [("2026-02-04", "8", "added", ""), ("2026-02-04", "8", "removed", "ann@x.nl")]
    assert [(r["date"], r["run_id"], r["change"], r["email"]) for r in rows(changes)] == [
        ("2026-01-15", "7", "added", "ann@x.nl"),
        ("2026-01-15", "7", "added", "Bob@x.nl"),
        *second,
    ]
    main = tmp_path / "out" / "segments" / "winback.csv"
    assert [r["person_key"] for r in rows(main)] == ["p2", "p0"]

    # a run without adds or removes, all rows still within 30 days: touches nothing
    stamp = (changes.stat().st_mtime_ns, main.stat().st_mtime_ns)
    w.sync_segment(SegmentChange("winback", [NOMAIL, BOB], adds=[], removes=[]), ctx(run_id=9, days_later=30))
    assert (changes.stat().st_mtime_ns, main.stat().st_mtime_ns) == stamp

    # 31 days after the first run its rows are past the retention and leave, also in a run that changes nothing
    w.sync_segment(
        SegmentChange("winback", [NOMAIL, BOB], adds=[], removes=[]), ctx(run_id=10, days_later=31)
    )
    assert [(r["date"], r["run_id"], r["change"], r["email"]) for r in rows(changes)] == second


def test_changes_file_from_before_the_history_is_taken_over(tmp_path: Path) -> None:
    directory = tmp_path / "out" / "segments"
    directory.mkdir(parents=True)
    old = directory / "winback.changes.csv"
    old.write_bytes("\ufeffchange;email;person_key\r\nremoved;old@x.nl;p8\r\n".encode())
    then = dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC).timestamp()
    os.utime(old, (then, then))
    w = writer(tmp_path, columns=["email", "person_key"])
    w.sync_segment(SegmentChange("winback", [ANN], adds=[ANN], removes=[]), ctx(run_id=3))
    assert [tuple(r.values()) for r in rows(old)] == [
        ("2026-01-10", "", "removed", "old@x.nl", "p8"),  # dated by the file, no run id known
        ("2026-01-15", "3", "added", "ann@x.nl", "p1"),
    ]


def test_replace_is_atomic_and_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = writer(tmp_path)
    w.sync_segment(SegmentChange("renewal", members=[ANN], adds=[ANN], removes=[]), ctx())
    path = tmp_path / "out" / "segments" / "renewal.csv"
    old = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    result = w.sync_segment(SegmentChange("renewal", members=[ANN, BOB], adds=[BOB], removes=[ANN]), ctx())
    assert path.read_bytes() == old  # readers still see the complete old file
    assert set(result.failed) == {"p1", "p2"}
    assert "No space left on device" in str(result.failed["p2"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["renewal.changes.csv", "renewal.csv"]

    monkeypatch.undo()
    w.sync_segment(SegmentChange("renewal", members=[ANN, BOB], adds=[BOB], removes=[]), ctx())
    assert [r["person_key"] for r in rows(path)] == ["p1", "p2"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["renewal.changes.csv", "renewal.csv"]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    w = writer(tmp_path)
    result = w.sync_segment(
        SegmentChange("renewal", members=[ANN], adds=[ANN], removes=[]), ctx(dry_run=True)
    )
    assert not (tmp_path / "out").exists()
    assert result.notes == ["renewal: +1 -0 → out/segments/renewal.csv (dry run: not written)"]


def test_formulas_are_defused_and_columns_configurable(tmp_path: Path) -> None:
    evil = member("p9", "=HYPERLINK(1)@x.nl", "=cmd|' /C calc'!A0")
    w = writer(tmp_path, delimiter=",", encoding="utf-8", columns=["first_name", "email", "refs"])
    w.sync_segment(SegmentChange("s1", members=[evil], adds=[evil], removes=[]), ctx())
    data = (tmp_path / "out" / "segments" / "s1.csv").read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert rows(tmp_path / "out" / "segments" / "s1.csv", ",") == [
        {"first_name": "'=cmd|' /C calc'!A0", "email": "'=HYPERLINK(1)@x.nl", "refs": "sf:Contact:P9"}
    ]


def test_takes_no_labels(tmp_path: Path) -> None:
    w = writer(tmp_path)
    assert w.source is None and w.label_objects == frozenset()
    change = LabelChange("p1", RecordRef("sf", "Lead", "1"), None, "Lead")
    assert w.write_labels([change], ctx()).failed == {}
    assert w.estimate_calls(10, 20, 30) == 0
    assert not (tmp_path / "out").exists()
    w.close()


def test_segment_names_become_safe_file_names(tmp_path: Path) -> None:
    mine = ("marketing_files",)
    w = writer(tmp_path, segments={"Nurture newsletter": mine, "../x": mine, "Klanten België": mine})
    # separators, spaces and accents never reach the file system as they are
    for name, file_name in {
        "Nurture newsletter": "Nurture-newsletter.csv",
        "../x": "x.csv",
        "a/b": "a-b.csv",
        "a\\b": "a-b.csv",
        ".hidden": "hidden.csv",
        "trailing.": "trailing.csv",
        "Klanten België": "Klanten-Belgie.csv",
        "x" * 80: "x" * 64 + ".csv",
    }.items():
        assert w.path_for(name).name == file_name
        assert w.path_for(name).parent == w.directory
    assert w.changes_path_for("Nurture newsletter").name == "Nurture-newsletter.changes.csv"
    # names that were file names already keep them (existing segment files stay where they are)
    for kept in ("renewal", "win-back_2", "q1.renewal", "x", "Renewal2027"):
        assert w.path_for(kept).name == f"{kept}.csv"
    # nothing usable left, or it would read as another segment's changes file
    for bad in ("", "...", "???", "a.changes", "A.Changes", "b.changes "):
        with pytest.raises(ConfigError, match="no usable file name"):
            writer(tmp_path).path_for(bad)
    with pytest.raises(ConfigError, match=r"segment '\?\?' gives no usable file name"):
        writer(tmp_path, segments={"renewal": mine, "??": mine})
    # a bad name bound for another target is that target's business
    writer(tmp_path, segments={"a.changes": ("sf_campaigns",)})


def test_directory_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("not a directory")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        writer(tmp_path, directory="out")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"directory": " "}, "directory must name a directory"),
        ({"delimiter": ";;"}, "delimiter must be one character"),
        ({"encoding": "klingon"}, "unknown encoding"),
        ({"columns": ["email", "phone"]}, "columns"),
        ({"columns": ["email", "email"]}, "twice"),
        ({"columns": []}, "at least one"),
        ({"path": "x"}, "path"),
    ],
)
def test_config_errors(overrides: dict[str, Any], message: str) -> None:
    data = {"name": "t", "type": "segment_files", "directory": "out", **overrides}
    with pytest.raises(ValidationError, match=message):
        SegmentFilesConfig.model_validate(data)


def test_registry_entry() -> None:
    assert writer_plugins()["segment_files"].config is SegmentFilesConfig


def rich(key: str, email: str, **values: Any) -> Member:
    base = member(key, email)
    return Member(**{**base.__dict__, "values": {"email": email, **values}})


CARLA = rich(
    "p4",
    "carla@x.nl",
    contract_end=dt.date(2026, 3, 31),
    competitor="=TeleCorp",
    opportunity_amount=1234.5,
    opportunity_won=True,
    web_visits=3,
    **{"extra.segment_note": "@vip"},
)
COLUMNS = ["email", "contract_end", "competitor", "opportunity_amount", "opportunity_won", "web_visits"]


def test_columns_choose_any_schema_field_typed_for_the_excel_locale(tmp_path: Path) -> None:
    w = writer(tmp_path, columns=[*COLUMNS, "extra.segment_note", "label"])
    w.sync_segment(SegmentChange("renewal", [CARLA, ANN], adds=[CARLA], removes=[]), ctx())
    assert rows(tmp_path / "out" / "segments" / "renewal.csv") == [
        {
            "email": "ann@x.nl",
            "contract_end": "",
            "competitor": "",
            "opportunity_amount": "",
            "opportunity_won": "",
            "web_visits": "",
            "extra.segment_note": "",
            "label": "Prospect",
        },
        {
            "email": "carla@x.nl",
            "contract_end": "2026-03-31",  # ISO: a date in Excel in every locale
            "competitor": "'=TeleCorp",
            "opportunity_amount": "1234,5",  # the decimal comma of the European locales the ';' is for
            "opportunity_won": "true",
            "web_visits": "3",
            "extra.segment_note": "'@vip",
            "label": "Prospect",
        },
    ]

    english = writer(tmp_path, directory="en", excel="english", columns=COLUMNS)
    english.sync_segment(SegmentChange("renewal", [CARLA], adds=[CARLA], removes=[]), ctx())
    text = (tmp_path / "en" / "renewal.csv").read_bytes()
    assert text.startswith(b"\xef\xbb\xbfemail,contract_end,competitor,opportunity_amount,")
    assert rows(tmp_path / "en" / "renewal.csv", ",")[0]["opportunity_amount"] == "1234.5"
    # an explicit delimiter still wins; names are accepted for the characters
    assert writer(tmp_path, excel="english", delimiter="semicolon").cfg.csv_delimiter == ";"
    assert writer(tmp_path, delimiter="comma").cfg.csv_delimiter == ","


def test_xlsx_has_a_frozen_header_typed_cells_and_no_formulas(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    w = writer(tmp_path, format="xlsx", columns=[*COLUMNS, "first_name"])
    evil = rich("p9", "evil@x.nl", competitor='=HYPERLINK("http://x")')
    result = w.sync_segment(
        SegmentChange("Win back", [CARLA, evil], adds=[CARLA, evil], removes=[]), ctx(run_id=4)
    )
    path = tmp_path / "out" / "segments" / "Win-back.xlsx"
    assert result.notes == ["Win back: +2 -0 → out/segments/Win-back.xlsx"]

    ws = load_workbook(path).active
    assert ws.freeze_panes == "A2"
    assert [c.value for c in ws[1]] == [*COLUMNS, "first_name"]
    assert all(c.font.bold for c in ws[1])
    carla = {h: c for h, c in zip(COLUMNS, ws[2], strict=False)}
    assert carla["contract_end"].is_date and carla["contract_end"].value == dt.datetime(2026, 3, 31)
    assert carla["contract_end"].number_format == "yyyy-mm-dd"
    assert (carla["opportunity_amount"].data_type, carla["opportunity_amount"].value) == ("n", 1234.5)
    assert (carla["web_visits"].data_type, carla["web_visits"].value) == ("n", 3)
    assert (carla["opportunity_won"].data_type, carla["opportunity_won"].value) == ("b", True)
    # text that looks like a formula stays the CRM's text, stored as text, quote-prefixed as Excel does
    for row, text in ((2, "=TeleCorp"), (3, '=HYPERLINK("http://x")')):
        cell = ws.cell(row=row, column=3)
        assert (cell.value, cell.data_type, cell.quotePrefix) == (text, "s", True)
    assert ws.cell(row=3, column=7).value == "Ann"  # first_name: a column without values in the mapping

    log = load_workbook(tmp_path / "out" / "segments" / "Win-back.changes.xlsx").active
    assert log.freeze_panes == "A2"
    assert [c.value for c in log[1]][:4] == ["date", "run_id", "change", "email"]
    assert [(r[0].value, r[1].value, r[2].value) for r in log.iter_rows(min_row=2)] == [
        (dt.datetime(2026, 1, 15), 4, "added"),
        (dt.datetime(2026, 1, 15), 4, "added"),
    ]


def test_xlsx_unchanged_segment_is_not_rewritten_and_history_grows(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    w = writer(tmp_path, format="xlsx", columns=["email", "contract_end"])
    w.sync_segment(SegmentChange("renewal", [CARLA], adds=[CARLA], removes=[]), ctx(run_id=1))
    main = tmp_path / "out" / "segments" / "renewal.xlsx"
    log = tmp_path / "out" / "segments" / "renewal.changes.xlsx"
    before = (main.read_bytes(), log.read_bytes())
    stamp = (main.stat().st_mtime_ns - 10**9, log.stat().st_mtime_ns - 10**9)
    os.utime(main, ns=(stamp[0], stamp[0]))
    os.utime(log, ns=(stamp[1], stamp[1]))

    again = w.sync_segment(
        SegmentChange("renewal", [CARLA], adds=[], removes=[]), ctx(run_id=2, days_later=1)
    )
    assert again.notes[0].endswith("(unchanged)")
    assert (main.read_bytes(), log.read_bytes()) == before
    assert (main.stat().st_mtime_ns, log.stat().st_mtime_ns) == stamp

    w.sync_segment(SegmentChange("renewal", [ANN], adds=[ANN], removes=[CARLA]), ctx(run_id=3, days_later=2))
    history = [tuple(c.value for c in r[:4]) for r in load_workbook(log).active.iter_rows(min_row=2)]
    assert history == [
        (dt.datetime(2026, 1, 15), 1, "added", "carla@x.nl"),
        (dt.datetime(2026, 1, 17), 3, "added", "ann@x.nl"),
        (dt.datetime(2026, 1, 17), 3, "removed", "carla@x.nl"),
    ]
    # the date column of read-back rows stays a real date, contract_end too
    ws = load_workbook(log).active
    assert ws.cell(row=2, column=1).is_date and ws.cell(row=2, column=5).is_date


def test_unknown_column_names_the_closest_field() -> None:
    data = {"name": "t", "type": "segment_files", "directory": "out", "columns": ["email", "contract_ends"]}
    with pytest.raises(
        ValidationError, match=r"'contract_ends' is not a column.*did you mean 'contract_end'"
    ):
        SegmentFilesConfig.model_validate(data)
    with pytest.raises(ValidationError, match="change log's own column"):
        SegmentFilesConfig.model_validate({**data, "columns": ["email", "run_id"]})
    with pytest.raises(ValidationError, match="format"):
        SegmentFilesConfig.model_validate({**data, "columns": ["email"], "format": "ods"})


def test_an_unreadable_change_log_is_moved_aside_and_a_new_one_started(tmp_path: Path) -> None:
    w = writer(tmp_path, format="xlsx", columns=["email"])
    directory = tmp_path / "out" / "segments"
    directory.mkdir(parents=True)
    (directory / "renewal.changes.xlsx").write_bytes(b"not a zip at all")
    result = w.sync_segment(SegmentChange("renewal", [ANN], adds=[ANN], removes=[]), ctx(run_id=5))
    assert result.failed == {}
    (aside,) = directory.glob("renewal.changes.xlsx.unreadable-*")
    assert aside.read_bytes() == b"not a zip at all"
    from openpyxl import load_workbook

    log = load_workbook(directory / "renewal.changes.xlsx").active
    assert [c.value for c in log[2]] == [dt.datetime(2026, 1, 15), 5, "added", "ann@x.nl"]
