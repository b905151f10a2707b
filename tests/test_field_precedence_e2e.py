"""A sales decision taken in one CRM is not overturned by an unrelated edit in the other (over real HTTP).

The person has a lead in Salesforce and one in vtiger. Sales qualifies her out in one CRM; a later edit of
another field (the company) of her lead in the other CRM makes that record the newer one, while its old status
still stands there. Precedence is per field, by when that field's value last changed: she stays qualified out
in both CRMs.

Time passes between runs on every clock at once (the org's, vtiger's and the runner's), so each edit is
stamped after the one before it: no test waits for the wall clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.pipeline import Runner, Summary
from connector.retry import RetryPolicy
from connector_sandboxes.demo.dataset import DemoPerson, generate
from connector_sandboxes.demo.world import seeded_world
from connector_sandboxes.salesforce import SalesforceSandbox
from connector_sandboxes.vtiger import VtigerSandbox
from connector_sandboxes.vtiger.clock import parse_wall

pytestmark = pytest.mark.reliability("Guards against wrong writes")

AS_OF = dt.date(2026, 11, 23)
# the org's clock runs an hour behind ours, as in the demo world (seeding must not stamp into the future)
ORG_LAG = dt.timedelta(hours=1)
# longer than the org's lag: an edit made after this step is stamped after one made before it, in either CRM
STEP = 2 * ORG_LAG
QUALIFIED_OUT = "Qualified Out"


@dataclass
class Both:
    sf: SalesforceSandbox
    vt: VtigerSandbox
    runner: Runner
    person: DemoPerson
    passed: list[dt.timedelta]

    def later(self) -> None:
        """Let STEP pass on every clock: the org's, vtiger's and the run's."""
        self.passed[0] += STEP
        self.vt.clock.advance(STEP.total_seconds())

    def run(self) -> Summary:
        summary = self.runner.execute("run", AS_OF)
        assert summary.exit_code in (0, 3), summary.errors  # 3: the demo files' malformed rows
        return summary

    def sf_lead(self) -> dict[str, Any]:
        (lead,) = [r for r in self.sf.store.all("Lead") if (r["Email"] or "").lower() == self.person.email]
        return lead

    def vt_lead(self) -> dict[str, str]:
        (lead,) = [r for r in self.vt.store.all("Leads") if r["email"].lower() == self.person.email]
        return lead

    def labels(self) -> tuple[str | None, str | None]:
        field = self.vt.store.field_by_label("Leads", "Funnel stage")
        return self.sf_lead()["Funnel_Stage__c"], self.vt_lead().get(field) or None


@pytest.fixture
def both(tmp_path: Path) -> Iterator[Both]:
    people = generate(120, AS_OF, seed=3)
    # a lead in both CRMs, worked by sales (not yet decided)
    person = next(p for p in people if p.home == "both" and p.scenario == "lead")
    passed = [dt.timedelta()]

    def org_clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC) - ORG_LAG + passed[0]

    def run_clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC) + passed[0]

    with seeded_world(tmp_path, people, AS_OF, seed=3, sf_clock=org_clock) as seeded:
        config = load_config(seeded.config_path)
        runner = Runner(
            config,
            environ=seeded.environ,
            policy=RetryPolicy(attempts=12, sleep=lambda s: None),
            clock=run_clock,
        )
        yield Both(seeded.sf, seeded.vt, runner, person, passed)


def test_a_vtiger_decision_stands_when_only_the_company_of_the_salesforce_lead_changes(both: Both) -> None:
    both.run()
    assert QUALIFIED_OUT not in both.labels()

    both.later()
    both.vt.store.revise(both.vt_lead()["id"], {"leadstatus": "Junk Lead"})
    both.run()
    assert both.labels() == (QUALIFIED_OUT, QUALIFIED_OUT)

    both.later()
    lead = both.sf_lead()
    both.sf.store.update("Lead", lead["Id"], {"Company": f"{lead['Company']} Holding"})
    edited = both.sf_lead()
    # the Salesforce record is now the newer one, and its status is still the old open one
    assert edited["SystemModstamp"] > parse_wall(both.vt_lead()["modifiedtime"])
    assert edited["Status"] == "Working - Contacted"

    summary = both.run()
    assert both.labels() == (QUALIFIED_OUT, QUALIFIED_OUT)
    assert summary.transitions == {}
    assert all(s["changes"] == 0 for s in summary.labels.values())


def test_a_salesforce_decision_stands_when_only_the_company_of_the_vtiger_lead_changes(both: Both) -> None:
    both.run()
    assert QUALIFIED_OUT not in both.labels()

    both.later()
    both.sf.store.update("Lead", both.sf_lead()["Id"], {"Status": "Closed - Not Converted"})
    both.run()
    assert both.labels() == (QUALIFIED_OUT, QUALIFIED_OUT)

    both.later()
    lead = both.vt_lead()
    both.vt.store.revise(lead["id"], {"company": f"{lead['company']} Holding"})
    edited = both.vt_lead()
    assert parse_wall(edited["modifiedtime"]) > both.sf_lead()["SystemModstamp"]
    assert edited["leadstatus"] == "Not Contacted"

    summary = both.run()
    assert both.labels() == (QUALIFIED_OUT, QUALIFIED_OUT)
    assert summary.transitions == {}
    assert all(s["changes"] == 0 for s in summary.labels.values())
