"""The Salesforce writer over real HTTPS against the loopback sandbox: labels, campaign sync, faults, budget."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from connector.context import PluginEnv, RunContext
from connector.errors import BudgetExceededError, ConfigError
from connector.plan import LabelChange, Member, SegmentChange
from connector.retry import RetryPolicy
from connector.schema import RecordRef
from connector.sources.salesforce.config import SalesforceSourceConfig
from connector.writers.salesforce.config import SalesforceWriterConfig
from connector.writers.salesforce.writer import SalesforceWriter

pytestmark = pytest.mark.e2e


def make_writer(sb: Any, **overrides: Any) -> SalesforceWriter:
    source = SalesforceSourceConfig.model_validate(
        {
            "name": "sf_prod",
            "type": "salesforce",
            "auth": "password",
            "login_url": sb.login_url,
            "ca_bundle": sb.ca_bundle,
            "objects": {"Lead": {"fields": {"Email": "email"}}},
        }
    )
    data: dict[str, Any] = {
        "name": "sf_out",
        "type": "salesforce",
        "source": "sf_prod",
        "label_field": {"Lead": "Funnel_Stage__c", "Contact": "Funnel_Stage__c"},
        "campaigns": {"renewal": {"campaign": "Renewal 2027", "member_status": "Sent"}},
    }
    data.update(overrides)
    env = PluginEnv(
        sources=[source],
        policy=RetryPolicy(attempts=12, sleep=lambda s: None),
        environ={
            "SF_USERNAME": sb.username,
            "SF_PASSWORD": sb.password,
            "SF_SECURITY_TOKEN": sb.security_token,
            "SF_CLIENT_ID": sb.client_id,
            "SF_CLIENT_SECRET": sb.client_secret,
        },
    )
    return SalesforceWriter.from_config(SalesforceWriterConfig.model_validate(data), env)


def ctx() -> RunContext:
    now = dt.datetime.now(dt.UTC)
    return RunContext(as_of=now.date(), started_at=now)


def leads(sb: Any, n: int) -> list[str]:
    return [
        sb.store.insert("Lead", {"LastName": f"L{i}", "Company": "Acme", "Email": f"l{i}@x.nl"})
        for i in range(n)
    ]


def contacts(sb: Any, n: int) -> list[str]:
    return [sb.store.insert("Contact", {"LastName": f"C{i}", "Email": f"c{i}@x.nl"}) for i in range(n)]


def label_changes(obj: str, ids: list[str], new: str = "Prospect") -> list[LabelChange]:
    return [LabelChange(f"p-{i}", RecordRef("sf_prod", obj, i), None, new) for i in ids]


def member(key: str, obj: str, rid: str) -> Member:
    return Member(key, (RecordRef("sf_prod", obj, rid),), None, None, None, None, "customer", "Customer")


def members_of(sb: Any, campaign: str) -> list[str]:
    rows = [r for r in sb.store.all("CampaignMember") if r["CampaignId"] == campaign]
    return sorted(r["ContactId"] or r["LeadId"] for r in rows)


def write_calls(sb: Any) -> int:
    counts = sb.call_counts()
    return counts["composite/sobjects"] + counts["bulk2.ingest"] + counts["sobject.patch"]


def test_labels_in_ceil_n_over_200_calls_with_per_record_errors(sf_sandbox) -> None:
    ids = leads(sf_sandbox, 430)
    converted = sf_sandbox.store.convert_lead(ids[10])
    w = make_writer(sf_sandbox)
    changes = label_changes("Lead", ids)
    changes[20] = LabelChange("p-bad", changes[20].ref, None, "Not A Stage")
    sf_sandbox.reset_calls()
    run = ctx()
    result = w.write_labels(changes, run)
    assert sf_sandbox.call_counts()["composite/sobjects"] == math.ceil(430 / 200)
    assert {k: e.code for k, e in result.failed.items()} == {
        f"sf_prod:Lead:{ids[10]}": "CANNOT_UPDATE_CONVERTED_LEAD",
        f"sf_prod:Lead:{ids[20]}": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    }
    stored = {r["Id"]: r["Funnel_Stage__c"] for r in sf_sandbox.store.all("Lead")}
    assert sum(1 for v in stored.values() if v == "Prospect") == 428
    assert stored[ids[20]] is None and converted["contactId"]
    assert result.calls == run.api_calls["sf_out"]

    sf_sandbox.reset_calls()
    assert w.write_labels([], ctx()).calls == 0
    assert write_calls(sf_sandbox) == 0  # nothing changed: no write call


def test_bulk_ingest_above_threshold(sf_sandbox) -> None:
    ids = contacts(sf_sandbox, 260)
    w = make_writer(sf_sandbox, bulk_threshold=100)
    changes = label_changes("Contact", ids, "Customer")
    changes[3] = LabelChange("p-bad", changes[3].ref, None, "Bogus")
    sf_sandbox.reset_calls()
    sf_sandbox.faults.expire_session_after = 3  # the session dies in the middle of the ingest job
    result = w.write_labels(changes, ctx())
    assert w.client.logins >= 2
    counts = sf_sandbox.call_counts()
    assert counts["bulk2.ingest"] >= 5 and counts["composite/sobjects"] == 0
    assert {e.code for e in result.failed.values()} == {"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"}
    assert list(result.failed) == [f"sf_prod:Contact:{ids[3]}"]
    stored = [r["Funnel_Stage__c"] for r in sf_sandbox.store.all("Contact")]
    assert stored.count("Customer") == 259


def test_campaign_adds_removes_and_duplicates(sf_sandbox) -> None:
    store = sf_sandbox.store
    campaign = store.insert("Campaign", {"Name": "Renewal 2027", "IsActive": True})
    cids = contacts(sf_sandbox, 250)
    lead_only = leads(sf_sandbox, 1)[0]
    by_hand = contacts(sf_sandbox, 1)[0]
    store.insert(
        "CampaignMember", {"CampaignId": campaign, "ContactId": cids[0], "Status": "Sent"}
    )  # already in
    store.insert(
        "CampaignMember", {"CampaignId": campaign, "ContactId": by_hand, "Status": "Sent"}
    )  # by hand
    w = make_writer(sf_sandbox)
    segment = [member(f"p{i}", "Contact", c) for i, c in enumerate(cids)] + [member("pl", "Lead", lead_only)]
    result = w.sync_segment(SegmentChange("renewal", segment, segment, []), ctx())
    assert result.failed == {}
    assert members_of(sf_sandbox, campaign) == sorted([*cids, lead_only, by_hand])
    assert all(r["Status"] == "Sent" for r in store.all("CampaignMember"))
    created = result.created  # the state keeps these: every member row but the one that was already there
    assert set(created) == {m.person_key for m in segment} - {"p0"}

    # replaying the same adds changes nothing (DUPLICATE_VALUE counts as present)
    again = w.sync_segment(SegmentChange("renewal", segment, segment, []), ctx())
    assert again.failed == {} and members_of(sf_sandbox, campaign) == sorted([*cids, lead_only, by_hand])

    removes = segment[:3]
    mine = {m.person_key: created[m.person_key] for m in removes if m.person_key in created}
    result = w.sync_segment(SegmentChange("renewal", segment[3:], [], removes, mine), ctx())
    assert result.failed == {}
    # the one that was a member before connector added her stays, like the one added by hand
    assert members_of(sf_sandbox, campaign) == sorted([cids[0], *cids[3:], lead_only, by_hand])

    strict = make_writer(sf_sandbox, campaigns={"renewal": {"campaign": campaign, "strict": True}})
    result = strict.sync_segment(SegmentChange("renewal", segment[3:], [], []), ctx())
    assert members_of(sf_sandbox, campaign) == sorted([*cids[3:], lead_only])
    assert result.notes == ["strict: removed 2 member(s) not in segment renewal"]


def test_faults_survived_nothing_lost_no_duplicate_membership(sf_sandbox) -> None:
    store = sf_sandbox.store
    campaign = store.insert("Campaign", {"Name": "Renewal 2027", "IsActive": True})
    ids = leads(sf_sandbox, 500)
    faults = sf_sandbox.faults
    faults.error_503_rate = 0.15
    faults.rate_limit_every = 5
    faults.retry_after = 0
    faults.lock_row_rate = 0.1
    faults.expire_session_after = 4
    w = make_writer(sf_sandbox)
    result = w.write_labels(label_changes("Lead", ids), ctx())
    assert result.failed == {}
    assert [r["Funnel_Stage__c"] for r in store.all("Lead")] == ["Prospect"] * 500
    segment = [member(f"p{i}", "Lead", rid) for i, rid in enumerate(ids)]
    result = w.sync_segment(SegmentChange("renewal", segment, segment, []), ctx())
    assert result.failed == {}
    assert members_of(sf_sandbox, campaign) == sorted(ids)  # each exactly once
    mine = {m.person_key: result.created[m.person_key] for m in segment[:100]}
    result = w.sync_segment(SegmentChange("renewal", segment[100:], [], segment[:100], mine), ctx())
    assert result.failed == {} and members_of(sf_sandbox, campaign) == sorted(ids[100:])
    assert w.client.logins >= 2


def test_budget_share_stops_before_crossing(sf_sandbox) -> None:
    ids = leads(sf_sandbox, 5)
    w = make_writer(sf_sandbox, api_budget_share=0.5)
    sf_sandbox.reset_calls()
    sf_sandbox.api_usage = sf_sandbox.daily_limit // 2 - 1  # the first call (describe) reaches the ceiling
    with pytest.raises(BudgetExceededError):
        w.write_labels(label_changes("Lead", ids), ctx())
    assert sf_sandbox.call_counts()["composite/sobjects"] == 0  # stopped before the write call
    assert all(r["Funnel_Stage__c"] is None for r in sf_sandbox.store.all("Lead"))


def test_campaign_names_with_quotes_and_backslashes_are_escaped(sf_sandbox) -> None:
    name = "O'Brien \\ Sons' renewal"
    cid = contacts(sf_sandbox, 1)[0]
    target = {"renewal": {"campaign": name, "member_status": "Sent", "create": True}}
    adds = [member("p", "Contact", cid)]
    first = make_writer(sf_sandbox, campaigns=target).sync_segment(
        SegmentChange("renewal", adds, adds, []), ctx()
    )
    created = [c for c in sf_sandbox.store.all("Campaign") if c["Name"] == name]
    assert len(created) == 1
    # a second run finds it by that exact name instead of creating another one
    again = make_writer(sf_sandbox, campaigns=target)
    result = again.sync_segment(SegmentChange("renewal", adds, [], adds, first.created), ctx())
    assert result.failed == {}
    assert [c["Name"] for c in sf_sandbox.store.all("Campaign")].count(name) == 1
    assert members_of(sf_sandbox, created[0]["Id"]) == []


def test_the_plan_estimate_is_the_calls_a_run_makes(sf_sandbox) -> None:
    store = sf_sandbox.store
    renewal = store.insert("Campaign", {"Name": "Renewal 2027", "IsActive": True})
    winback = store.insert("Campaign", {"Name": "Win-back", "IsActive": True})
    people = contacts(sf_sandbox, 250)
    for cid in people[:220]:
        store.insert("CampaignMember", {"CampaignId": winback, "ContactId": cid, "Status": "Sent"})
    lead_ids = leads(sf_sandbox, 3)
    in_winback = [member(f"p{i}", "Contact", c) for i, c in enumerate(people[:220])]
    renewal_adds = [member(f"p{i}", "Contact", c) for i, c in enumerate(people[200:])]
    campaigns = {
        "renewal": {"campaign": renewal, "member_status": "Sent"},
        "win-back": {"campaign": "Win-back", "member_status": "Sent", "strict": True},
    }

    def run(labels: list[LabelChange], changes: list[SegmentChange]) -> tuple[int, int]:
        w = make_writer(sf_sandbox, campaigns=campaigns)
        adds = sum(len(c.adds) for c in changes)
        removes = sum(len(c.removes) for c in changes)
        estimate = w.estimate_calls(len(labels), adds, removes)
        if labels:
            w.write_labels(labels, ctx())
        for change in changes:
            w.sync_segment(change, ctx())
        return estimate, w.client.calls - w.client.logins

    # a quiet run: only the strict campaign is looked up and scanned (nothing found to remove)
    quiet = [SegmentChange("renewal", [], [], []), SegmentChange("win-back", in_winback, [], [])]
    assert run([], quiet) == (3, 3)
    # labels on both objects, 50 added to one campaign and 20 removed from the strict one
    labels = label_changes("Lead", lead_ids) + label_changes("Contact", people[:2])
    busy = [
        SegmentChange("renewal", renewal_adds, renewal_adds, []),
        SegmentChange("win-back", in_winback[20:], [], in_winback[:20]),
    ]
    estimate, actual = run(labels, busy)
    # describes 2, one label call for both objects, two campaign lookups 4, one add, a removal query + delete,
    # a scan
    assert estimate == actual == 2 + 1 + 2 * 2 + 1 + 2 + 1
    assert members_of(sf_sandbox, winback) == sorted(people[20:220])


def test_preflight_predicts_restricted_picklist_refusals_without_writing(sf_sandbox) -> None:
    ids = leads(sf_sandbox, 3)
    w = make_writer(sf_sandbox)
    changes = label_changes("Lead", ids, "Prospect")
    changes[1] = LabelChange("p-bad", changes[1].ref, None, "Klant")
    sf_sandbox.reset_calls()
    refused = w.preflight(changes, [], ctx())
    assert {k: e.code for k, e in refused.items()} == {
        f"sf_prod:Lead:{ids[1]}": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    }
    assert write_calls(sf_sandbox) == 0
    # the write itself agrees with the prediction: Salesforce refuses exactly that record
    assert {k: e.code for k, e in w.write_labels(changes, ctx()).failed.items()} == {
        k: e.code for k, e in refused.items()
    }


def test_preflight_names_a_missing_label_field_as_a_config_error(sf_sandbox) -> None:
    w = make_writer(sf_sandbox, label_field={"Lead": "Funnel_Stag__c"})
    with pytest.raises(ConfigError, match=r"label_field\.Lead: Lead has no field Funnel_Stag__c"):
        w.preflight(label_changes("Lead", leads(sf_sandbox, 1), "Prospect"), [], ctx())
    assert write_calls(sf_sandbox) == 0


def test_preflight_finds_a_member_status_the_campaign_lacks_without_writing(sf_sandbox) -> None:
    sf_sandbox.store.insert("Campaign", {"Name": "Renewal 2027", "IsActive": True})
    w = make_writer(sf_sandbox, campaigns={"renewal": {"campaign": "Renewal 2027", "member_status": "Sentt"}})
    segment = [member("p0", "Contact", contacts(sf_sandbox, 1)[0])]
    sf_sandbox.reset_calls()
    with pytest.raises(ConfigError, match="member_status 'Sentt' is not a status of campaign 'Renewal 2027'"):
        w.preflight([], [SegmentChange("renewal", segment, segment, [])], ctx())
    assert write_calls(sf_sandbox) == 0
