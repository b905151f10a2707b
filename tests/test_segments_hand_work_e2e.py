"""Segments against hand edits, over real HTTP through `Runner`: strict targets put back what a person removed
by hand (a vtiger Segments value, a Salesforce campaign member), and a campaign member connector did not
create (already there when connector added the person, or left by a state that cannot tell) is never deleted.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.outcome import Summary
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector.state import StateStore
from connector_sandboxes.demo.config_template import DEMO_CONFIG
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import seeded_world
from connector_sandboxes.salesforce import SalesforceSandbox
from connector_sandboxes.vtiger import VtigerSandbox

pytestmark = [pytest.mark.e2e, pytest.mark.reliability("Hand work in the CRMs")]
AS_OF = dt.date(2026, 11, 23)
SF_WRITE_KINDS = {"composite/sobjects", "sobject.post", "sobject.patch", "sobject.delete", "bulk2.ingest"}
VT_WRITE_OPS = {"create", "update", "revise", "delete", "add_related"}
SF_STRICT = DEMO_CONFIG.replace(
    'win-back: {{campaign: "Win-back", member_status: Sent, create: true}}',
    'win-back: {{campaign: "Win-back", member_status: Sent, create: true, strict: true}}',
)
VT_STRICT = DEMO_CONFIG.replace("    concurrency: 4\n", "    concurrency: 4\n    strict: true\n")


@dataclass
class World:
    sf: SalesforceSandbox
    vt: VtigerSandbox
    runner: Runner
    state_path: Path

    def run(self, mode: str = "run") -> Summary:
        self.sf.reset_calls()
        self.vt.reset_calls()
        return self.runner.execute(mode, AS_OF)

    def sf_writes(self) -> int:
        return sum(n for kind, n in self.sf.call_counts().items() if kind in SF_WRITE_KINDS)

    def vt_writes(self) -> int:
        return sum(n for op, n in self.vt.calls.items() if op in VT_WRITE_OPS)

    def win_back(self) -> str:
        return next(c["Id"] for c in self.sf.store.all("Campaign") if c["Name"] == "Win-back")

    def win_back_rows(self) -> dict[str, dict[str, Any]]:
        """Live Win-back CampaignMember rows by their Contact or Lead id."""
        campaign = self.win_back()
        return {
            m["ContactId"] or m["LeadId"]: m
            for m in self.sf.store.all("CampaignMember")
            if m["CampaignId"] == campaign
        }

    def members(self, target: str, segment: str) -> set[str]:
        state = StateStore(self.state_path)
        try:
            return state.members(target).get(segment, set())
        finally:
            state.close()


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Callable[[str], World]]:
    managers: list[Any] = []

    def build(config_text: str) -> World:
        assert config_text.count("{sf_login_url}") == 1  # the replace above matched the template
        manager = seeded_world(tmp_path, generate(120, AS_OF, seed=5), AS_OF, seed=5, config_text=config_text)
        seeded = manager.__enter__()
        managers.append(manager)
        config = load_config(seeded.config_path)
        runner = Runner(config, environ=seeded.environ, policy=RetryPolicy(attempts=12, sleep=lambda s: None))
        return World(seeded.sf, seeded.vt, runner, config.state_path())

    yield build
    for manager in managers:
        manager.__exit__(None, None, None)


def entering_contacts(world: World, plan: Summary, n: int) -> list[tuple[str, str]]:
    """(person key, Contact id) of `n` people the plan adds to Win-back whose only Salesforce record is one
    Contact (so the member row connector adds for them is that Contact's)."""
    out = []
    for change in plan.segment_changes:
        if (change["target"], change["segment"], change["change"]) != ("sf_out", "win-back", "add"):
            continue
        email = (change["email"] or "").lower()
        contacts = [c for c in world.sf.store.all("Contact") if (c["Email"] or "").lower() == email]
        leads = [c for c in world.sf.store.all("Lead") if (c["Email"] or "").lower() == email]
        if email and len(contacts) == 1 and not leads:
            out.append((change["person"], contacts[0]["Id"]))
    assert len(out) >= n, "the seeded world has too few contact-only people entering win-back"
    return out[:n]


def opt_out(world: World, contact_id: str) -> None:
    """The person asks not to be mailed: an opted-out person is in no segment, so she leaves Win-back."""
    world.sf.store.update("Contact", contact_id, {"HasOptedOutOfEmail": True})


# ---- strict: what a person removed by hand comes back ---------------------------------------------------


def test_strict_salesforce_campaign_adds_back_a_member_removed_by_hand(
    make_world: Callable[[str], World],
) -> None:
    world = make_world(SF_STRICT)
    world.run()
    synced = world.win_back_rows()
    assert synced
    record, row = sorted(synced.items())[0]
    world.sf.store.delete("CampaignMember", row["Id"])  # removed by hand in the Salesforce UI
    assert record not in world.win_back_rows()

    summary = world.run()
    win_back = summary.segments["sf_out"]["win-back"]
    assert win_back["adds"] == 0 == win_back["removes"]  # the state never saw it go: the member scan did
    assert set(world.win_back_rows()) == set(synced)
    assert world.win_back_rows()[record]["Status"] == "Sent"
    assert world.sf.call_counts()["composite/sobjects"] == 1  # the one insert; the scan was made anyway
    assert any("added back 1" in note for note in summary.notes)

    world.run()
    assert world.sf_writes() == 0  # mirrored again: a replay writes nothing


def test_strict_vtiger_target_puts_back_a_segment_value_removed_by_hand(
    make_world: Callable[[str], World],
) -> None:
    world = make_world(VT_STRICT)
    world.run()
    fields = {m: world.vt.store.field_by_label(m, "Segments") for m in ("Leads", "Contacts")}
    holders = [
        (module, r["id"], r[fields[module]])
        for module in fields
        for r in world.vt.store.all(module)
        if "Win-back" in r[fields[module]].split(" |##| ")
    ]
    assert holders
    module, record_id, before = sorted(holders)[0]
    kept = " |##| ".join(v for v in before.split(" |##| ") if v != "Win-back")
    world.vt.store.revise(record_id, {fields[module]: kept})  # unticked by hand in the vtiger UI

    summary = world.run()
    win_back = summary.segments["vt_out"]["win-back"]
    assert win_back["adds"] == 0 == win_back["removes"]
    record = world.vt.store.get(record_id)
    assert record is not None and "Win-back" in record[fields[module]].split(" |##| ")
    assert world.vt.calls["revise"] == 1
    assert world.vt.calls["add_related"] == 0  # the campaign relation was never taken away: not re-added

    replay = world.run()
    assert world.vt_writes() == 0
    # the plan's estimate counts what strict costs each run: the holders' query per segment and module
    # (tests/vtiger/test_writer_sandbox.py checks a quiet strict segment makes exactly those queries)
    assert replay.estimated_write_calls["vt_out"] == 2 * 2


# ---- not strict: a member connector did not create is never deleted ----------------------------------------


def test_a_member_added_by_hand_before_the_person_entered_stays_when_she_leaves(
    make_world: Callable[[str], World],
) -> None:
    world = make_world(DEMO_CONFIG)
    plan = world.run("plan")
    (hers, her_contact), (his, his_contact) = entering_contacts(world, plan, 2)
    # marketing made the campaign and logged her response before connector ever put her in the segment
    campaign = world.sf.store.insert("Campaign", {"Name": "Win-back", "IsActive": True})
    by_hand = world.sf.store.insert(
        "CampaignMember", {"CampaignId": campaign, "ContactId": her_contact, "Status": "Responded"}
    )

    first = world.run()
    assert {hers, his} <= world.members("sf_out", "win-back")
    rows = world.win_back_rows()
    assert rows[her_contact]["Id"] == by_hand and rows[her_contact]["Status"] == "Responded"
    assert rows[his_contact]["Status"] == "Sent"  # this one connector created
    assert first.segments["sf_out"]["win-back"]["failed"] == 0

    opt_out(world, her_contact)
    opt_out(world, his_contact)
    second = world.run()
    assert second.segments["sf_out"]["win-back"]["removes"] == 2
    assert second.segments["sf_out"]["win-back"]["failed"] == 0
    rows = world.win_back_rows()
    assert his_contact not in rows  # connector's own member goes
    assert rows[her_contact]["Id"] == by_hand and rows[her_contact]["Status"] == "Responded"  # hers stays
    assert rows[her_contact]["HasResponded"] is True
    assert not {hers, his} & world.members("sf_out", "win-back")  # both left the state either way
    assert world.sf.call_counts()["composite/sobjects"] == 1  # one delete by Id, no member query

    world.run()
    assert world.sf_writes() == 0


def test_members_a_state_from_before_cannot_vouch_for_are_left_in_the_campaign(
    make_world: Callable[[str], World],
) -> None:
    world = make_world(DEMO_CONFIG)
    plan = world.run("plan")
    [(key, contact)] = entering_contacts(world, plan, 1)
    world.run()
    assert contact in world.win_back_rows()
    # a state written before connector recorded which members it created: memberships without that record
    db = sqlite3.connect(world.state_path)
    with db:
        db.execute("DELETE FROM membership_records")
    db.close()

    opt_out(world, contact)
    summary = world.run()
    assert summary.segments["sf_out"]["win-back"]["removes"] == 1
    assert contact in world.win_back_rows()  # may be hand work: a stale member is the lesser harm
    assert key not in world.members("sf_out", "win-back")
    assert any("kept 1 member" in note for note in summary.notes)
    assert world.sf_writes() == 0
