"""A changed file costs what changed in it: rows the state already holds, unchanged, are not mapped again.

Each test runs the files-only project of spine_helpers through `Runner` and counts the calls of the file
mapper per source; a control copy of the project, whose row records are deleted before every run, reads every
row as before and must end with the same state.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spine_helpers import AS_OF, CONFIG_YAML, Project

from connector.context import PluginEnv, RunContext
from connector.mappers.files import FileRowSpec, map_file_row
from connector.pipeline import Runner, Summary
from connector.sources.files import source as file_source
from connector.sources.files.config import FileSourceConfig
from connector.sources.files.source import FileSource

CLOCK = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
HEADER = "email;first_name;last_name;company;status;opt_out;external_id"
STATUSES = ["New", "Working", "Qualified", "Nurture"]


def person(i: int, status: str | None = None) -> str:
    return f"p{i}@bench.example;F{i};L{i};C{i};{status or STATUSES[i % 4]};nee;"


def people_csv(rows: list[str]) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


@pytest.fixture
def mapped(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Calls of the file row mapper, per source name."""
    calls: Counter[str] = Counter()

    def counting(obj: str, raw: Any, spec: FileRowSpec) -> Any:
        calls[spec.source] += 1
        return map_file_row(obj, raw, spec)

    monkeypatch.setattr(file_source, "map_file_row", counting)
    return calls


def make(root: Path, rows: list[str]) -> Project:
    project = Project(root)
    project.write("connector.yaml", CONFIG_YAML)
    project.write("data/people.csv", people_csv(rows))
    project.write("data/contracts.csv", "E-mail;Provider;Einddatum\np1@bench.example;TeleCorp;01-03-2027\n")
    project.write("data/visits.jsonl", '{"email": "p2@bench.example", "visits": 3, "last": "2026-11-20"}\n')
    return project


def run(project: Project, mode: str = "run") -> Summary:
    return Runner(project.config(), clock=lambda: CLOCK).execute(mode, AS_OF)


def records(project: Project) -> list[Path]:
    return sorted((project.state_path.parent / "cache").glob("files-*.rows"))


def forget_records(project: Project) -> None:
    for path in records(project):
        path.unlink()


def facts(project: Project, source: str = "crm") -> list[tuple[Any, ...]]:
    return project.query(
        "SELECT object, record_id, hash FROM facts WHERE source=? ORDER BY object, record_id", source
    )


def pair(tmp_path: Path, rows: list[str]) -> tuple[Project, Project]:
    """The project under test and its control, which reads every row (its records deleted before each run)."""
    return make(tmp_path / "skip", rows), make(tmp_path / "full", rows)


def both(skip: Project, full: Project, mapped: Counter[str]) -> tuple[Summary, Counter[str]]:
    mapped.clear()
    summary = run(skip)
    calls = Counter(mapped)
    forget_records(full)
    control = run(full)
    assert facts(skip) == facts(full)
    assert summary.read == control.read
    assert summary.exit_code == control.exit_code
    assert skip.query("SELECT * FROM rejected") == full.query("SELECT * FROM rejected")
    assert skip.segment_files() == full.segment_files()
    return summary, calls


def test_a_changed_file_maps_only_its_changed_rows(tmp_path: Path, mapped: Counter[str]) -> None:
    rows = [person(i) for i in range(60)]
    skip, full = pair(tmp_path, rows)
    summary, calls = both(skip, full, mapped)
    assert calls["crm"] == 60 and summary.read["crm"]["records"] == 60

    rows[7] = person(7, "Qualified" if STATUSES[7 % 4] != "Qualified" else "New")
    rows[41] = person(41).replace(";C41;", ";Renamed;")
    skip.write("data/people.csv", people_csv(rows))
    full.write("data/people.csv", people_csv(rows))
    summary, calls = both(skip, full, mapped)
    # the other files did not change: not read at all, as before
    assert calls == Counter({"crm": 2})
    # the left-out rows count as read and unchanged, as they did when they were mapped and compared
    assert summary.read["crm"]["records"] == 60 and summary.read["crm"]["unchanged"] == 58
    assert summary.transitions  # the status change went through to a stage change


