"""`connector check` names picklist values with no meaning (issue 9 item 4), for Salesforce as for vtiger, over
real HTTP to both sandboxes: the values the org's LeadStatus / OpportunityStage rows and describe offer that
neither a value map, the org's flags nor a stock meaning explain; with `unknown_values: error` a config
problem (exit 2). Counts come from what the last run read (check itself reads no record). Also the vtiger
target's segment values that are not options of its multi-select field."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import World, seeded_world

pytestmark = pytest.mark.e2e

AS_OF = dt.date(2026, 11, 23)
LEAD_STATUS = "picklist Lead.Status"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with seeded_world(tmp_path, generate(20, AS_OF, seed=5), AS_OF, seed=5) as seeded:
        for key, value in seeded.environ.items():
            monkeypatch.setenv(key, value)
        yield seeded


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--log-level", "warning", *args], catch_exceptions=False)


def check(world: World) -> tuple[int, dict[tuple[str, str], dict[str, Any]]]:
    result = invoke("check", "-c", str(world.config_path), "--json")
    body = json.loads(result.output)
    return result.exit_code, {(f["plugin"], f["check"]): f for f in body["findings"]}


def edit_config(world: World, old: str, new: str) -> None:
    text = world.config_path.read_text(encoding="utf-8")
    assert old in text
    world.config_path.write_text(text.replace(old, new, 1), encoding="utf-8")


def add_lead_status(world: World, label: str) -> None:
    # an admin added a status to the org's Lead Status picklist; its row says only that it does not convert
    world.sf.store.insert(
        "LeadStatus",
        {"MasterLabel": label, "ApiName": label, "IsConverted": False, "IsDefault": False, "SortOrder": 9},
    )


def test_check_names_salesforce_lead_statuses_with_no_meaning(world: World) -> None:
    code, found = check(world)
    assert code == 0
    # the stock statuses have built-in meanings and every stage has the org's closed / won flags
    assert found[("sf_prod", LEAD_STATUS)]["status"] == "ok"
    assert found[("sf_prod", "picklist Opportunity.StageName")]["status"] == "ok"

    add_lead_status(world, "Qualified - Hot")
    add_lead_status(world, "Parked")
    edit_config(
        world,
        '"Closed - Not Converted": qualified_out',
        '"Closed - Not Converted": qualified_out, Parked: nurture',
    )
    code, found = check(world)
    assert code == 0
    finding = found[("sf_prod", LEAD_STATUS)]
    assert finding["status"] == "info"
    assert "'Qualified - Hot'" in finding["detail"] and "Parked" not in finding["detail"]
    assert "Open - Not Contacted" not in finding["detail"]


def test_unknown_values_error_makes_a_salesforce_value_with_no_meaning_a_config_problem(world: World) -> None:
    add_lead_status(world, "Qualified - Hot")
    edit_config(world, "    env_prefix: SF_\n", "    env_prefix: SF_\n    unknown_values: error\n")
    code, found = check(world)
    assert code == 2
    assert found[("sf_prod", LEAD_STATUS)]["status"] == "fail"
    assert "'Qualified - Hot'" in found[("sf_prod", LEAD_STATUS)]["detail"]


def test_unknown_values_error_makes_a_vtiger_value_with_no_meaning_a_config_problem(world: World) -> None:
    # the lead status comes from a custom picklist whose 'Scorching' has no stock meaning
    world.vt.store.add_custom_field("Leads", "Lead phase", "picklist", ("Hot", "Scorching"))
    edit_config(world, "leadstatus: lead_status", '"label:Lead phase": lead_status')
    code, found = check(world)
    finding = found[("vt_main", "picklist Leads.label:Lead phase")]
    assert code == 0 and finding["status"] == "info"
    assert "'Scorching'" in finding["detail"] and "'Hot'" not in finding["detail"]
    edit_config(world, "    env_prefix: VTIGER_\n", "    env_prefix: VTIGER_\n    unknown_values: error\n")
    code, found = check(world)
    assert code == 2
    assert found[("vt_main", "picklist Leads.label:Lead phase")]["status"] == "fail"


def test_check_counts_the_values_with_no_meaning_the_last_run_read(world: World) -> None:
    add_lead_status(world, "Qualified - Hot")
    for n in range(3):
        world.sf.store.insert(
            "Lead",
            {
                "LastName": f"Hot{n}",
                "Company": "Acme",
                "Email": f"hot{n}@acme.example",
                "Status": "Qualified - Hot",
            },
        )
    code, found = check(world)
    assert ("sf_prod", "values seen") not in found  # nothing has run yet
    run = invoke("run", "-c", str(world.config_path), "--as-of", AS_OF.isoformat())
    assert run.exit_code in (0, 3), run.output
    code, found = check(world)
    assert code == 0
    seen = found[("sf_prod", "values seen")]
    assert seen["status"] == "info"
    assert "lead_status=Qualified - Hot (3 record(s))" in seen["detail"]


def test_check_names_segment_values_the_vtiger_field_does_not_offer(world: World) -> None:
    code, found = check(world)
    assert ("vt_out", "segment values Leads") not in found  # the demo's values are options
    edit_config(
        world,
        'win-back: {campaign: "Win-back", create: true, closingdate',
        'win-back: {campaign: "Win-back", value: "Win back 2027", create: true, closingdate',
    )
    code, found = check(world)
    assert code == 0  # vtiger stores it all the same: worth knowing, not missing
    finding = found[("vt_out", "segment values Leads")]
    assert finding["status"] == "info" and "'Win back 2027'" in finding["detail"]
