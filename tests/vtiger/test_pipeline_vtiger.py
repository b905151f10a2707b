"""The whole job against vtiger alone (`Runner`, real HTTP to the sandbox), with and without a working `sync`:
unknown picklist values reported (not a crash), segment fields kept exact as people enter and leave (hand-set
values kept, hand-set managed values cleared), and a run with nothing new making no write call."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from connector.config import load_config
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector.writers.vtiger.writer import split_multi
from connector_sandboxes.vtiger import VtigerSandbox

pytestmark = pytest.mark.e2e
AS_OF = dt.date(2026, 11, 23)
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
      Contacts: {{fields: {{email: email, lastname: last_name}}}}
targets:
  - name: vt_out
    type: vtiger
    source: vt_main
    label_field: {{Leads: "label:Funnel stage", Contacts: "label:Funnel stage"}}
    segments_field: {{Leads: "label:Segments", Contacts: "label:Segments"}}
    concurrency: 3
    strict: {strict}
    campaigns:
      later: {{campaign: "Nurture newsletter", create: true, closingdate: "2027-12-31"}}
segments:
  - name: later
    when: {{field: lead_status, eq: nurture}}
    targets: [vt_out]
"""


def writes(sandbox: VtigerSandbox) -> int:
    return sum(n for op, n in sandbox.calls.items() if op in WRITE_OPS)


def segments(sandbox: VtigerSandbox, lead_id: str) -> list[str]:
    record = sandbox.store.get(lead_id)
    assert record is not None
    return split_multi(record[sandbox.store.field_by_label("Leads", "Segments")])


@pytest.mark.parametrize("stock_php8", [False, True], ids=["sync", "query"])
def test_runs_keep_the_segment_field_exact_and_a_quiet_run_writes_nothing(
    vt_sandbox: VtigerSandbox, tmp_path: Path, stock_php8: bool
) -> None:
    if stock_php8:
        vt_sandbox.faults.stock_php8()
    st = vt_sandbox.store
    seg = st.field_by_label("Leads", "Segments")
    later = [st.create("Leads", {"lastname": "L", "email": "l@x.nl", "leadstatus": "Contact in Future"})]
    later.append(
        st.create(
            "Leads", {"lastname": "V", "email": "v@x.nl", "leadstatus": "Contact in Future", seg: "VIP"}
        )
    )
    hot = st.create("Leads", {"lastname": "H", "email": "h@x.nl", "leadstatus": "Hot"})
    st.create("Leads", {"lastname": "Odd", "email": "odd@x.nl", "leadstatus": "NotAStatus"})
    st.create("Contacts", {"lastname": "C", "email": "c@x.nl"})
    (tmp_path / "connector.yaml").write_text(
        CONFIG.format(url=vt_sandbox.url, strict="false"), encoding="utf-8"
    )
    runner = Runner(
        load_config(tmp_path / "connector.yaml"),
        environ=vt_sandbox.env(),
        policy=RetryPolicy(attempts=5, sleep=lambda s: None),
    )

    first = runner.execute("run", AS_OF)
    assert first.exit_code == 0, first.errors
    assert first.unknown_values == {"vt_main.Leads.lead_status=NotAStatus": 1}
    assert first.labels["vt_out"]["written"] == 5
    assert segments(vt_sandbox, later[0]["id"]) == ["Nurture newsletter"]
    assert segments(vt_sandbox, later[1]["id"]) == ["VIP", "Nurture newsletter"]

    vt_sandbox.reset_calls()
    second = runner.execute("run", AS_OF)
    assert second.exit_code == 0, second.errors
    assert writes(vt_sandbox) == 0
    assert second.labels["vt_out"]["changes"] == 0

    # one leaves the segment, one joins it, and someone types the managed value onto a non-member by hand
    st.revise(later[0]["id"], {"leadstatus": "Hot"})
    st.revise(hot["id"], {"leadstatus": "Contact in Future", seg: "Partner"})
    odd = next(r for r in st.all("Leads") if r["lastname"] == "Odd")
    st.revise(odd["id"], {seg: "Nurture newsletter |##| Partner"})
    third = runner.execute("run", AS_OF)
    assert third.exit_code == 0, third.errors
    assert third.segments["vt_out"]["later"] == {
        "members": 2,
        "adds": 1,
        "removes": 1,
        "added": 1,
        "removed": 1,
        "failed": 0,
    }
    assert segments(vt_sandbox, later[0]["id"]) == []
    assert segments(vt_sandbox, later[1]["id"]) == ["VIP", "Nurture newsletter"]
    assert segments(vt_sandbox, hot["id"]) == ["Partner", "Nurture newsletter"]
    assert segments(vt_sandbox, odd["id"]) == ["Partner"]

    vt_sandbox.reset_calls()
    fourth = runner.execute("run", AS_OF)
    assert fourth.exit_code == 0, fourth.errors
    assert writes(vt_sandbox) == 0


