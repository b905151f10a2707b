"""The whole job against the vtiger sandbox over real HTTP (issue 10 item 5): a record whose label and segment
membership both change costs one `revise`, not two; a record vtiger refuses fails both its label and its
membership, each kept in state with vtiger's reason; when vtiger goes away part way, the records written
count for both parts and the rest for neither."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from waiting import HANG_GUARD

from connector.config import load_config
from connector.outcome import Summary
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector.state import StateStore
from connector.writers.vtiger.writer import split_multi
from connector_sandboxes.vtiger import VtigerSandbox

from .test_pipeline_vtiger import CONFIG

pytestmark = pytest.mark.e2e
AS_OF = dt.date(2026, 11, 23)
N = 9


def runner(sandbox: VtigerSandbox, tmp_path: Path, strict: bool = False, attempts: int = 5) -> Runner:
    (tmp_path / "connector.yaml").write_text(
        CONFIG.format(url=sandbox.url, strict=str(strict).lower()), encoding="utf-8"
    )
    return Runner(
        load_config(tmp_path / "connector.yaml"),
        environ=sandbox.env(),
        policy=RetryPolicy(attempts=attempts, sleep=lambda s: None),
    )


def segments(sandbox: VtigerSandbox, lead_id: str) -> list[str]:
    record = sandbox.store.get(lead_id)
    assert record is not None
    return split_multi(record[sandbox.store.field_by_label("Leads", "Segments")])


def stage_label(sandbox: VtigerSandbox, lead_id: str) -> str:
    record = sandbox.store.get(lead_id)
    assert record is not None
    return record[sandbox.store.field_by_label("Leads", "Funnel stage")]


def test_n_records_with_a_label_and_a_segment_change_cost_n_revises(
    vt_sandbox: VtigerSandbox, tmp_path: Path
) -> None:
    st = vt_sandbox.store
    leads = [
        st.create("Leads", {"lastname": f"N{n}", "email": f"n{n}@x.nl", "leadstatus": "Contact in Future"})
        for n in range(N)
    ]
    job = runner(vt_sandbox, tmp_path)
    vt_sandbox.reset_calls()
    first = job.execute("run", AS_OF)
    assert first.exit_code == 0, first.errors
    # every lead got its first label and entered the segment: one revise each carried both
    assert first.labels["vt_out"]["written"] == N
    assert first.segments["vt_out"]["later"]["added"] == N
    assert vt_sandbox.calls["revise"] == N
    assert vt_sandbox.calls["add_related"] == N  # the campaign relation is a call of its own
    assert all(segments(vt_sandbox, lead["id"]) == ["Nurture newsletter"] for lead in leads)
    (label,) = {stage_label(vt_sandbox, lead["id"]) for lead in leads}
    assert label

    # all leave the segment and change stage: again one revise per record
    for lead in leads:
        st.revise(lead["id"], {"leadstatus": "Hot"})
    vt_sandbox.reset_calls()
    second = job.execute("run", AS_OF)
    assert second.exit_code == 0, second.errors
    assert second.labels["vt_out"]["written"] == N
    assert second.segments["vt_out"]["later"]["removed"] == N
    assert vt_sandbox.calls["revise"] == N
    assert all(segments(vt_sandbox, lead["id"]) == [] for lead in leads)

    vt_sandbox.reset_calls()
    assert job.execute("run", AS_OF).exit_code == 0
    assert vt_sandbox.calls["revise"] == 0


def test_a_record_vtiger_refuses_fails_its_label_and_its_membership_with_the_reason(
    vt_sandbox: VtigerSandbox, tmp_path: Path
) -> None:
    st = vt_sandbox.store
    leads = [
        st.create("Leads", {"lastname": f"N{n}", "email": f"n{n}@x.nl", "leadstatus": "Contact in Future"})
        for n in range(N)
    ]
    refused = leads[N // 2]
    job = runner(vt_sandbox, tmp_path)
    vt_sandbox.reset_calls()
    # hold the writes until the run has read everything, then delete one lead in vtiger: its revise is refused
    vt_sandbox.faults.hold_ops = {"revise"}
    summaries: list[Summary] = []
    thread = threading.Thread(target=lambda: summaries.append(job.execute("run", AS_OF)), daemon=True)
    thread.start()
    try:
        assert vt_sandbox.faults.arrived.wait(HANG_GUARD), "no revise reached the sandbox"
        st.delete(refused["id"])
    finally:
        vt_sandbox.faults.hold_ops = set()
        vt_sandbox.faults.release.set()
    thread.join(timeout=HANG_GUARD)
    assert not thread.is_alive(), "the run hung"
    (summary,) = summaries

    assert (summary.outcome, summary.exit_code) == ("partial", 3), summary.errors
    assert vt_sandbox.calls["revise"] == N  # the refused record's one revise included
    assert vt_sandbox.calls["add_related"] == N - 1
    assert (summary.labels["vt_out"]["written"], summary.labels["vt_out"]["failed"]) == (N - 1, 1)
    later = summary.segments["vt_out"]["later"]
    assert (later["added"], later["failed"]) == (N - 1, 1)
    assert summary.rejected["count"] == 2

    store = StateStore(tmp_path / "state.sqlite")
    try:
        rows = {row["object"]: row for row in store.rejected("write", "vt_out")}
        labelled = set(store.labels("vt_out"))
        person = store.identity()  # merge key -> person key
    finally:
        store.close()
    assert set(rows) == {"label", "segment"}
    assert rows["label"]["item"] == f"vt_main:Leads:{refused['id']}"
    assert rows["segment"]["item"] == f"later:{person[f'email:n{N // 2}@x.nl']}"
    for row in rows.values():  # each part with vtiger's own reason
        assert row["code"] == "ACCESS_DENIED"
        assert refused["id"] in row["reason"] and "denied" in row["reason"]
    assert f"vt_main:Leads:{refused['id']}" not in labelled
    assert len(labelled) == N - 1


def test_records_written_before_vtiger_went_away_are_kept_for_label_and_segment(
    vt_sandbox: VtigerSandbox, tmp_path: Path
) -> None:
    st = vt_sandbox.store
    leads = [
        st.create("Leads", {"lastname": f"N{n}", "email": f"n{n}@x.nl", "leadstatus": "Contact in Future"})
        for n in range(N)
    ]
    job = runner(vt_sandbox, tmp_path, attempts=3)
    vt_sandbox.faults.error_500_ops = {"revise"}
    vt_sandbox.faults.down_after = 4  # four records land, then vtiger stops answering revises

    first = job.execute("run", AS_OF)
    assert (first.outcome, first.exit_code) == ("unreachable", 4)
    assert (first.labels["vt_out"]["written"], first.labels["vt_out"]["failed"]) == (4, N - 4)
    later = first.segments["vt_out"]["later"]
    assert (later["added"], later["failed"]) == (4, N - 4)  # recorded with the labels, not lost with the stop
    landed = [lead for lead in leads if segments(vt_sandbox, lead["id"])]
    assert len(landed) == 4 and all(stage_label(vt_sandbox, lead["id"]) for lead in landed)

    vt_sandbox.faults.down_after = None
    vt_sandbox.reset_calls()
    second = job.execute("run", AS_OF)
    assert second.exit_code == 0, second.errors
    assert vt_sandbox.calls["revise"] == N - 4  # the four that landed are not written again
    assert second.rejected["pending"] == 0
    assert all(segments(vt_sandbox, lead["id"]) == ["Nurture newsletter"] for lead in leads)
