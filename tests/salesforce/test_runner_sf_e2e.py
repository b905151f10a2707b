"""Salesforce behaviour that only shows through the whole job (`Runner`), against the seeded loopback world."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.crm.salesforce.client import SalesforceClient
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector.state import StateStore
from connector_sandboxes.demo.config_template import DEMO_CONFIG
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import World, seeded_world

pytestmark = pytest.mark.e2e
AS_OF = dt.date(2026, 11, 23)
SF_WRITE_KINDS = {"composite/sobjects", "sobject.post", "sobject.patch", "sobject.delete", "bulk2.ingest"}

WorldFactory = Callable[[str], tuple[World, Runner]]


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[WorldFactory]:
    """`make_world(config_text) -> (world, runner)`: the demo population, 120 people, under a given config."""
    with_worlds: list[Any] = []

    def build(config_text: str) -> tuple[World, Runner]:
        manager = seeded_world(tmp_path, generate(120, AS_OF, seed=5), AS_OF, seed=5, config_text=config_text)
        world = manager.__enter__()
        with_worlds.append(manager)
        config = load_config(world.config_path)
        return world, Runner(
            config, environ=world.environ, policy=RetryPolicy(attempts=12, sleep=lambda s: None)
        )

    yield build
    for manager in with_worlds:
        manager.__exit__(None, None, None)


def sf_writes(world: World) -> int:
    return sum(n for kind, n in world.sf.call_counts().items() if kind in SF_WRITE_KINDS)


def campaign_members(world: World, name: str) -> set[str]:
    campaign = next(c for c in world.sf.store.all("Campaign") if c["Name"] == name)
    return {
        m["ContactId"] or m["LeadId"]
        for m in world.sf.store.all("CampaignMember")
        if m["CampaignId"] == campaign["Id"]
    }


def test_strict_campaign_drops_a_hand_added_member_even_when_the_segment_did_not_change(make_world) -> None:
    strict = DEMO_CONFIG.replace(
        'win-back: {{campaign: "Win-back", member_status: Sent, create: true}}',
        'win-back: {{campaign: "Win-back", member_status: Sent, create: true, strict: true}}',
    )
    assert strict != DEMO_CONFIG
    world, runner = make_world(strict)
    runner.execute("run", AS_OF)
    synced = campaign_members(world, "Win-back")
    assert synced
    campaign = next(c for c in world.sf.store.all("Campaign") if c["Name"] == "Win-back")
    stranger = next(c["Id"] for c in world.sf.store.all("Contact") if c["Id"] not in synced)
    world.sf.store.insert(
        "CampaignMember", {"CampaignId": campaign["Id"], "ContactId": stranger, "Status": "Sent"}
    )

    world.sf.reset_calls()
    summary = runner.execute("run", AS_OF)
    assert (
        summary.segments["sf_out"]["win-back"]["adds"]
        == 0
        == summary.segments["sf_out"]["win-back"]["removes"]
    )
    assert campaign_members(world, "Win-back") == synced  # the stranger is gone, the segment's members stay
    assert world.sf.call_counts()["composite/sobjects"] == 1  # one delete; the label writes had nothing to do

    world.sf.reset_calls()
    runner.execute("run", AS_OF)
    assert sf_writes(world) == 0  # mirrored already: reads only
    state = StateStore(world.config_path.parent / "state.sqlite")
    assert len(state.members("sf_out")["win-back"]) == len(synced)
    state.close()


def test_a_purged_member_leaves_its_campaign_at_the_next_reconciliation(make_world) -> None:
    world, runner = make_world(DEMO_CONFIG)
    now = dt.datetime.now(dt.UTC)
    runner.clock = lambda: now
    runner.execute("run", AS_OF)
    members = campaign_members(world, "Win-back")
    gone = sorted(members)[0]
    sobject = "Lead" if gone.startswith("00Q") else "Contact"
    world.sf.store.purge(sobject, gone)  # deleted while connector was not running, recycle bin since emptied

    runner.clock = lambda: now + dt.timedelta(hours=1)
    summary = runner.execute("run", AS_OF)
    assert summary.segments["sf_out"]["win-back"]["removes"] == 0  # queryAll cannot tell: not yet noticed

    runner.clock = lambda: now + dt.timedelta(days=8)  # the weekly reconciliation is due
    summary = runner.execute("run", AS_OF)
    assert summary.read["sf_prod"]["deleted"] >= 1
    assert summary.segments["sf_out"]["win-back"]["removes"] == 1
    state = StateStore(world.config_path.parent / "state.sqlite")
    assert not [ref for ref in state.labels("sf_out") if ref.endswith(gone)]
    assert len(state.members("sf_out")["win-back"]) == len(members) - 1
    state.close()


def test_a_no_change_run_within_a_day_asks_the_org_for_no_metadata(make_world, monkeypatch) -> None:
    queries: list[str] = []
    query_pages = SalesforceClient.query_pages

    def noting(self: SalesforceClient, soql: str, **kwargs: Any) -> Any:
        queries.append(soql)
        return query_pages(self, soql, **kwargs)

    monkeypatch.setattr(SalesforceClient, "query_pages", noting)
    world, runner = make_world(DEMO_CONFIG)
    now = dt.datetime.now(dt.UTC)
    runner.clock = lambda: now
    runner.execute("run", AS_OF)
    # Lead, Contact, Account, Opportunity, Contract, OpportunityContactRole, LeadStatus, OpportunityStage: the
    # target labelled Leads and Contacts through the source's connection and found them in the source's cache
    assert world.sf.call_counts()["describe"] == 8
    assert (world.config_path.parent / "cache" / "salesforce-sf_prod-describe.json").is_file()

    world.sf.reset_calls()
    queries.clear()
    runner.clock = lambda: now + dt.timedelta(minutes=15)
    summary = runner.execute("run", AS_OF)
    assert summary.exit_code == 3, summary.errors  # only the demo files' malformed rows
    assert world.sf.call_counts()["describe"] == 0
    assert queries and not [q for q in queries if "FROM LeadStatus" in q or "FROM OpportunityStage" in q]

    world.sf.reset_calls()
    runner.clock = lambda: now + dt.timedelta(hours=25)  # the default TTL of 24 hours has passed
    runner.execute("run", AS_OF)
    assert world.sf.call_counts()["describe"] == 8
