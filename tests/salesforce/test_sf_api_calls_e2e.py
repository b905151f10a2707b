"""What each kind of run costs on the Salesforce wire, counted at the sandbox: queries (query, queryAll,
queryMore) and sObject Collections calls, as upper bounds.

The demo config reads five objects (Lead, Contact, Opportunity, Contract and the opportunities'
OpportunityContactRole). The org's clock and the run's clock move on together between runs, so a run "15
minutes later" is one: the overlap window of each cursor (60 s) holds only what changed since.
"""

from __future__ import annotations

import datetime as dt
import math
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
STREAMS = 5  # Lead, Contact, Opportunity, Contract, OpportunityContactRole
QUERY_KINDS = ("query", "queryAll", "queryMore")


@dataclass
class Org:
    world: World
    clock: Clock
    runner: Runner

    def run(self, seconds: int = 15 * 60) -> tuple[Summary, int, int]:
        """One run `seconds` after the last (both clocks): its summary, queries, collection calls."""
        self.clock.at += dt.timedelta(seconds=seconds)
        self.world.sf.reset_calls()
        summary = self.runner.execute("run", AS_OF)
        counts = self.world.sf.call_counts()
        return summary, sum(counts[k] for k in QUERY_KINDS), counts["composite/sobjects"]


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    clock = Clock(START)
    with seeded_world(tmp_path, generate(120, AS_OF, seed=5), AS_OF, seed=5, sf_clock=clock) as world:
        runner = Runner(
            load_config(world.config_path),
            environ=world.environ,
            policy=RetryPolicy(attempts=12, sleep=lambda s: None),
            clock=clock,
        )
        yield Org(world, clock, runner)


def sf_labels(summary: Summary) -> int:
    return int(summary.labels["sf_out"]["written"])


def test_queries_and_collection_calls_per_run_kind(org: Org) -> None:
    """Every run kind is measured before any bound is checked, so a failure shows the whole table."""
    seen: dict[str, tuple[int, int]] = {}  # run kind -> (queries, collection calls)
    bounds: dict[str, tuple[int, int]] = {}
    first, *seen["first run"] = org.run()
    labelled = sf_labels(first)
    # the 2 picklists, one query per object (no COUNT() before it), the opportunities' roles (one per 400
    # opportunities), and per campaign its lookup and member statuses (2 campaigns); Leads and Contacts share
    # collection calls: ceil(labels / 200), then one member insert per campaign
    bounds["first run"] = (2 + 4 + 1 + 2 * 2, math.ceil(labelled / 200) + 2)

    # nothing new, 30 s after a writing run: its own label writes come back through the Lead and Contact
    # reads; a minute after it they are still inside the overlap window (read again, skipped as read); 15
    # minutes later nothing is
    _, *seen["nothing new, 30 s after a writing run"] = org.run(seconds=30)
    _, *seen["nothing new, 60 s after a writing run"] = org.run(seconds=30)
    _, *seen["nothing new, 15 min later"] = org.run()
    for kind in ("30 s after a writing run", "60 s after a writing run", "15 min later"):
        bounds[f"nothing new, {kind}"] = (STREAMS, 0)  # one query per object

    # about 1 % changed: one Lead qualified out in the org
    store = org.world.sf.store
    lead = next(
        r for r in store.all("Lead") if not r["IsConverted"] and r["Status"] != "Closed - Not Converted"
    )
    store.update("Lead", lead["Id"], {"Status": "Closed - Not Converted"})
    changed, *seen["1 % changed"] = org.run()
    campaigns = sum(1 for s in changed.segments.get("sf_out", {}).values() if s["adds"] or s["removes"])
    # one query per object and the lookups of each campaign whose members changed; one label call, and one
    # member call per such campaign
    bounds["1 % changed"] = (STREAMS + 2 * campaigns, 1 + campaigns)

    assert labelled > 0 and sf_labels(changed) == 1
    over = {
        kind: (seen[kind], bound)
        for kind, bound in bounds.items()
        if not all(n <= b for n, b in zip(seen[kind], bound, strict=True))
    }
    assert not over, f"(queries, collection calls) over their bounds: {over}; all: {seen}"


def test_roles_changed_just_before_a_first_run_are_not_read_again_with_their_opportunities(org: Org) -> None:
    # the first run starts 10 s after every record (and every contact role) was written: all of them sit in
    # the overlap window of the cursors that run leaves, the role cursor's included
    org.run(seconds=10)
    _, queries, collections = org.run()
    # one query per object: the roles the first run read with their opportunities are known to the role
    # cursor, so their opportunities are not read again (with a query for their roles)
    assert (queries, collections) == (STREAMS, 0), org.world.sf.call_counts()