def test_a_row_deleted_or_moved_is_not_mapped_and_the_deleted_one_leaves_the_state(
    tmp_path: Path, mapped: Counter[str]
) -> None:
    rows = [person(i) for i in range(30)]
    skip, full = pair(tmp_path, rows)
    both(skip, full, mapped)
    assert ("data/people.csv", "p5@bench.example") in {f[:2] for f in facts(skip)}

    del rows[5]  # every row after it moves up one line: the same fact, so nothing to map
    rows.insert(0, rows.pop())  # and the last row moves to the top
    skip.write("data/people.csv", people_csv(rows))
    full.write("data/people.csv", people_csv(rows))
    summary, calls = both(skip, full, mapped)
    assert calls["crm"] == 0
    assert ("data/people.csv", "p5@bench.example") not in {f[:2] for f in facts(skip)}
    assert len(facts(skip)) == 29 and summary.read["crm"]["deleted"] == 1


def test_a_rejected_row_is_mapped_again_on_every_read_until_fixed(
    tmp_path: Path, mapped: Counter[str]
) -> None:
    rows = [person(i) for i in range(20)]
    rows[3] = "geen-mail;F3;L3;C3;New;nee;"  # no e-mail address: rejected
    skip, full = pair(tmp_path, rows)
    summary, _ = both(skip, full, mapped)
    assert summary.exit_code == 3 and summary.read["crm"]["rejected"] == 1

    rows[10] = person(10, "Qualified" if STATUSES[10 % 4] != "Qualified" else "New")
    rows.insert(0, person(99))  # the rejected row is now on another line
    skip.write("data/people.csv", people_csv(rows))
    full.write("data/people.csv", people_csv(rows))
    summary, calls = both(skip, full, mapped)
    # the kept rejection retried from the state, then the changed row, the new row and the rejected row read
    assert calls["crm"] == 1 + 3
    assert summary.exit_code == 3
    (reason,) = [r[0] for r in skip.query("SELECT reason FROM rejected WHERE system='crm'")]
    assert reason.startswith("data/people.csv:6:")  # its line now, as a full read says

    rows[4] = person(3)  # fixed
    skip.write("data/people.csv", people_csv(rows))
    full.write("data/people.csv", people_csv(rows))
    summary, calls = both(skip, full, mapped)
    assert calls["crm"] == 1 + 1  # the retry (still the old row) and the fixed row; nothing else
    assert summary.exit_code == 0 and skip.query("SELECT * FROM rejected") == []


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "garbage", "deleted"])
def test_a_damaged_or_missing_record_means_a_full_read(
    tmp_path: Path, mapped: Counter[str], damage: str
) -> None:
    rows = [person(i) for i in range(25)]
    skip, full = pair(tmp_path, rows)
    both(skip, full, mapped)
    (record,) = [p for p in records(skip) if p.stat().st_size > 25 * 16]  # people.csv's, 25 digests
    data = record.read_bytes()
    if damage == "truncated":
        record.write_bytes(data[:-20])
    elif damage == "flipped":
        record.write_bytes(data[:-40] + bytes([data[-40] ^ 1]) + data[-39:])
    elif damage == "empty":
        record.write_bytes(b"")
    elif damage == "garbage":
        record.write_bytes(b"\x00\xff" * 300)
    else:
        record.unlink()

    rows[2] = person(2).replace(";C2;", ";Other;")
    skip.write("data/people.csv", people_csv(rows))
    full.write("data/people.csv", people_csv(rows))
    _, calls = both(skip, full, mapped)
    assert calls["crm"] == 25

    # the full read wrote a sound record again: the next change costs its own rows only
    rows[9] = person(9).replace(";C9;", ";Other;")
    skip.write("data/people.csv", people_csv(rows))
    full.write("data/people.csv", people_csv(rows))
    _, calls = both(skip, full, mapped)
    assert calls["crm"] == 1


def test_a_config_change_maps_every_row_and_the_next_change_only_its_own(
    tmp_path: Path, mapped: Counter[str]
) -> None:
    rows = [person(i) for i in range(20)]
    skip, full = pair(tmp_path, rows)
    both(skip, full, mapped)
    for project in (skip, full):
        project.write("connector.yaml", CONFIG_YAML.replace("Nurture: nurture", "Nurture: working"))
    rows[1] = person(1).replace(";C1;", ";Other;")
    for project in (skip, full):
        project.write("data/people.csv", people_csv(rows))
    _, calls = both(skip, full, mapped)
    assert calls["crm"] == 20  # a new mapping: every row maps differently, maybe

    rows[2] = person(2).replace(";C2;", ";Other;")
    for project in (skip, full):
        project.write("data/people.csv", people_csv(rows))
    _, calls = both(skip, full, mapped)
    assert calls["crm"] == 1


