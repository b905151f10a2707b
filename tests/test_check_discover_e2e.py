"""`connector check` and `connector discover` through the command line, over real HTTP to both sandboxes.

The sandboxes count what they served by kind and by the object each query read: `check` must log in and
confirm everything a run needs while reading no person's record and writing nothing; `discover` must print a
block that is valid config for the source it was asked about.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from connector.check import exit_code, run_check
from connector.cli import cli
from connector.config import load_config
from connector.retry import RetryPolicy
from connector.sources.salesforce.config import SalesforceObjectMapping
from connector.sources.vtiger.config import VtigerModuleConfig
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import World, seeded_world

AS_OF = dt.date(2026, 11, 23)
SF_WRITE_KINDS = {"composite/sobjects", "sobject.post", "sobject.patch", "sobject.delete", "bulk2.ingest"}
VT_WRITE_OPS = {"create", "update", "revise", "delete", "add_related", "convertlead"}
VT_RECORD_READS = {"sync", "retrieve", "retrieve_related"}
# what check may query: campaigns (a target needs them) and the rows that give picklist values their meaning
SF_METADATA_ROWS = {"Campaign", "CampaignMemberStatus", "LeadStatus", "OpportunityStage"}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with seeded_world(tmp_path, generate(20, AS_OF, seed=5), AS_OF, seed=5) as seeded:
        for key, value in seeded.environ.items():
            monkeypatch.setenv(key, value)
        seeded.sf.reset_calls()
        seeded.vt.reset_calls()
        yield seeded


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--log-level", "warning", *args], catch_exceptions=False)


def findings(result: Result) -> dict[tuple[str, str], dict[str, Any]]:
    body = json.loads(result.output)
    return {(f["plugin"], f["check"]): f for f in body["findings"]}


def assert_read_only(world: World) -> None:
    sf_kinds = world.sf.call_counts()
    assert not {k for k in sf_kinds if k in SF_WRITE_KINDS or k.startswith("bulk2")}, sf_kinds
    assert set(world.sf.queried_objects()) <= SF_METADATA_ROWS, world.sf.queried_objects()
    assert not {op for op in world.vt.calls if op in VT_WRITE_OPS | VT_RECORD_READS}, world.vt.calls
    assert set(world.vt.queried) <= {"Campaigns"}, world.vt.queried


def edit_config(world: World, *replacements: tuple[str, str]) -> None:
    text = world.config_path.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    world.config_path.write_text(text, encoding="utf-8")


def test_check_confirms_everything_a_run_needs_reading_no_record(world: World) -> None:
    result = invoke("check", "-c", str(world.config_path), "--json")
    assert result.exit_code == 0, result.output
    found = findings(result)
    assert {f["status"] for f in found.values()} <= {"ok", "info"}
    for plugin in ("sf_prod", "vt_main"):
        assert found[(plugin, "login")]["status"] == "ok"
        assert (plugin, "api version") in found and (plugin, "api allowance") in found
    assert found[("sf_prod", "api version")]["detail"].startswith("v59.0")
    assert "calls left today" in found[("sf_prod", "api allowance")]["detail"]
    assert found[("sf_prod", "field Contact.Account.Name")]["status"] == "ok"
    assert "IsConverted" not in found[("sf_prod", "LeadStatus")]["detail"]  # plain words, not flags
    assert found[("vt_main", "user time zone")]["detail"] == "UTC"
    assert found[("vt_out", "segments field Leads.label:Segments")]["status"] == "ok"
    assert found[("sf_out", "campaign Renewal 2027")]["status"] == "ok"
    assert found[("marketing_files", "config")]["status"] == "ok"
    assert json.loads(result.output)["api_calls"]["sf_prod"] > 0
    assert_read_only(world)
    assert world.sf.call_counts()["login"] == 1 and world.vt.calls["login"] == 1  # one login per system


def test_check_table_on_a_terminal(world: World) -> None:
    result = invoke("check", "-c", str(world.config_path))
    assert result.exit_code == 0
    assert "sf_out" in result.output and "label field Lead.Funnel_Stage__c" in result.output
    assert result.output.rstrip().endswith("everything a run needs is there")


def test_check_names_every_missing_thing_and_exits_2(world: World) -> None:
    edit_config(
        world,
        (
            "FirstName: first_name, LastName: last_name, Company: company",
            "FirstNam: first_name, LastName: last_name",
        ),
        ("label_field: {Lead: Funnel_Stage__c,", "label_field: {Lead: Funnel_Stag__c,"),
        (
            'campaign: "Win-back", member_status: Sent, create: true',
            'campaign: "Win-back", member_status: Sent',
        ),
        ('Contacts: "label:Funnel stage"}', 'Contacts: "label:Funnel stag"}'),
        ("leadstatus: lead_status", "leadstatuz: lead_status"),
    )
    world.sf.api_usage = 12500  # past sf_prod's 80 % of 15000: a run would stop at once
    world.sf.store.insert("Campaign", {"Name": "Renewal 2027", "IsActive": True})
    result = invoke("check", "-c", str(world.config_path), "--json")
    assert result.exit_code == 2, result.output
    found = findings(result)
    failed = {key for key, f in found.items() if f["status"] == "fail"}
    assert failed == {
        ("sf_prod", "field Lead.FirstNam"),
        ("sf_prod", "api allowance"),
        ("sf_out", "label field Lead.Funnel_Stag__c"),
        ("sf_out", "campaign Win-back"),
        ("vt_out", "label field Contacts.label:Funnel stag"),
        ("vt_main", "field Leads.leadstatuz"),
    }, failed
    assert "exit 6" in found[("sf_prod", "api allowance")]["detail"]
    assert "Funnel stage" in found[("vt_out", "label field Contacts.label:Funnel stag")]["detail"]
    # a campaign that exists has its member status checked against its CampaignMemberStatus rows
    assert "member status 'Sent' exists" in found[("sf_out", "campaign Renewal 2027")]["detail"]
    assert json.loads(result.output)["ok"] is False
    assert_read_only(world)


def test_check_reports_a_system_that_does_not_answer_as_down(world: World) -> None:
    config = load_config(world.config_path)
    world.vt.stop()
    found, _ = run_check(config, policy=RetryPolicy(attempts=2, sleep=lambda s: None))
    vt_login = next(f for f in found if (f.plugin, f.check) == ("vt_main", "login"))
    assert vt_login.status == "down"
    assert exit_code(found) == 4
    assert all(f.status in ("ok", "info") for f in found if f.plugin.startswith("sf_"))


def test_discover_salesforce_prints_meanings_and_a_block_that_is_valid_config(world: World) -> None:
    result = invoke("discover", "-c", str(world.config_path), "sf_prod", "Lead", "Opportunity")
    assert result.exit_code == 0, result.output
    assert "Closed - Converted  [IsConverted=true] -> converted" in result.output
    assert "Closed Won  [IsClosed=true, IsWon=true] -> won" in result.output
    block = yaml.safe_load(result.output.split("# a start for sources[sf_prod].objects:\n", 1)[1])
    lead = SalesforceObjectMapping.model_validate(block["objects"]["Lead"])
    assert lead.fields["Email"] == "email" and lead.fields["Status"] == "lead_status"
    assert lead.value_maps == {"lead_status": {"Closed - Converted": "converted"}}
    opp = SalesforceObjectMapping.model_validate(block["objects"]["Opportunity"])
    assert opp.kind.value == "opportunity"
    assert opp.value_maps["opportunity_stage"] == {"Closed Won": "won", "Closed Lost": "lost"}
    assert set(world.sf.queried_objects()) <= {"LeadStatus", "OpportunityStage"}
    assert not {k for k in world.sf.call_counts() if k in SF_WRITE_KINDS}


def test_discover_vtiger_names_custom_fields_by_label_with_stock_meanings(world: World) -> None:
    result = invoke("discover", "-c", str(world.config_path), "vt_main", "Leads", "Potentials", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    leads = {f["name"]: f for f in body["objects"][0]["fields"]}
    segments = next(f for f in leads.values() if f["label"] == "Segments")
    assert segments["key"] == "label:Segments" and segments["type"] == "multipicklist"
    status = {v["value"]: v["meaning"] for v in leads["leadstatus"]["picklist"]}
    assert status["Hot"] == "working" and status["Junk Lead"] == "qualified_out"
    assert body["objects"][1]["label"] == "Opportunities"
    text = invoke("discover", "-c", str(world.config_path), "vt_main", "Leads", "Potentials").output
    block = yaml.safe_load(text.split("# a start for sources[vt_main].modules:\n", 1)[1])
    leads_cfg = VtigerModuleConfig.model_validate(block["modules"]["Leads"])
    assert leads_cfg.fields["leadstatus"] == "lead_status"
    assert leads_cfg.value_maps["lead_status"]["Lost Lead"] == "qualified_out"
    pot = VtigerModuleConfig.model_validate(block["modules"]["Potentials"])
    assert pot.value_maps["opportunity_stage"]["Closed Won"] == "won"
    assert '# "label:Funnel stage": extra.' in text  # custom fields are named the way the YAML names them
    assert not {op for op in world.vt.calls if op in VT_WRITE_OPS | VT_RECORD_READS | {"query"}}


def test_discover_without_objects_lists_them(world: World) -> None:
    sf = invoke("discover", "-c", str(world.config_path), "sf_prod")
    assert sf.exit_code == 0 and "  Lead " in sf.output and "  OpportunityStage " in sf.output
    vt = json.loads(invoke("discover", "-c", str(world.config_path), "vt_main", "--json").output)
    labels = {o["name"]: o["label"] for o in vt["objects"]}
    assert labels["Potentials"] == "Opportunities" and labels["Leads"] == "Leads"
    assert all(o["fields"] is None for o in vt["objects"])


def test_discover_an_unknown_source_or_object_is_exit_2(world: World) -> None:
    for args, words in (
        (("sf_prod", "Leed"), "no object 'Leed'"),
        (("vt_main", "Leeds"), "no module 'Leeds'"),
        (("nope",), "no source named 'nope'"),
    ):
        result = CliRunner().invoke(cli, ["discover", "-c", str(world.config_path), *args])
        assert result.exit_code == 2, result.output
        assert words in result.output
