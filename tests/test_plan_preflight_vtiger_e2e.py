"""`plan` predicts the run against vtiger too (issue 9 item 1), over real HTTP to the loopback sandboxes: the
segments field (exists, editable, a multi-select), the label values a picklist label field offers, and the
campaign of every segment gaining members, all checked by `VtigerWriter.preflight` in `plan` and `run` alike,
before any write.

vtiger 8.2 itself stores a value that is not among a picklist's options (the sandbox does the same:
tests/vtiger/test_sandbox_records.py), but its edit form shows only the options, so the next save in the UI
replaces such a label: connector refuses it up front instead, and `plan` says so."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.outcome import EXIT_CONFIG, EXIT_PARTIAL
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector_sandboxes.demo.config_template import DEMO_CONFIG
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import World, seeded_world

pytestmark = pytest.mark.e2e

AS_OF = dt.date(2026, 11, 23)
NOT_AN_OPTION = "NOT_A_PICKLIST_VALUE"
SF_WRITE_KINDS = {"composite/sobjects", "sobject.post", "sobject.patch", "sobject.delete", "bulk2.ingest"}
VT_WRITE_OPS = {"create", "update", "revise", "delete", "add_related"}
PICKLIST_LABEL = "Funnel picklist"


@contextmanager
def job(tmp_path: Path, config_text: str) -> Iterator[tuple[World, Runner, Any]]:
    people = generate(240, AS_OF, seed=3)
    with seeded_world(tmp_path, people, AS_OF, seed=3, config_text=config_text) as seeded:
        config = load_config(seeded.config_path)
        runner = Runner(config, environ=seeded.environ, policy=RetryPolicy(attempts=12, sleep=lambda s: None))
        yield seeded, runner, config


def writes(world: World) -> int:
    sf = sum(n for kind, n in world.sf.call_counts().items() if kind in SF_WRITE_KINDS)
    return sf + sum(n for op, n in world.vt.calls.items() if op in VT_WRITE_OPS)


def test_a_label_a_vtiger_picklist_does_not_offer_is_predicted_by_plan_and_never_sent(tmp_path: Path) -> None:
    text = DEMO_CONFIG.replace("  preset: default\n", "  preset: default\n  labels: {{customer: Klant}}\n", 1)
    text = text.replace('"label:Funnel stage"', f'"label:{PICKLIST_LABEL}"')
    with job(tmp_path, text) as (world, runner, config):
        # an admin made the vtiger label field a picklist of the stock labels: 'Klant' is not one of them
        stock = tuple(s.label_for("vt_out") for s in config.stage_model.stages if s.name != "customer")
        assert "Klant" not in stock and len(stock) >= 6
        fields = {
            m: world.vt.store.add_custom_field(m, PICKLIST_LABEL, "picklist", stock)
            for m in ("Leads", "Contacts")
        }
        world.sf.reset_calls()
        world.vt.reset_calls()
        plan = runner.execute("plan", AS_OF)
        assert writes(world) == 0
        predicted = plan.predicted_rejections["vt_out"]
        assert predicted["count"] > 0
        assert predicted["reasons"] == {NOT_AN_OPTION: predicted["count"]}
        assert all("'Klant'" in e and PICKLIST_LABEL in e for e in predicted["examples"])
        assert plan.exit_code == EXIT_PARTIAL and plan.outcome == "partial"

        run = runner.execute("run", AS_OF)
        assert run.predicted_rejections == plan.predicted_rejections  # the plan predicted the run
        assert run.rejected["reasons"][f"vt_out: {NOT_AN_OPTION}"] == predicted["count"]
        assert run.labels["vt_out"]["failed"] == predicted["count"]
        assert run.labels["vt_out"]["written"] == plan.labels["vt_out"]["changes"] - predicted["count"] > 0
        held = [r[fields[r["_module"]]] for r in _records(world, fields)]
        assert "Klant" not in held  # never sent (vtiger would have stored it)
        assert set(held) - {""} <= set(stock)


def _records(world: World, fields: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for module in fields:
        for record in world.vt.store.all(module):
            out.append({**record, "_module": module})
    return out


@pytest.mark.parametrize("mode", ["plan", "run"])
def test_a_vtiger_campaign_that_is_not_there_stops_plan_and_run_before_any_write(
    tmp_path: Path, mode: str
) -> None:
    old = 'renewal-2027: {{campaign: "Renewal 2027", create: true, closingdate: "2027-12-31"}}'
    assert old in DEMO_CONFIG
    text = DEMO_CONFIG.replace(old, 'renewal-2027: {{campaign: "Renewal 2072"}}')
    with job(tmp_path, text) as (world, runner, _):
        world.sf.reset_calls()
        world.vt.reset_calls()
        summary: Any = runner.execute(mode, AS_OF)
        assert summary.exit_code == EXIT_CONFIG, summary.errors
        assert any("vt_out" in e and "'Renewal 2072'" in e for e in summary.errors), summary.errors
        assert writes(world) == 0  # before: the labels went out, then the segment sync stopped the run


@pytest.mark.parametrize(
    ("field", "why"),
    [("label:Segmnts", "Segmnts"), ("label:Sync Key", "Multi-Select")],
    ids=["misspelt", "not-a-multi-select"],
)
@pytest.mark.parametrize("mode", ["plan", "run"])
def test_a_wrong_vtiger_segments_field_stops_plan_and_run_before_any_write(
    tmp_path: Path, mode: str, field: str, why: str
) -> None:
    text = DEMO_CONFIG.replace('"label:Segments"', f'"{field}"')
    assert text.count(field) == 2
    with job(tmp_path, text) as (world, runner, _):
        world.sf.reset_calls()
        world.vt.reset_calls()
        summary: Any = runner.execute(mode, AS_OF)
        assert summary.exit_code == EXIT_CONFIG, summary.errors
        assert any("vt_out" in e and "segments_field." in e and why in e for e in summary.errors), (
            summary.errors
        )
        assert writes(world) == 0


# The Salesforce side of the same promise at the level of `plan` and `run` (the writer-level tests are in
# tests/salesforce/test_writer_sf_e2e.py): a misspelt label field, and a member status the campaign lacks.
@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("label_field: {{Lead: Funnel_Stage__c,", "label_field: {{Lead: Funnel_Stag__c,", "Funnel_Stag__c"),
        (
            'win-back: {{campaign: "Win-back", member_status: Sent, create: true}}',
            'win-back: {{campaign: "Newsletter", member_status: Shipped}}',
            "Shipped",
        ),
    ],
    ids=["misspelt-label-field", "member-status"],
)
@pytest.mark.parametrize("mode", ["plan", "run"])
def test_a_salesforce_target_problem_stops_plan_and_run_before_any_write(
    tmp_path: Path, mode: str, old: str, new: str, why: str
) -> None:
    assert old in DEMO_CONFIG
    with job(tmp_path, DEMO_CONFIG.replace(old, new)) as (world, runner, _):
        # a campaign that is there, with the stock member statuses (Sent, Responded): not 'Shipped'
        world.sf.store.insert("Campaign", {"Name": "Newsletter", "IsActive": True})
        world.sf.reset_calls()
        world.vt.reset_calls()
        summary: Any = runner.execute(mode, AS_OF)
        assert summary.exit_code == EXIT_CONFIG, summary.errors
        assert any("sf_out" in e and why in e for e in summary.errors), summary.errors
        assert writes(world) == 0
