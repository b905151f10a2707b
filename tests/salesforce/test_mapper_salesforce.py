from __future__ import annotations

import datetime as dt

import pytest

from connector.errors import RecordError
from connector.mappers.fields import ObjectMapping
from connector.mappers.salesforce import (
    CONTACT_ROLES_KEY,
    OrgMeanings,
    StageMeaning,
    map_record,
    parse_sf_datetime,
)
from connector.schema import FactKind

STAMP = "2026-10-01T08:30:00.000+0000"
ORG = OrgMeanings(
    lead_converted={
        "open - not contacted": False,
        "working - contacted": False,
        "closed - converted": True,
        "closed - not converted": False,
    },
    opportunity={
        "prospecting": StageMeaning(False, False),
        "closed won": StageMeaning(True, True),
        "closed lost": StageMeaning(True, False),
        "proposal/price quote": StageMeaning(False, False),
    },
)
LEAD = ObjectMapping(
    fields={
        "Email": "email",
        "LastName": "last_name",
        "Status": "lead_status",
        "Ext__c": "external_id",
        "HasOptedOutOfEmail": "opted_out",
    },
    value_maps={"lead_status": {"Closed - Not Converted": "qualified_out", "Working - Contacted": "working"}},
)
OPP = ObjectMapping(
    kind=FactKind.OPPORTUNITY,
    fields={
        "StageName": "opportunity_stage_raw",
        "Amount": "opportunity_amount",
        "CloseDate": "opportunity_close_date",
    },
    value_maps={"opportunity_stage": {"Proposal/Price Quote": "proposal"}},
)


def lead(**kw):
    return {
        "Id": "00Q1",
        "SystemModstamp": STAMP,
        "IsConverted": False,
        "ConvertedContactId": None,
        "Email": " Ann@Example.COM ",
        "LastName": "Smith",
        "Status": "Working - Contacted",
        **kw,
    }


def test_lead_person_keys_and_value_map() -> None:
    out = map_record("sf_prod", "Lead", lead(Ext__c="X-9", HasOptedOutOfEmail=True), LEAD, ORG)
    fact = out.fact
    assert fact.kind is FactKind.PERSON
    assert fact.keys == ["sf_prod:Lead:00Q1", "email:ann@example.com", "ext:X-9"]
    assert fact.values["email"] == "ann@example.com"
    assert fact.values["lead_status"] == "working" and fact.values["lead_status_raw"] == "Working - Contacted"
    assert fact.values["opted_out"] is True
    assert fact.modified_at == dt.datetime(2026, 10, 1, 8, 30, tzinfo=dt.UTC)
    assert out.unknown == []


def test_converted_lead_merges_with_its_contact() -> None:
    raw = lead(IsConverted=True, ConvertedContactId="003C", Status="Closed - Converted")
    fact = map_record("sf_prod", "Lead", raw, LEAD, ORG).fact
    assert "sf_prod:Contact:003C" in fact.keys
    assert fact.values["converted"] is True and fact.values["lead_status"] == "converted"


def test_yaml_value_map_overrides_and_org_explains_conversion() -> None:
    assert map_record("s", "Lead", lead(Status="Closed - Not Converted"), LEAD, ORG).fact.values[
        "lead_status"
    ] == ("qualified_out")
    bare = ObjectMapping(fields={"Status": "lead_status"})
    assert map_record("s", "Lead", lead(Status="Closed - Converted"), bare, ORG).fact.values[
        "lead_status"
    ] == ("converted")


def test_unexplained_status_is_reported_not_guessed() -> None:
    out = map_record("s", "Lead", lead(Status="Hibernating"), LEAD, ORG)  # an org's own status, not stock
    assert "lead_status" not in out.fact.values
    assert out.unknown == [("lead_status", "Hibernating")]


@pytest.mark.parametrize(
    ("status", "meaning"),
    [
        ("Open - Not Contacted", "new"),
        ("Working - Contacted", "working"),
        ("Closed - Converted", "converted"),
        ("Closed - Not Converted", "qualified_out"),
    ],
)
def test_stock_lead_statuses_mean_something_without_a_value_map(status: str, meaning: str) -> None:
    bare = ObjectMapping(fields={"Status": "lead_status"})
    for org in (ORG, OrgMeanings()):  # with the org's LeadStatus rows and without them
        out = map_record("s", "Lead", lead(Status=status), bare, org)
        assert out.fact.values["lead_status"] == meaning and out.unknown == []


def test_a_value_map_overrides_a_stock_lead_status() -> None:
    mapped = ObjectMapping(
        fields={"Status": "lead_status"}, value_maps={"lead_status": {"Open - Not Contacted": "working"}}
    )
    assert map_record("s", "Lead", lead(Status="Open - Not Contacted"), mapped, ORG).fact.values[
        "lead_status"
    ] == ("working")


def test_contact_belongs_to_account() -> None:
    mapping = ObjectMapping(fields={"Email": "email", "Contract_End__c": "contract_end"})
    raw = {
        "Id": "003A",
        "SystemModstamp": STAMP,
        "AccountId": "001A",
        "Email": "b@x.nl",
        "Contract_End__c": "2027-03-31",
    }
    fact = map_record("sf_prod", "Contact", raw, mapping, ORG).fact
    assert fact.member_of == ["sf_prod:Account:001A"]
    assert fact.values["is_contact"] is True
    assert fact.values["contract_end"] == dt.date(2027, 3, 31)