def test_strict_clears_a_hand_typed_value_on_the_next_run_even_without_changes(
    vt_sandbox: VtigerSandbox, tmp_path: Path
) -> None:
    st = vt_sandbox.store
    seg = st.field_by_label("Leads", "Segments")
    member = st.create("Leads", {"lastname": "M", "email": "m@x.nl", "leadstatus": "Contact in Future"})
    other = st.create("Leads", {"lastname": "O", "email": "o@x.nl", "leadstatus": "Hot"})
    (tmp_path / "connector.yaml").write_text(
        CONFIG.format(url=vt_sandbox.url, strict="true"), encoding="utf-8"
    )
    runner = Runner(
        load_config(tmp_path / "connector.yaml"),
        environ=vt_sandbox.env(),
        policy=RetryPolicy(attempts=5, sleep=lambda s: None),
    )
    assert runner.execute("run", AS_OF).exit_code == 0
    vt_sandbox.reset_calls()
    assert runner.execute("run", AS_OF).exit_code == 0
    assert writes(vt_sandbox) == 0  # strict reads the field each run, and writes nothing when it is exact

    st.revise(other["id"], {seg: "Nurture newsletter |##| Partner"})  # typed by hand; no segment changes
    vt_sandbox.reset_calls()
    summary = runner.execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    assert summary.segments["vt_out"]["later"]["adds"] == 0 == summary.segments["vt_out"]["later"]["removes"]
    assert segments(vt_sandbox, other["id"]) == ["Partner"]
    assert segments(vt_sandbox, member["id"]) == ["Nurture newsletter"]
    assert vt_sandbox.calls["revise"] == 1 and writes(vt_sandbox) == 1


def test_labels_written_before_vtiger_went_away_are_kept_and_the_run_exits_unreachable(
    vt_sandbox: VtigerSandbox, tmp_path: Path
) -> None:
    for n in range(12):
        vt_sandbox.store.create("Leads", {"lastname": f"L{n}", "email": f"l{n}@x.nl", "leadstatus": "Hot"})
    (tmp_path / "connector.yaml").write_text(
        CONFIG.format(url=vt_sandbox.url, strict="false"), encoding="utf-8"
    )
    runner = Runner(
        load_config(tmp_path / "connector.yaml"),
        environ=vt_sandbox.env(),
        policy=RetryPolicy(attempts=3, sleep=lambda s: None),
    )
    vt_sandbox.faults.error_500_ops = {"revise"}
    vt_sandbox.faults.down_after = 4  # four labels land, then vtiger stops answering

    first = runner.execute("run", AS_OF)
    assert (first.outcome, first.exit_code) == ("unreachable", 4)
    assert any(e.startswith("vt_out: unreachable: ") for e in first.errors), first.errors
    assert (first.labels["vt_out"]["written"], first.labels["vt_out"]["failed"]) == (4, 8)

    vt_sandbox.faults.down_after = None
    vt_sandbox.reset_calls()
    second = runner.execute("run", AS_OF)
    assert second.exit_code == 0, second.errors
    assert vt_sandbox.calls["revise"] == 8  # the four that landed are not written again
    assert second.rejected["pending"] == 0
