"""`unknown_values: error` against the vtiger sandbox, through the command line over real HTTP: a lead status
neither the stock meanings nor value_maps know ends `plan` and `run` as a config error (exit 2) naming the
source, field, values and counts, and the run writes nothing and moves no cursor past those records."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli
from connector.state import StateStore
from connector_sandboxes.vtiger import VtigerSandbox

pytestmark = pytest.mark.e2e
AS_OF = dt.date(2026, 11, 23)
WRITE_OPS = {"create", "update", "revise", "delete", "add_related"}
CONFIG = """\
state: {{path: {state}}}
stage_model: {{preset: default}}
identity: {{merge_on: [email]}}
sources:
  - name: vt_main
    type: vtiger
    url: {url}
    unknown_values: {setting}
    modules:
      Leads: {{fields: {{email: email, lastname: last_name, leadstatus: lead_status}}}}
targets:
  - name: vt_out
    type: vtiger
    source: vt_main
    label_field: {{Leads: "label:Funnel stage"}}
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--log-level", "warning", *args], catch_exceptions=False)


def write_config(tmp_path: Path, sandbox: VtigerSandbox, setting: str) -> Path:
    path = tmp_path / "connector.yaml"
    text = CONFIG.format(state=tmp_path / "state.sqlite", url=sandbox.url, setting=setting)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def seeded(vt_sandbox: VtigerSandbox, monkeypatch: pytest.MonkeyPatch) -> VtigerSandbox:
    for key, value in vt_sandbox.env().items():
        monkeypatch.setenv(key, value)
    st = vt_sandbox.store
    st.create("Leads", {"lastname": "H", "email": "h@x.nl", "leadstatus": "Hot"})
    for n in range(3):
        st.create("Leads", {"lastname": f"O{n}", "email": f"o{n}@x.nl", "leadstatus": "Nurture me"})
    st.create("Leads", {"lastname": "W", "email": "w@x.nl", "leadstatus": "Waiting"})
    vt_sandbox.reset_calls()
    return vt_sandbox


@pytest.mark.parametrize("command", ["plan", "run"])
def test_unknown_values_error_is_a_config_error_naming_field_values_and_counts(
    seeded: VtigerSandbox, tmp_path: Path, command: str
) -> None:
    config = write_config(tmp_path, seeded, "error")
    result = invoke(command, "-c", str(config), "--as-of", AS_OF.isoformat(), "--json")
    assert result.exit_code == 2, result.output
    data = json.loads(result.stdout)
    assert data["outcome"] == "config_error"
    (error,) = data["errors"]
    assert error.startswith("vt_main: sources.vt_main.unknown_values is 'error'")
    assert "Leads.lead_status 'Nurture me' (3 records)" in error
    assert "Leads.lead_status 'Waiting' (1 record)" in error
    assert data["unknown_values"] == {
        "vt_main.Leads.lead_status=Nurture me": 3,
        "vt_main.Leads.lead_status=Waiting": 1,
    }
    assert not {op for op in seeded.calls if op in WRITE_OPS}, seeded.calls
    # nothing of the refused batch is kept: once the admin maps the values, the next run reads them again
    store = StateStore(tmp_path / "state.sqlite")
    try:
        assert store.cursors("vt_main") == {}
    finally:
        store.close()


def test_report_is_the_default_and_the_run_goes_on(seeded: VtigerSandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, seeded, "report")
    result = invoke("run", "-c", str(config), "--as-of", AS_OF.isoformat(), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["unknown_values"] == {
        "vt_main.Leads.lead_status=Nurture me": 3,
        "vt_main.Leads.lead_status=Waiting": 1,
    }
    assert data["labels"]["vt_out"]["written"] == 5
