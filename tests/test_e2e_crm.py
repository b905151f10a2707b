"""The whole job over real HTTP: Salesforce (HTTPS) and vtiger loopback sandboxes, files, the state store.

These tests drive `Runner` exactly as `connector run` does and count what each sandbox served, so they check
the promises ops teams rely on: one stage per person in both CRMs, label writes in ceil(changed/200) calls, a
run with nothing new makes no write call, and injected faults lose nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from waiting import HANG_GUARD, LineWatcher, is_event, stop

from connector.config import load_config
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector.state import StateStore
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import seeded_world
from connector_sandboxes.salesforce import SalesforceSandbox
from connector_sandboxes.vtiger import VtigerSandbox

AS_OF = dt.date(2026, 11, 23)
SF_WRITE_KINDS = {"composite/sobjects", "sobject.post", "sobject.patch", "sobject.delete", "bulk2.ingest"}
VT_WRITE_OPS = {"create", "update", "revise", "delete", "add_related"}


@dataclass
class World:
    sf: SalesforceSandbox
    vt: VtigerSandbox
    runner: Runner
    state_path: Path
    people: list[Any]
    environ: dict[str, str]

    def run(self, mode: str = "run") -> Any:
        self.sf.reset_calls()
        self.vt.reset_calls()
        return self.runner.execute(mode, AS_OF)

    def sf_writes(self) -> int:
        return sum(n for kind, n in self.sf.call_counts().items() if kind in SF_WRITE_KINDS)

    def vt_writes(self) -> int:
        return sum(n for op, n in self.vt.calls.items() if op in VT_WRITE_OPS)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    people = generate(240, AS_OF, seed=3)
    with seeded_world(tmp_path, people, AS_OF, seed=3) as seeded:
        config = load_config(seeded.config_path)
        runner = Runner(config, environ=seeded.environ, policy=RetryPolicy(attempts=12, sleep=lambda s: None))
        yield World(seeded.sf, seeded.vt, runner, config.state_path(), people, seeded.environ)


def _sf_labels(sf: SalesforceSandbox) -> dict[str, str | None]:
    return {
        (r["Email"] or "").lower(): r["Funnel_Stage__c"]
        for obj in ("Lead", "Contact")
        for r in sf.store.all(obj)
        if not r.get("IsConverted")
    }


def _vt_labels(vt: VtigerSandbox) -> dict[str, str | None]:
    out = {}
    for module in ("Leads", "Contacts"):
        field = vt.store.field_by_label(module, "Funnel stage")
        for r in vt.store.all(module):
            out[r["email"].lower()] = r.get(field) or None
    return out


def test_first_run_labels_everyone_in_few_calls_and_second_run_writes_nothing(world: World) -> None:
    first = world.run()
    assert first.exit_code == 3, first.errors  # the demo files carry malformed rows: partial, with reasons
    assert first.rejected["count"] == 6
    changed = first.labels["sf_out"]["written"]
    assert changed == len(_sf_labels(world.sf)) > 0
    composite = world.sf.call_counts()["composite/sobjects"]
    campaign_adds = sum(s["adds"] for s in first.segments["sf_out"].values())
    # labels: ceil(n/200) per object; campaign members: ceil(adds/200) per campaign
    label_calls = math.ceil(changed / 200) + 1  # Lead and Contact batches may each end in a partial batch
    task_calls = math.ceil(sum(first.tasks["targets"]["sf_out"]["created"].values()) / 200)  # follow-up tasks
    assert composite <= label_calls + task_calls + sum(
        math.ceil(s["adds"] / 200) for s in first.segments["sf_out"].values()
    )
    assert campaign_adds > 0
    assert all(v is not None for v in _sf_labels(world.sf).values())
    assert all(v is not None for v in _vt_labels(world.vt).values())
    # vtiger: the source and the target share one client; a session serves one request at a time, so the
    # target's 4 workers log in once each (the source's reads reuse one of them); every session is logged out
    # at the end, and each module is described once (Calendar too: the demo's follow-up tasks)
    assert 1 <= world.vt.calls["login"] <= 4
    assert world.vt.calls["logout"] == world.vt.calls["login"]
    assert world.vt.calls["describe"] == 5

    second = world.run()
    assert world.sf_writes() == 0
    assert world.vt_writes() == 0
    assert all(s["changes"] == 0 for s in second.labels.values())
    assert all(s["adds"] == 0 and s["removes"] == 0 for t in second.segments.values() for s in t.values())
    assert second.transitions == {}


def test_people_in_both_crms_carry_one_stage(world: World) -> None:
    world.run()
    sf, vt = _sf_labels(world.sf), _vt_labels(world.vt)
    both = set(sf) & set(vt)
    assert len(both) > 10
    assert {e: sf[e] for e in both} == {e: vt[e] for e in both}


def test_a_change_in_salesforce_moves_exactly_that_person(world: World) -> None:
    world.run()
    lead = next(r for r in world.sf.store.all("Lead") if r["Status"] == "Working - Contacted")
    world.sf.store.update("Lead", lead["Id"], {"Status": "Closed - Not Converted"})
    summary = world.run()
    assert summary.labels["sf_out"]["changes"] == 1
    assert world.sf.store.get("Lead", lead["Id"])["Funnel_Stage__c"] == "Qualified Out"
    assert world.sf.call_counts()["composite/sobjects"] == 1
    assert summary.transitions == {"lead->qualified_out": 1}


def test_deleted_contact_leaves_its_campaign_segment(world: World) -> None:
    world.run()
    store = StateStore(world.state_path)
    members = store.members("sf_out")["win-back"]
    store.close()
    assert members
    campaign = next(c for c in world.sf.store.all("Campaign") if c["Name"] == "Win-back")
    member = next(m for m in world.sf.store.all("CampaignMember") if m["CampaignId"] == campaign["Id"])
    record = member["LeadId"] or member["ContactId"]
    world.sf.store.delete("Lead" if record.startswith("00Q") else "Contact", record)
    summary = world.run()
    assert summary.segments["sf_out"]["win-back"]["removes"] >= 1
    store = StateStore(world.state_path)
    assert (
        len(store.members("sf_out").get("win-back", set()))
        == len(members) - summary.segments["sf_out"]["win-back"]["removes"]
    )
    # the deleted record's remembered label is dropped too
    assert not [ref for ref in store.labels("sf_out") if ref.endswith(record)]
    store.close()


@pytest.mark.reliability("Outages and broken answers")
def test_faults_in_both_crms_lose_nothing(world: World) -> None:
    world.sf.faults.seed = 11
    world.sf.faults.error_503_rate = 0.15
    world.sf.faults.rate_limit_every = 9
    world.sf.faults.retry_after = 0
    world.sf.faults.expire_session_after = 12
    world.sf.faults.lock_row_rate = 0.05
    world.vt.faults.seed = 11
    world.vt.faults.error_500_rate = 0.1
    world.vt.faults.expire_sessions_after = 40
    first = world.run()
    assert first.exit_code in (0, 3), first.errors
    # everything that could be written was: each CRM record carries the label the state says it has
    store = StateStore(world.state_path)
    written_sf = store.labels("sf_out")
    store.close()
    for ref, label in written_sf.items():
        _, obj, rid = ref.split(":", 2)
        assert world.sf.store.get(obj, rid)["Funnel_Stage__c"] == label

    world.sf.faults.reset()
    world.vt.faults.error_500_rate = 0
    world.vt.faults.expire_sessions_after = None
    world.run()  # picks up whatever the faults left for the next run (rejected writes are retried)
    third = world.run()
    assert world.sf_writes() == 0 and world.vt_writes() == 0
    assert third.rejected["pending"] == 6  # only the malformed file rows remain
    pairs: dict[tuple[str, str], int] = {}
    for m in world.sf.store.all("CampaignMember"):
        key = (m["CampaignId"], m["LeadId"] or m["ContactId"])
        pairs[key] = pairs.get(key, 0) + 1
    assert pairs and max(pairs.values()) == 1  # no duplicate membership


@pytest.mark.reliability("Guards against wrong writes")
def test_plan_writes_nothing_anywhere(world: World) -> None:
    summary = world.run("plan")
    assert summary.labels["sf_out"]["changes"] > 0
    assert world.sf_writes() == 0 and world.vt_writes() == 0
    assert all(r["Funnel_Stage__c"] is None for r in world.sf.store.all("Contact"))
    assert summary.estimated_write_calls["sf_out"] >= math.ceil(summary.labels["sf_out"]["changes"] / 200)
    store = StateStore(world.state_path)
    assert store.labels("sf_out") == {} and store.people() == {}
    store.close()


@pytest.mark.reliability("Guards against wrong writes")
def test_api_budget_stops_the_run_cleanly_before_the_ceiling(world: World) -> None:
    world.sf.reset_calls()
    world.sf.api_usage = int(world.sf.daily_limit * 0.8)  # other integrations already used 80% today
    summary = world.runner.execute("run", AS_OF)
    assert summary.exit_code == 6, summary.errors
    assert summary.outcome == "budget_stop"
    assert "budget" in " ".join(summary.errors).lower()
    assert world.sf_writes() == 0
    # only the call that revealed the usage went out; no retry storm
    assert sum(n for kind, n in world.sf.call_counts().items() if kind != "login") <= 2


@pytest.mark.reliability("Transport and secrets")
def test_no_secret_reaches_the_logs(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    from connector import logs

    logs.configure("debug", json_logs=True)
    try:
        world.sf.faults.expire_session_after = 5  # re-logins, so fresh session tokens pass through too
        world.run()
        world.run()
    finally:
        logs.configure("warning")
    output = capsys.readouterr()
    text = output.out + output.err
    assert "salesforce.login" in text  # the logs were captured
    for secret in (world.sf.password, world.sf.security_token, world.sf.client_secret, world.vt.access_key):
        assert secret not in text
    for token in world.sf.issued_tokens():
        assert token not in text


@pytest.mark.reliability("Crashes and signals")
def test_sigterm_mid_run_is_recorded_and_the_next_run_carries_on(world: World, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    # The org holds the first label write: the child is then provably mid-run, every source read and
    # committed, with a write in flight. A fixed sleep instead raced the child's start-up on a busy machine.
    world.sf.faults.hold = {"composite/sobjects"}
    exe = Path(sys.executable).with_name("connector")
    config = str(world.runner.config.config_file)
    env = {**os.environ, **world.environ}
    proc = subprocess.Popen(
        [str(exe), "--log-json", "run", "-c", config, "--as-of", AS_OF.isoformat()],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    stderr = LineWatcher(proc.stderr)
    try:
        stderr.wait_for(is_event("source.read.done", source="sf_prod"))
        assert world.sf.faults.held.wait(HANG_GUARD), f"no label write reached the org:\n{stderr.tail()}"
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(HANG_GUARD) == 130, stderr.rest()[-2000:]
    finally:
        world.sf.faults.release()
        stop(proc)
    store = StateStore(world.state_path)
    (row,) = store.runs()
    assert row["outcome"] == "interrupted"
    assert store.cursors("sf_prod"), "what the interrupted run read and committed stays"
    store.close()

    summary = world.run()  # the lock was released, and what was committed stays
    assert summary.exit_code == 3  # only the demo files' malformed rows
    assert all(v is not None for v in _sf_labels(world.sf).values())
