"""`plan` predicts the run (issue 9 item 1): the read-only checks a write depends on run in `plan` too, over
real HTTP against both loopback sandboxes. A label Salesforce's restricted picklist does not hold is listed as
a predicted rejection (and `run` keeps it rejected without sending it); a vtiger label field that does not
exist is a config error in `plan` as in `run`, before any write."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.context import RunContext
from connector.outcome import EXIT_CONFIG, EXIT_PARTIAL
from connector.pipeline import Runner
from connector.plan import LabelChange
from connector.retry import RetryPolicy
from connector.writers.base import WriteResult
from connector.writers.salesforce.writer import SalesforceWriter
from connector_sandboxes.demo.config_template import DEMO_CONFIG
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import World, seeded_world

pytestmark = pytest.mark.e2e

AS_OF = dt.date(2026, 11, 23)
RESTRICTED = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
SF_WRITE_KINDS = {"composite/sobjects", "sobject.post", "sobject.patch", "sobject.delete", "bulk2.ingest"}
VT_WRITE_OPS = {"create", "update", "revise", "delete", "add_related"}


@contextmanager
def job(tmp_path: Path, config_text: str) -> Iterator[tuple[World, Runner]]:
    people = generate(240, AS_OF, seed=3)
    with seeded_world(tmp_path, people, AS_OF, seed=3, config_text=config_text) as seeded:
        config = load_config(seeded.config_path)
        runner = Runner(config, environ=seeded.environ, policy=RetryPolicy(attempts=12, sleep=lambda s: None))
        yield seeded, runner


def writes(world: World) -> int:
    sf = sum(n for kind, n in world.sf.call_counts().items() if kind in SF_WRITE_KINDS)
    return sf + sum(n for op, n in world.vt.calls.items() if op in VT_WRITE_OPS)


def test_a_label_a_restricted_salesforce_picklist_refuses_is_predicted_by_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 'Klant' is not a value of Funnel_Stage__c, a restricted picklist (the sandbox enforces it per record)
    text = DEMO_CONFIG.replace("  preset: default\n", "  preset: default\n  labels: {{customer: Klant}}\n", 1)
    sent: list[LabelChange] = []
    original = SalesforceWriter.write_labels

    def spy(self: SalesforceWriter, changes: list[LabelChange], ctx: RunContext) -> WriteResult:
        sent.extend(changes)
        return original(self, changes, ctx)

    monkeypatch.setattr(SalesforceWriter, "write_labels", spy)
    with job(tmp_path, text) as (world, runner):
        world.sf.reset_calls()
        world.vt.reset_calls()
        plan = runner.execute("plan", AS_OF)
        assert writes(world) == 0
        predicted = plan.predicted_rejections["sf_out"]
        assert predicted["count"] > 0
        assert predicted["reasons"] == {RESTRICTED: predicted["count"]}
        assert all("'Klant'" in e and "Funnel_Stage__c" in e for e in predicted["examples"])
        assert plan.exit_code == EXIT_PARTIAL and plan.outcome == "partial"
        assert "vt_out" not in plan.predicted_rejections  # a vtiger text field takes any label

        run = runner.execute("run", AS_OF)
        assert run.predicted_rejections == plan.predicted_rejections  # the plan predicted the run
        assert run.rejected["reasons"][f"sf_out: {RESTRICTED}"] == predicted["count"]
        assert run.labels["sf_out"]["failed"] == predicted["count"]  # and Salesforce refused nothing else
        assert sent and all(c.new != "Klant" for c in sent)  # the refused ones were never sent
        assert (
            run.labels["sf_out"]["written"]
            == len(sent)
            == plan.labels["sf_out"]["changes"] - predicted["count"]
        )
        assert all(
            r["Funnel_Stage__c"] != "Klant" for o in ("Lead", "Contact") for r in world.sf.store.all(o)
        )


@pytest.mark.parametrize("mode", ["plan", "run"])
def test_a_misspelt_vtiger_label_field_is_a_config_error_in_plan_as_in_run(tmp_path: Path, mode: str) -> None:
    text = DEMO_CONFIG.replace('"label:Funnel stage"', '"label:Funnel stag"')
    assert text.count('label:Funnel stag"') == 2
    with job(tmp_path, text) as (world, runner):
        world.sf.reset_calls()
        world.vt.reset_calls()
        summary: Any = runner.execute(mode, AS_OF)
        assert summary.exit_code == EXIT_CONFIG, summary.errors
        assert summary.outcome == "config_error"
        assert any("vt_out" in e and "label_field." in e and "Funnel stag" in e for e in summary.errors)
        assert writes(world) == 0  # stopped before any write, in every target


@pytest.mark.parametrize("mode", ["plan", "run"])
def test_a_salesforce_campaign_that_is_not_there_stops_plan_and_run_before_any_write(
    tmp_path: Path, mode: str
) -> None:
    old = 'renewal-2027: {{campaign: "Renewal 2027", member_status: Sent, create: true}}'
    assert old in DEMO_CONFIG
    text = DEMO_CONFIG.replace(old, 'renewal-2027: {{campaign: "Renewal 2072", member_status: Sent}}')
    with job(tmp_path, text) as (world, runner):
        world.sf.reset_calls()
        world.vt.reset_calls()
        summary: Any = runner.execute(mode, AS_OF)
        assert summary.exit_code == EXIT_CONFIG, summary.errors
        assert any("sf_out" in e and "'Renewal 2072'" in e for e in summary.errors)
        assert writes(world) == 0  # before: the labels went out, then the campaign sync stopped the run
