"""Issue 10, a first run's CPU: work a first run did more than once, each shown gone here. The run's figures
themselves are measured with benchmarks/run.py, never asserted; these tests hold the shape of the work (how
often a thing is built, walked or described) and that the output is the same."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spine_helpers import AS_OF, Project
from test_segment_files_patch import CLOCK, contents, people_csv, scratch
from test_segment_files_patch import files_writer as patch_files_writer
from test_segment_files_patch import people as patch_people

from connector import chunked, state_codec
from connector.context import RunContext
from connector.diffing import ChangePlanner
from connector.pipeline import Runner
from connector.plan import Member, SegmentChange
from connector.state import StateStore
from connector.state_codec import decode_decision, decode_snapshot
from connector.writers.segment_files import writer as files_writer_module
from connector.writers.segment_files.writer import SegmentFilesWriter, sorted_members

__all__ = ["scratch"]  # a module-scoped fixture of test_segment_files_patch, used here too


def _snapshot(i: int) -> dict[str, Any]:
    email = f"pérson{i}@bench.example"  # a non-ASCII value: escaped as json.dumps escapes it
    return {
        "refs": [f"crm:people.csv:{email}"],
        "values": {"email": email, "first_name": f"F{i}", "score": i / 3, "tags": ["a", "b"]},
        "extra": {"note": None},
        "provenance": {"email": f"crm:people.csv:{email}", "competitor": f"contracts:c.csv:{email}"},
    }


def test_rows_are_encoded_without_building_a_json_encoder_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # json.dumps with options builds a JSONEncoder per call: as costly as encoding a few hundred bytes
    built = 0
    original = json.JSONEncoder.__init__

    def counting(self: json.JSONEncoder, *args: Any, **kwargs: Any) -> None:
        nonlocal built
        built += 1
        original(self, *args, **kwargs)

    store = StateStore(tmp_path / "state.sqlite")
    monkeypatch.setattr(json.JSONEncoder, "__init__", counting)
    blobs = [(store.codec.encode_snapshot(_snapshot(i)), i) for i in range(50)]
    decisions = [store.codec.encode_decision({"stage": "lead", "matched": [f"x={i}"]}) for i in range(50)]
    monkeypatch.undo()
    assert built == 0
    # the same text as before: sorted keys, compact, non-ASCII escaped (stored rows compare by their bytes)
    for blob, i in blobs:
        assert decode_snapshot(blob) == _snapshot(i)
    assert decode_decision(decisions[7])["matched"] == ["x=7"]
    text = state_codec._text(_snapshot(1))
    assert text == json.dumps(_snapshot(1), sort_keys=True, separators=(",", ":"), default=str).encode()


# ---- segment files: a first run describes each member once --------------------------------------------


def test_a_first_run_describes_each_segment_member_once(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the file and its change log (everyone an add) were two walks, each describing everyone from the state
    project.write("data/people.csv", people_csv(150))
    described = Counter[str]()
    original = ChangePlanner._member_from_snapshot

    def counting(self: ChangePlanner, key: str, *args: Any) -> Member:
        described[key] += 1
        return original(self, key, *args)

    monkeypatch.setattr(ChangePlanner, "_member_from_snapshot", counting)
    # as `connector run` makes it (without --full nothing lists each add)
    summary = Runner(project.config(), clock=lambda: CLOCK, list_changes=False).execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    members = {
        segment: figures["members"] for segment, figures in summary.segments["files"].items() if figures
    }
    assert members["warm"] >= 100
    listed = {k: len(project.segment_rows(k)) for k in members}
    assert listed == members
    logged = {k: (project.out / f"{k}.changes.csv").read_text("utf-8-sig").count(";added;") for k in members}
    assert logged == members
    assert sum(described.values()) == sum(members.values())  # once per membership, not twice


class _TwoWalks(SegmentFilesWriter):
    """The writer as it was: the change log's adds described and encoded in a walk of their own."""

    def _segment_bytes(self, change: SegmentChange, before: Any, path: Path, delta: Any) -> Any:
        aside = files_writer_module._Delta(delta.day, delta.run_id, delta.change, delta.cells)
        return super()._segment_bytes(change, before, path, aside)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=patch_people(),
    then=patch_people(),
    encoding=st.sampled_from(["utf-8-sig", "utf-8", "utf-16", "cp1252", "latin-1"]),
    excel=st.sampled_from(["european", "english"]),
    published=st.booleans(),
)
def test_a_change_log_made_in_the_files_walk_is_byte_identical(
    scratch: Path,
    first: dict[str, Member],
    then: dict[str, Member],
    encoding: str,
    excel: str,
    published: bool,
) -> None:
    # step 1 lists `first`; step 2 everyone in `then` is new (`first` all leave): every member an add, with
    # removes after them and a log kept from step 1 (appended to when the writer's record is kept, else merged)
    then = {f"n{k}": replace(m, person_key=f"n{k}") for k, m in then.items()}
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        root = Path(tmp)
        cfg = patch_files_writer(root, None, encoding, excel).cfg
        one = SegmentFilesWriter(cfg, root / "one", root / "state-one" if published else None)
        two = _TwoWalks(cfg, root / "two", root / "state-two" if published else None)
        steps = [(first, {}, []), (then, then, list(first.values()))]
        for step, (now, adds, removes) in enumerate(steps):
            change = SegmentChange("seg", sorted_members(now.values()), list(adds.values()), removes)
            if step == 0:
                change.adds = list(now.values())
            started = dt.datetime(2026, 1, 15, 6, tzinfo=dt.UTC) + dt.timedelta(days=step)
            for writer in (one, two):
                context = RunContext(as_of=started.date(), started_at=started, run_id=step + 1)
                assert not writer.sync_segment(change, context).failed
            assert contents(root / "one" / "out") == contents(root / "two" / "out")


