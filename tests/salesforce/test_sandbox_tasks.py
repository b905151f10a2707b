"""The sandbox org's Task object over real HTTPS: describe, create (single and sObject Collections), the org's
rules with their error codes, SOQL on Task and User, the idempotency key field and a lost answer."""

from __future__ import annotations

from typing import Any

import requests
from simple_salesforce import Salesforce

from connector_sandboxes.salesforce import SalesforceSandbox
from connector_sandboxes.salesforce.auth import USER_ID


def _fields(sf_client: Salesforce) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in sf_client.Task.describe()["fields"]}


def _post_task(http: requests.Session, api: str, body: dict[str, Any]) -> requests.Response:
    return http.post(f"{api}/sobjects/Task", json=body, timeout=10)


def _error(resp: requests.Response) -> tuple[int, str, list[str]]:
    [error] = resp.json()
    return resp.status_code, error["errorCode"], error.get("fields", [])


def _lead(sb: SalesforceSandbox, **fields: Any) -> str:
    return sb.store.insert("Lead", {"LastName": "Visser", "Company": "Acme", **fields})


def test_describe_task_as_a_real_org_reports_it(sf_client: Salesforce) -> None:
    described = sf_client.Task.describe()
    assert (described["name"], described["keyPrefix"], described["createable"]) == ("Task", "00T", True)
    fields = _fields(sf_client)

    status = fields["Status"]
    assert (status["type"], status["nillable"], status["restrictedPicklist"]) == ("picklist", False, True)
    assert status["defaultedOnCreate"] is True
    assert [(v["value"], v["defaultValue"]) for v in status["picklistValues"]] == [
        ("Not Started", True),
        ("In Progress", False),
        ("Completed", False),
        ("Waiting on someone else", False),
        ("Deferred", False),
    ]
    priority = fields["Priority"]
    assert (priority["nillable"], priority["restrictedPicklist"]) == (False, True)
    assert [(v["value"], v["defaultValue"]) for v in priority["picklistValues"]] == [
        ("High", False),
        ("Normal", True),
        ("Low", False),
    ]
    # Subject suggests values but takes any text
    subject = fields["Subject"]
    assert (subject["type"], subject["restrictedPicklist"], subject["nillable"]) == ("combobox", False, True)
    assert "Call" in [v["value"] for v in subject["picklistValues"]]

    who = fields["WhoId"]
    assert (who["type"], who["referenceTo"], who["relationshipName"]) == (
        "reference",
        ["Contact", "Lead"],
        "Who",
    )
    assert who["polymorphicForeignKey"] is True and who["nillable"] is True
    assert fields["WhatId"]["relationshipName"] == "What" and "Account" in fields["WhatId"]["referenceTo"]
    owner = fields["OwnerId"]
    assert (owner["referenceTo"], owner["nillable"], owner["defaultedOnCreate"]) == (["User"], False, True)
    assert owner["relationshipName"] == "Owner" and owner["polymorphicForeignKey"] is False
    assert (fields["ActivityDate"]["type"], fields["Description"]["type"]) == ("date", "textarea")
    assert fields["IsClosed"]["createable"] is False and fields["IsClosed"]["updateable"] is False

    key = fields["Connector_Key__c"]
    assert (key["type"], key["custom"], key["externalId"], key["unique"], key["idLookup"]) == (
        "string",
        True,
        True,
        True,
        True,
    )
    assert key["createable"] and key["updateable"] and key["nillable"]


