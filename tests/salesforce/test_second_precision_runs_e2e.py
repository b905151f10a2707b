"""Whole runs (`Runner`) against an org that keeps SystemModstamp to the second, as Salesforce does.

Many records share one stamp, and a record changed again within the second it was read in keeps the stamp it
was read with. The incremental read (inclusive lower bound, de-duplication at the boundary) must neither lose
such a change nor keep re-reading more than that boundary second, over REST pages and over Bulk 2.0.

The org's clock and the run's clock are set by the test, so "the same second" is exact, not a race.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sf_fakes import Clock

from connector.config import load_config
from connector.outcome import Summary
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector.schema import Fact
from connector.sources.salesforce.cursor import Cursor
from connector.state import StateStore
from connector_sandboxes.salesforce import SalesforceSandbox

pytestmark = pytest.mark.e2e
AS_OF = dt.date(2026, 11, 23)
SECOND = dt.datetime(2026, 11, 23, 10, 0, 0, tzinfo=dt.UTC)
MS = dt.timedelta(milliseconds=1)
LEADS = 500
SF_WRITE_KINDS = {"composite/sobjects", "sobject.post", "sobject.patch", "sobject.delete", "bulk2.ingest"}
QUALIFIED_OUT = "Closed - Not Converted"

CONFIG = """\
state:
  path: state.sqlite
stage_model:
  preset: default
sources:
  - name: sf_prod
    type: salesforce
    auth: password
    login_url: {login_url}
    ca_bundle: {ca_bundle}
    env_prefix: SF_
    page_size: {page_size}
    bulk_threshold: {bulk_threshold}
    bulk_page_size: 200
    overlap_seconds: {overlap}
    objects:
      Lead:
        fields: {{Email: email, LastName: last_name, Status: lead_status}}
        value_maps:
          lead_status: {{"Open - Not Contacted": new, "Working - Contacted": working,
                        "Closed - Not Converted": qualified_out}}
targets:
  - name: sf_out
    type: salesforce
    source: sf_prod
    label_field: {{Lead: Funnel_Stage__c}}
"""


@dataclass
class Org:
    sf: SalesforceSandbox
    org_clock: Clock
    run_clock: Clock
    runner: Runner
    state_path: Path

    def run(self, org_at: dt.datetime, run_at: dt.datetime) -> Summary:
        """One `connector run` that starts at `run_at` while the org's clock shows `org_at` (and stays there:
        the run's own label writes are stamped in that second)."""
        self.org_clock.at, self.run_clock.at = org_at, run_at
        self.sf.reset_calls()
        summary = self.runner.execute("run", AS_OF)
        assert summary.exit_code == 0, summary.errors
        # (c) the cursor never passes the run's start, truncated to the second
        state = StateStore(self.state_path)
        try:
            cursor = Cursor.parse(state.cursors("sf_prod").get("Lead"))
        finally:
            state.close()
        start = run_at.replace(microsecond=0)
        assert cursor.newest is not None and cursor.newest <= start
        assert cursor.settled is None or cursor.settled <= start
        assert all(stamp <= start for stamp in cursor.seen.values())
        return summary

    def sf_writes(self) -> int:
        return sum(n for kind, n in self.sf.call_counts().items() if kind in SF_WRITE_KINDS)

    def leads_in_newest_second(self) -> int:
        stamps = [r["SystemModstamp"] for r in self.sf.store.all("Lead")]
        return stamps.count(max(stamps))

    def fact(self, lead_id: str) -> Fact:
        state = StateStore(self.state_path)
        try:
            (fact,) = [f for f in state.all_facts() if f.ref.id == lead_id]
        finally:
            state.close()
        return fact


@pytest.fixture(
    params=[
        pytest.param({"page_size": 2000, "bulk_threshold": 10000, "overlap": 60}, id="rest-2000"),
        pytest.param({"page_size": 200, "bulk_threshold": 10000, "overlap": 0}, id="rest-200-no-overlap"),
        pytest.param({"page_size": 2000, "bulk_threshold": 100, "overlap": 60}, id="bulk"),
        pytest.param({"page_size": 2000, "bulk_threshold": 100, "overlap": 0}, id="bulk-no-overlap"),
    ]
)
def org(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Org]:
    org_clock = Clock(SECOND)
    with SalesforceSandbox(clock=org_clock) as sf:
        config_path = tmp_path / "connector.yaml"
        config_path.write_text(
            CONFIG.format(login_url=sf.login_url, ca_bundle=sf.ca_bundle, **request.param), encoding="utf-8"
        )
        run_clock = Clock(SECOND)
        runner = Runner(
            load_config(config_path),
            environ={
                "SF_USERNAME": sf.username,
                "SF_PASSWORD": sf.password,
                "SF_SECURITY_TOKEN": sf.security_token,
            },
            policy=RetryPolicy(attempts=12, sleep=lambda s: None),
            clock=run_clock,
        )
        yield Org(sf, org_clock, run_clock, runner, tmp_path / "state.sqlite")


