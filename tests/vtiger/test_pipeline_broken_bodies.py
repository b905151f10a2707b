"""The whole job (`Runner`, real HTTP to the vtiger sandbox) when vtiger's answers break part way through the
label writes: 200s with JSON cut short or an HTML maintenance page are an outage (exit 4, or 0 when the retries
get through), never a config error; the writes made before stay recorded and are not repeated."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from connector.config import load_config
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector_sandboxes.vtiger import VtigerSandbox

from .test_pipeline_vtiger import AS_OF, CONFIG, writes

pytestmark = [pytest.mark.e2e, pytest.mark.reliability("Outages and broken answers")]
LEADS = 12


def runner(sandbox: VtigerSandbox, tmp_path: Path, attempts: int) -> Runner:
    for n in range(LEADS):
        sandbox.store.create("Leads", {"lastname": f"L{n}", "email": f"l{n}@x.nl", "leadstatus": "Hot"})
    (tmp_path / "connector.yaml").write_text(CONFIG.format(url=sandbox.url, strict="false"), encoding="utf-8")
    return Runner(
        load_config(tmp_path / "connector.yaml"),
        environ=sandbox.env(),
        policy=RetryPolicy(attempts=attempts, sleep=lambda s: None),
    )


@pytest.mark.parametrize("kind", ["truncated", "html"])
def test_broken_answers_mid_writes_end_unreachable_and_the_next_run_converges(
    vt_sandbox: VtigerSandbox, tmp_path: Path, kind: Literal["truncated", "html"]
) -> None:
    job = runner(vt_sandbox, tmp_path, attempts=3)
    vt_sandbox.faults.broken_body = kind
    vt_sandbox.faults.broken_body_ops = {"revise"}
    vt_sandbox.faults.broken_body_after = 4  # four labels land, then every answer to a write is broken

    first = job.execute("run", AS_OF)
    assert (first.outcome, first.exit_code) == ("unreachable", 4), first.errors
    assert any(e.startswith("vt_out: unreachable: ") for e in first.errors), first.errors
    assert not any("config" in e.lower() for e in first.errors), first.errors
    assert (first.labels["vt_out"]["written"], first.labels["vt_out"]["failed"]) == (4, LEADS - 4)
    # each write was retried through the whole policy before vtiger counted as unreachable (the writer then
    # stops sending, so how many broken answers depends on the concurrency, not on the number of records)
    assert vt_sandbox.faults.broken["revise"] >= 3

    vt_sandbox.faults.broken_body = None
    vt_sandbox.reset_calls()
    second = job.execute("run", AS_OF)
    assert second.exit_code == 0, second.errors
    assert vt_sandbox.calls["revise"] == LEADS - 4  # the four recorded in state are not written again
    assert second.rejected["pending"] == 0
    label = vt_sandbox.store.field_by_label("Leads", "Funnel stage")
    assert all(record[label] for record in vt_sandbox.store.all("Leads"))

    vt_sandbox.reset_calls()
    third = job.execute("run", AS_OF)
    assert third.exit_code == 0, third.errors
    assert writes(vt_sandbox) == 0


def test_broken_answers_that_the_retries_get_through_end_ok(
    vt_sandbox: VtigerSandbox, tmp_path: Path
) -> None:
    job = runner(vt_sandbox, tmp_path, attempts=5)
    vt_sandbox.faults.broken_body = "truncated"
    vt_sandbox.faults.broken_body_ops = {"revise", "query"}
    vt_sandbox.faults.broken_body_after = 2
    vt_sandbox.faults.broken_body_count = 3

    summary = job.execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    assert summary.labels["vt_out"]["written"] == LEADS
    assert sum(vt_sandbox.faults.broken.values()) == 3

    vt_sandbox.reset_calls()
    again = job.execute("run", AS_OF)
    assert again.exit_code == 0, again.errors
    assert writes(vt_sandbox) == 0