def test_opportunity_attaches_to_contact_roles_else_account() -> None:
    raw = {
        "Id": "006A",
        "SystemModstamp": STAMP,
        "AccountId": "001A",
        "StageName": "Closed Won",
        "Amount": 1200.5,
        "CloseDate": "2026-09-30",
        CONTACT_ROLES_KEY: ["003B", "003A", "003A"],
    }
    fact = map_record("sf_prod", "Opportunity", raw, OPP, ORG).fact
    assert fact.attach == ["sf_prod:Contact:003A", "sf_prod:Contact:003B"]
    assert fact.values["opportunity_stage"] == "won"
    assert fact.values["opportunity_won"] is True and fact.values["opportunity_closed"] is True
    assert fact.values["opportunity_stage_raw"] == "Closed Won"
    assert fact.values["opportunity_amount"] == 1200.5
    raw[CONTACT_ROLES_KEY] = []
    raw["StageName"] = "Closed Lost"
    fact = map_record("sf_prod", "Opportunity", raw, OPP, ORG).fact
    assert fact.attach == ["sf_prod:Account:001A"]
    assert (fact.values["opportunity_stage"], fact.values["opportunity_won"]) == ("lost", False)


def test_stage_value_map_wins_and_unknown_stage_left_unset() -> None:
    raw = {"Id": "006A", "SystemModstamp": STAMP, "AccountId": "001A", "StageName": "Proposal/Price Quote"}
    values = map_record("s", "Opportunity", raw, OPP, ORG).fact.values
    assert values["opportunity_stage"] == "proposal" and values["opportunity_closed"] is False
    out = map_record("s", "Opportunity", {**raw, "StageName": "Haggling"}, OPP, ORG)
    assert "opportunity_stage" not in out.fact.values and "opportunity_won" not in out.fact.values
    assert out.unknown == [("opportunity_stage", "Haggling")]


def test_contract_kinds_attach_to_account() -> None:
    contract = ObjectMapping(kind=FactKind.CONTRACT, fields={"EndDate": "contract_end"})
    raw = {"Id": "800A", "SystemModstamp": STAMP, "AccountId": "001A", "EndDate": "2027-01-31"}
    assert map_record("s", "Contract", raw, contract, ORG).fact.attach == ["s:Account:001A"]
    acct = ObjectMapping(kind=FactKind.CONTRACT, fields={"Contract_End_Date__c": "contract_end"})
    raw = {"Id": "001A", "SystemModstamp": STAMP, "Contract_End_Date__c": "2027-01-31"}
    fact = map_record("s", "Account", raw, acct, ORG).fact
    assert fact.attach == ["s:Account:001A"] and fact.values["contract_end"] == dt.date(2027, 1, 31)


def test_bulk_csv_strings_map_like_json() -> None:
    raw = {
        "Id": "00Q1",
        "SystemModstamp": "2026-10-01T08:30:00.000Z",
        "IsConverted": "true",
        "ConvertedContactId": "003C",
        "Email": "a@b.nl",
        "LastName": "S",
        "Status": "Closed - Converted",
        "HasOptedOutOfEmail": "false",
    }
    fact = map_record("s", "Lead", raw, LEAD, ORG).fact
    assert fact.values["converted"] is True and fact.values["opted_out"] is False
    assert fact.modified_at == dt.datetime(2026, 10, 1, 8, 30, tzinfo=dt.UTC)


def test_parent_fields_from_json_or_csv() -> None:
    mapping = ObjectMapping(fields={"Account.Name": "company"})
    nested = {"Id": "003A", "SystemModstamp": STAMP, "Account": {"Name": "Acme"}}
    flat = {"Id": "003A", "SystemModstamp": STAMP, "Account.Name": "Acme"}
    assert map_record("s", "Contact", nested, mapping, ORG).fact.values["company"] == "Acme"
    assert map_record("s", "Contact", flat, mapping, ORG).fact.values["company"] == "Acme"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"Id": "003A", "SystemModstamp": STAMP, "Contract_End__c": "31-31-2027"}, "Contract_End__c"),
        ({"Id": "003A", "SystemModstamp": "yesterday"}, "SystemModstamp"),
        ({"SystemModstamp": STAMP}, "without Id"),
    ],
)
def test_unmappable_records_raise_record_error(raw, reason) -> None:
    mapping = ObjectMapping(fields={"Contract_End__c": "contract_end"})
    with pytest.raises(RecordError, match=reason):
        map_record("s", "Contact", raw, mapping, ORG)


def test_datetime_forms() -> None:
    want = dt.datetime(2026, 1, 31, 10, tzinfo=dt.UTC)
    assert parse_sf_datetime("2026-01-31T10:00:00.000+0000") == want
    assert parse_sf_datetime("2026-01-31T11:00:00.000+0100") == want
    assert parse_sf_datetime("2026-01-31T10:00:00Z") == want
    with pytest.raises(ValueError):
        parse_sf_datetime("2026-01-31T10:00:00")


def test_a_datetime_with_no_utc_instant_is_a_value_error() -> None:
    # found by the hostile-input property test: year 1, 00:00 at +00:01 lies before datetime.min in UTC
    with pytest.raises(ValueError, match="outside the datetimes UTC can hold"):
        parse_sf_datetime("0001-01-01T00:00:00.000+0001")
