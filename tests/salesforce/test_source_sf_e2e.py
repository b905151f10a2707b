"""The Salesforce source over real HTTPS against the loopback sandbox."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from connector.context import PluginEnv, RunContext
from connector.errors import ConfigError
from connector.mappers.salesforce import parse_sf_datetime
from connector.retry import RetryPolicy
from connector.sources.base import Batch
from connector.sources.salesforce.config import SalesforceSourceConfig
from connector.sources.salesforce.source import SalesforceSource
from connector_sandboxes.salesforce import SalesforceSandbox

pytestmark = pytest.mark.e2e
PAST = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OBJECTS = {
    "Lead": {
        "fields": {"Email": "email", "LastName": "last_name", "Status": "lead_status"},
        "value_maps": {
            "lead_status": {
                "Open - Not Contacted": "new",
                "Working - Contacted": "working",
                "Closed - Not Converted": "qualified_out",
            }
        },
    },
    "Contact": {"fields": {"Email": "email", "LastName": "last_name", "Contract_End__c": "contract_end"}},
    "Opportunity": {
        "kind": "opportunity",
        "fields": {"StageName": "opportunity_stage_raw", "Amount": "opportunity_amount"},
    },
}


def sandbox_env(sb: Any) -> dict[str, str]:
    return {"SF_USERNAME": sb.username, "SF_PASSWORD": sb.password, "SF_SECURITY_TOKEN": sb.security_token}


def make_source(sb: Any, **overrides: Any) -> SalesforceSource:
    data: dict[str, Any] = {
        "name": "sf_prod",
        "type": "salesforce",
        "auth": "password",
        "login_url": sb.login_url,
        "ca_bundle": sb.ca_bundle,
        "objects": {"Lead": OBJECTS["Lead"]},
    }
    data.update(overrides)
    cfg = SalesforceSourceConfig.model_validate(data)
    env = PluginEnv(
        sources=[cfg],
        policy=RetryPolicy(attempts=12, sleep=lambda s: None),
        environ=sandbox_env(sb),
    )
    return SalesforceSource.from_config(cfg, env)


def run_ctx(sb: Any) -> RunContext:
    # The run starts a moment after the test's own writes. The sandbox stamps writes strictly increasing by at
    # least 1 ms, so after a fast bulk seed its clock runs ahead of the wall clock: start after both.
    started = max(dt.datetime.now(dt.UTC), sb.store.now()) + dt.timedelta(seconds=1)
    return RunContext(as_of=started.date(), started_at=started)


def seed_leads(sb: Any, n: int, status: str = "Open - Not Contacted") -> list[str]:
    ids = []
    for i in range(n):
        rid = sb.store.insert(
            "Lead", {"LastName": f"L{i}", "Company": "Acme", "Email": f"l{i}@x.nl", "Status": status}
        )
        sb.store.touch("Lead", rid, PAST + dt.timedelta(seconds=i))  # an org's history, not all "just now"
        ids.append(rid)
    return ids


def drain(batches: list[Batch]) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
    records = [r for b in batches for r in b.records]
    deleted = [d for b in batches for d in b.deleted]
    cursors = {b.object: b.cursor for b in batches if b.cursor}
    return records, deleted, cursors


def test_2500_leads_across_pages_then_only_changes_and_deletions(sf_sandbox) -> None:
    ids = seed_leads(sf_sandbox, 2600)
    src = make_source(sf_sandbox)
    sf_sandbox.reset_calls()
    first = list(src.read({}, run_ctx(sf_sandbox)))
    records, deleted, cursors = drain(first)
    assert len({r["Id"] for r in records}) == len(records) == 2600 and deleted == []
    assert len([b for b in first if b.object == "Lead"]) == 2  # 2000 + 600, one batch per page
    counts = sf_sandbox.call_counts()
    assert counts["queryMore"] == 1 and counts["bulk2.query"] == 0
    facts = [src.map("Lead", r) for r in records[:3]]
    assert all(f.values["lead_status"] == "new" for f in facts)

    sf_sandbox.store.update("Lead", ids[5], {"Status": "Working - Contacted"})
    sf_sandbox.store.update("Lead", ids[2599], {"LastName": "Changed"})
    sf_sandbox.store.delete("Lead", ids[7])
    second = list(src.read(cursors, run_ctx(sf_sandbox)))
    records2, deleted2, cursors2 = drain(second)
    assert sorted(r["Id"] for r in records2) == sorted([ids[5], ids[2599]])
    assert deleted2 == [ids[7]]
    assert src.map("Lead", next(r for r in records2 if r["Id"] == ids[5])).values["lead_status"] == "working"

    third = list(src.read(cursors2, run_ctx(sf_sandbox)))
    records3, deleted3, _ = drain(third)
    # nothing changed: nothing read again but, when the second read ran within the second of those changes
    # (stamps are kept to the second, so it was not over yet), those same versions once more
    assert {(r["Id"], r["SystemModstamp"]) for r in records3} <= {
        (r["Id"], r["SystemModstamp"]) for r in records2
    }
    assert set(deleted3) <= set(deleted2)


def test_bulk_query_above_threshold_is_streamed_by_locator(sf_sandbox) -> None:
    ids = seed_leads(sf_sandbox, 450)
    sf_sandbox.store.delete("Lead", ids[0])
    src = make_source(sf_sandbox, bulk_threshold=100, bulk_page_size=200)
    sf_sandbox.reset_calls()
    batches = list(src.read({}, run_ctx(sf_sandbox)))
    records, deleted, _ = drain(batches)
    assert len(records) == 449 and deleted == [ids[0]]
    assert [len(b.records) + len(b.deleted) for b in batches] == [200, 200, 50]
    assert [b.cursor is None for b in batches] == [True, True, False]
    assert sf_sandbox.call_counts()["bulk2.query"] >= 4  # create, status, 3 result pages
    assert all(src.map("Lead", r).values["lead_status"] == "new" for r in records)


def test_bulk_pages_are_larger_than_rest_pages(sf_sandbox) -> None:
    seed_leads(sf_sandbox, 450)
    src = make_source(sf_sandbox, bulk_threshold=100, page_size=200, bulk_page_size=5000)
    sf_sandbox.reset_calls()
    batches = list(src.read({}, run_ctx(sf_sandbox)))
    assert [len(b.records) for b in batches] == [450]
    # create, two status polls (the first reports InProgress), one result page; the REST page size is moot
    assert sf_sandbox.call_counts()["bulk2.query"] == 4


def test_unknown_status_reported_and_converted_lead_merges_with_contact(sf_sandbox) -> None:
    store = sf_sandbox.store
    lead = store.insert(
        "Lead", {"LastName": "Conv", "Company": "Acme", "Email": "c@x.nl", "Status": "Open - Not Contacted"}
    )
    converted = store.convert_lead(lead, opportunity_name="Acme deal")
    store.insert(
        "OpportunityContactRole",
        {"OpportunityId": converted["opportunityId"], "ContactId": converted["contactId"]},
    )
    other = store.insert(
        "Opportunity",
        {
            "Name": "No roles",
            "AccountId": converted["accountId"],
            "StageName": "Closed Won",
            "CloseDate": "2026-12-01",
        },
    )
    objects = dict(OBJECTS)
    objects["Lead"] = {
        "fields": {"Email": "email", "Status": "lead_status"}
    }  # no value map: the stock "Open - Not Contacted" means new all the same
    src = make_source(sf_sandbox, objects=objects)
    open_lead = store.insert("Lead", {"LastName": "Open", "Company": "B", "Status": "Open - Not Contacted"})
    batches = list(src.read({}, run_ctx(sf_sandbox)))
    facts = {str(f.ref): f for f in (src.map(b.object, r) for b in batches for r in b.records)}
    lead_fact = facts[f"sf_prod:Lead:{lead}"]
    assert f"sf_prod:Contact:{converted['contactId']}" in lead_fact.keys
    assert lead_fact.values["converted"] is True and lead_fact.values["lead_status"] == "converted"
    contact = facts[f"sf_prod:Contact:{converted['contactId']}"]
    assert "email:c@x.nl" in contact.keys and contact.member_of == [
        f"sf_prod:Account:{converted['accountId']}"
    ]
    assert facts[f"sf_prod:Opportunity:{converted['opportunityId']}"].attach == [
        f"sf_prod:Contact:{converted['contactId']}"
    ]
    won = facts[f"sf_prod:Opportunity:{other}"]
    assert won.attach == [f"sf_prod:Account:{converted['accountId']}"]
    assert (
        won.values["opportunity_stage"],
        won.values["opportunity_won"],
        won.values["opportunity_closed"],
    ) == ("won", True, True)
    assert facts[f"sf_prod:Lead:{open_lead}"].values["lead_status"] == "new"
    assert ("lead_status", "Open - Not Contacted") not in src.unknown_values


def test_faults_during_read_lose_nothing(sf_sandbox) -> None:
    ids = seed_leads(sf_sandbox, 700)
    src = make_source(sf_sandbox, page_size=200)
    faults = sf_sandbox.faults
    faults.error_503_rate = 0.2
    faults.rate_limit_every = 4
    faults.retry_after = 0
    faults.expire_session_after = 3
    records, deleted, _ = drain(list(src.read({}, run_ctx(sf_sandbox))))
    assert sorted(r["Id"] for r in records) == sorted(ids) and deleted == []
    assert src.client.logins >= 2  # the session expired mid-run and was renewed


def test_daily_limit_stops_the_read_cleanly(sf_sandbox) -> None:
    from connector.errors import BudgetExceededError

    seed_leads(sf_sandbox, 5)
    src = make_source(sf_sandbox)
    sf_sandbox.faults.request_limit_exceeded = True
    sf_sandbox.reset_calls()
    with pytest.raises(BudgetExceededError):
        list(src.read({}, run_ctx(sf_sandbox)))
    assert sum(v for k, v in sf_sandbox.call_counts().items() if k != "login") == 1  # no retry storm


def test_purged_records_and_records_leaving_where_are_reconciled_periodically(sf_sandbox) -> None:
    ids = seed_leads(sf_sandbox, 6)
    objects = {"Lead": {**OBJECTS["Lead"], "where": "Status != 'Closed - Not Converted'"}}
    src = make_source(sf_sandbox, objects=objects, reconcile_every_hours=24)
    first = run_ctx(sf_sandbox)
    records, _, cursors = drain(list(src.read({}, first)))
    assert len(records) == 6
    assert all(b.live_ids is None for b in src.read(cursors, run_ctx(sf_sandbox)))  # the full read counts

    sf_sandbox.store.purge("Lead", ids[1])  # deleted and the recycle bin emptied: queryAll never says so
    sf_sandbox.store.update("Lead", ids[2], {"Status": "Closed - Not Converted"})  # leaves the where filter
    sf_sandbox.store.update("Lead", ids[3], {"LastName": "Still here"})
    day_later = first.started_at + dt.timedelta(hours=25)
    batches = list(src.read(cursors, RunContext(as_of=day_later.date(), started_at=day_later)))
    records, deleted, cursors = drain(batches)
    assert [r["Id"] for r in records] == [ids[3]] and deleted == []  # the cursor alone misses both
    assert batches[-1].live_ids == {ids[0], ids[3], ids[4], ids[5]}
    assert batches[-1].cursor is not None  # the reconciliation time rides on the cursor

    again = list(src.read(cursors, RunContext(as_of=day_later.date(), started_at=day_later)))
    assert all(b.live_ids is None for b in again)  # not due again for another 24 hours


def test_reconciliation_can_be_switched_off(sf_sandbox) -> None:
    seed_leads(sf_sandbox, 2)
    src = make_source(sf_sandbox, reconcile_every_hours=None)
    old = json.dumps({"ts": "2026-01-01T00:00:00.000Z", "seen": {}})  # a cursor without a reconciliation time
    assert all(b.live_ids is None for b in src.read({"Lead": old}, run_ctx(sf_sandbox)))
    src = make_source(sf_sandbox)
    assert [b.live_ids is not None for b in src.read({"Lead": old}, run_ctx(sf_sandbox))][-1]


def test_parent_fields_are_checked_against_the_parent_describe(sf_sandbox) -> None:
    account = sf_sandbox.store.insert("Account", {"Name": "Acme BV"})
    sf_sandbox.store.insert("Contact", {"LastName": "C", "Email": "c@x.nl", "AccountId": account})
    bad = {"Contact": {"fields": {"Email": "email", "Account.Nmae": "company", "Acount.Name": "first_name"}}}
    src = make_source(sf_sandbox, objects=bad)
    sf_sandbox.reset_calls()
    with pytest.raises(ConfigError) as info:
        list(src.read({}, run_ctx(sf_sandbox)))
    assert "objects.Contact.fields.Account.Nmae: no such field" in str(info.value)
    assert "objects.Contact.fields.Acount.Name: no such field" in str(info.value)
    assert sf_sandbox.call_counts()["queryAll"] == 0  # refused before reading anything

    good = {"Contact": {"fields": {"Email": "email", "Account.Name": "company"}}}
    src = make_source(sf_sandbox, objects=good)
    records, _, _ = drain(list(src.read({}, run_ctx(sf_sandbox))))
    assert src.map("Contact", records[0]).values["company"] == "Acme BV"


def test_many_records_sharing_one_stamp_across_a_page_boundary_survive_an_interrupted_read(
    sf_sandbox,
) -> None:
    ids = seed_leads(sf_sandbox, 2500)
    for rid in ids:  # one mass update: every record carries the same SystemModstamp
        sf_sandbox.store.touch("Lead", rid, PAST)
    src = make_source(sf_sandbox)
    pages = src.read({}, run_ctx(sf_sandbox))
    first = next(pages)  # the run dies after storing the first page (2,000 records) and its cursor
    pages.close()
    assert len(first.records) == 2000 and first.cursor is not None
    second = list(src.read({"Lead": first.cursor}, run_ctx(sf_sandbox)))
    records, _, cursors = drain(second)
    assert {r["Id"] for r in first.records} | {r["Id"] for r in records} == set(ids)  # nothing lost
    # the boundary is de-duplicated by Id (the cursor remembers up to 1,000 of the shared stamp; the rest of the
    # first page is read again, harmlessly)
    assert len(records) <= 1500
    assert drain(list(src.read(cursors, run_ctx(sf_sandbox))))[0] == []


def test_a_record_changed_during_the_run_is_read_by_the_next_run(sf_sandbox) -> None:
    ids = seed_leads(sf_sandbox, 450)
    src = make_source(sf_sandbox, page_size=200)
    started = dt.datetime.now(dt.UTC)
    ctx = RunContext(as_of=started.date(), started_at=started)
    batches = []
    for batch in src.read({}, ctx):
        if not batches:  # mid-run: a record already read and one still to come change after the start
            sf_sandbox.store.update("Lead", ids[0], {"LastName": "Changed early"})
            sf_sandbox.store.update("Lead", ids[-1], {"LastName": "Changed late"})
        batches.append(batch)
    records, _, cursors = drain(batches)
    assert len(records) == 450
    assert not {r["LastName"] for r in records} & {"Changed early", "Changed late"}
    assert json.loads(cursors["Lead"])["ts"] <= started.isoformat()  # the cursor never passes the start
    later = run_ctx(sf_sandbox)
    again, _, _ = drain(list(src.read(cursors, later)))
    assert sorted(r["LastName"] for r in again) == ["Changed early", "Changed late"]


def test_a_late_commit_inside_the_overlap_is_read_whatever_our_clock_says() -> None:
    t0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    clock = [t0]
    with SalesforceSandbox(clock=lambda: clock[0]) as sb:
        ids = [
            sb.store.insert("Lead", {"LastName": f"L{i}", "Company": "A", "Email": f"l{i}@x.nl"})
            for i in range(3)
        ]
        src = make_source(sb)
        clock[0] = t0 + dt.timedelta(seconds=5)
        ours = t0 + dt.timedelta(hours=2)  # our clock is two hours ahead of the org's
        records, _, cursors = drain(list(src.read({}, RunContext(as_of=ours.date(), started_at=ours))))
        assert sorted(r["Id"] for r in records) == sorted(ids)
        # a transaction that began 10 s before the newest stamp commits only now, with its older stamp
        late = sb.store.insert("Lead", {"LastName": "Late", "Company": "A", "Email": "late@x.nl"})
        sb.store.touch("Lead", late, t0 - dt.timedelta(seconds=10))
        clock[0] = t0 + dt.timedelta(seconds=20)
        again, _, _ = drain(list(src.read(cursors, RunContext(as_of=ours.date(), started_at=ours))))
        assert [r["Id"] for r in again] == [late]


def test_an_expired_query_cursor_mid_read_goes_on_from_the_cursor(sf_sandbox) -> None:
    ids = seed_leads(sf_sandbox, 900)
    src = make_source(sf_sandbox, page_size=200)
    batches = []
    for batch in src.read({}, run_ctx(sf_sandbox)):
        if len(batches) == 1:  # another integration of the same user opened its eleventh cursor: ours is gone
            sf_sandbox.cursors = type(sf_sandbox.cursors)()
        batches.append(batch)
    records, _, cursors = drain(batches)
    assert sorted({r["Id"] for r in records}) == sorted(ids)
    assert len(records) == 900  # the fresh query started after what was read: nothing twice
    assert drain(list(src.read(cursors, run_ctx(sf_sandbox))))[0] == []


def seed_opportunities_with_roles(sb: Any, n: int) -> tuple[list[str], list[str]]:
    """`n` opportunities, each with one contact role; returns (opportunity ids, contact ids)."""
    account = sb.store.insert("Account", {"Name": "Acme BV"})
    opps, people = [], []
    for i in range(n):
        contact = sb.store.insert(
            "Contact", {"LastName": f"C{i}", "Email": f"c{i}@x.nl", "AccountId": account}
        )
        opp = sb.store.insert(
            "Opportunity",
            {"Name": f"O{i}", "AccountId": account, "StageName": "Prospecting", "CloseDate": "2026-12-01"},
        )
        role = sb.store.insert("OpportunityContactRole", {"OpportunityId": opp, "ContactId": contact})
        for sobject, rid in (("Contact", contact), ("Opportunity", opp), ("OpportunityContactRole", role)):
            sb.store.touch(sobject, rid, PAST + dt.timedelta(seconds=i))  # history, not all "just now"
        opps.append(opp)
        people.append(contact)
    return opps, people


def test_an_expired_role_query_cursor_mid_read_goes_on_from_the_role_cursor(sf_sandbox) -> None:
    opps, _ = seed_opportunities_with_roles(sf_sandbox, 450)
    src = make_source(sf_sandbox, objects={"Opportunity": OBJECTS["Opportunity"]}, page_size=200)
    _, _, cursors = drain(list(src.read({}, run_ctx(sf_sandbox))))
    # every role changes after the opportunities were read (a mass update of roles, say)
    for role in sf_sandbox.store.all("OpportunityContactRole"):
        sf_sandbox.store.touch("OpportunityContactRole", role["Id"])
    batches = []
    sf_sandbox.reset_calls()
    for batch in src.read(cursors, run_ctx(sf_sandbox)):
        if batch.object == "OpportunityContactRole" and not any(b.object == batch.object for b in batches):
            sf_sandbox.cursors = type(sf_sandbox.cursors)()  # the role query's cursor is gone mid-read
        batches.append(batch)
    # the opportunity query (none changed), the role query, and a fresh role query after its cursor was lost
    assert sf_sandbox.call_counts()["queryAll"] == 3
    reread = [r["Id"] for b in batches if b.object == "Opportunity" for r in b.records]
    assert sorted(reread) == sorted(opps)
    assert len(reread) == 450  # the fresh role query started after the roles already handled: nothing twice
    cursors.update(drain(batches)[2])
    again = list(src.read(cursors, run_ctx(sf_sandbox)))
    # nothing changed since: nothing new comes back. Stamps are kept to the second, so when the role read ran
    # within the second of the mass update (it was not over yet) those roles, and so their opportunities, are
    # read once more, as they were
    stamps = {o["Id"]: o["SystemModstamp"] for o in sf_sandbox.store.all("Opportunity")}
    assert all(parse_sf_datetime(r["SystemModstamp"]) == stamps[r["Id"]] for b in again for r in b.records)


def test_a_purged_contact_role_drops_its_contact_at_the_next_reconciliation(sf_sandbox) -> None:
    opps, people = seed_opportunities_with_roles(sf_sandbox, 3)
    src = make_source(sf_sandbox, objects={"Opportunity": OBJECTS["Opportunity"]}, reconcile_every_hours=24)
    first = run_ctx(sf_sandbox)
    records, _, cursors = drain(list(src.read({}, first)))
    assert src.map("Opportunity", next(r for r in records if r["Id"] == opps[1])).attach == [
        f"sf_prod:Contact:{people[1]}"
    ]
    role = next(r for r in sf_sandbox.store.all("OpportunityContactRole") if r["OpportunityId"] == opps[1])
    sf_sandbox.store.purge("OpportunityContactRole", role["Id"])  # deleted, and the recycle bin emptied since

    hour_later = first.started_at + dt.timedelta(hours=1)
    records, _, later = drain(
        list(src.read(cursors, RunContext(as_of=hour_later.date(), started_at=hour_later)))
    )
    cursors.update(later)
    assert records == []  # neither the opportunity nor the role cursor can tell

    day_later = first.started_at + dt.timedelta(hours=25)
    sf_sandbox.reset_calls()
    batches = list(src.read(cursors, RunContext(as_of=day_later.date(), started_at=day_later)))
    records, _, _ = drain(batches)
    assert sorted(r["Id"] for r in records) == sorted(opps)  # each read once, with the roles it has now
    facts = {r["Id"]: src.map("Opportunity", r) for r in records}
    account = sf_sandbox.store.get("Opportunity", opps[1])["AccountId"]
    assert facts[opps[1]].attach == [f"sf_prod:Account:{account}"]  # the contact is no longer attached
    assert facts[opps[0]].attach == [f"sf_prod:Contact:{people[0]}"]
    assert next(b.live_ids for b in batches if b.live_ids is not None) == set(opps)


@pytest.mark.parametrize(
    "where",
    [
        "Status = 'Open",  # a quote never closed
        "Status = 'a') OR (IsDeleted = true",  # would escape its parentheses and undo the cursor bounds
        "(Status = 'a'",
        "Status = 'a' ORDER BY Id",
        "Status = 'a' LIMIT 5",
        "Status = 'a'; DELETE",
        "  ",
    ],
)
def test_a_where_clause_that_is_no_condition_fails_with_the_config(where: str) -> None:
    from connector.config import ConfigErrors, load_config_text

    text = f"""\
