"""A state that turns full or read-only between the read and the write phase: `connector run` (real HTTP to the
vtiger sandbox) ends with exit 7 and makes no CRM write the state could not record; once the state fails while
recording a writer's batch (a vtiger target writes its whole batch, labels and segment values in one revise
per record, before the run records any of it), no further CRM write follows. The space a writer's batch needs is reserved before
the writer is called, so a disk that fills up during the call does not stop its record."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result

from connector.cli import cli
from connector.full_plan import FullPlanner
from connector.writers.vtiger.writer import VtigerWriter
from connector_sandboxes.vtiger import VtigerSandbox

pytestmark = [pytest.mark.e2e, pytest.mark.reliability("State")]
WRITE_OPS = {"create", "update", "revise", "delete", "add_related"}
CONFIG = """\
state: {{path: state.sqlite}}
stage_model: {{preset: default}}
identity: {{merge_on: [email]}}
sources:
  - name: vt_main
    type: vtiger
    url: {url}
    modules:
      Leads: {{fields: {{email: email, lastname: last_name, leadstatus: lead_status}}}}
targets:
  - name: vt_out
    type: vtiger
    source: vt_main
    label_field: {{Leads: "label:Funnel stage"}}
    segments_field: {{Leads: "label:Segments"}}
segments:
  - name: later
    when: {{field: lead_status, eq: nurture}}
    targets: [vt_out]
"""

# how each case makes the state's connection refuse further growth or any write: SQLite then answers
# SQLITE_FULL / SQLITE_READONLY exactly as for a full disk or a file turned read-only
BREAK = {
    "full": lambda db: db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}"),
    "read_only": lambda db: db.execute("PRAGMA query_only = 1"),
}


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def writes(sandbox: VtigerSandbox) -> int:
    return sum(n for op, n in sandbox.calls.items() if op in WRITE_OPS)


def start(vt_sandbox: VtigerSandbox, tmp_path: Path) -> Path:
    st = vt_sandbox.store
    for i in range(40):
        status = "Contact in Future" if i % 2 else "Hot"
        st.create("Leads", {"lastname": f"L{i}", "email": f"l{i}@x.nl", "leadstatus": status})
    config = tmp_path / "connector.yaml"
    config.write_text(CONFIG.format(url=vt_sandbox.url), encoding="utf-8")
    return config


def run(config: Path, sandbox: VtigerSandbox) -> Result:
    return CliRunner().invoke(
        cli,
        ["--log-level", "warning", "run", "-c", str(config), "--as-of", "2026-11-23"],
        env=sandbox.env(),
        catch_exceptions=False,
    )


@pytest.mark.parametrize("case", sorted(BREAK))
def test_state_broken_after_reading_no_crm_write(
    vt_sandbox: VtigerSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    config = start(vt_sandbox, tmp_path)
    planned = FullPlanner.finish  # a first run plans a part at a time (full_plan.py)

    def plan_then_break(self: FullPlanner, *args: Any, **kwargs: Any) -> Any:
        out = planned(self, *args, **kwargs)
        BREAK[case](self.store.db.raw)  # the state breaks after reading and deciding, before any write
        return out

    monkeypatch.setattr(FullPlanner, "finish", plan_then_break)
    vt_sandbox.reset_calls()
    result = run(config, vt_sandbox)
    assert result.exit_code == 7, result.output
    assert f"state file {tmp_path / 'state.sqlite'}" in result.stderr
    assert "Traceback" not in result.output
    assert writes(vt_sandbox) == 0  # the writer was never called
    assert vt_sandbox.calls["query"] > 0  # it did read: the state broke between the phases


def test_state_read_only_while_recording_a_batch_stops_every_later_write(
    vt_sandbox: VtigerSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = start(vt_sandbox, tmp_path)
    begin_writes = VtigerWriter.begin_writes
    store_dbs: list[Any] = []
    planned = FullPlanner.finish

    def plan_and_keep_store(self: FullPlanner, *args: Any, **kwargs: Any) -> Any:
        store_dbs.append(self.store.db.raw)
        return planned(self, *args, **kwargs)

    def batch_then_read_only(self: VtigerWriter, labels: Any, segments: Any, ctx: Any) -> None:
        begin_writes(self, labels, segments, ctx)
        # read-only rather than full here: the space checked before the call is already reserved for the
        # batch's record, so a full disk could no longer stop it
        BREAK["read_only"](store_dbs[0])

    monkeypatch.setattr(FullPlanner, "finish", plan_and_keep_store)
    monkeypatch.setattr(VtigerWriter, "begin_writes", batch_then_read_only)
    vt_sandbox.reset_calls()
    result = run(config, vt_sandbox)
    assert result.exit_code == 7, result.output
    assert "is read-only" in result.stderr
    # the batch went out (the state was fine when the writer was called): one revise per lead, the 20
    # nurture leads' segment value in the same revise as their label...
    assert writes(vt_sandbox) == vt_sandbox.calls["revise"] == 40
    seg = vt_sandbox.store.field_by_label("Leads", "Segments")
    assert sum(1 for r in vt_sandbox.store.all("Leads") if r.get(seg)) == 20
    # ...and nothing after it, and nothing recorded: the next run sends the same batch again
    state = sqlite3.connect(tmp_path / "state.sqlite")
    try:
        assert state.execute("SELECT COUNT(*) FROM labels").fetchone() == (0,)
    finally:
        state.close()