# ---- SQLite ---------------------------------------------------------------------------------------------


def test_the_full_path_commits_its_parts_once(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    # a commit per part wrote the pages each part dirtied (random person keys: all over the people,
    # transitions and index B-trees) to the WAL again; one transaction writes a page once while it is cached
    project.write("data/people.csv", people_csv(150))
    monkeypatch.setattr(chunked, "PART", 20)
    commits: list[str] = []
    original = chunked.resolve_and_decide

    def traced(runner: Any, store: StateStore, **kwargs: Any) -> None:
        store.db.raw.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        try:
            original(runner, store, **kwargs)
        finally:
            store.db.raw.set_trace_callback(None)

    monkeypatch.setattr(chunked, "resolve_and_decide", traced)
    summary = Runner(project.config(), clock=lambda: CLOCK, list_changes=False).execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    assert summary.people["total"] >= 150
    assert len(commits) == 2  # the set-up (index, temp tables), then every part at once


def test_the_new_identity_rows_are_copied_in_key_order(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the copy into identity (WITHOUT ROWID, keyed by merge key) read the temp table in insertion order, so
    # every row went to a random place; read in key order the copy appends (0.85 -> 0.36 s for 200k keys)
    project.write("data/people.csv", people_csv(40))
    seen: list[str] = []
    original = chunked.parts

    def parts(store: StateStore, size: int | None = None) -> Any:
        sql = "SELECT sql FROM sqlite_temp_master WHERE name='next_identity'"
        seen.append(store.db.execute(sql).fetchone()[0])
        return original(store, size)

    monkeypatch.setattr(chunked, "parts", parts)
    summary = Runner(project.config(), clock=lambda: CLOCK, list_changes=False).execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    assert len(seen) == 1 and seen[0].endswith("WITHOUT ROWID")


# the secondary indexes on people a first run builds once, over the filled table
BULK = ("people_next_check", "people_pipeline")


def _index_sql(path: Path) -> dict[str, str]:
    db = StateStore(path).db
    marks = ",".join("?" * len(BULK))
    rows = db.execute(f"SELECT name, sql FROM sqlite_master WHERE name IN ({marks})", BULK)
    return {name: sql for name, sql in rows}


def _traced_run(project: Project, monkeypatch: pytest.MonkeyPatch, *args: str) -> list[str]:
    """The statements the full path sent, in order, of a run of `project` (`args`: e.g. --full-recompute)."""
    sent: list[str] = []
    original = chunked.resolve_and_decide

    def traced(runner: Any, store: StateStore, **kwargs: Any) -> None:
        store.db.raw.set_trace_callback(sent.append)
        try:
            original(runner, store, **kwargs)
        finally:
            store.db.raw.set_trace_callback(None)

    monkeypatch.setattr(chunked, "resolve_and_decide", traced)
    full = "--full-recompute" in args
    summary = Runner(project.config(), clock=lambda: CLOCK, list_changes=False, full_recompute=full).execute(
        "run", AS_OF
    )
    monkeypatch.undo()
    assert summary.exit_code == 0, summary.errors
    return sent


def test_a_first_run_builds_the_people_indexes_once_filled(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # each person's rows went into these B-trees in random key order (larger than the page cache at a million
    # people: most of a 1M first run's system time); CREATE INDEX over the filled table sorts the keys once
    project.write("data/people.csv", people_csv(150))
    monkeypatch.setattr(chunked, "PART", 20)
    sent = _traced_run(project, monkeypatch)
    last_person = max(i for i, sql in enumerate(sent) if sql.startswith("INSERT INTO people"))
    last_transition = max(i for i, sql in enumerate(sent) if sql.startswith("INSERT INTO transitions"))
    for name in BULK:
        created = [i for i, sql in enumerate(sent) if sql.startswith(f"CREATE INDEX {name} ")]
        assert len(created) == 1, name
        assert created[0] > max(last_person, last_transition), name
    # and the schema holds them exactly as a new state's does
    assert _index_sql(project.state_path) == _index_sql(tmp_path / "new.sqlite")


def test_a_full_recompute_of_a_stored_state_keeps_its_indexes(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # its parts update people the indexes already hold: nothing to gain, so nothing is dropped
    project.write("data/people.csv", people_csv(60))
    _traced_run(project, monkeypatch)
    sent = _traced_run(project, monkeypatch, "--full-recompute")
    assert not [sql for sql in sent if sql.startswith(("DROP INDEX", "CREATE INDEX")) and "temp." not in sql]
    assert set(_index_sql(project.state_path)) == set(BULK)


def test_a_first_run_stopped_midway_keeps_the_indexes(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the drop and the rebuild are in the parts' one transaction: a run stopped between them leaves none dropped
    project.write("data/people.csv", people_csv(150))
    monkeypatch.setattr(chunked, "PART", 20)
    original = Runner._decide
    calls = 0

    def failing(self: Runner, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt  # as a stop midway does
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Runner, "_decide", failing)
    with pytest.raises(KeyboardInterrupt):
        Runner(project.config(), clock=lambda: CLOCK, list_changes=False).execute("run", AS_OF)
    monkeypatch.undo()
    assert calls == 3
    assert set(_index_sql(project.state_path)) == set(BULK)
    assert StateStore(project.state_path).db.execute("SELECT COUNT(*) FROM people").fetchone()[0] == 0
