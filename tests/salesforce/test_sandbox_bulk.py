"""Bulk API 2.0 query and ingest jobs against the sandbox, with plain requests and simple-salesforce."""

from __future__ import annotations

import csv
import io

import requests
from simple_salesforce import Salesforce

from connector_sandboxes.salesforce import SalesforceSandbox


def poll(http: requests.Session, url: str) -> list[str]:
    states = []
    for _ in range(5):
        states.append(http.get(url, timeout=10).json()["state"])
        if states[-1] in ("JobComplete", "Failed", "Aborted"):
            break
    return states


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_bulk_query_pages_with_locator(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    acct = sf_sandbox.store.insert("Account", {"Name": 'Quote "Co", Ltd'})
    for n in range(25):
        sf_sandbox.store.insert(
            "Contact",
            {"LastName": f"C{n:02d}", "AccountId": acct if n % 2 else None, "HasOptedOutOfEmail": n == 3},
        )
    job = sf_http.post(
        f"{sf_api}/jobs/query",
        json={
            "operation": "query",
            "query": "SELECT Id, LastName, Account.Name, HasOptedOutOfEmail, CreatedDate "
            "FROM Contact ORDER BY LastName",
        },
        timeout=10,
    ).json()
    assert job["state"] == "UploadComplete" and job["id"].startswith("750")
    assert poll(sf_http, f"{sf_api}/jobs/query/{job['id']}") == ["InProgress", "JobComplete"]
    got: list[dict[str, str]] = []
    locator = ""
    pages = 0
    while True:
        params = {"maxRecords": "10", **({"locator": locator} if locator else {})}
        resp = sf_http.get(f"{sf_api}/jobs/query/{job['id']}/results", params=params, timeout=10)
        assert resp.headers["Content-Type"].startswith("text/csv")
        page = rows(resp.text)
        assert int(resp.headers["Sforce-NumberOfRecords"]) == len(page)
        got.extend(page)
        pages += 1
        locator = resp.headers["Sforce-Locator"]
        if locator == "null":
            break
    assert pages == 3
    assert [r["LastName"] for r in got] == [f"C{n:02d}" for n in range(25)]
    assert list(got[0]) == ["Id", "LastName", "Account.Name", "HasOptedOutOfEmail", "CreatedDate"]
    assert got[1]["Account.Name"] == 'Quote "Co", Ltd' and got[0]["Account.Name"] == ""
    assert got[3]["HasOptedOutOfEmail"] == "true" and got[2]["HasOptedOutOfEmail"] == "false"
    # Bulk results write datetimes as `...000Z` (REST JSON as `...000+0000`): the client must read both
    assert got[0]["CreatedDate"].endswith(".000Z") and "+" not in got[0]["CreatedDate"]


def test_bulk_query_all_sees_deleted_and_bad_soql_fails_at_create(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    gone = sf_sandbox.store.insert("Account", {"Name": "Gone"})
    sf_sandbox.store.delete("Account", gone)
    job = sf_http.post(
        f"{sf_api}/jobs/query",
        json={"operation": "queryAll", "query": "SELECT Id, IsDeleted FROM Account"},
        timeout=10,
    ).json()
    poll(sf_http, f"{sf_api}/jobs/query/{job['id']}")
    result = rows(sf_http.get(f"{sf_api}/jobs/query/{job['id']}/results", timeout=10).text)
    assert result == [{"Id": gone, "IsDeleted": "true"}]
    bad = sf_http.post(
        f"{sf_api}/jobs/query", json={"operation": "query", "query": "SELECT Nope FROM Account"}, timeout=10
    )
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"


def test_bulk_query_results_wait_for_completion(sf_http: requests.Session, sf_api: str) -> None:
    job = sf_http.post(
        f"{sf_api}/jobs/query", json={"operation": "query", "query": "SELECT Id FROM Lead"}, timeout=10
    ).json()
    early = sf_http.get(f"{sf_api}/jobs/query/{job['id']}/results", timeout=10)
    assert early.status_code == 400


def test_simple_salesforce_bulk2_query(sf_client: Salesforce, sf_sandbox: SalesforceSandbox) -> None:
    for n in range(30):
        sf_sandbox.store.insert("Lead", {"LastName": f"L{n}", "Company": "C"})
    chunks = list(sf_client.bulk2.Lead.query("SELECT Id, LastName FROM Lead", max_records=12, wait=0))
    assert len(chunks) == 3
    assert sum(len(rows(c)) for c in chunks) == 30


def test_bulk_ingest_update_round_trip(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    store = sf_sandbox.store
    good = store.insert("Lead", {"LastName": "Good", "Company": "C", "Email": "keep@c.test"})
    locked = store.insert("Lead", {"LastName": "Locked", "Company": "C"})
    converted = store.insert("Lead", {"LastName": "Conv", "Company": "C"})
    store.convert_lead(converted)
    sf_sandbox.faults.lock_row_ids = {locked}
    job = sf_http.post(
        f"{sf_api}/jobs/ingest",
        json={"object": "Lead", "operation": "update", "contentType": "CSV", "lineEnding": "LF"},
        timeout=10,
    ).json()
    assert job["state"] == "Open" and job["contentUrl"].endswith(f"/jobs/ingest/{job['id']}/batches")
    data = (
        "Id,Funnel_Stage__c,Email\n"
        f"{good},Customer,\n"
        f"{locked},Lead,#N/A\n"
        f"{converted},Lead,\n"
        f"{good[:15]},Bogus,\n"
    )
    upload = sf_http.put(
        f"{sf_api}/jobs/ingest/{job['id']}/batches",
        data=data.encode(),
        headers={"Content-Type": "text/csv"},
        timeout=10,
    )
    assert upload.status_code == 201
    closed = sf_http.patch(f"{sf_api}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"}, timeout=10)
    assert closed.status_code == 200
    assert poll(sf_http, f"{sf_api}/jobs/ingest/{job['id']}") == ["InProgress", "JobComplete"]
    info = sf_http.get(f"{sf_api}/jobs/ingest/{job['id']}", timeout=10).json()
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (4, 3)
    ok = rows(sf_http.get(f"{sf_api}/jobs/ingest/{job['id']}/successfulResults/", timeout=10).text)
    assert ok == [
        {"sf__Id": good, "sf__Created": "false", "Id": good, "Funnel_Stage__c": "Customer", "Email": ""}
    ]
    failed = {
        r["Id"]: r["sf__Error"]
        for r in rows(sf_http.get(f"{sf_api}/jobs/ingest/{job['id']}/failedResults/", timeout=10).text)
    }
    assert failed[locked].startswith("UNABLE_TO_LOCK_ROW:")
    assert failed[converted].startswith("CANNOT_UPDATE_CONVERTED_LEAD:")
    assert failed[good[:15]].startswith("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:")
    assert store.get("Lead", good)["Funnel_Stage__c"] == "Customer"
    assert store.get("Lead", good)["Email"] == "keep@c.test"  # an empty cell leaves the field alone
    assert store.get("Lead", locked)["Funnel_Stage__c"] is None
    assert sf_sandbox.faults.lock_row_ids == set()  # a listed id fails once


def test_bulk_ingest_insert_upsert_delete(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    def run(operation: str, data: str, **extra: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        job = sf_http.post(
            f"{sf_api}/jobs/ingest", json={"object": "Contact", "operation": operation, **extra}, timeout=10
        ).json()
        sf_http.put(f"{sf_api}/jobs/ingest/{job['id']}/batches", data=data.encode(), timeout=10)
        sf_http.patch(f"{sf_api}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"}, timeout=10)
        poll(sf_http, f"{sf_api}/jobs/ingest/{job['id']}")
        base = f"{sf_api}/jobs/ingest/{job['id']}"
        return (
            rows(sf_http.get(f"{base}/successfulResults", timeout=10).text),
            rows(sf_http.get(f"{base}/failedResults", timeout=10).text),
        )

    ok, failed = run("insert", "LastName,External_Id__c,Contract_End__c\nA,E-1,2027-05-01\n,E-2,\n")
    assert [r["sf__Created"] for r in ok] == ["true"] and failed[0]["sf__Error"].startswith(
        "REQUIRED_FIELD_MISSING"
    )
    ok, failed = run(
        "upsert", "External_Id__c,FirstName\nE-1,Ann\nE-3,New\n", externalIdFieldName="External_Id__c"
    )
    assert failed[0]["sf__Error"].startswith(
        "REQUIRED_FIELD_MISSING"
    )  # E-3 would be created without LastName
    assert ok[0]["sf__Created"] == "false"
    contact = sf_sandbox.store.find("Contact", "External_Id__c", "E-1")
    assert contact is not None and contact["Name"] == "Ann A"
    assert contact["Contract_End__c"].isoformat() == "2027-05-01"
    ok, _ = run("delete", f"Id\n{contact['Id']}\n")
    assert ok[0]["sf__Id"] == contact["Id"]
    assert sf_sandbox.store.all("Contact") == []
    assert [r["Id"] for r in sf_sandbox.store.all("Contact", include_deleted=True)] == [contact["Id"]]
    other = sf_sandbox.store.insert("Contact", {"LastName": "B"})
    ok, _ = run("hardDelete", f"Id\n{other}\n")
    assert ok[0]["sf__Id"] == other
    # a hard delete skips the recycle bin: not even queryAll returns it
    assert other not in [r["Id"] for r in sf_sandbox.store.all("Contact", include_deleted=True)]
    everything = sf_http.get(f"{sf_api}/queryAll", params={"q": "SELECT Id FROM Contact"}, timeout=10).json()
    assert [r["Id"] for r in everything["records"]] == [contact["Id"]]
    sf_sandbox.store.purge("Contact", contact["Id"])  # the recycle bin emptied
    assert (
        sf_http.get(f"{sf_api}/queryAll", params={"q": "SELECT Id FROM Contact"}, timeout=10).json()[
            "totalSize"
        ]
        == 0
    )


def test_bulk_ingest_unknown_column_fails_the_job(sf_http: requests.Session, sf_api: str) -> None:
    job = sf_http.post(
        f"{sf_api}/jobs/ingest", json={"object": "Lead", "operation": "insert"}, timeout=10
    ).json()
    sf_http.put(f"{sf_api}/jobs/ingest/{job['id']}/batches", data=b"LastName,Typo__c\nx,y\n", timeout=10)
    sf_http.patch(f"{sf_api}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"}, timeout=10)
    assert poll(sf_http, f"{sf_api}/jobs/ingest/{job['id']}")[-1] == "Failed"
    info = sf_http.get(f"{sf_api}/jobs/ingest/{job['id']}", timeout=10).json()
    assert "Typo__c" in info["errorMessage"]


def test_bulk_calls_are_counted_by_kind(
    sf_http: requests.Session, sf_api: str, sf_sandbox: SalesforceSandbox
) -> None:
    sf_sandbox.reset_calls()
    job = sf_http.post(
        f"{sf_api}/jobs/query", json={"operation": "query", "query": "SELECT Id FROM Lead"}, timeout=10
    ).json()
    poll(sf_http, f"{sf_api}/jobs/query/{job['id']}")
    sf_http.get(f"{sf_api}/jobs/query/{job['id']}/results", timeout=10)
    assert sf_sandbox.call_counts() == {"bulk2.query": 4}
    assert sf_sandbox.api_usage == 4
