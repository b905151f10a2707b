"""Record operations: mandatory fields, string values, duplicates, update vs revise, multi-select, custom
fields found by label, ServiceContracts computed fields, delete and convertlead."""

from __future__ import annotations

import pytest

from connector_sandboxes.vtiger import VtigerSandbox

from .conftest import WsClient


def _create(client: WsClient, module: str, **element: str) -> dict:
    return client.call("POST", "create", elementType=module, element=element)


def test_create_rules_and_string_values(vt_client: WsClient) -> None:
    assert _create(vt_client, "Leads", lastname="NoOwner")["error"] == {
        "message": "assigned_user_id does not have a value",
        "code": "MANDATORY_FIELDS_MISSING",
    }
    assert (
        _create(vt_client, "Leads", assigned_user_id="19x1")["error"]["message"]
        == "lastname does not have a value"
    )
    assert _create(vt_client, "Campaigns", campaignname="NoDate")["error"]["message"] == (
        "closingdate does not have a value"
    )
    lead = _create(
        vt_client,
        "Leads",
        lastname="Bad",
        email="not-an-email",
        leadstatus="NotAStatus",
        assigned_user_id="19x1",
    )["result"]
    # no validation of picklists or e-mails; every value a string
    assert (lead["email"], lead["leadstatus"]) == ("not-an-email", "NotAStatus")
    assert all(isinstance(v, str) for v in lead.values())
    assert lead["annualrevenue"] == "0.00000000" and lead["noofemployees"] == "0"
    assert lead["source"] == "WEBSERVICE" and lead["lead_no"] == "LEA1" and lead["label"] == "Bad"
    assert lead["id"].startswith("10x")
    deal = _create(
        vt_client,
        "Potentials",
        potentialname="Deal",
        closingdate="2026-12-31",
        sales_stage="Prospecting",
        amount="5000",
        assigned_user_id="19x1",
    )["result"]
    assert (deal["amount"], deal["probability"], deal["potential_no"]) == ("5000.00000000", "0.000", "POT1")
    # one crmid sequence for all modules
    assert int(deal["id"].split("x")[1]) == int(lead["id"].split("x")[1]) + 1


def test_duplicate_account_has_integer_code_zero(vt_client: WsClient) -> None:
    assert _create(vt_client, "Accounts", accountname="Acme", assigned_user_id="19x1")["success"] is True
    duplicate = _create(vt_client, "Accounts", accountname="Acme", assigned_user_id="19x1")
    assert duplicate == {"success": False, "error": {"message": "Duplicate(s) detected!", "code": 0}}


def test_update_needs_mandatory_fields_revise_does_not(vt_client: WsClient) -> None:
    lead = _create(vt_client, "Leads", lastname="Smith", email="a@x.nl", assigned_user_id="19x1")["result"]
    partial = vt_client.call("POST", "update", element={"id": lead["id"], "leadstatus": "Warm"})
    assert partial["error"] == {
        "message": "lastname does not have a value",
        "code": "MANDATORY_FIELDS_MISSING",
    }
    updated = vt_client.post(
        "update",
        element={"id": lead["id"], "lastname": "Smith", "assigned_user_id": "19x1", "leadstatus": "Cold"},
    )
    assert updated["email"] == "a@x.nl" and updated["leadstatus"] == "Cold"  # left-out fields are kept
    revised = vt_client.post("revise", element={"id": lead["id"], "leadstatus": "Warm", "lead_no": "HACK"})
    assert revised["leadstatus"] == "Warm" and revised["lead_no"] == "LEA1"  # non-editable fields ignored
    for bad in ("not json", "{}"):
        error = vt_client.call("POST", "revise", element=bad)["error"]
        assert error == {
            "message": "Permission to perform the operation is denied for id",
            "code": "ACCESS_DENIED",
        }


def test_retrieve_and_delete(vt_client: WsClient) -> None:
    lead = _create(vt_client, "Leads", firstname="Ann", lastname="Smith", assigned_user_id="19x1")["result"]
    got = vt_client.get("retrieve", id=lead["id"])
    assert got == lead and got["label"] == "Ann Smith"
    assert vt_client.get("retrieve", id="19x1")["user_name"] == "admin"
    assert vt_client.post("delete", id=lead["id"]) == {"status": "successful"}
    denied = {"message": "Permission to perform the operation is denied", "code": "ACCESS_DENIED"}
    assert vt_client.call("GET", "retrieve", id=lead["id"])["error"] == denied
    assert vt_client.call("POST", "delete", id=lead["id"])["error"] == denied
    assert vt_client.query("select count(*) from Leads;") == [{"count": "0"}]


