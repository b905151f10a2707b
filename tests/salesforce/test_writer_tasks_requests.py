"""Request and response shapes of Salesforce follow-up tasks (Task via sObject Collections; lookups by the
External ID key with queryAll; owners from the WhoId records). End-to-end behaviour is in test_tasks_e2e.py."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from typing import Any

import responses
from sf_fakes import BASE, ctx, env, page, source_config

from connector.schema import RecordRef
from connector.tasks.model import NewTask
from connector.writers.salesforce.config import SalesforceWriterConfig
from connector.writers.salesforce.writer import SalesforceWriter

COMPOSITE = f"{BASE}composite/sobjects"


def writer(**overrides: Any) -> SalesforceWriter:
    data: dict[str, Any] = {"name": "sf_out", "type": "salesforce", "source": "sf_prod"}
    data.update(overrides)
    return SalesforceWriter.from_config(SalesforceWriterConfig.model_validate(data), env(source_config()))


def task(key: str, who: str, obj: str = "Lead", owner: str | None = None) -> NewTask:
    return NewTask(
        key=key,
        task="revisit",
        person_key="P1",
        occurrence="nurture_until=2026-11-01",
        who=RecordRef("sf_prod", obj, who),
        subject="Revisit Ann",
        description="parked until 2026-11-01",
        due_date=dt.date(2026, 11, 4),
        priority=None,
        status=None,
        owner=owner,
    )


def soql_of(call: Any) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlparse(call.request.url).query)["q"][0]


def test_the_task_record_is_the_contact_before_the_lead_of_its_own_source() -> None:
    w = writer()
    refs = [
        RecordRef("sf_prod", "Lead", "00Q000000000000001"),
        RecordRef("vt_main", "Contacts", "12x5"),
        RecordRef("sf_prod", "Contact", "003000000000000009"),
    ]
    assert w.task_record(refs) == RecordRef("sf_prod", "Contact", "003000000000000009")
    assert w.task_record(refs[:1]) == refs[0]
    assert w.task_record(refs[1:2]) is None


@responses.activate(assert_all_requests_are_fired=True)
def test_find_tasks_asks_query_all_by_the_external_id_key() -> None:
    responses.get(
        f"{BASE}queryAll/",
        json=page([{"attributes": {"type": "Task"}, "Id": "00T000000000000001", "Connector_Key__c": "k1"}]),
    )
    found = writer().find_tasks(["k1", "k'2"], ctx())
    assert found == {"k1": "00T000000000000001"}
    assert soql_of(responses.calls[0]) == (
        "SELECT Id, Connector_Key__c FROM Task WHERE Connector_Key__c IN ('k1','k\\'2')"
    )


def test_without_a_key_field_nothing_is_looked_up() -> None:
    assert writer(task_key_field=None).find_tasks(["k1"], ctx()) == {}


@responses.activate(assert_all_requests_are_fired=True)
def test_create_tasks_sends_one_collection_with_owner_key_and_stock_defaults() -> None:
    # the record owners: a user for one Lead, a queue (00G) for the other
    responses.get(
        f"{BASE}query/",
        json=page(
            [
                {"Id": "00Q000000000000001", "OwnerId": "005000000000000AAA"},
                {"Id": "00Q000000000000002", "OwnerId": "00G000000000000QQQ"},
            ]
        ),
    )
    bodies: list[dict[str, Any]] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        bodies.append(body)
        results = [
            {"id": "00T000000000000001", "success": True, "errors": []},
            {
                "success": False,
                "errors": [
                    {"statusCode": "INVALID_CROSS_REFERENCE_KEY", "message": "invalid cross reference id"}
                ],
            },
            {
                "success": False,
                "errors": [{"statusCode": "DUPLICATE_VALUE", "message": "duplicate value found"}],
            },
            {"id": "00T000000000000004", "success": True, "errors": []},
        ]
        return 200, {}, json.dumps(results)

    responses.add_callback(responses.POST, COMPOSITE, callback=answer)
    tasks = [
        task("k1", "00Q000000000000001"),
        task("k2", "00Q000000000000002"),
        task("k3", "003000000000000003", obj="Contact", owner="005000000000000BBB"),
        task("k4", "003000000000000004", obj="Contact", owner="005000000000000BBB"),
    ]
    result = writer().create_tasks(tasks, ctx())
    assert "FROM Lead WHERE Id IN ('00Q000000000000001','00Q000000000000002')" in soql_of(responses.calls[0])
    assert bodies[0]["allOrNone"] is False
    first, second, third = bodies[0]["records"][:3]
    assert first == {
        "attributes": {"type": "Task"},
        "WhoId": "00Q000000000000001",
        "Subject": "Revisit Ann",
        "Description": "parked until 2026-11-01",
        "ActivityDate": "2026-11-04",
        "Status": "Not Started",
        "Priority": "Normal",
        "OwnerId": "005000000000000AAA",
        "Connector_Key__c": "k1",
    }
    assert "OwnerId" not in second  # a queue cannot own a task: Salesforce gives it to the API user
    assert third["OwnerId"] == "005000000000000BBB"
    assert result.created == {"k1": "00T000000000000001", "k3": "", "k4": "00T000000000000004"}
    assert result.failed["k2"].code == "INVALID_CROSS_REFERENCE_KEY"
    assert "00Q000000000000002" in str(result.failed["k2"])