def test_a_plan_uses_the_record_and_leaves_it_for_the_run(tmp_path: Path, mapped: Counter[str]) -> None:
    rows = [person(i) for i in range(20)]
    skip, full = pair(tmp_path, rows)
    both(skip, full, mapped)
    before = {p.name: p.read_bytes() for p in records(skip)}
    rows[5] = person(5).replace(";C5;", ";Other;")
    skip.write("data/people.csv", people_csv(rows))
    full.write("data/people.csv", people_csv(rows))

    mapped.clear()
    assert run(skip, "plan").exit_code == 0
    assert mapped["crm"] == 1
    # the plan's reads rolled back: the record still describes the state as it is
    assert {p.name: p.read_bytes() for p in records(skip)} == before

    _, calls = both(skip, full, mapped)
    assert calls["crm"] == 1


def test_the_record_holds_no_address_or_value_of_a_row(tmp_path: Path, mapped: Counter[str]) -> None:
    rows = [person(i) for i in range(15)]
    project = make(tmp_path, rows)
    run(project)
    files = records(project)
    assert len(files) == 3  # people, contracts, visits
    for path in files:
        data = path.read_bytes().lower()
        for needle in (b"@bench.example", b"p1@", b"f1;", b"telecorp", b"people.csv"):
            assert needle not in data, path.name


# ---- the source alone: a read that stops half way --------------------------------------------------------


def consume(
    src: FileSource, cursors: dict[str, str], stop_after: int | None = None
) -> tuple[int, str | None]:
    """Read like the run loop does (map each record of a batch before asking for the next); `stop_after`
    batches: stop there, as a run that fails in the middle of a file. (records mapped, the final cursor)."""
    ctx = RunContext(as_of=AS_OF, started_at=CLOCK)
    batches: Iterator[Any] = src.read(cursors, ctx)
    count, cursor = 0, None
    for n, batch in enumerate(batches, start=1):
        for raw in batch.records:
            src.map(batch.object, raw)
            count += 1
        cursor = batch.cursor or cursor
        if stop_after is not None and n == stop_after:
            batches.close()  # type: ignore[attr-defined]
            break
    return count, cursor


def test_a_read_that_stops_half_way_leaves_no_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FileSource, "chunk_rows", 4)
    cfg = FileSourceConfig.model_validate(
        {
            "name": "crm",
            "type": "file",
            "path": "people.csv",
            "kind": "person",
            "fields": {"email": "email", "company": "company"},
        }
    )

    def source() -> FileSource:
        return FileSource.from_config(cfg, PluginEnv(base_dir=tmp_path, state_dir=tmp_path / "state"))

    original = [person(i) for i in range(12)]
    (tmp_path / "people.csv").write_text(people_csv(original))
    count, first = consume(source(), {})
    assert count == 12 and first is not None
    cursors = {"people.csv": first}

    # rows 0..3 change, their batch reaches the state, then the read stops: the cursor stays `first`
    changed = [r.replace(";C", ";X") if i < 4 else r for i, r in enumerate(original)]
    (tmp_path / "people.csv").write_text(people_csv(changed))
    count, _ = consume(source(), cursors, stop_after=1)
    assert count == 4

    # rows 0..3 back as they were (another row changed): their stored facts are the changed ones, so the
    # record of the first read must not vouch for them any more
    reverted = [*original[:11], original[11].replace(";C", ";Y")]
    (tmp_path / "people.csv").write_text(people_csv(reverted))
    count, third = consume(source(), cursors)
    assert count == 12 and third is not None
    # that complete read recorded the rows again
    (tmp_path / "people.csv").write_text(people_csv([*reverted, person(50)]))
    count, _ = consume(source(), {"people.csv": third})
    assert count == 1


def test_the_record_is_beside_the_state(tmp_path: Path, mapped: Counter[str]) -> None:
    project = make(tmp_path, [person(1)])
    run(project)
    assert all(p.parent == project.state_path.parent / "cache" for p in records(project))
    shutil.rmtree(project.state_path.parent / "cache")
    assert run(project).exit_code == 0  # nothing changed: not read, nothing missed
