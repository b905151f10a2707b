"""`connector check` against the vtiger sandbox (real HTTP) reads no record, so for picklist meaning it names the
values the module's picklist offers that neither connector's stock meanings nor the YAML's value_maps know, as
'info' findings: what a run would report as "unknown picklist values" once the data uses them."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.check import exit_code, run_check
from connector.config import load_config
from connector.retry import RetryPolicy
from connector_sandboxes.vtiger import VtigerSandbox

pytestmark = pytest.mark.e2e
CONFIG = """\
state: {{path: state.sqlite}}
stage_model: {{preset: default}}
identity: {{merge_on: [email]}}
sources:
  - name: vt_main
    type: vtiger
    url: {url}
    modules:
      Leads:
        fields: {{email: email, lastname: last_name, "label:Lead grade": lead_status, industry: extra.industry}}
        value_maps:
          lead_status: {{"A - ready": qualified}}
          extra.industry: {{Banking: finance, Finance: finance}}
      Potentials:
        kind: opportunity
        fields: {{sales_stage: opportunity_stage, amount: opportunity_amount}}
"""


def test_check_lists_picklist_values_with_no_meaning_as_info(
    vt_sandbox: VtigerSandbox, tmp_path: Path
) -> None:
    # an org that tracks its leads in a picklist of its own, with one value mapped in the YAML
    vt_sandbox.store.add_custom_field(
        "Leads", "Lead grade", "picklist", ("A - ready", "B - later", "C - junk")
    )
    path = tmp_path / "connector.yaml"
    path.write_text(CONFIG.format(url=vt_sandbox.url), encoding="utf-8")
    found, _ = run_check(
        load_config(path), environ=vt_sandbox.env(), policy=RetryPolicy(attempts=3, sleep=lambda s: None)
    )
    by_check = {f.check: f for f in found}
    grade = by_check["picklist Leads.label:Lead grade"]
    assert grade.status == "info"
    assert grade.detail == "2 value(s) with no meaning (add them to value_maps): 'B - later', 'C - junk'"
    industry = by_check["picklist Leads.industry"]
    assert industry.status == "info" and "'Banking'" not in industry.detail and "'Retail'" in industry.detail
    # the stock sales stages all have a meaning out of the box: nothing to report, nothing failed
    assert "picklist Potentials.sales_stage" not in by_check
    assert exit_code(found) == 0
