"""The run pipeline with file sources and the segment file writer: idempotency, changes, rejections, plan."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from spine_helpers import AS_OF, CONFIG_YAML, CONTRACTS_CSV, PEOPLE_CSV, Project, days

from connector.context import RunContext
from connector.errors import RecordError
from connector.pipeline import EXIT_LOCKED, EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, Runner, Summary
from connector.plan import SegmentChange
from connector.state import StateStore
from connector.state_codec import decode_snapshot
from connector.writers.base import Writer, WriteResult


def run(project: Project, as_of: dt.date = AS_OF, mode: str = "run") -> Summary:
    return Runner(project.config()).execute(mode, as_of)


def stages(project: Project) -> dict[str, str]:
    """E-mail -> stage, from the state the last run kept."""
    rows = project.query(
        "SELECT i.merge_key, p.stage FROM identity i JOIN people p ON p.person_key = i.person_key "
        "WHERE i.merge_key LIKE 'email:%'"
    )
    return {key[len("email:") :]: stage for key, stage in rows}


def snapshot(project: Project) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(project.out.iterdir())}


def age_segment_files(project: Project) -> None:
    """Move the files' mtimes into the past so a rewrite within the same clock tick would still show."""
    for p in project.out.iterdir():
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))


def test_first_run_assigns_stages_and_writes_segments(project: Project) -> None:
    summary = run(project)
    assert (summary.outcome, summary.exit_code) == ("ok", EXIT_OK)
    assert stages(project) == {
        "ann@acme.example": "lead",
        "bob@globex.example": "prospect",
        "carla@initech.example": "qualified_out",
        "dirk@umbrella.example": "lead",
        "frank@newco.example": "lead",
        "eva@hooli.example": "suspect",
    }
    assert summary.people == {"total": 6, "contracts": 2, "crm": 4, "visits": 2}
    assert summary.segments["files"]["acquisition"]["adds"] == 2
    # dirk opted out: never in a segment; carla is qualified out: suppressed
    assert project.segment_rows("warm") == ["ann@acme.example", "bob@globex.example", "frank@newco.example"]
    assert project.segment_rows("acquisition") == ["bob@globex.example", "frank@newco.example"]
    assert summary.transitions == {
        "(new)->lead": 3,
        "(new)->prospect": 1,
        "(new)->qualified_out": 1,
        "(new)->suspect": 1,
    }
    assert len(project.query("SELECT * FROM transitions")) == 6
    assert project.query("SELECT mode, outcome, exit_code FROM runs") == [("run", "ok", 0)]