def test_create_task_fills_defaults_and_owner_is_the_api_user(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    lead = _lead(sf_sandbox)
    resp = _post_task(
        sf_http,
        sf_api,
        {
            "WhoId": lead,
            "Subject": "Call back about the renewal",
            "ActivityDate": "2027-03-01",
            "Connector_Key__c": "K-1",
        },
    )
    assert resp.status_code == 201, resp.text
    task_id = resp.json()["id"]
    assert task_id.startswith("00T") and len(task_id) == 18
    [task] = sf_sandbox.store.all("Task")
    assert task["Id"] == task_id and task["WhoId"] == lead
    assert (task["Status"], task["Priority"], task["IsClosed"], task["IsHighPriority"]) == (
        "Not Started",
        "Normal",
        False,
        False,
    )
    assert task["OwnerId"] == USER_ID and str(task["ActivityDate"]) == "2027-03-01"
    # the owner is the user the login answered with, and a query on User finds them by name for owner lookups
    users = sf_http.get(
        f"{sf_api}/query",
        params={
            "q": "SELECT Id, Name, Username, Email FROM User WHERE IsActive = true AND Name = 'Integration User'"
        },
        timeout=10,
    ).json()["records"]
    assert [u["Id"] for u in users] == [USER_ID]
    completed = _post_task(sf_http, sf_api, {"WhoId": lead, "Status": "Completed", "Priority": "High"})
    done = sf_sandbox.store.get("Task", completed.json()["id"])
    assert (done["IsClosed"], done["IsHighPriority"]) == (True, True)


def test_task_rules_answer_with_the_real_error_codes(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    lead = _lead(sf_sandbox)
    bad_status = _post_task(sf_http, sf_api, {"WhoId": lead, "Status": "Open"})
    assert _error(bad_status) == (400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Status"])
    assert bad_status.json()[0]["message"] == "Status: bad value for restricted picklist field: Open"
    assert _error(_post_task(sf_http, sf_api, {"Priority": "Medium"})) == (
        400,
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ["Priority"],
    )
    # left out, Status and Priority take their defaults; sent as null they are missing
    assert _error(_post_task(sf_http, sf_api, {"Status": None})) == (
        400,
        "REQUIRED_FIELD_MISSING",
        ["Status"],
    )
    assert _error(_post_task(sf_http, sf_api, {"OwnerId": None})) == (
        400,
        "REQUIRED_FIELD_MISSING",
        ["OwnerId"],
    )

    account = sf_sandbox.store.insert("Account", {"Name": "Acme"})
    gone = _lead(sf_sandbox)
    sf_sandbox.store.delete("Lead", gone)
    for who in (account, gone):  # not a Lead or Contact; a deleted lead
        assert _error(_post_task(sf_http, sf_api, {"WhoId": who})) == (
            400,
            "INVALID_CROSS_REFERENCE_KEY",
            ["WhoId"],
        )
    assert _error(_post_task(sf_http, sf_api, {"OwnerId": lead})) == (
        400,
        "INVALID_CROSS_REFERENCE_KEY",
        ["OwnerId"],
    )
    converted = _lead(sf_sandbox, Email="conv@acme.test")
    contact = sf_sandbox.store.convert_lead(converted)["contactId"]
    assert _error(_post_task(sf_http, sf_api, {"WhoId": converted})) == (
        400,
        "CANNOT_UPDATE_CONVERTED_LEAD",
        ["WhoId"],
    )
    assert _post_task(sf_http, sf_api, {"WhoId": contact, "WhatId": account}).status_code == 201

    assert (
        _post_task(sf_http, sf_api, {"WhoId": lead, "Connector_Key__c": "nurture:ann:2027-03"}).status_code
        == 201
    )
    # unique ignores case, as a unique text field does unless made case-sensitive
    duplicate = _post_task(sf_http, sf_api, {"WhoId": lead, "Connector_Key__c": "NURTURE:ANN:2027-03"})
    assert _error(duplicate) == (400, "DUPLICATE_VALUE", [])
    first = sf_sandbox.store.find("Task", "Connector_Key__c", "nurture:ann:2027-03")
    assert first is not None
    assert duplicate.json()[0]["message"] == (
        f"duplicate value found: Connector_Key__c duplicates value on record with id: {first['Id'][:15]}"
    )
    assert len(sf_sandbox.store.all("Task")) == 2


def test_task_updates_keep_the_rules(sf_client: Salesforce, sf_sandbox: SalesforceSandbox) -> None:
    lead = _lead(sf_sandbox)
    task = sf_client.Task.create({"WhoId": lead, "Subject": "Call"})["id"]
    assert sf_client.Task.update(task, {"Status": "Completed"}) == 204
    assert sf_sandbox.store.get("Task", task)["IsClosed"] is True
    for change, code in (
        ({"Status": None}, "REQUIRED_FIELD_MISSING"),
        ({"IsClosed": False}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
    ):
        try:
            sf_client.Task.update(task, change)
        except Exception as exc:  # simple-salesforce raises SalesforceMalformedRequest with the body
            assert code in str(exc)
        else:
            raise AssertionError(f"{change} was accepted")


def test_collections_create_tasks_with_per_record_results(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    lead, contact = _lead(sf_sandbox), sf_sandbox.store.insert("Contact", {"LastName": "Bos"})
    records = [
        {"attributes": {"type": "Task"}, "WhoId": lead, "Subject": "Call", "Connector_Key__c": "A"},
        {"attributes": {"type": "Task"}, "WhoId": contact, "Status": "Planned", "Connector_Key__c": "B"},
        {"attributes": {"type": "Task"}, "WhoId": contact, "Connector_Key__c": "a"},  # duplicate of the first
        {"attributes": {"type": "Task"}, "WhoId": contact, "Connector_Key__c": "C", "Priority": "High"},
    ]
    resp = sf_http.post(
        f"{sf_api}/composite/sobjects", json={"allOrNone": False, "records": records}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    results = resp.json()
    assert [r["success"] for r in results] == [True, False, False, True]
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert results[2]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert sorted(t["Connector_Key__c"] for t in sf_sandbox.store.all("Task")) == ["A", "C"]

    too_many = [{"attributes": {"type": "Task"}, "Connector_Key__c": f"K{n}"} for n in range(201)]
    over = sf_http.post(
        f"{sf_api}/composite/sobjects", json={"allOrNone": False, "records": too_many}, timeout=10
    )
    assert _error(over)[:2] == (400, "EXCEEDED_ID_LIMIT")
    full = sf_http.post(
        f"{sf_api}/composite/sobjects", json={"allOrNone": False, "records": too_many[:200]}, timeout=10
    )
    assert all(r["success"] for r in full.json()) and len(sf_sandbox.store.all("Task")) == 202


def test_soql_finds_tasks_by_key_and_by_who(sf_client: Salesforce, sf_sandbox: SalesforceSandbox) -> None:
    ann, bob = _lead(sf_sandbox, FirstName="Ann"), sf_sandbox.store.insert("Contact", {"LastName": "Bos"})
    for who, key in ((ann, "k-ann-1"), (ann, "k-ann-2"), (bob, "k-bob-1")):
        sf_client.Task.create({"WhoId": who, "Subject": "Call", "Connector_Key__c": key})
    by_key = sf_client.query(
        "SELECT Id, Connector_Key__c, WhoId FROM Task WHERE Connector_Key__c IN ('K-ANN-1', 'k-bob-1', 'none')"
    )
    assert sorted(r["Connector_Key__c"] for r in by_key["records"]) == ["k-ann-1", "k-bob-1"]
    # an id matches in its 15- and 18-character forms
    by_who = sf_client.query(f"SELECT Id, Subject, Who.Name, Owner.Name FROM Task WHERE WhoId = '{ann[:15]}'")
    assert by_who["totalSize"] == 2
    assert {(r["Who"]["Name"], r["Owner"]["Name"]) for r in by_who["records"]} == {
        ("Ann Visser", "Integration User")
    }
    contact_tasks = sf_client.query(f"SELECT Who.Name FROM Task WHERE WhoId = '{bob}'")["records"]
    assert [r["Who"]["Name"] for r in contact_tasks] == ["Bos"]


def test_upsert_on_the_key_creates_once(sf_client: Salesforce, sf_sandbox: SalesforceSandbox) -> None:
    lead = _lead(sf_sandbox)
    assert sf_client.Task.upsert("Connector_Key__c/nurture-1", {"WhoId": lead, "Subject": "Call"}) == 201
    assert sf_client.Task.upsert("Connector_Key__c/nurture-1", {"WhoId": lead, "Subject": "Call"}) == 200
    assert [t["Connector_Key__c"] for t in sf_sandbox.store.all("Task")] == ["nurture-1"]


def test_a_lost_answer_leaves_the_task_created(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    lead = _lead(sf_sandbox)
    sf_sandbox.faults.lose_answers = 1
    sf_sandbox.faults.lose_answer_kinds = {"composite/sobjects"}
    records = [{"attributes": {"type": "Task"}, "WhoId": lead, "Connector_Key__c": "once"}]
    lost = sf_http.post(
        f"{sf_api}/composite/sobjects", json={"allOrNone": False, "records": records}, timeout=10
    )
    assert _error(lost)[:2] == (503, "SERVER_UNAVAILABLE")
    # the org did the work: a client that looks its key up before retrying finds the task
    found = sf_http.get(
        f"{sf_api}/query", params={"q": "SELECT Id FROM Task WHERE Connector_Key__c = 'once'"}, timeout=10
    ).json()
    assert found["totalSize"] == 1
    retried = sf_http.post(
        f"{sf_api}/composite/sobjects", json={"allOrNone": False, "records": records}, timeout=10
    )
    assert retried.json()[0]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert len(sf_sandbox.store.all("Task")) == 1
    sf_sandbox.faults.reset()
    assert sf_sandbox.faults.lose_answers == 0
