"""`sync`: patched paging by modifiedtime with whole boundary seconds, deletions, and the stock PHP 8 500s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connector_sandboxes.vtiger import VtigerSandbox

from .conftest import WsClient

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def _sync(client: WsClient, since: int, module: str = "Leads") -> dict:
    return client.get("sync", modifiedTime=str(since), elementType=module)


def test_sync_pages_keep_boundary_seconds_whole(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    clock = vt_sandbox.clock
    clock.set(T0)
    created: list[str] = []
    # 90 records in second +1, 30 in second +2 (the page boundary falls inside it), 50 in second +3
    for second, count in ((1, 90), (2, 30), (3, 50)):
        clock.set(T0 + timedelta(seconds=second))
        created += [
            vt_sandbox.store.create("Leads", {"lastname": f"S{second}-{n}"})["id"] for n in range(count)
        ]
    vt_sandbox.store.create("Contacts", {"lastname": "other module"})

    since = int(T0.timestamp())
    first = _sync(vt_client, since)
    assert len(first["updated"]) == 120  # the whole boundary second, not just 100
    assert first["more"] is True
    assert first["lastModifiedTime"] == since + 2
    assert "label" not in first["updated"][0]
    second = _sync(vt_client, first["lastModifiedTime"])
    assert len(second["updated"]) == 50 and second["more"] is False
    assert second["lastModifiedTime"] == since + 3
    assert [r["id"] for r in first["updated"] + second["updated"]] == created
    empty = _sync(vt_client, second["lastModifiedTime"])
    assert empty == {"updated": [], "deleted": [], "more": False, "lastModifiedTime": since + 3}


def test_sync_reports_deletions_and_updates_since(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    clock = vt_sandbox.clock
    clock.set(T0)
    keep = vt_sandbox.store.create("Leads", {"lastname": "Keep"})["id"]
    gone = vt_sandbox.store.create("Leads", {"lastname": "Gone"})["id"]
    untouched = vt_sandbox.store.create("Leads", {"lastname": "Untouched"})["id"]
    clock.advance(10)
    mark = clock.timestamp()
    clock.advance(5)
    vt_client.post("revise", element={"id": keep, "leadstatus": "Warm"})
    vt_client.post("delete", id=gone)
    result = _sync(vt_client, mark)
    assert [r["id"] for r in result["updated"]] == [keep]
    assert result["deleted"] == [gone]
    assert result["lastModifiedTime"] == mark + 5
    assert untouched not in [r["id"] for r in result["updated"]]


def test_sync_failures_are_empty_500s(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    session = vt_client.session_name

    def status(**params: str) -> tuple[int, bytes]:
        response = vt_client.raw("GET", {"operation": "sync", "sessionName": session, **params})
        return response.status_code, response.content

    # untyped sync and modifiedTime=0 fail even on the patched instance (recorded)
    assert status(modifiedTime="100") == (500, b"")
    assert status(modifiedTime="0", elementType="Leads") == (500, b"")
    assert status(modifiedTime="100", elementType="Leads")[0] == 200
    unknown = vt_client.call("GET", "sync", modifiedTime="100", elementType="Nope")
    assert unknown["error"]["code"] == "ACCESS_DENIED"

    vt_sandbox.faults.sync_broken = True  # stock 8.2.0 on PHP 8
    assert status(modifiedTime="100", elementType="Leads") == (500, b"")
    vt_sandbox.faults.sync_broken = False
    assert status(modifiedTime="100", elementType="Leads")[0] == 200


def test_every_write_moves_modifiedtime(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    clock = vt_sandbox.clock
    clock.set(T0)
    lead = vt_client.post(
        "create", elementType="Leads", element={"lastname": "M", "assigned_user_id": "19x1"}
    )
    assert lead["modifiedtime"] == "2026-11-23 12:00:00"
    clock.advance(61.7)
    revised = vt_client.post("revise", element={"id": lead["id"], "description": "same label again"})
    assert revised["modifiedtime"] == "2026-11-23 12:01:01"
    assert revised["createdtime"] == "2026-11-23 12:00:00"
