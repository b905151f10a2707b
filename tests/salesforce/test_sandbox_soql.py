"""The sandbox's SOQL subset, checked over HTTP through simple-salesforce and plain requests."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connector_sandboxes.salesforce import SalesforceSandbox


@pytest.fixture
def org(sf_sandbox: SalesforceSandbox) -> dict[str, str]:
    """A handful of leads, contacts and accounts with known values; returns ids by nickname."""
    store = sf_sandbox.store
    acme = store.insert("Account", {"Name": "Acme", "Contract_End_Date__c": "2027-03-31"})
    globex = store.insert("Account", {"Name": "Globex"})
    ids = {"acme": acme, "globex": globex}
    ids["ann"] = store.insert(
        "Contact",
        {
            "AccountId": acme,
            "FirstName": "Ann",
            "LastName": "Smith",
            "Email": "ann@acme.test",
            "Funnel_Stage__c": "Customer",
            "Contract_End__c": "2027-01-15",
        },
    )
    ids["bob"] = store.insert(
        "Contact",
        {
            "AccountId": globex,
            "FirstName": "Bob",
            "LastName": "O'Neil",
            "Email": "bob@globex.test",
            "HasOptedOutOfEmail": True,
        },
    )
    ids["cat"] = store.insert("Contact", {"LastName": "Back\\slash", "Email": None})
    ids["lead1"] = store.insert(
        "Lead",
        {
            "FirstName": "Lea",
            "LastName": "One",
            "Company": "Initech",
            "Email": "LEA@Initech.test",
            "LeadSource": "Web",
            "Funnel_Stage__c": "Lead",
        },
    )
    ids["lead2"] = store.insert(
        "Lead",
        {"LastName": "Two", "Company": "Hooli", "Email": "two@hooli.test", "Status": "Working - Contacted"},
    )
    ids["lead3"] = store.insert("Lead", {"LastName": "Three", "Company": "Acme", "LeadSource": "Other"})
    store.convert_lead(ids["lead3"], account_id=acme, contact_id=ids["ann"])
    return ids


def names(result: dict) -> list[str]:
    return [r["Name"] for r in result["records"]]


def test_fields_and_attributes(sf_client: Salesforce, org: dict[str, str]) -> None:
    result = sf_client.query(f"SELECT Id, Name, Email, CreatedDate FROM Contact WHERE Id = '{org['ann']}'")
    assert result["totalSize"] == 1 and result["done"] is True
    record = result["records"][0]
    assert record["attributes"] == {
        "type": "Contact",
        "url": f"/services/data/v59.0/sobjects/Contact/{org['ann']}",
    }
    assert list(record) == ["attributes", "Id", "Name", "Email", "CreatedDate"]
    assert record["Name"] == "Ann Smith"
    created = dt.datetime.strptime(record["CreatedDate"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert created.tzinfo is not None
    assert record["CreatedDate"].endswith("+0000")


def test_parent_relationship_fields_nest_with_attributes(sf_client: Salesforce, org: dict[str, str]) -> None:
    rows = sf_client.query(
        "SELECT Name, Account.Name, Account.Contract_End_Date__c FROM Contact ORDER BY Name"
    )
    by_name = {r["Name"]: r for r in rows["records"]}
    assert by_name["Ann Smith"]["Account"] == {
        "attributes": {"type": "Account", "url": f"/services/data/v59.0/sobjects/Account/{org['acme']}"},
        "Name": "Acme",
        "Contract_End_Date__c": "2027-03-31",
    }
    assert by_name["Back\\slash"]["Account"] is None
    lead = sf_client.query(
        "SELECT ConvertedContact.Email, ConvertedAccount.Name, IsConverted FROM Lead WHERE IsConverted = true"
    )["records"][0]
    assert lead["ConvertedContact"]["Email"] == "ann@acme.test"
    assert lead["ConvertedAccount"]["Name"] == "Acme"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Email = 'ANN@ACME.TEST'", ["Ann Smith"]),  # case-insensitive
        ("Email != 'ann@acme.test'", ["Back\\slash", "Bob O'Neil"]),  # null counts as not equal
        ("Email = null", ["Back\\slash"]),
        ("Email != null", ["Ann Smith", "Bob O'Neil"]),
        ("LastName = 'O\\'Neil'", ["Bob O'Neil"]),
        ("LastName = 'Back\\\\slash'", ["Back\\slash"]),
        ("LastName IN ('smith', 'o\\'neil')", ["Ann Smith", "Bob O'Neil"]),
        ("LastName NOT IN ('Smith')", ["Back\\slash", "Bob O'Neil"]),
        ("Email LIKE '%@ACME%'", ["Ann Smith"]),
        ("Email LIKE 'b_b@%'", ["Bob O'Neil"]),
        ("HasOptedOutOfEmail = true", ["Bob O'Neil"]),
        ("NOT HasOptedOutOfEmail = true", ["Ann Smith", "Back\\slash"]),
        ("Contract_End__c < 2027-02-01", ["Ann Smith"]),
        ("Contract_End__c >= 2027-01-15", ["Ann Smith"]),
        ("Contract_End__c > 2027-01-15", []),
        (
            "Funnel_Stage__c = 'Customer' OR (HasOptedOutOfEmail = true AND Email LIKE '%globex%')",
            ["Ann Smith", "Bob O'Neil"],
        ),
        ("NOT (Email = null OR LastName = 'Smith')", ["Bob O'Neil"]),
        ("Account.Name = 'globex'", ["Bob O'Neil"]),
        ("Name <= 'b'", ["Ann Smith"]),
    ],
)
def test_where_operators(sf_client: Salesforce, org: dict[str, str], where: str, expected: list[str]) -> None:
    assert names(sf_client.query(f"SELECT Name FROM Contact WHERE {where} ORDER BY Name")) == expected


def test_datetime_literals_in_every_form(
    sf_client: Salesforce, sf_sandbox: SalesforceSandbox, org: dict[str, str]
) -> None:
    sf_sandbox.store.touch("Lead", org["lead1"], dt.datetime(2026, 1, 31, 10, 0, tzinfo=dt.UTC))
    for literal in (
        "2026-01-31T10:00:00Z",
        "2026-01-31T10:00:00+00:00",
        "2026-01-31T10:00:00.000+0000",
        "2026-01-31T12:00:00+02:00",
    ):
        rows = sf_client.query(f"SELECT Id FROM Lead WHERE SystemModstamp = {literal}")["records"]
        assert [r["Id"] for r in rows] == [org["lead1"]], literal
    later = sf_client.query("SELECT Id FROM Lead WHERE SystemModstamp > 2026-01-31T10:00:00Z")["records"]
    assert org["lead1"] not in {r["Id"] for r in later}
    assert len(later) == 2


def test_order_by_directions_and_nulls(sf_client: Salesforce, org: dict[str, str]) -> None:
    q = "SELECT Name FROM Contact ORDER BY Email {}"
    assert names(sf_client.query(q.format("ASC"))) == ["Back\\slash", "Ann Smith", "Bob O'Neil"]
    assert names(sf_client.query(q.format("DESC"))) == ["Bob O'Neil", "Ann Smith", "Back\\slash"]
    assert names(sf_client.query(q.format("ASC NULLS LAST"))) == ["Ann Smith", "Bob O'Neil", "Back\\slash"]
    assert names(sf_client.query(q.format("DESC NULLS FIRST"))) == ["Back\\slash", "Bob O'Neil", "Ann Smith"]
    multi = sf_client.query("SELECT Name FROM Lead ORDER BY LeadSource DESC NULLS LAST, LastName ASC")
    assert names(multi) == ["Lea One", "Three", "Two"]
    paged = sf_client.query("SELECT Name FROM Contact ORDER BY Name LIMIT 2 OFFSET 1")
    assert names(paged) == ["Back\\slash", "Bob O'Neil"]


def test_count_queries(sf_client: Salesforce, org: dict[str, str]) -> None:
    assert sf_client.query("SELECT COUNT() FROM Lead") == {"totalSize": 3, "done": True, "records": []}
    assert sf_client.query("SELECT COUNT() FROM Lead WHERE IsConverted = false")["totalSize"] == 2
    aggregate = sf_client.query("SELECT COUNT(Email) FROM Contact")
    assert aggregate["records"][0]["expr0"] == 2


def test_query_hides_deleted_and_query_all_shows_them(
    sf_client: Salesforce, sf_sandbox: SalesforceSandbox, org: dict[str, str]
) -> None:
    sf_client.Contact.delete(org["bob"])
    assert "Bob O'Neil" not in names(sf_client.query("SELECT Name FROM Contact"))
    every = sf_client.query_all("SELECT Name, IsDeleted FROM Contact", include_deleted=True)["records"]
    assert {(r["Name"], r["IsDeleted"]) for r in every} >= {("Bob O'Neil", True), ("Ann Smith", False)}
    deleted = sf_client.query("SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True)
    assert [r["Id"] for r in deleted["records"]] == [org["bob"]]
    assert sf_sandbox.store.get("Contact", org["bob"])["IsDeleted"] is True


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE Email = 'unterminated", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE Email = unquoted", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE SystemModstamp > '2026-01-01T00:00:00Z'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE CreatedDate > 2026-01-01", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE Email = 'a\\qb'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead LIMIT x", "MALFORMED_QUERY"),
        ("SELECT Nope FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Lead WHERE Nope = 1", "INVALID_FIELD"),
        ("SELECT Bogus.Name FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
    ],
)
def test_bad_soql_is_refused_with_salesforce_codes(
    sf_http: requests.Session, sf_api: str, soql: str, code: str
) -> None:
    resp = sf_http.get(f"{sf_api}/query", params={"q": soql}, timeout=10)
    assert resp.status_code == 400
    body = resp.json()
    assert body[0]["errorCode"] == code
    assert body[0]["message"]


def test_simple_salesforce_raises_on_malformed_query(sf_client: Salesforce, org: dict[str, str]) -> None:
    with pytest.raises(SalesforceMalformedRequest):
        sf_client.query("SELECT Id FROM Lead WHERE (Email = 'x'")


def test_values_are_typed_as_salesforce_sends_them(
    sf_client: Salesforce, sf_sandbox: SalesforceSandbox
) -> None:
    acct = sf_sandbox.store.insert("Account", {"Name": "Deal Co"})
    sf_sandbox.store.insert(
        "Opportunity",
        {
            "Name": "Big",
            "AccountId": acct,
            "StageName": "Closed Won",
            "Amount": 1500,
            "CloseDate": "2026-11-23",
        },
    )
    opp = sf_client.query("SELECT Amount, CloseDate, IsWon, IsClosed, Account.Name FROM Opportunity")[
        "records"
    ][0]
    assert opp["Amount"] == 1500.0 and opp["CloseDate"] == "2026-11-23"
    assert opp["IsWon"] is True and opp["IsClosed"] is True
    lost = sf_client.query("SELECT COUNT() FROM Opportunity WHERE IsWon = false")
    assert lost["totalSize"] == 0
