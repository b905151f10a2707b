"""The sandbox counts VTQL queries by the module in their FROM, so a read-only command's test can tell a
campaign lookup from a read of people."""

from __future__ import annotations

from connector_sandboxes.vtiger import VtigerSandbox

from .conftest import WsClient


def test_queries_are_counted_per_module(vt_client: WsClient, vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.reset_calls()
    vt_client.ok("GET", "query", query="select id from Leads;")
    vt_client.ok("GET", "query", query="select id, campaignname from Campaigns;")
    vt_client.ok("GET", "query", query="select count(*) from Leads;")
    vt_client.ok("GET", "listtypes")
    vt_client.ok("GET", "describe", elementType="Contacts")
    assert vt_sandbox.queried == {"Leads": 2, "Campaigns": 1}
    vt_sandbox.reset_calls()
    assert vt_sandbox.queried == {}
