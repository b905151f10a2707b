"""A touched segment file costs what changed in it: an incremental run re-renders only the rows of members
added, removed or described differently, decodes no other member's snapshot, and gives exactly the bytes a
full render gives; a file saved over by hand is rendered whole again."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spine_helpers import AS_OF, Project

from connector.cli import cli
from connector.context import RunContext
from connector.diffing import ChangePlanner
from connector.erasure import SALT_ENV
from connector.pipeline import Runner, Summary
from connector.plan import Member, SegmentChange
from connector.schema import RecordRef
from connector.writers.segment_files import writer as files_writer_module
from connector.writers.segment_files.config import DEFAULT_COLUMNS, SegmentFilesConfig
from connector.writers.segment_files.writer import SegmentFilesWriter, sorted_members

CLOCK = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
HEADER = "email;first_name;last_name;company;status;opt_out;external_id\n"
STATUSES = ("Working", "Qualified", "Disqualified")  # lead, prospect (both `warm`), qualified_out


def people_csv(n: int, names: dict[int, str] | None = None, statuses: dict[int, str] | None = None) -> str:
    names, statuses = names or {}, statuses or {}
    rows = [
        f"p{i:03d}@bench.example;{names.get(i, f'First{i}')};Last{i};Co{i % 7};"
        f"{statuses.get(i, STATUSES[i % 3])};nee;EXT-{i}\n"
        for i in range(n)
    ]
    return HEADER + "".join(rows)


@pytest.fixture
def big(project: Project) -> Project:
    project.write("data/people.csv", people_csv(150))
    return project


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """`rows`: member rows the writer rendered (segment file and change log); `whole <title>`: files rendered
    whole; `decoded`: stored snapshots the diff step decoded into members."""
    seen: Counter[str] = Counter()
    cell, render = files_writer_module._cell, SegmentFilesWriter._render
    indexed = getattr(SegmentFilesWriter, "_render_indexed", None)  # absent before rows could be patched
    decode = ChangePlanner._member_from_snapshot
    width = len(DEFAULT_COLUMNS)

    def spy_cell(member: Member, column: str) -> Any:
        seen["cells"] += 1
        seen["rows"] = seen["cells"] // width
        return cell(member, column)

    def spy_render(self: SegmentFilesWriter, title: str, *args: Any) -> Any:
        seen[f"whole {title}"] += 1
        return render(self, title, *args)

    def spy_indexed(self: SegmentFilesWriter, title: str, *args: Any) -> Any:
        seen[f"whole {title}"] += 1
        assert indexed is not None
        return indexed(self, title, *args)

    def spy_decode(self: ChangePlanner, key: str, *args: Any) -> Member:
        seen["decoded"] += 1
        return decode(self, key, *args)

    monkeypatch.setattr(files_writer_module, "_cell", spy_cell)
    monkeypatch.setattr(SegmentFilesWriter, "_render", spy_render)
    monkeypatch.setattr(SegmentFilesWriter, "_render_indexed", spy_indexed, raising=False)
    monkeypatch.setattr(ChangePlanner, "_member_from_snapshot", spy_decode)
    return seen


def run(project: Project) -> Summary:
    summary = Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    return summary


def full_render_of(project: Project) -> dict[str, bytes]:
    """The segment files a run renders whole: without the writer's record of what it published, a run with
    nothing new renders every segment from every member (and replaces a file only if its bytes differ)."""
    (project.root / "state" / "cache" / "segment-files-files.json").unlink()
    run(project)
    return project.segment_files()


def test_a_small_change_renders_only_the_changed_rows_and_matches_a_full_render(
    big: Project, counts: Counter[str]
) -> None:
    run(big)
    warm = len(big.segment_rows("warm"))
    assert warm >= 100 and counts["whole warm"] == 1  # and people from the contracts and visits files
    counts.clear()
    # one member renamed, one leaves `warm` (qualified out), one joins it (new)
    big.write(
        "data/people.csv",
        people_csv(151, names={0: "Renamed"}, statuses={1: "Disqualified", 150: "Working"}),
    )

    summary = run(big)

    assert summary.segments["files"]["warm"] == {
        "members": warm,
        "adds": 1,
        "removes": 1,
        "added": 1,
        "removed": 1,
        "failed": 0,
    }
    assert counts["whole warm"] == 0
    # two rows in the file (the renamed member, the newcomer), two in the change log (the add, the remove)
    assert counts["rows"] == 4
    assert counts["decoded"] == 0  # nobody else's stored snapshot was read
    rows = big.segment_rows("warm")
    assert "p150@bench.example" in rows and "p001@bench.example" not in rows
    assert ";Renamed;" in (big.out / "warm.csv").read_text(encoding="utf-8-sig")
    patched = big.segment_files()

    assert full_render_of(big) == patched


def test_a_file_saved_over_by_hand_is_rendered_whole_then_patched_again(
    big: Project, counts: Counter[str]
) -> None:
    run(big)
    warm = big.out / "warm.csv"
    original = warm.read_bytes()
    warm.write_bytes(original.replace(b";First3;", b";Hand edit;"))
    counts.clear()
    big.write("data/people.csv", people_csv(150, names={0: "Renamed"}))

    run(big)

    assert counts["whole warm"] == 1  # not patched on top of someone else's bytes
    text = warm.read_text(encoding="utf-8-sig")
    assert "Hand edit" not in text and ";First3;" in text and ";Renamed;" in text
    counts.clear()
    big.write("data/people.csv", people_csv(150, names={0: "Renamed", 4: "Again"}))

    run(big)

    assert counts["whole warm"] == 0 and counts["rows"] == 1 and counts["decoded"] == 0
    patched = big.segment_files()
    assert full_render_of(big) == patched


def test_without_its_row_index_the_writer_renders_the_file_whole(big: Project, counts: Counter[str]) -> None:
    run(big)
    index = big.root / "state" / "cache" / "segment-files-files.rows" / "warm.csv.rows"
    assert index.exists()
    index.write_text("{not json", encoding="utf-8")
    counts.clear()
    big.write("data/people.csv", people_csv(150, names={0: "Renamed"}))

    run(big)

    assert counts["whole warm"] == 1
    counts.clear()
    big.write("data/people.csv", people_csv(150, names={0: "Renamed", 4: "Again"}))
    run(big)
    assert counts["whole warm"] == 0 and counts["rows"] == 1


def test_a_json_row_index_from_before_gives_way_to_the_compact_one(
    big: Project, counts: Counter[str]
) -> None:
    """An index kept as JSON by an earlier connector (`<file>.rows.json`) names people: once the file has its
    compact index it is deleted, not left behind for an erasure to miss."""
    run(big)
    indexes = big.root / "state" / "cache" / "segment-files-files.rows"
    legacy = indexes / "warm.csv.rows.json"
    legacy.write_text(
        '{"file": "old", "header": 0, "keys": ["P1"], "emails": ["p000@bench.example"], "sizes": [1]}'
    )
    counts.clear()
    big.write("data/people.csv", people_csv(150, names={0: "Renamed"}))

    run(big)

    assert not legacy.exists()
    assert (indexes / "warm.csv.rows").read_bytes().startswith(b"connector segment rows")
    assert full_render_of(big) == big.segment_files()


def test_forget_leaves_no_row_index_naming_the_erased_person(
    big: Project, counts: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SALT_ENV, "pepper")
    run(big)
    indexes = big.root / "state" / "cache" / "segment-files-files.rows"
    assert b"p000@bench.example" in (indexes / "warm.csv.rows").read_bytes()

    forgot = CliRunner().invoke(cli, ["forget", "-c", str(big.config_path), "p000@bench.example"])

    assert forgot.exit_code == 0, forgot.output
    assert all(b"p000@" not in p.read_bytes() for p in indexes.iterdir())
    counts.clear()
    big.write("data/people.csv", people_csv(150, names={4: "Renamed"}))
    run(big)  # the file without its index is rendered whole once, and the erased person stays out
    assert counts["whole warm"] == 1 and "p000@bench.example" not in big.segment_rows("warm")


# ---- the writer alone: patched bytes are full-render bytes on random histories --------------------------

COLUMNS = ["email", "first_name", "company", "stage", "person_key", "refs"]
# cells that test quoting, formula defusing, case folding, accents outside cp1252 and line breaks in cells
TEXTS = st.one_of(
    st.sampled_from(["Ann", "", "=SUM(A1)", "a;b", 'say "hi"', "two\nlines", "Ærø", "日本", "+31 6"]),
    st.text(max_size=6),
)
EMAILS = st.one_of(st.none(), st.sampled_from(["ann@x.nl", "ANN@x.nl", "bob@y.nl", "b@z", ""]), TEXTS)
KEYS = [f"k{i}" for i in range(12)]


@st.composite
def people(draw: st.DrawFn) -> dict[str, Member]:
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=len(KEYS)))
    return {
        key: Member(
            person_key=key,
            refs=(RecordRef("crm", "Lead", key.upper()),),
            email=draw(EMAILS),
            first_name=draw(TEXTS),
            last_name=None,
            company=draw(st.one_of(st.none(), TEXTS)),
            stage=draw(st.sampled_from(["lead", "prospect"])),
            label="L",
        )
        for key in keys
    }


class CountingWriter(SegmentFilesWriter):
    whole = 0

    def _render_indexed(self, *args: Any) -> Any:
        self.whole += 1
        return super()._render_indexed(*args)


def files_writer(base: Path, state: Path | None, encoding: str, excel: str) -> CountingWriter:
    cfg = SegmentFilesConfig.model_validate(
        {
            "name": "files",
            "type": "segment_files",
            "directory": "out",
            "columns": COLUMNS,
            "encoding": encoding,
            "excel": excel,
        }
    )
    return CountingWriter(cfg, base, state)


def contents(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=st.lists(people(), min_size=2, max_size=5),
    extra=st.lists(st.sampled_from(KEYS), max_size=3),
    encoding=st.sampled_from(["utf-8-sig", "utf-8", "utf-16", "cp1252"]),
    excel=st.sampled_from(["european", "english"]),
)
def test_a_patched_file_is_byte_identical_to_a_full_render(
    scratch: Path, history: list[dict[str, Member]], extra: list[str], encoding: str, excel: str
) -> None:
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        root = Path(tmp)
        patching = files_writer(root / "patching", root / "state", encoding, excel)
        full = files_writer(root / "full", None, encoding, excel)  # no record of what it published
        before: dict[str, Member] = {}
        for step, now in enumerate(history):
            adds = [m for k, m in now.items() if k not in before]
            removes = [m for k, m in before.items() if k not in now]
            # those described differently, and some that are not (the diff step may name more than needed)
            redescribed = [m for k, m in now.items() if k in before and (before[k] != m or k in extra)]
            change = SegmentChange(
                "seg", sorted_members(now.values()), adds, removes, redescribed=redescribed
            )
            started = dt.datetime(2026, 1, 15, 6, tzinfo=dt.UTC) + dt.timedelta(days=step)
            for writer in (patching, full):
                context = RunContext(as_of=started.date(), started_at=started, run_id=step + 1)
                assert not writer.sync_segment(change, context).failed
            assert contents(root / "patching" / "out") == contents(root / "full" / "out")
            before = now
        assert patching.whole == 1  # the first run only; every later one was patched