def seed_one_second(org: Org) -> list[str]:
    """500 leads written within 10:00:00.100 .. 10:00:00.599: one SystemModstamp for all."""
    ids = []
    for n in range(LEADS):
        org.org_clock.at = SECOND + 100 * MS + n * MS
        ids.append(
            org.sf.store.insert("Lead", {"LastName": f"L{n}", "Company": "Acme", "Email": f"l{n}@acme.nl"})
        )
    assert {r["SystemModstamp"] for r in org.sf.store.all("Lead")} == {SECOND}
    return ids


def test_writes_in_the_cursor_second_are_not_lost_and_a_quiet_run_changes_nothing(org: Org) -> None:
    ids = seed_one_second(org)
    # the first run reads while the org is still in that second, and labels every lead within it
    first = org.run(org_at=SECOND + 900 * MS, run_at=SECOND + 950 * MS)
    assert first.read["sf_prod"]["records"] == LEADS
    assert org.sf_writes() > 0
    assert {r["SystemModstamp"] for r in org.sf.store.all("Lead")} == {SECOND}
    assert all(r["Funnel_Stage__c"] for r in org.sf.store.all("Lead"))

    # (b) nothing new, still in that second: at most its records come back, and they change nothing
    quiet = org.run(org_at=SECOND + 960 * MS, run_at=SECOND + 970 * MS)
    assert quiet.read["sf_prod"]["records"] <= LEADS
    assert quiet.read["sf_prod"]["records"] == quiet.read["sf_prod"]["unchanged"]
    assert quiet.transitions == {} and org.sf_writes() == 0

    # (a) then, still in that second, a lead is qualified out and another one is created: both keep the
    # stamp the first run's cursor already holds
    org.org_clock.at = SECOND + 990 * MS
    org.sf.store.update("Lead", ids[7], {"Status": QUALIFIED_OUT})
    late = org.sf.store.insert("Lead", {"LastName": "Late", "Company": "Acme", "Email": "late@acme.nl"})
    assert org.sf.store.get("Lead", ids[7])["SystemModstamp"] == SECOND
    assert org.sf.store.get("Lead", late)["SystemModstamp"] == SECOND

    later = org.run(
        org_at=SECOND + dt.timedelta(seconds=5), run_at=SECOND + dt.timedelta(seconds=5, milliseconds=500)
    )
    assert org.fact(ids[7]).values["lead_status"] == "qualified_out"
    assert "email:late@acme.nl" in org.fact(late).keys
    assert sum(later.transitions.values()) >= 2  # the qualified-out lead, and the new person
    labels = {r["Id"]: r["Funnel_Stage__c"] for r in org.sf.store.all("Lead")}
    assert labels[late] and labels[ids[7]] != labels[ids[8]]

    # (b) nothing new after that: only the boundary second (the echo of the last run's label writes) is read
    # again, it changes nothing and writes nothing; once that second is over, nothing is read at all
    echo = org.leads_in_newest_second()
    quiet = org.run(
        org_at=SECOND + dt.timedelta(seconds=10), run_at=SECOND + dt.timedelta(seconds=10, milliseconds=500)
    )
    assert quiet.read["sf_prod"]["records"] <= echo
    assert quiet.read["sf_prod"]["records"] == quiet.read["sf_prod"]["unchanged"]
    assert quiet.transitions == {} and org.sf_writes() == 0
    settled = org.run(org_at=SECOND + dt.timedelta(seconds=20), run_at=SECOND + dt.timedelta(seconds=20))
    assert settled.read["sf_prod"]["records"] == 0
    assert settled.transitions == {} and org.sf_writes() == 0


def test_the_cursor_stays_within_the_run_start_when_the_org_clock_runs_ahead(org: Org) -> None:
    seed_one_second(org)
    # the org's clock is two seconds ahead of ours: what it stamps after our start is left for the next run
    org.org_clock.at = SECOND + dt.timedelta(seconds=2)
    ahead = org.sf.store.insert("Lead", {"LastName": "Ahead", "Company": "Acme", "Email": "ahead@acme.nl"})
    first = org.run(org_at=SECOND + dt.timedelta(seconds=2, milliseconds=100), run_at=SECOND + 500 * MS)
    assert first.read["sf_prod"]["records"] == LEADS
    second = org.run(org_at=SECOND + dt.timedelta(seconds=9), run_at=SECOND + dt.timedelta(seconds=8))
    assert "email:ahead@acme.nl" in org.fact(ahead).keys
    assert second.read["sf_prod"]["records"] >= 1
