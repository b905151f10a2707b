"""Above the Bulk threshold, a run with nothing new still makes one query per object (over HTTPS, counted by
the loopback org).

At 40,000 people a writing run's own label writes (tens of thousands of Leads and Contacts) come back through
the next read, and a run within a minute of it leaves them in its cursor's overlap window: the run after that
reads them again whatever changed. It used to ask a REST page first, learn from its `totalSize` that the read
was above the threshold, and start a Bulk job as well: two queries per object. The cursor now counts what its
window holds and goes to Bulk at once. The run right after the writing run did the same for the writes
themselves (news to its cursor); the writer now counts them (`crm.salesforce.own_writes`) and that read goes to
Bulk at once too. A low `bulk_threshold` makes 120 people behave like 40,000.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sf_fakes import Clock

from connector.config import load_config
from connector.outcome import Summary
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import World, seeded_world

pytestmark = pytest.mark.e2e
AS_OF = dt.date(2026, 11, 23)
START = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=dt.UTC)
THRESHOLD = 20  # rows: far fewer than the Leads and Contacts of 120 people, and than their label writes
OBJECTS = ("Lead", "Contact", "Opportunity", "Contract", "OpportunityContactRole")

# the demo's Salesforce half with a low read threshold (the writer's own Bulk threshold stays its default)
CONFIG = """\
state:
  path: state.sqlite
stage_model:
  preset: default
sources:
  - name: sf_prod
    type: salesforce
    auth: password
    login_url: {sf_login_url}
    api_version: "59.0"
    env_prefix: SF_
    ca_bundle: {sf_ca_bundle}
    bulk_threshold: THRESHOLD
    objects:
      Lead:
        fields: {{Email: email, FirstName: first_name, LastName: last_name, Company: company, Status: lead_status,
                 HasOptedOutOfEmail: opted_out}}
      Contact:
        fields: {{Email: email, FirstName: first_name, LastName: last_name, HasOptedOutOfEmail: opted_out}}
      Opportunity:
        kind: opportunity
        fields: {{StageName: opportunity_stage_raw, Amount: opportunity_amount, CloseDate: opportunity_close_date}}
      Contract:
        kind: contract
        fields: {{StartDate: contract_start, EndDate: contract_end}}
targets:
  - name: sf_out
    type: salesforce
    source: sf_prod
    label_field: {{Lead: Funnel_Stage__c, Contact: Funnel_Stage__c}}
""".replace("THRESHOLD", str(THRESHOLD))  # its braces are for str.format (seeded_world: the org's address)


@dataclass
class Org:
    world: World
    clock: Clock
    runner: Runner

    def run(self, seconds: int) -> tuple[Summary, Counter[str], Counter[str]]:
        """One run `seconds` after the last (both clocks): its summary, queries per object in their FROM
        (REST queries and Bulk query jobs alike) and the calls per kind."""
        self.clock.at += dt.timedelta(seconds=seconds)
        self.world.sf.reset_calls()
        summary = self.runner.execute("run", AS_OF)
        return summary, Counter(self.world.sf.queried_objects()), Counter(self.world.sf.call_counts())


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    clock = Clock(START)
    population = generate(120, AS_OF, seed=5)
    with seeded_world(tmp_path, population, AS_OF, seed=5, config_text=CONFIG, sf_clock=clock) as world:
        runner = Runner(
            load_config(world.config_path),
            environ=world.environ,
            policy=RetryPolicy(attempts=12, sleep=lambda s: None),
            clock=clock,
        )
        yield Org(world, clock, runner)


def test_a_run_with_nothing_new_above_the_bulk_threshold_makes_one_query_per_object(org: Org) -> None:
    store = org.world.sf.store
    assert min(len(store.all("Lead")), len(store.all("Contact"))) > THRESHOLD

    first, _, first_calls = org.run(15 * 60)
    written = int(first.labels["sf_out"]["written"])
    assert written > 2 * THRESHOLD and first_calls["bulk2.query"] > 0  # the first read went through Bulk

    # 30 s after the writing run: its own writes come back (more than the threshold: through Bulk), and they
    # stay inside this run's overlap window
    after_write, _, _ = org.run(30)
    assert after_write.labels.get("sf_out", {}).get("written", 0) == 0

    # 15 minutes later nothing changed: the window's records come back once more, in one query per object
    quiet, queried, calls = org.run(15 * 60)
    assert quiet.labels.get("sf_out", {}).get("written", 0) == 0
    assert {obj: queried[obj] for obj in OBJECTS} == dict.fromkeys(OBJECTS, 1), (queried, calls)
    assert calls["bulk2.query"] > 0  # the window is still above the threshold: read by Bulk, not REST

    # and the next quiet run has an empty window: one REST query per object, no Bulk
    _, queried, calls = org.run(15 * 60)
    assert {obj: queried[obj] for obj in OBJECTS} == dict.fromkeys(OBJECTS, 1), (queried, calls)
    assert calls["bulk2.query"] == 0 and calls["queryAll"] == len(OBJECTS)


def test_the_run_right_after_a_writing_run_reads_its_own_writes_in_one_query_per_object(org: Org) -> None:
    first, _, _ = org.run(15 * 60)
    written = org.world.sf.store
    labelled = {
        obj: sum(1 for r in written.all(obj) if r.get("Funnel_Stage__c")) for obj in ("Lead", "Contact")
    }
    assert min(labelled.values()) > THRESHOLD, labelled  # each object's writes alone are above the threshold
    assert int(first.labels["sf_out"]["written"]) == sum(labelled.values())

    # 30 s later: the writes are news to the cursors (saved before them), yet the writer said how many it made
    after_write, queried, calls = org.run(30)
    assert after_write.labels.get("sf_out", {}).get("written", 0) == 0
    assert {obj: queried[obj] for obj in OBJECTS} == dict.fromkeys(OBJECTS, 1), (queried, calls)
    assert calls["bulk2.query"] >= 2  # Lead and Contact went to Bulk at once, without a REST page first
