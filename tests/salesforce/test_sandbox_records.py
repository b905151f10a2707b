"""sObject CRUD, describe, sObject Collections, org rules and query paging, over real HTTP."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from connector_sandboxes.salesforce import SalesforceSandbox, soql


def test_crud_round_trip_with_simple_salesforce(sf_client: Salesforce, sf_sandbox: SalesforceSandbox) -> None:
    created = sf_client.Lead.create({"LastName": "Doe", "Company": "Acme", "Email": "doe@acme.test"})
    assert created == {"id": created["id"], "success": True, "errors": []}
    lead_id = created["id"]
    assert lead_id.startswith("00Q") and len(lead_id) == 18
    before = sf_sandbox.store.get("Lead", lead_id)
    assert sf_client.Lead.update(lead_id, {"Funnel_Stage__c": "Prospect"}) == 204
    after = sf_sandbox.store.get("Lead", lead_id)
    assert after["Funnel_Stage__c"] == "Prospect"
    assert after["SystemModstamp"] >= before["SystemModstamp"]  # the same second keeps the same stamp
    assert after["CreatedDate"] == before["CreatedDate"]
    fetched = sf_client.Lead.get(lead_id)
    assert fetched["Status"] == "Open - Not Contacted" and fetched["IsConverted"] is False
    assert sf_client.Lead.delete(lead_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf_client.Lead.get(lead_id)
    assert sf_sandbox.store.get("Lead", lead_id)["IsDeleted"] is True


def test_upsert_by_external_id(sf_client: Salesforce, sf_sandbox: SalesforceSandbox) -> None:
    assert sf_client.Contact.upsert("External_Id__c/X-1", {"LastName": "Ext"}) == 201
    assert sf_client.Contact.upsert("External_Id__c/X-1", {"FirstName": "Now"}) == 200
    rows = sf_sandbox.store.all("Contact")
    assert [(r["Name"], r["External_Id__c"]) for r in rows] == [("Now Ext", "X-1")]


def test_describe_reports_restricted_picklist(sf_client: Salesforce) -> None:
    lead = sf_client.Lead.describe()
    fields = {f["name"]: f for f in lead["fields"]}
    stage = fields["Funnel_Stage__c"]
    assert stage["type"] == "picklist" and stage["restrictedPicklist"] is True and stage["custom"] is True
    assert {
        "active": True,
        "defaultValue": False,
        "label": "Qualified Out",
        "validFor": None,
        "value": "Qualified Out",
    } in stage["picklistValues"]
    assert [v["value"] for v in fields["Status"]["picklistValues"]] == [
        "Open - Not Contacted",
        "Working - Contacted",
        "Closed - Converted",
        "Closed - Not Converted",
    ]
    assert fields["IsConverted"]["updateable"] is False
    assert fields["ConvertedContactId"]["relationshipName"] == "ConvertedContact"
    assert fields["ConvertedContactId"]["referenceTo"] == ["Contact"]
    assert fields["LastName"]["nillable"] is False
    names = {o["name"]: o for o in sf_client.describe()["sobjects"]}
    assert {
        "Lead",
        "Contact",
        "Account",
        "Opportunity",
        "OpportunityContactRole",
        "Contract",
        "Campaign",
        "CampaignMember",
        "CampaignMemberStatus",
        "LeadStatus",
        "OpportunityStage",
    } <= set(names)
    assert names["CampaignMember"]["keyPrefix"] == "00v"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        (
            {"LastName": "X", "Company": "Y", "Funnel_Stage__c": "Hot"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ),
        ({"LastName": "X"}, "REQUIRED_FIELD_MISSING"),
        ({"LastName": "X", "Company": "Y", "Nope__c": 1}, "INVALID_FIELD"),
        ({"LastName": "X", "Company": "Y", "IsConverted": True}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ({"LastName": "X", "Company": "Y", "HasOptedOutOfEmail": "yes"}, "JSON_PARSER_ERROR"),
        ({"LastName": "X", "Company": "Y", "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS"),
    ],
)
def test_single_create_errors(sf_http: requests.Session, sf_api: str, fields: dict, code: str) -> None:
    resp = sf_http.post(f"{sf_api}/sobjects/Lead/", json=fields, timeout=10)
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == code


def test_converted_lead_refuses_updates(sf_client: Salesforce, sf_sandbox: SalesforceSandbox) -> None:
    lead = sf_sandbox.store.insert("Lead", {"LastName": "Conv", "Company": "Acme"})
    sf_sandbox.store.convert_lead(lead)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf_client.Lead.update(lead, {"Funnel_Stage__c": "Customer"})
    assert refused.value.content[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"


def test_composite_create_and_update_report_per_record(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    records = [
        {"attributes": {"type": "Lead"}, "LastName": "Ok", "Company": "A"},
        {"attributes": {"type": "Lead"}, "LastName": "Bad", "Company": "B", "Funnel_Stage__c": "Nope"},
        {"attributes": {"type": "Contact"}, "FirstName": "No last name"},
    ]
    created = sf_http.post(
        f"{sf_api}/composite/sobjects", json={"allOrNone": False, "records": records}, timeout=10
    ).json()
    assert created[0]["success"] is True and created[0]["id"].startswith("00Q")
    assert created[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "message": "Funnel Stage: bad value for restricted picklist field: Nope",
                "fields": ["Funnel_Stage__c"],
            }
        ],
    }
    assert created[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert created[2]["errors"][0]["fields"] == ["LastName"]
    ok_id = created[0]["id"]
    updates = [
        {"attributes": {"type": "Lead"}, "id": ok_id, "Funnel_Stage__c": "Nurture"},
        {"attributes": {"type": "Lead"}, "id": "00Q000000000000EAA", "Funnel_Stage__c": "Lead"},
    ]
    updated = sf_http.patch(
        f"{sf_api}/composite/sobjects", json={"allOrNone": False, "records": updates}, timeout=10
    ).json()
    assert updated[0] == {"id": ok_id, "success": True, "errors": []}
    assert updated[1]["id"] == "00Q000000000000EAA" and updated[1]["success"] is False
    assert sf_sandbox.store.get("Lead", ok_id)["Funnel_Stage__c"] == "Nurture"


def test_composite_all_or_none_rolls_back(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    lead = sf_sandbox.store.insert("Lead", {"LastName": "Keep", "Company": "A", "Funnel_Stage__c": "Lead"})
    records = [
        {"attributes": {"type": "Lead"}, "id": lead, "Funnel_Stage__c": "Customer"},
        {"attributes": {"type": "Lead"}, "id": lead, "Funnel_Stage__c": "Bogus"},
    ]
    result = sf_http.patch(
        f"{sf_api}/composite/sobjects", json={"allOrNone": True, "records": records}, timeout=10
    ).json()
    assert [r["success"] for r in result] == [False, False]
    assert result[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sf_sandbox.store.get("Lead", lead)["Funnel_Stage__c"] == "Lead"
    created = sf_http.post(
        f"{sf_api}/composite/sobjects",
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Lead"}, "LastName": "N", "Company": "C"},
                {"attributes": {"type": "Lead"}, "LastName": "N"},
            ],
        },
        timeout=10,
    ).json()
    assert [r["success"] for r in created] == [False, False]
    assert len(sf_sandbox.store.all("Lead")) == 1


def test_composite_limits_and_unknown_fields(sf_http: requests.Session, sf_api: str) -> None:
    too_many = [{"attributes": {"type": "Lead"}, "LastName": str(n), "Company": "C"} for n in range(201)]
    resp = sf_http.post(f"{sf_api}/composite/sobjects", json={"records": too_many}, timeout=10)
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    unknown = [{"attributes": {"type": "Lead"}, "LastName": "x", "Company": "C", "Typo__c": 1}]
    resp = sf_http.post(f"{sf_api}/composite/sobjects", json={"records": unknown}, timeout=10)
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "INVALID_FIELD"


def test_composite_takes_mixed_types_in_one_call_up_to_ten_chunks(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    lead = sf_sandbox.store.insert("Lead", {"LastName": "L", "Company": "C"})
    contact = sf_sandbox.store.insert("Contact", {"LastName": "K"})
    mixed = [
        {"attributes": {"type": "Contact"}, "id": contact, "Funnel_Stage__c": "Customer"},
        {"attributes": {"type": "Lead"}, "id": lead, "Funnel_Stage__c": "Lead"},
    ]
    sf_sandbox.reset_calls()
    resp = sf_http.patch(f"{sf_api}/composite/sobjects", json={"records": mixed}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert [(r["id"], r["success"]) for r in resp.json()] == [(contact, True), (lead, True)]  # in order
    assert sf_sandbox.store.get("Contact", contact)["Funnel_Stage__c"] == "Customer"
    assert sf_sandbox.store.get("Lead", lead)["Funnel_Stage__c"] == "Lead"
    assert sf_sandbox.call_counts()["composite/sobjects"] == 1

    # a chunk is a run of one type: Lead, Contact, Lead, ... alternating 11 times is 11 chunks, refused whole
    def alternating(n: int) -> list[dict[str, Any]]:
        return [
            {"attributes": {"type": ("Lead", "Contact")[i % 2]}, "id": (lead, contact)[i % 2]}
            for i in range(n)
        ]

    resp = sf_http.patch(f"{sf_api}/composite/sobjects", json={"records": alternating(11)}, timeout=10)
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "INVALID_BATCH_REQUEST"
    resp = sf_http.patch(f"{sf_api}/composite/sobjects", json={"records": alternating(10)}, timeout=10)
    assert resp.status_code == 200 and all(r["success"] for r in resp.json())
    # the same 200 records grouped by type are two chunks
    grouped = sorted(alternating(200), key=lambda r: r["attributes"]["type"])
    resp = sf_http.patch(f"{sf_api}/composite/sobjects", json={"records": grouped}, timeout=10)
    assert resp.status_code == 200 and len(resp.json()) == 200


def test_composite_delete(sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox) -> None:
    a = sf_sandbox.store.insert("Account", {"Name": "A"})
    b = sf_sandbox.store.insert("Account", {"Name": "B"})
    resp = sf_http.delete(
        f"{sf_api}/composite/sobjects", params={"ids": f"{a},{b},bogus", "allOrNone": "false"}, timeout=10
    ).json()
    assert [r["success"] for r in resp] == [True, True, False]
    assert resp[2]["errors"][0]["statusCode"] == "MALFORMED_ID"
    assert sf_sandbox.store.all("Account") == []
    again = sf_http.delete(f"{sf_api}/composite/sobjects", params={"ids": a}, timeout=10).json()
    assert again[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


def test_campaign_member_rules(sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox) -> None:
    store = sf_sandbox.store
    campaign = store.insert("Campaign", {"Name": "Winback"})
    statuses = store.all("CampaignMemberStatus")
    assert {(s["Label"], s["IsDefault"], s["HasResponded"]) for s in statuses} == {
        ("Sent", True, False),
        ("Responded", False, True),
    }
    lead = store.insert("Lead", {"LastName": "L", "Company": "C"})

    def add(**fields: str) -> dict:
        body = {"records": [{"attributes": {"type": "CampaignMember"}, "CampaignId": campaign, **fields}]}
        return sf_http.post(f"{sf_api}/composite/sobjects", json=body, timeout=10).json()[0]

    first = add(LeadId=lead)
    assert first["success"] is True
    member = store.get("CampaignMember", first["id"])
    assert member["Status"] == "Sent" and member["HasResponded"] is False
    duplicate = add(LeadId=lead, Status="Responded")
    assert duplicate["errors"][0] == {
        "statusCode": "DUPLICATE_VALUE",
        "message": "Already a campaign member.",
        "fields": [],
    }
    contact = store.insert("Contact", {"LastName": "P"})
    bad_status = add(ContactId=contact, Status="Clicked")
    assert bad_status["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    responded = add(ContactId=contact, Status="Responded")
    assert store.get("CampaignMember", responded["id"])["HasResponded"] is True
    # Deleting the lead takes its membership to the recycle bin too.
    store.delete("Lead", lead)
    assert [m["ContactId"] for m in store.all("CampaignMember")] == [contact]


def test_system_modstamp_never_moves_backwards_and_is_kept_to_the_second(
    sf_sandbox: SalesforceSandbox,
) -> None:
    store = sf_sandbox.store
    ids = [store.insert("Account", {"Name": f"A{n}"}) for n in range(50)]
    for record_id in ids:
        store.update("Account", record_id, {"Website": "https://x.test"})
    stamps = [r["SystemModstamp"] for r in store.all("Account")]
    # many writes share a second (test_sandbox_second_precision), none goes back
    assert all(a <= b for a, b in itertools.pairwise(stamps))
    assert all(s.tzinfo is not None and s.microsecond == 0 for s in stamps)


def test_paging_over_2500_records(sf_client: Salesforce, sf_sandbox: SalesforceSandbox) -> None:
    for n in range(2500):
        sf_sandbox.store.insert("Lead", {"LastName": f"L{n:04d}", "Company": "Bulk"})
    sf_sandbox.reset_calls()
    first = sf_client.query("SELECT Id, LastName FROM Lead ORDER BY LastName")
    assert first["totalSize"] == 2500 and first["done"] is False and len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    every = sf_client.query_all("SELECT Id, LastName FROM Lead ORDER BY LastName")["records"]
    assert [r["LastName"] for r in every] == [f"L{n:04d}" for n in range(2500)]
    assert sf_sandbox.call_counts() == {"query": 2, "queryMore": 1}


def test_batch_size_header(sf_client: Salesforce, sf_sandbox: SalesforceSandbox) -> None:
    for n in range(450):
        sf_sandbox.store.insert("Account", {"Name": f"A{n}"})
    sf_sandbox.reset_calls()
    pages = []
    result = sf_client.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=200"})
    pages.append(len(result["records"]))
    while not result["done"]:
        result = sf_client.query_more(result["nextRecordsUrl"], identifier_is_url=True)
        pages.append(len(result["records"]))
    assert pages == [200, 200, 50]


def test_cursor_is_a_snapshot_and_bad_locator_is_refused(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    for n in range(300):
        sf_sandbox.store.insert("Account", {"Name": f"A{n}"})
    first = sf_http.get(
        f"{sf_api}/query",
        params={"q": "SELECT Name FROM Account"},
        headers={"Sforce-Query-Options": "batchSize=200"},
        timeout=10,
    ).json()
    sf_sandbox.store.insert("Account", {"Name": "late"})
    rest = sf_http.get(f"{sf_sandbox.instance_url}{first['nextRecordsUrl']}", timeout=10).json()
    assert rest["done"] is True and len(rest["records"]) == 100
    bad = sf_http.get(f"{sf_api}/query/01gNOPE-200", timeout=10)
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_five_thousand_records_page_quickly(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Quick by construction, not by a stopwatch (which a busy machine fails): the query runs once and each
    # record is rendered once; further pages slice that snapshot instead of querying again.
    for n in range(5000):
        sf_sandbox.store.insert(
            "Contact", {"LastName": f"C{n}", "Email": f"c{n}@x.test", "Funnel_Stage__c": "Lead"}
        )
    work: Counter[str] = Counter()
    for method in ("select_rows", "json_record"):
        original = getattr(soql.Query, method)

        def counted(
            self: soql.Query, *args: Any, _name: str = method, _original: Any = original, **kw: Any
        ) -> Any:
            work[_name] += 1
            return _original(self, *args, **kw)

        monkeypatch.setattr(soql.Query, method, counted)
    url = f"{sf_api}/query"
    params: dict | None = {
        "q": "SELECT Id, Email, Funnel_Stage__c, SystemModstamp FROM Contact "
        "WHERE SystemModstamp >= 2020-01-01T00:00:00Z ORDER BY SystemModstamp"
    }
    seen, pages = 0, 0
    while url:
        page = sf_http.get(url, params=params, timeout=10).json()
        seen, pages = seen + len(page["records"]), pages + 1
        url = f"{sf_sandbox.instance_url}{page['nextRecordsUrl']}" if not page["done"] else ""
        params = None
    assert seen == 5000 and pages == 3  # 2000 a page, as Salesforce serves them
    assert work == {"select_rows": 1, "json_record": 5000}


def test_key_prefixes_and_derived_fields(sf_client: Salesforce, sf_sandbox: SalesforceSandbox) -> None:
    store = sf_sandbox.store
    account = sf_client.Account.create({"Name": "Acme"})["id"]
    contact = sf_client.Contact.create({"LastName": "C", "AccountId": account})["id"]
    opp = sf_client.Opportunity.create(
        {"Name": "Deal", "AccountId": account, "StageName": "Prospecting", "CloseDate": "2026-12-31"}
    )["id"]
    role = sf_client.OpportunityContactRole.create({"OpportunityId": opp, "ContactId": contact})["id"]
    contract = sf_client.Contract.create(
        {"AccountId": account, "StartDate": "2026-02-01", "ContractTerm": 12}
    )["id"]
    campaign = sf_client.Campaign.create({"Name": "Spring"})["id"]
    member = sf_client.CampaignMember.create({"CampaignId": campaign, "ContactId": contact})["id"]
    prefixes = [i[:3] for i in (account, contact, opp, role, contract, campaign, member)]
    assert prefixes == ["001", "003", "006", "00K", "800", "701", "00v"]
    assert store.get("Contract", contract)["EndDate"].isoformat() == "2027-01-31"
    assert store.get("Opportunity", opp)["IsClosed"] is False
    sf_client.Opportunity.update(opp, {"StageName": "Closed Won"})
    assert (store.get("Opportunity", opp)["IsClosed"], store.get("Opportunity", opp)["IsWon"]) == (True, True)
    stages = sf_client.query(
        "SELECT ApiName, IsWon FROM OpportunityStage WHERE IsClosed = true ORDER BY ApiName"
    )
    assert [(r["ApiName"], r["IsWon"]) for r in stages["records"]] == [
        ("Closed Lost", False),
        ("Closed Won", True),
    ]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf_client.Opportunity.update(opp, {"StageName": "Won-ish"})
    assert refused.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