stage_model:
  preset: default
sources:
  - name: sf_prod
    type: salesforce
    auth: session
    objects:
      Lead:
        fields: {{Email: email}}
        where: "{where}"
"""
    with pytest.raises(ConfigErrors) as info:
        load_config_text(text, "connector.yaml", base_dir=Path("/srv"))
    assert [(i.line, i.path) for i in info.value.issues] == [(10, "sources[0].objects.Lead.where")]
    assert "not a SOQL condition" in str(info.value.issues[0])


@pytest.mark.parametrize(
    "where",
    [
        "Status != 'Closed' AND (Email LIKE '%@x.nl' OR Company = 'O\\'Neil (BV); order by')",
        "CreatedDate = LAST_N_DAYS:30 AND Owner.Profile.Name != null",
        "Id IN (SELECT LeadId FROM CampaignMember WHERE CampaignId = '701000000000001')",
    ],
)
def test_a_where_clause_of_the_right_shape_passes_the_config(where: str) -> None:
    cfg = SalesforceSourceConfig.model_validate(
        {"name": "s", "type": "salesforce", "auth": "session", "objects": {"Lead": {"where": where}}}
    )
    assert cfg.objects["Lead"].where == where


def test_the_org_judges_a_where_clause_before_anything_is_read(sf_sandbox) -> None:
    seed_leads(sf_sandbox, 3)
    objects = {
        "Lead": {**OBJECTS["Lead"], "where": "Status != 'Closed - Not Converted'"},
        "Contact": {**OBJECTS["Contact"], "where": "Contract_End__c > 2026-01-01 AND Nope__c = 'x'"},
    }
    src = make_source(sf_sandbox, objects=objects)
    sf_sandbox.reset_calls()
    with pytest.raises(ConfigError) as info:
        list(src.read({}, run_ctx(sf_sandbox)))
    message = str(info.value)
    assert "objects.Contact.where" in message and "Nope__c = 'x'" in message and "INVALID_FIELD" in message
    assert "objects.Lead" not in message
    assert sf_sandbox.call_counts()["queryAll"] == 0  # refused before a single record was read

    objects["Contact"]["where"] = "Contract_End__c > 2026-01-01 AND Email LIKE"  # no value: MALFORMED_QUERY
    src = make_source(sf_sandbox, objects=objects)
    with pytest.raises(ConfigError, match=r"objects\.Contact\.where: .*MALFORMED_QUERY"):
        list(src.read({}, run_ctx(sf_sandbox)))

    objects["Contact"]["where"] = "Contract_End__c > 2026-01-01"
    records, _, _ = drain(list(make_source(sf_sandbox, objects=objects).read({}, run_ctx(sf_sandbox))))
    assert len(records) == 3
