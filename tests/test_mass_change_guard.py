"""The mass-change guard: a run that would remove too many of a segment's members, or change too many of the
labels a target holds, writes nothing and exits 8; `--allow-mass-change` lets one run through; `plan` says so.

Files-only projects for segments (what the marketers' files hold), the vtiger sandbox over real HTTP for labels.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from spine_helpers import VTIGER_LABEL_CONFIG

from connector.cli import cli
from connector.config import load_config
from connector.outcome import EXIT_MASS_CHANGE
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector.state import StateStore
from connector_sandboxes.vtiger import VtigerSandbox

pytestmark = pytest.mark.reliability("Guards against wrong writes")

AS_OF = dt.date(2026, 11, 23)

FILES_CONFIG = """\
state: {path: state.sqlite}
stage_model: {preset: default}
GUARD
sources:
  - name: crm
    type: file
    role: sales
    path: people.csv
    kind: person
    fields: {email: email, status: lead_status}
    value_maps:
      lead_status: {Working: working, Disqualified: qualified_out}
targets:
  - name: files
    type: segment_files
    directory: out
segments:
  - name: warm
    when: {field: stage, eq: lead}
    targets: [files]
"""


def _project(tmp_path: Path, n: int, guard: str = "") -> Path:
    (tmp_path / "connector.yaml").write_text(FILES_CONFIG.replace("GUARD", guard), encoding="utf-8")
    _people(tmp_path, n, disqualified=0)
    return tmp_path / "connector.yaml"


def _people(root: Path, n: int, disqualified: int) -> None:
    rows = ["email;status"]
    rows += [f"p{i}@acme.example;{'Disqualified' if i < disqualified else 'Working'}" for i in range(n)]
    (root / "people.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def _members(path: Path, target: str, segment: str) -> int:
    store = StateStore(load_config(path).state_path())
    try:
        return len(store.members(target).get(segment, set()))
    finally:
        store.close()


def _segment_file_rows(root: Path) -> int:
    return len((root / "out" / "warm.csv").read_text(encoding="utf-8-sig").splitlines()) - 1


def test_removing_too_many_members_holds_the_run_and_plan_says_so(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    path = _project(tmp_path, 100)
    cli_runner = CliRunner()
    first = cli_runner.invoke(cli, ["run", "-c", str(path), "--as-of", AS_OF.isoformat()])
    assert first.exit_code == 0, first.output
    assert _members(path, "files", "warm") == 100

    _people(tmp_path, 100, disqualified=30)  # 30 % of the segment would leave: over the 20 % default
    plan = cli_runner.invoke(cli, ["plan", "-c", str(path), "--as-of", AS_OF.isoformat()])
    assert plan.exit_code == EXIT_MASS_CHANGE, plan.output
    assert "mass-change guard" in plan.output and "30 of 100" in plan.output

    held = cli_runner.invoke(cli, ["run", "-c", str(path), "--as-of", AS_OF.isoformat()])
    assert held.exit_code == EXIT_MASS_CHANGE, held.output
    assert "files: would remove 30 of the 100 members of segment 'warm'" in held.output
    record_property("observed", f"exit {held.exit_code}: would remove 30 of the 100 members; file untouched")
    assert "--allow-mass-change" in held.output
    assert _members(path, "files", "warm") == 100
    assert _segment_file_rows(tmp_path) == 100  # the marketers' file is untouched

    # held again on the next run: the plan has not gone away
    again = cli_runner.invoke(cli, ["run", "-c", str(path), "--as-of", AS_OF.isoformat()])
    assert again.exit_code == EXIT_MASS_CHANGE

    allowed = cli_runner.invoke(
        cli, ["run", "-c", str(path), "--as-of", AS_OF.isoformat(), "--allow-mass-change", "--json"]
    )
    assert allowed.exit_code == 0, allowed.output
    assert '"verdict": "allowed"' in allowed.output
    assert _members(path, "files", "warm") == 70
    assert _segment_file_rows(tmp_path) == 70


def test_small_or_permitted_changes_pass(tmp_path: Path) -> None:
    path = _project(tmp_path, 30)
    runner = Runner(load_config(path))
    assert runner.execute("run", AS_OF).exit_code == 0
    _people(tmp_path, 30, disqualified=9)  # 30 % of the segment, but fewer than min_count (10) people
    summary = runner.execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    assert summary.guard["verdict"] == "pass"
    assert _members(path, "files", "warm") == 21


def test_the_limits_are_configurable_per_run_and_per_segment(tmp_path: Path) -> None:
    path = _project(tmp_path, 100, guard="guard: {max_segment_removal_share: 0.5, min_count: 5}")
    assert Runner(load_config(path)).execute("run", AS_OF).exit_code == 0
    _people(tmp_path, 100, disqualified=40)
    assert Runner(load_config(path)).execute("run", AS_OF).exit_code == 0
    assert _members(path, "files", "warm") == 60

    text = path.read_text(encoding="utf-8").replace(
        "targets: [files]\n", "targets: [files]\n    max_removal_share: 0.1\n"
    )
    path.write_text(text, encoding="utf-8")
    _people(tmp_path, 100, disqualified=50)  # 10 of 60 (17 %): over this segment's own 10 %
    held = Runner(load_config(path)).execute("run", AS_OF)
    assert held.exit_code == EXIT_MASS_CHANGE
    assert held.guard["breaches"][0]["limit"] == 0.1


def test_a_first_run_is_exempt(tmp_path: Path) -> None:
    path = _project(tmp_path, 100)
    _people(tmp_path, 100, disqualified=60)
    summary = Runner(load_config(path)).execute("run", AS_OF)
    assert summary.exit_code == 0 and summary.guard["verdict"] == "pass"


@pytest.mark.e2e
def test_relabelling_most_of_a_crm_holds_the_run(
    vt_sandbox: VtigerSandbox, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    st = vt_sandbox.store
    leads = [
        st.create("Leads", {"lastname": f"L{i}", "email": f"l{i}@x.nl", "leadstatus": "Hot"})
        for i in range(40)
    ]
    (tmp_path / "connector.yaml").write_text(VTIGER_LABEL_CONFIG.format(url=vt_sandbox.url), encoding="utf-8")
    runner = Runner(
        load_config(tmp_path / "connector.yaml"),
        environ=vt_sandbox.env(),
        policy=RetryPolicy(attempts=3, sleep=lambda s: None),
    )
    first = runner.execute("run", AS_OF)
    assert first.exit_code == 0, first.errors
    assert first.labels["vt_out"]["written"] == 40

    for lead in leads[:25]:  # someone bulk-edits the lead status: 25 of 40 labels would change
        st.update(lead["id"], {"leadstatus": "Junk Lead"})
    vt_sandbox.reset_calls()
    held = runner.execute("run", AS_OF)
    assert held.exit_code == EXIT_MASS_CHANGE, held.errors
    assert held.guard["breaches"] == [
        {
            "target": "vt_out",
            "what": "label_changes",
            "segment": None,
            "count": 25,
            "held": 40,
            "limit": 0.5,
            "share": 0.625,
        }
    ]
    assert not {"update", "revise", "create"} & set(vt_sandbox.calls)
    record_property("observed", f"exit {held.exit_code}: 25 of 40 labels would change; 0 vtiger writes")
    label_field = st.field_by_label("Leads", "Funnel stage")
    assert {st.get(lead["id"])[label_field] for lead in leads} == {"Lead"}

    through = Runner(
        load_config(tmp_path / "connector.yaml"),
        environ=vt_sandbox.env(),
        policy=RetryPolicy(attempts=3, sleep=lambda s: None),
        allow_mass_change=True,
    ).execute("run", AS_OF)
    assert through.exit_code == 0, through.errors
    assert through.labels["vt_out"]["written"] == 25
