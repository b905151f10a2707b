"""Tasks in the vtiger sandbox: the webservice module `Calendar` (9x ids) over real HTTP. listtypes and
describe, create with its mandatory fields, references and (unchecked) picklists, retrieve, query, the
per-session lock and a create whose answer is cut off after the record was written."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from waiting import HANG_GUARD

from connector_sandboxes.vtiger import VtigerSandbox

from .conftest import WsClient

pytestmark = pytest.mark.e2e

TASK = {
    "subject": "Call Ann about her renewal",
    "assigned_user_id": "19x1",
    "date_start": "2027-03-01",
    "time_start": "09:00:00",
    "due_date": "2027-03-08",
    "taskstatus": "Not Started",
    "taskpriority": "Medium",
    "description": "connector:nurture:ann",
}


def _create(client: WsClient, **element: Any) -> dict[str, Any]:
    return client.call("POST", "create", elementType="Calendar", element=element)


def test_listtypes_and_describe_calendar(vt_client: WsClient) -> None:
    types = vt_client.get("listtypes")
    assert "Calendar" in types["types"] and "Events" in types["types"]
    assert types["information"]["Calendar"] == {"isEntity": True, "label": "Calendar", "singular": "Task"}
    described = vt_client.get("describe", elementType="Calendar")
    assert (described["name"], described["idPrefix"], described["labelFields"]) == (
        "Calendar",
        "9",
        "subject",
    )
    assert described["createable"] is True
    fields = {f["name"]: f for f in described["fields"]}
    assert [name for name, f in fields.items() if f["mandatory"]] == [
        "subject",
        "assigned_user_id",
        "date_start",
        "due_date",
        "taskstatus",
    ]
    assert [v["value"] for v in fields["taskstatus"]["type"]["picklistValues"]] == [
        "Not Started",
        "In Progress",
        "Completed",
        "Pending Input",
        "Deferred",
        "Planned",
    ]
    assert [v["value"] for v in fields["taskpriority"]["type"]["picklistValues"]] == ["High", "Medium", "Low"]
    assert fields["assigned_user_id"]["type"] == {"name": "owner"}
    assert fields["due_date"]["type"] == {"format": "yyyy-mm-dd", "name": "date"}
    assert fields["time_start"]["type"] == {"name": "time"}
    assert fields["sendnotification"]["type"] == {"name": "boolean"}
    assert fields["contact_id"]["type"] == {"refersTo": ["Contacts"], "name": "reference"}
    assert {"Leads", "Accounts", "Potentials"} <= set(fields["parent_id"]["type"]["refersTo"])
    assert fields["activitytype"]["editable"] is False
    assert {"visibility", "description", "createdtime", "modifiedtime", "id"} <= set(fields)


def test_create_task_enforces_mandatory_fields_in_field_order(vt_client: WsClient) -> None:
    for missing in ("subject", "assigned_user_id", "date_start", "due_date", "taskstatus"):
        element = {k: v for k, v in TASK.items() if k != missing}
        assert _create(vt_client, **element) == {
            "success": False,
            "error": {"message": f"{missing} does not have a value", "code": "MANDATORY_FIELDS_MISSING"},
        }
    assert _create(vt_client, **{**TASK, "subject": "  "})["error"]["code"] == "MANDATORY_FIELDS_MISSING"


def test_create_retrieve_and_query_tasks(vt_client: WsClient, vt_sandbox: VtigerSandbox) -> None:
    lead = vt_client.post(
        "create", elementType="Leads", element={"lastname": "Visser", "assigned_user_id": "19x1"}
    )
    contact = vt_client.post(
        "create", elementType="Contacts", element={"lastname": "Bos", "assigned_user_id": "19x1"}
    )
    task = vt_client.post(
        "create", elementType="Calendar", element={**TASK, "parent_id": lead["id"], "sendnotification": False}
    )
    # ids in the module's own prefix, from the crmid sequence all modules share
    assert task["id"] == f"9x{int(contact['id'].split('x')[1]) + 1}"
    assert task["label"] == TASK["subject"] and task["activitytype"] == "Task"
    assert (task["parent_id"], task["contact_id"], task["sendnotification"]) == (lead["id"], "", "0")
    assert (task["date_start"], task["time_start"], task["due_date"]) == (
        "2027-03-01",
        "09:00:00",
        "2027-03-08",
    )
    assert task["source"] == "WEBSERVICE" and all(isinstance(v, str) for v in task.values())

    retrieved = vt_client.get("retrieve", id=task["id"])
    assert retrieved == task  # with its label, as the recorded retrieve answers
    second = vt_client.post(
        "create",
        elementType="Calendar",
        element={**TASK, "contact_id": contact["id"], "description": "connector:nurture:bob"},
    )
    rows = vt_client.query(f"select * from Calendar where parent_id = '{lead['id']}';")
    assert [r["id"] for r in rows] == [task["id"]]
    keyed = vt_client.query(
        "select id, subject, contact_id from Calendar where description in "
        "('connector:nurture:bob', 'connector:nurture:none');"
    )
    assert keyed == [{"id": second["id"], "subject": TASK["subject"], "contact_id": contact["id"]}]
    assert vt_client.query("select count(*) from Calendar;") == [{"count": "2"}]
    # what a test reads back, as for every other module
    assert [t["id"] for t in vt_sandbox.store.all("Calendar")] == [task["id"], second["id"]]

    revised = vt_client.post("revise", element={"id": task["id"], "taskstatus": "Completed"})
    assert revised["taskstatus"] == "Completed" and revised["activitytype"] == "Task"


def test_task_references_are_checked_by_module_and_picklists_are_not(vt_client: WsClient) -> None:
    # vtws_create refuses a reference into a module the field does not refer to ...
    for field, value in (("parent_id", "19x1"), ("contact_id", "10x999"), ("parent_id", "12x5")):
        assert _create(vt_client, **TASK, **{field: value}) == {
            "success": False,
            "error": {"message": f"Invalid reference specified for {field}", "code": "REFERENCE_INVALID"},
        }
    # ... but, as the recorded 8.2 instance showed for Leads and Potentials, stores any picklist value as given
    odd = vt_client.post(
        "create", elementType="Calendar", element={**TASK, "taskstatus": "Waiting", "taskpriority": "Urgent"}
    )
    assert (odd["taskstatus"], odd["taskpriority"]) == ("Waiting", "Urgent")
    fixed = vt_client.call("POST", "revise", element={"id": odd["id"], "contact_id": "11x1"})
    assert fixed["error"]["code"] == "REFERENCE_INVALID"


def test_task_creates_on_one_session_queue(vt_sandbox: VtigerSandbox) -> None:
    session = WsClient(vt_sandbox).login()
    vt_sandbox.reset_calls()
    vt_sandbox.faults.hold_ops = {"create"}
    errors: list[BaseException] = []

    def create() -> None:
        client = WsClient(vt_sandbox)
        client.session_name = session
        try:
            client.post("create", elementType="Calendar", element=TASK)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=create, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        reached = vt_sandbox.in_flight.wait_until(
            lambda f: f.now_arrived == 3 and f.now_served == 1, HANG_GUARD
        )
        assert reached, (vt_sandbox.in_flight.now_arrived, vt_sandbox.in_flight.now_served)
    finally:
        vt_sandbox.faults.hold_ops = set()
        vt_sandbox.faults.release.set()
    for t in threads:
        t.join(timeout=HANG_GUARD)
    assert errors == [] and vt_sandbox.in_flight.peak_per_session == 1
    assert vt_sandbox.calls["create"] == 3 and len(vt_sandbox.store.all("Calendar")) == 3


def test_a_cut_off_create_answer_leaves_the_task_written(
    vt_client: WsClient, vt_sandbox: VtigerSandbox
) -> None:
    vt_sandbox.faults.broken_body = "truncated"
    vt_sandbox.faults.broken_body_ops = {"create"}
    vt_sandbox.faults.broken_body_count = 1
    cut = vt_client.raw(
        "POST",
        {
            "operation": "create",
            "sessionName": vt_client.session_name,
            "elementType": "Calendar",
            "element": json.dumps(TASK),
        },
    )
    assert cut.status_code == 200
    with pytest.raises(ValueError):
        cut.json()
    # the task exists: a client that looks its key up before creating again finds it
    found = vt_client.query("select id from Calendar where description = 'connector:nurture:ann';")
    assert len(found) == 1 and vt_sandbox.faults.broken["create"] == 1
