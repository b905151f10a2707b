"""The pure vtiger mapper: raw records (as vtiger returns them: all strings) -> facts."""

from __future__ import annotations

import datetime as dt

import pytest

from connector.errors import RecordError
from connector.mappers.fields import ObjectMapping
from connector.mappers.vtiger import DEFAULT_LEAD_STATUS, DEFAULT_SALES_STAGE, VtigerModuleSpec, map_record
from connector.schema import FactKind


def lead_spec(**value_map: str) -> VtigerModuleSpec:
    mapping = ObjectMapping(
        fields={
            "email": "email",
            "firstname": "first_name",
            "leadstatus": "lead_status_raw",
            "emailoptout": "opted_out",
            "cf_864": "external_id",
        }
    )
    return VtigerModuleSpec(
        source="vt",
        module="Leads",
        mapping=mapping,
        picklists={"lead_status": {**DEFAULT_LEAD_STATUS, **value_map}},
    )


def lead(**values: str) -> dict[str, str]:
    base = {
        "id": "10x4",
        "email": " Ann.Smith@Example.com ",
        "firstname": "Ann",
        "leadstatus": "Junk Lead",
        "emailoptout": "1",
        "cf_864": "KEY-1",
        "modifiedtime": "2026-11-23 12:46:32",
    }
    return {**base, **values}


def test_lead_keys_values_and_modified_time() -> None:
    mapped = map_record(lead(), lead_spec())
    fact = mapped.fact
    assert fact.kind is FactKind.PERSON
    assert fact.keys == ["vt:Leads:10x4", "email:ann.smith@example.com", "ext:KEY-1"]
    assert fact.values["lead_status"] == "qualified_out"
    assert fact.values["lead_status_raw"] == "Junk Lead"
    assert fact.values["opted_out"] is True
    assert fact.modified_at == dt.datetime(2026, 11, 23, 12, 46, 32, tzinfo=dt.UTC)
    assert mapped.unknown == []


@pytest.mark.parametrize(
    ("raw", "meaning"),
    [
        ("Contact in Future", "nurture"),
        ("Cold", "new"),
        ("Qualified", "qualified"),
        ("lost lead", "qualified_out"),
    ],
)
def test_stock_lead_statuses(raw: str, meaning: str) -> None:
    assert map_record(lead(leadstatus=raw), lead_spec()).fact.values["lead_status"] == meaning


def test_unknown_picklist_value_is_reported_and_left_unset() -> None:
    mapped = map_record(lead(leadstatus="NotAStatus"), lead_spec())
    assert "lead_status" not in mapped.fact.values
    assert mapped.fact.values["lead_status_raw"] == "NotAStatus"
    assert mapped.unknown == [("lead_status", "NotAStatus")]


def test_yaml_value_map_overrides_the_default() -> None:
    fact = map_record(lead(leadstatus="Hot"), lead_spec(Hot="qualified")).fact
    assert fact.values["lead_status"] == "qualified"


def test_an_invalid_email_is_no_identity() -> None:
    fact = map_record(lead(email="not-an-email", cf_864=""), lead_spec()).fact
    assert fact.keys == ["vt:Leads:10x4"]
    assert "email" not in fact.values


def test_contact_is_member_of_its_account() -> None:
    spec = VtigerModuleSpec(
        source="vt",
        module="Contacts",
        mapping=ObjectMapping(fields={"email": "email"}),
        account_field="account_id",
        is_contact=True,
    )
    fact = map_record(
        {"id": "12x9", "email": "bob@example.com", "account_id": "11x3", "modifiedtime": ""}, spec
    ).fact
    assert fact.member_of == ["vt:Accounts:11x3"]
    assert fact.values["is_contact"] is True
    assert fact.modified_at is None


def potential_spec() -> VtigerModuleSpec:
    return VtigerModuleSpec(
        source="vt",
        module="Potentials",
        mapping=ObjectMapping(
            kind=FactKind.OPPORTUNITY,
            fields={
                "sales_stage": "opportunity_stage_raw",
                "amount": "opportunity_amount",
                "closingdate": "opportunity_close_date",
            },
        ),
        picklists={"opportunity_stage": dict(DEFAULT_SALES_STAGE)},
        links=("contact_id", "related_to"),
    )


