"""The sandbox's broken answers: HTTP 200 whose body is not a webservice envelope, as real installs give them
(PHP dying half way through printing the JSON, a proxy's or a maintenance page in front of vtiger)."""

from __future__ import annotations

import json

import pytest

from connector_sandboxes.vtiger import VtigerSandbox

from .conftest import WsClient

pytestmark = pytest.mark.reliability("Outages and broken answers")


def revise(client: WsClient, record_id: str, description: str) -> tuple[int, bytes, str]:
    response = client.raw(
        "POST",
        {
            "operation": "revise",
            "sessionName": client.session_name,
            "element": json.dumps({"id": record_id, "description": description}),
        },
    )
    return response.status_code, response.content, response.headers["Content-Type"]


def test_truncated_bodies_run_the_operation_and_cut_its_json_short(
    vt_sandbox: VtigerSandbox, vt_client: WsClient
) -> None:
    lead = vt_client.post(
        "create", elementType="Leads", element={"lastname": "T", "assigned_user_id": "19x1"}
    )
    vt_sandbox.faults.broken_body = "truncated"
    vt_sandbox.faults.broken_body_ops = {"revise"}
    vt_sandbox.faults.broken_body_after = 1  # the first revise is answered whole
    answers = [revise(vt_client, lead["id"], f"d{n}") for n in range(3)]

    assert json.loads(answers[0][1])["success"] is True
    for status, body, _ in answers[1:]:
        assert status == 200
        assert body.startswith(b'{"success":true')
        with pytest.raises(ValueError):
            json.loads(body)
    # PHP died after the work was done: the record changed although the answer is unreadable
    record = vt_sandbox.store.get(lead["id"])
    assert record is not None and record["description"] == "d2"
    assert vt_sandbox.faults.broken["revise"] == 2
    assert vt_client.get("listtypes")["types"]  # other operations are not affected


def test_html_pages_answer_instead_of_vtiger_and_nothing_runs(
    vt_sandbox: VtigerSandbox, vt_client: WsClient
) -> None:
    lead = vt_client.post(
        "create", elementType="Leads", element={"lastname": "H", "assigned_user_id": "19x1"}
    )
    vt_sandbox.faults.broken_body = "html"
    vt_sandbox.faults.broken_body_count = 2  # two broken answers, then vtiger again
    first, second, third = (revise(vt_client, lead["id"], f"h{n}") for n in range(3))

    for status, body, content_type in (first, second):
        assert status == 200 and content_type.startswith("text/html")
        assert body.lstrip().lower().startswith(b"<!doctype html")
    assert json.loads(third[1])["success"] is True
    record = vt_sandbox.store.get(lead["id"])
    assert record is not None and record["description"] == "h2"
    assert vt_sandbox.calls["revise"] == 1  # the page came from in front of vtiger: only the third ran
    assert vt_sandbox.faults.broken["revise"] == 2