def test_a_second_run_without_new_input_writes_nothing(project: Project) -> None:
    run(project)
    age_segment_files(project)
    files_before = snapshot(project)
    tables = ("facts", "identity", "people", "transitions", "labels", "memberships", "rejected", "cursors")
    state_before = {t: project.query(f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}

    summary = run(project)

    assert (summary.outcome, summary.exit_code) == ("ok", EXIT_OK)
    assert summary.transitions == {}
    assert {src: stats["records"] for src, stats in summary.read.items()} == {
        "crm": 0,
        "contracts": 0,
        "visits": 0,
    }
    for seg in summary.segments["files"].values():
        assert (seg["adds"], seg["removes"]) == (0, 0)
    assert all(v["changes"] == 0 for v in summary.labels.values())
    assert summary.rejected["count"] == 0
    assert snapshot(project) == files_before  # not even rewritten with the same bytes
    for table in tables:
        assert project.query(f"SELECT * FROM {table} ORDER BY 1, 2") == state_before[table], table
    assert len(project.query("SELECT * FROM runs")) == 2


def test_a_changed_input_file_moves_exactly_the_affected_people(project: Project) -> None:
    run(project)
    age_segment_files(project)
    before = snapshot(project)
    project.write("data/people.csv", PEOPLE_CSV.replace("Acme;Working", "Acme;Disqualified"))

    summary = run(project)

    assert summary.exit_code == EXIT_OK
    assert summary.transitions == {"lead->qualified_out": 1}
    assert stages(project)["ann@acme.example"] == "qualified_out"
    assert (
        summary.segments["files"]["warm"] | {"members": 2, "adds": 0, "removes": 1}
        == summary.segments["files"]["warm"]
    )
    assert project.segment_rows("warm") == ["bob@globex.example", "frank@newco.example"]
    changes = (project.out / "warm.changes.csv").read_text(encoding="utf-8-sig").splitlines()
    # the change log keeps the first run's adds and appends this run's remove, with its run id
    assert [line.split(";")[1:4] for line in changes[1:]][-1] == [
        str(summary.run_id),
        "removed",
        "ann@acme.example",
    ]
    assert len(changes) == 1 + 3 + 1
    after = snapshot(project)
    assert after["acquisition.csv"] == before["acquisition.csv"]  # untouched segment, untouched file
    (history,) = project.query(
        "SELECT from_stage, to_stage, rule, reason FROM transitions WHERE to_stage = 'qualified_out' "
        "AND from_stage IS NOT NULL"
    )
    assert history[:3] == ("lead", "qualified_out", "qualified-out")
    assert "lead_status='qualified_out'" in history[3]


def test_a_bad_row_is_rejected_with_file_line_and_reason_and_picked_up_once_fixed(project: Project) -> None:
    bad = CONTRACTS_CSV + "gert@bad.example;TeleCorp;31-31-2027\n"
    project.write("data/contracts.csv", bad)

    summary = run(project)

    assert (summary.outcome, summary.exit_code) == ("partial", EXIT_PARTIAL)
    assert summary.rejected["count"] == 1
    stats = summary.read["contracts"]
    assert (stats["records"], stats["deleted"], stats["rejected"], stats["retried_ok"]) == (2, 0, 1, 0)
    ((item, reason),) = project.query("SELECT item, reason FROM rejected")
    assert item == "data/contracts.csv:gert@bad.example"
    assert reason.startswith("data/contracts.csv:4: ")
    assert "31-31-2027" in reason
    assert "gert@bad.example" not in stages(project)
    assert "frank@newco.example" in stages(project)  # the rest of the file loaded

    project.write("data/contracts.csv", bad.replace("31-31-2027", "31-01-2027"))
    summary = run(project)

    assert (summary.outcome, summary.exit_code) == ("ok", EXIT_OK)
    assert project.query("SELECT * FROM rejected") == []
    assert summary.rejected == {"count": 0, "pending": 0, "reasons": {}}
    assert stages(project)["gert@bad.example"] == "lead"
    assert "gert@bad.example" in project.segment_rows("acquisition")


def test_a_pending_rejection_is_retried_and_counted_on_every_run(project: Project) -> None:
    project.write("data/contracts.csv", CONTRACTS_CSV + "gert@bad.example;TeleCorp;31-31-2027\n")
    run(project)
    summary = run(project)
    assert (summary.exit_code, summary.rejected["pending"]) == (EXIT_PARTIAL, 1)
    ((attempts,),) = project.query("SELECT attempts FROM rejected")
    assert attempts == 2


def test_plan_writes_nothing(project: Project) -> None:
    summary = run(project, mode="plan")

    assert summary.run_id is None
    assert summary.segments["files"]["warm"]["adds"] == 3
    assert {c["email"] for c in summary.segment_changes if c["segment"] == "warm"} == {
        "ann@acme.example",
        "bob@globex.example",
        "frank@newco.example",
    }
    assert not project.out.exists()
    for table in ("facts", "identity", "people", "transitions", "memberships", "rejected", "cursors", "runs"):
        assert project.query(f"SELECT * FROM {table}") == [], table


def test_plan_after_a_run_shows_the_pending_change_and_keeps_nothing(project: Project) -> None:
    run(project)
    age_segment_files(project)
    before = snapshot(project)
    project.write("data/people.csv", PEOPLE_CSV.replace("Acme;Working", "Acme;Qualified"))

    planned = run(project, mode="plan")

    assert planned.transitions == {"lead->prospect": 1}
    assert snapshot(project) == before
    assert stages(project)["ann@acme.example"] == "lead"
    assert project.query("SELECT COUNT(*) FROM runs") == [(1,)]
    # the real run then does what the plan said
    assert run(project).transitions == {"lead->prospect": 1}


def test_a_deleted_row_removes_the_person_from_segments(project: Project) -> None:
    run(project)
    project.write(
        "data/contracts.csv", CONTRACTS_CSV.replace("frank@newco.example;TeleCorp;01-03-2027\n", "")
    )

    summary = run(project)

    assert summary.read["contracts"]["deleted"] == 1
    assert summary.segments["files"]["acquisition"]["removes"] == 1
    assert summary.segments["files"]["warm"]["removes"] == 1
    assert "frank@newco.example" not in project.segment_rows("acquisition")
    assert "frank@newco.example" not in project.segment_rows("warm")
    assert "frank@newco.example" not in stages(project)
    assert project.query("SELECT COUNT(*) FROM memberships") == [(3,)]
    # marketers see who left, by e-mail, although the person's last record is gone
    changes = (project.out / "acquisition.changes.csv").read_text(encoding="utf-8-sig")
    assert f"{summary.run_id};removed;frank@newco.example" in changes


def test_as_of_moving_into_a_window_changes_stage_with_a_transition(project: Project) -> None:
    project.write(
        "connector.yaml",
        CONFIG_YAML.replace(
            "targets:\n",
            "  - name: customers\n    type: file\n    path: data/customers.csv\n    kind: enrichment\n"
            "    join: email\n    fields: {email: email, won: opportunity_won, end: contract_end}\n"
            "targets:\n",
        ),
    )
    project.write("data/customers.csv", f"email,won,end\nhans@klant.example,ja,{days(128).isoformat()}\n")

    assert run(project).exit_code == EXIT_OK
    assert stages(project)["hans@klant.example"] == "customer"

    summary = run(project, as_of=days(40))  # contract end now 88 days away: renewal window

    assert summary.transitions == {"customer->opportunity": 1}
    assert stages(project)["hans@klant.example"] == "opportunity"
    (row,) = project.query(
        "SELECT from_stage, to_stage, at, rule, reason FROM transitions WHERE from_stage IS NOT NULL"
    )
    assert row[:4] == ("customer", "opportunity", days(40).isoformat(), "contract-renewal")
    assert "re-entry" in row[4]


def test_e_mail_case_and_spaces_merge_across_files(project: Project) -> None:
    project.write(
        "data/visits.jsonl", '{"email": "  BOB@Globex.Example ", "visits": 4, "last": "2026-11-01"}\n'
    )
    run(project)
    (snap,) = project.query(
        "SELECT p.snapshot FROM people p JOIN identity i ON i.person_key = p.person_key "
        "WHERE i.merge_key = 'email:bob@globex.example'"
    )
    values = decode_snapshot(snap[0])["values"]
    assert values["web_visits"] == 4
    assert values["competitor"] == "TeleCorp"


def test_a_run_while_another_holds_the_lock(project: Project) -> None:
    holder = StateStore(project.state_path)
    holder.lock()
    try:
        summary = run(project)
    finally:
        holder.close()
    assert (summary.outcome, summary.exit_code) == ("locked", EXIT_LOCKED)
    assert "another run holds" in summary.errors[0]
    assert not project.out.exists()


def test_a_missing_input_file_is_a_config_error(project: Project, tmp_path: Path) -> None:
    (project.root / "data" / "visits.jsonl").unlink()
    summary = run(project)
    assert summary.exit_code == 2
    assert "visits" in summary.errors[0]
    assert not project.out.exists()


@pytest.mark.parametrize("as_of", [AS_OF, days(1)])
def test_summary_json_has_the_documented_keys(project: Project, as_of: dt.date) -> None:
    data = run(project, as_of=as_of).to_json()
    assert {"people", "labels", "segments", "rejected", "api_calls"} <= set(data)
    assert "label_changes" not in data
    assert data["as_of"] == as_of.isoformat()


def test_a_bad_row_that_stays_in_a_changed_file_counts_once(project: Project) -> None:
    bad_row = "gert@bad.example;TeleCorp;31-31-2027\n"
    project.write("data/contracts.csv", CONTRACTS_CSV + bad_row)
    run(project)
    project.write("data/contracts.csv", CONTRACTS_CSV.replace("01-03-2027", "01-04-2027") + bad_row)
    summary = run(project)
    assert (summary.exit_code, summary.rejected["count"], summary.rejected["pending"]) == (EXIT_PARTIAL, 1, 1)


class _SystemGoesAway:
    """The files writer, whose "system" goes away after the first added member of the first segment synced:
    that member is written, the other adds come back failed as unreachable, and the result says so."""

    def __init__(self, inner: Writer) -> None:
        self.inner = inner
        self.gone = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def sync_segment(self, change: SegmentChange, ctx: RunContext) -> WriteResult:
        assert not self.gone, "the run loop must not call a writer again once it said its system is gone"
        result = self.inner.sync_segment(change, ctx)
        if len(change.adds) > 1:
            self.gone = True
            for member in change.adds[1:]:
                result.failed[member.person_key] = RecordError("not written", code="UNREACHABLE")
            result.unreachable = "files: gave up after 5 attempts"
        return result


def test_a_writer_losing_its_system_part_way_keeps_what_it_wrote_and_the_run_exits_unreachable(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = Runner.build_writers
    monkeypatch.setattr(Runner, "build_writers", lambda self: [_SystemGoesAway(w) for w in real_build(self)])
    summary = run(project)

    assert (summary.outcome, summary.exit_code) == ("unreachable", EXIT_UNREACHABLE)
    assert any(e.startswith("files: unreachable: ") for e in summary.errors), summary.errors
    written = project.query("SELECT segment, person_key FROM memberships")
    assert [segment for segment, _ in written] == ["acquisition"]  # bob's add landed; warm never started
    (lost,) = project.query("SELECT item, code FROM rejected WHERE phase = 'write'")
    assert lost[0].startswith("acquisition:") and lost[1] == "UNREACHABLE"
    assert (summary.segments["files"]["acquisition"]["added"], summary.rejected["count"]) == (1, 1)

    monkeypatch.setattr(Runner, "build_writers", real_build)
    again = run(project)
    assert (again.outcome, again.exit_code) == ("ok", EXIT_OK)
    assert again.segments["files"]["acquisition"]["adds"] == 1  # only the one lost last time
    assert again.segments["files"]["warm"]["adds"] == 3
    assert project.query("SELECT * FROM rejected") == []