def potential(**values: str) -> dict[str, str]:
    base = {
        "id": "13x12",
        "sales_stage": "Closed Won",
        "amount": "5000.00000000",
        "closingdate": "2026-12-31",
        "related_to": "11x10",
        "contact_id": "12x11",
        "modifiedtime": "2026-11-23 12:46:32",
    }
    return {**base, **values}


def test_opportunity_values_and_contact_before_account() -> None:
    fact = map_record(potential(), potential_spec()).fact
    assert fact.attach == ["vt:Contacts:12x11"]
    assert fact.values == {
        "opportunity_stage_raw": "Closed Won",
        "opportunity_stage": "won",
        "opportunity_won": True,
        "opportunity_closed": True,
        "opportunity_amount": 5000.0,
        "opportunity_close_date": dt.date(2026, 12, 31),
    }


def test_opportunity_without_contact_attaches_to_account() -> None:
    fact = map_record(potential(contact_id="", sales_stage="Negotiation or Review"), potential_spec()).fact
    assert fact.attach == ["vt:Accounts:11x10"]
    assert fact.values["opportunity_stage"] == "proposal"
    assert fact.values["opportunity_closed"] is False


def test_unlinked_opportunity_is_a_record_error() -> None:
    with pytest.raises(RecordError, match="13x12: linked to no contact or account"):
        map_record(potential(contact_id="", related_to=""), potential_spec())


def test_contract_attaches_by_id_prefix() -> None:
    spec = VtigerModuleSpec(
        source="vt",
        module="ServiceContracts",
        mapping=ObjectMapping(
            kind=FactKind.CONTRACT, fields={"start_date": "contract_start", "due_date": "contract_end"}
        ),
        links=("sc_related_to",),
    )
    raw = {
        "id": "25x39",
        "start_date": "2026-01-01",
        "due_date": "2027-06-30",
        "sc_related_to": "12x5",
        "modifiedtime": "",
    }
    fact = map_record(raw, spec).fact
    assert fact.attach == ["vt:Contacts:12x5"]
    assert fact.values == {"contract_start": dt.date(2026, 1, 1), "contract_end": dt.date(2027, 6, 30)}
    raw["sc_related_to"] = "11x3"
    assert map_record(raw, spec).fact.attach == ["vt:Accounts:11x3"]


def test_account_enrichment_attaches_to_itself() -> None:
    spec = VtigerModuleSpec(
        source="vt",
        module="Accounts",
        mapping=ObjectMapping(kind=FactKind.ENRICHMENT, fields={"accountname": "company"}),
    )
    fact = map_record({"id": "11x3", "accountname": "Acme", "modifiedtime": ""}, spec).fact
    assert fact.attach == ["vt:Accounts:11x3"]
    assert fact.values == {"company": "Acme"}


def test_bad_values_are_record_errors_naming_the_record() -> None:
    with pytest.raises(RecordError, match="Leads 10x4: modifiedtime"):
        map_record(lead(modifiedtime="yesterday"), lead_spec())
    with pytest.raises(RecordError, match="Potentials 13x12: field closingdate"):
        map_record(potential(closingdate="soon"), potential_spec())
    with pytest.raises(RecordError, match="without an id"):
        map_record(lead(id=""), lead_spec())


@pytest.mark.parametrize(
    ("stage", "meaning", "won", "closed"),
    [
        ("Prospecting", "open", False, False),
        ("Qualification", "open", False, False),
        ("Needs Analysis", "open", False, False),
        ("Value Proposition", "open", False, False),
        ("Id. Decision Makers", "open", False, False),
        ("Perception Analysis", "open", False, False),
        ("Proposal or Price Quote", "proposal", False, False),
        ("Negotiation or Review", "proposal", False, False),
        ("Closed Won", "won", True, True),
        ("Closed Lost", "lost", False, True),
    ],
)
def test_stock_sales_stages_have_a_meaning_out_of_the_box(
    stage: str, meaning: str, won: bool, closed: bool
) -> None:
    mapped = map_record(potential(sales_stage=stage), potential_spec())
    assert mapped.unknown == []
    values = mapped.fact.values
    assert (values["opportunity_stage"], values["opportunity_won"], values["opportunity_closed"]) == (
        meaning,
        won,
        closed,
    )
