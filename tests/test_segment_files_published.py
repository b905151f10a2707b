"""An incremental run leaves a segment file alone when nothing in it changed, without rendering it again or
decoding its members' stored snapshots; a file deleted or saved over by hand, a member described differently,
change log rows past retention and a write that failed still lead to the file being written, as before."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from spine_helpers import AS_OF, PEOPLE_CSV, Project

from connector.diffing import ChangePlanner
from connector.pipeline import Runner, Summary
from connector.state import StateStore
from connector.writers.segment_files import writer as files_writer
from connector.writers.segment_files.writer import SegmentFilesWriter

CLOCK = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Titles of everything the segment file writer renders (a segment, or `<segment> changes`)."""
    seen: Counter[str] = Counter()
    real = SegmentFilesWriter._render

    def spy(self: SegmentFilesWriter, title: str, *args: Any) -> bytes:
        seen[title] += 1
        return real(self, title, *args)

    monkeypatch.setattr(SegmentFilesWriter, "_render", spy)
    real_indexed = getattr(SegmentFilesWriter, "_render_indexed", None)  # absent before rows were patched

    def spy_indexed(self: SegmentFilesWriter, title: str, *args: Any) -> Any:
        seen[title] += 1  # a CSV segment file rendered whole, with the index that lets later runs patch it
        assert real_indexed is not None
        return real_indexed(self, title, *args)

    monkeypatch.setattr(SegmentFilesWriter, "_render_indexed", spy_indexed, raising=False)
    return seen


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Person keys whose stored snapshot the diff step decoded into a segment member."""
    seen: Counter[str] = Counter()
    real = ChangePlanner._member_from_snapshot

    def spy(self: ChangePlanner, key: str, *args: Any) -> Any:
        seen[key] += 1
        return real(self, key, *args)

    monkeypatch.setattr(ChangePlanner, "_member_from_snapshot", spy)
    return seen


def run(project: Project, clock: dt.datetime = CLOCK) -> Summary:
    summary = Runner(project.config(), clock=lambda: clock).execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    return summary


def identities(project: Project) -> dict[str, tuple[int, int]]:
    """Each output file's inode and modification time: a file replaced or written again gets new ones."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(project.out.iterdir())}


def test_a_run_with_nothing_new_renders_no_segment_and_decodes_no_member(
    project: Project, rendered: Counter[str], decoded: Counter[str]
) -> None:
    run(project)
    assert rendered["warm"] == rendered["acquisition"] == 1
    files, ids = project.segment_files(), identities(project)
    rendered.clear()
    decoded.clear()

    second = run(project)

    assert not rendered and not decoded
    assert project.segment_files() == files and identities(project) == ids
    # the summary still counts every member, from the state
    assert second.segments["files"]["warm"]["members"] == len(project.segment_rows("warm"))
    assert second.segments["files"]["acquisition"]["members"] == len(project.segment_rows("acquisition"))


@pytest.mark.parametrize("hand_work", ["deleted", "saved over"])
def test_a_segment_file_deleted_or_changed_by_hand_is_written_again(
    project: Project, rendered: Counter[str], hand_work: str
) -> None:
    run(project)
    files = project.segment_files()
    warm = project.out / "warm.csv"
    if hand_work == "deleted":
        warm.unlink()
    else:
        warm.write_bytes(files["warm.csv"].replace(b"ann@acme.example", b"someone@else.example"))
    rendered.clear()

    run(project)

    assert project.segment_files() == files
    assert rendered == Counter({"warm": 1})  # the other segment is left alone

    rendered.clear()
    run(project)  # and from then on it is left alone again
    assert not rendered


def test_a_member_described_differently_is_written_without_a_membership_change(
    project: Project, rendered: Counter[str]
) -> None:
    run(project)
    assert "ann@acme.example" in project.segment_rows("warm")
    acquisition = (project.out / "acquisition.csv").read_bytes()
    rendered.clear()
    project.write("data/people.csv", PEOPLE_CSV.replace("ann@acme.example;Ann;", "ann@acme.example;Anna;"))

    summary = run(project)

    assert summary.segments["files"]["warm"]["adds"] == summary.segments["files"]["warm"]["removes"] == 0
    assert ";Anna;" in (project.out / "warm.csv").read_text(encoding="utf-8-sig")
    assert rendered["warm"] == 0  # patched: only Ann's row is rendered again (test_segment_files_patch.py)
    assert rendered["acquisition"] == 0  # Ann is not in it
    assert (project.out / "acquisition.csv").read_bytes() == acquisition


def test_change_log_rows_past_retention_leave_on_a_run_with_nothing_new(
    project: Project, rendered: Counter[str]
) -> None:
    run(project)
    log = project.out / "warm.changes.csv"
    assert len(log.read_text(encoding="utf-8-sig").splitlines()) > 1
    rendered.clear()

    run(project, clock=CLOCK + dt.timedelta(days=30))  # within the default 90 days: nothing leaves
    assert not rendered
    run(project, clock=CLOCK + dt.timedelta(days=91))

    assert log.read_text(encoding="utf-8-sig").splitlines()[1:] == []
    assert rendered["warm changes"] == 1 and rendered["warm"] == 0  # the segment file itself is as it was


def test_a_segment_file_whose_write_failed_is_written_by_the_next_run(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(project)
    project.write("data/people.csv", PEOPLE_CSV.replace("ann@acme.example;Ann;", "ann@acme.example;Anna;"))
    real: Callable[[Path, bytes], bool] = files_writer.write_if_changed

    def full_disk(path: Path, content: bytes) -> bool:
        if path.name == "warm.csv":
            raise OSError(28, "No space left on device")
        return real(path, content)

    monkeypatch.setattr(files_writer, "write_if_changed", full_disk)
    failed = Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    assert any("No space left" in note for note in failed.notes)
    assert ";Anna;" not in (project.out / "warm.csv").read_text(encoding="utf-8-sig")
    monkeypatch.setattr(files_writer, "write_if_changed", real)

    run(project)  # nothing new in the sources, but the file is not what the state says it shows

    assert ";Anna;" in (project.out / "warm.csv").read_text(encoding="utf-8-sig")


def test_without_its_record_of_what_it_published_the_writer_renders_once_more(
    project: Project, rendered: Counter[str]
) -> None:
    run(project)
    files = project.segment_files()
    published = project.root / "state" / "cache" / "segment-files-files.json"
    assert published.exists()
    published.write_text("{not json", encoding="utf-8")
    rendered.clear()

    run(project)

    assert rendered["warm"] == rendered["acquisition"] == 1
    assert project.segment_files() == files
    rendered.clear()
    run(project)
    assert not rendered


def test_a_run_with_nothing_new_reads_no_target_s_whole_membership(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(project)
    calls: list[str] = []
    real = StateStore.members

    def spy(self: StateStore, target: str) -> dict[str, set[str]]:
        calls.append(target)
        return real(self, target)

    monkeypatch.setattr(StateStore, "members", spy)
    second = run(project)

    assert calls == []  # counts and the reached people's memberships come from SQL, nobody else's keys
    assert second.people["total"] == 6
    assert second.segments["files"]["warm"]["members"] == len(project.segment_rows("warm"))