def test_multi_select_round_trip(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    segments = vt_sandbox.store.field_by_label("Contacts", "Segments")
    contact = _create(vt_client, "Contacts", lastname="Multi", assigned_user_id="19x1")["result"]
    joined = "Nurture newsletter |##| Renewal 2027"
    vt_client.post("revise", element={"id": contact["id"], segments: joined})
    assert vt_client.get("retrieve", id=contact["id"])[segments] == joined
    rows = vt_client.query(f"select id, {segments} from Contacts where {segments} like '%Renewal 2027%';")
    assert rows == [{"id": contact["id"], segments: joined}]
    # a JSON list is accepted, but only the first value survives
    answer = vt_client.call(
        "POST", "revise", element={"id": contact["id"], segments: ["Ambassadors", "Renewal 2027"]}
    )
    assert answer["success"] is True
    assert vt_client.get("retrieve", id=contact["id"])[segments] == "Ambassadors"
    vt_client.post("revise", element={"id": contact["id"], segments: ""})
    assert vt_client.get("retrieve", id=contact["id"])[segments] == ""


def test_custom_fields_are_found_by_label(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    def by_label(module: str) -> dict[str, dict]:
        return {f["label"]: f for f in vt_client.get("describe", elementType=module)["fields"]}

    leads, contacts = by_label("Leads"), by_label("Contacts")
    for label in ("Funnel stage", "Segments", "Sync Key", "Contract end"):
        assert leads[label]["name"].startswith("cf_") and contacts[label]["name"].startswith("cf_")
        assert leads[label]["name"] != contacts[label]["name"]
        assert vt_sandbox.store.field_by_label("Leads", label) == leads[label]["name"]
    assert "cf_853" not in {f["name"] for f in leads.values()}  # the recording's numbers are not reused
    assert leads["Segments"]["type"]["name"] == "multipicklist"
    assert contacts["Contract end"]["type"] == {"format": "yyyy-mm-dd", "name": "date"}
    assert leads["Lead Status"]["type"]["defaultValue"] == "Attempted to Contact"
    with pytest.raises(KeyError):
        vt_sandbox.store.field_by_label("Leads", "No such label")


def test_without_custom_fields() -> None:
    with VtigerSandbox(custom_fields=False) as sandbox:
        assert not [f for f in sandbox.store.describe("Leads")["fields"] if f["name"].startswith("cf_")]
        name = sandbox.store.add_custom_field("Leads", "Funnel stage")
        assert sandbox.store.field_by_label("Leads", "Funnel stage") == name


def test_service_contract_computed_fields(vt_client: WsClient) -> None:
    contract = _create(
        vt_client,
        "ServiceContracts",
        subject="Gold",
        start_date="2026-01-01",
        due_date="2026-12-31",
        end_date="2030-01-01",
        total_units="365",
        assigned_user_id="19x1",
    )["result"]
    assert (contract["planned_duration"], contract["end_date"], contract["total_units"]) == (
        "365",
        "",
        "365.00",
    )
    assert contract["contract_no"] == "SERCON1"
    revised = vt_client.post(
        "revise", element={"id": contract["id"], "due_date": "2027-06-30", "end_date": "2031-01-01"}
    )
    assert (revised["planned_duration"], revised["end_date"]) == ("546", "")
    describe = {f["name"]: f for f in vt_client.get("describe", elementType="ServiceContracts")["fields"]}
    assert describe["end_date"]["editable"] is False and describe["due_date"]["editable"] is True


def test_convertlead(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    lead = _create(
        vt_client, "Leads", firstname="Conv", lastname="Person", email="c@x.nl", assigned_user_id="19x1"
    )
    element = {
        "leadId": lead["result"]["id"],
        "assignedTo": "19x1",
        "entities": {
            "Accounts": {"create": True, "name": "Accounts", "accountname": "ConvCo"},
            "Contacts": {"create": True, "name": "Contacts", "lastname": "Conv"},
        },
    }
    result = vt_client.post("convertlead", element=element)
    assert set(result) == {"Accounts", "Contacts"}
    contact = vt_client.get("retrieve", id=result["Contacts"])
    assert contact["email"] == "c@x.nl" and contact["account_id"] == result["Accounts"]
    assert vt_client.query("select count(*) from Leads;") == [{"count": "0"}]
    vt_sandbox.faults.convertlead_broken = True
    response = vt_client.raw(
        "POST", {"operation": "convertlead", "sessionName": vt_client.session_name, "element": "{}"}
    )
    assert (response.status_code, response.content) == (500, b"")


def test_listtypes_and_describe_errors(vt_client: WsClient) -> None:
    assert vt_client.get("listtypes", fieldTypeList=["email"])["types"] == [
        "Vendors",
        "Leads",
        "Accounts",
        "Contacts",
    ]
    assert "ServiceContracts" in vt_client.get("listtypes")["types"]
    error = vt_client.call("GET", "describe", elementType="NoSuchModule")["error"]
    assert error["message"] == "Permission to perform the operation is denied for name : NoSuchModule"
    users = vt_client.get("describe", elementType="Users")
    assert users["idPrefix"] == "19"
