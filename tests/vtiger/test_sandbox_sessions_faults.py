"""Login flow, session errors and injected faults (empty 500s, expiring sessions, latency)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from unittest import mock

import pytest

from connector_sandboxes.vtiger import VtigerSandbox, serve

from .conftest import WsClient


def _key(token: str, access_key: str) -> str:
    return hashlib.md5((token + access_key).encode()).hexdigest()


def test_challenge_and_login_rules(vt_sandbox: VtigerSandbox) -> None:
    client = WsClient(vt_sandbox)
    assert client.call("GET", "getchallenge")["error"] == {
        "message": "No username given",
        "code": "ACCESS_DENIED",
    }
    assert (
        client.call("GET", "getchallenge", username="nobody")["error"]["message"]
        == "username does not exists"
    )
    first = client.get("getchallenge", username="admin")
    assert first["expireTime"] - first["serverTime"] == 300
    second = client.get("getchallenge", username="admin")
    # one token per user: the new challenge replaced the old one
    stale = client.call(
        "POST", "login", username="admin", accessKey=_key(first["token"], vt_sandbox.access_key)
    )
    assert stale["error"]["code"] == "INVALID_USER_CREDENTIALS"
    bad = client.call("POST", "login", username="admin", accessKey="0" * 32)
    assert bad["error"] == {"message": "Invalid username or password", "code": "INVALID_USER_CREDENTIALS"}
    as_get = client.call(
        "GET", "login", username="admin", accessKey=_key(second["token"], vt_sandbox.access_key)
    )
    assert as_get["error"]["code"] == "INVALID_AUTH_TOKEN"
    # the token can be reused until it expires
    good = _key(second["token"], vt_sandbox.access_key)
    assert client.post("login", username="admin", accessKey=good)["userId"] == "19x1"
    assert client.post("login", username="admin", accessKey=good)["version"] == "0.22"
    vt_sandbox.clock.advance(301)
    expired = client.call("POST", "login", username="admin", accessKey=good)
    assert expired["error"]["code"] == "INVALID_AUTH_TOKEN"


def test_session_errors_and_logout(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    missing = vt_client.raw("GET", {"operation": "listtypes"}).json()
    assert missing["error"] == {"message": "Authencation required", "code": "AUTHENTICATION_REQUIRED"}
    bogus = vt_client.call("GET", "listtypes", sessionName="bogus")
    assert bogus["error"] == {
        "message": "Session Identifier provided is Invalid",
        "code": "INVALID_SESSIONID",
    }
    assert vt_client.post("logout") == {"message": "successfull"}
    assert vt_client.call("GET", "listtypes")["error"]["code"] == "INVALID_SESSIONID"

    vt_client.login()
    vt_sandbox.faults.logout_broken = True  # stock 8.2.0 on PHP 8
    response = vt_client.raw("POST", {"operation": "logout", "sessionName": vt_client.session_name})
    assert (response.status_code, response.content) == (500, b"")


def test_wrong_method_and_unknown_operation(vt_client: WsClient) -> None:
    as_get = vt_client.call("GET", "create", elementType="Leads", element={"lastname": "x"})
    assert as_get["error"] == {
        "message": "Permission to perform the operation is denied",
        "code": "ACCESS_DENIED",
    }
    as_post = vt_client.call("POST", "query", query="select id from Leads;")
    assert as_post["error"]["message"] == "Permission to perform the operation is denied for query"
    for params in ({"operation": "nosuchop"}, {}):
        response = vt_client.raw("GET", {**params, "sessionName": vt_client.session_name})
        assert (response.status_code, response.content) == (500, b"")


def test_sessions_expire_after_n_calls(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    vt_sandbox.faults.expire_sessions_after = 3
    for _ in range(2):
        vt_client.get("listtypes")
    vt_client.get("describe", elementType="Leads")
    assert vt_client.call("GET", "listtypes")["error"]["code"] == "INVALID_SESSIONID"
    vt_client.login()  # a new login works
    assert vt_client.get("listtypes")["types"]


def test_session_lifetime_follows_the_clock(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    vt_sandbox.clock.advance(86400 + 1)
    assert vt_client.call("GET", "listtypes")["error"]["code"] == "INVALID_SESSIONID"


def test_fault_500s_have_an_empty_body(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    vt_sandbox.reset_calls()
    vt_sandbox.faults.seed = 11
    vt_sandbox.faults.error_500_rate = 0.5
    statuses = []
    for _ in range(40):
        response = vt_client.raw("GET", {"operation": "listtypes", "sessionName": vt_client.session_name})
        statuses.append(response.status_code)
        if response.status_code == 500:
            assert response.content == b""
    assert 5 < statuses.count(500) < 35
    assert vt_sandbox.faults.injected["listtypes"] == statuses.count(500)
    assert vt_sandbox.calls["listtypes"] == statuses.count(200)

    vt_sandbox.faults.error_500_rate = 0.0
    vt_sandbox.faults.error_500_ops = {"revise"}
    vt_sandbox.faults.fail_next = 2
    lead = vt_client.post(
        "create", elementType="Leads", element={"lastname": "F", "assigned_user_id": "19x1"}
    )
    codes = [
        vt_client.raw(
            "POST",
            {
                "operation": "revise",
                "sessionName": vt_client.session_name,
                "element": f'{{"id": "{lead["id"]}", "description": "x"}}',
            },
        ).status_code
        for _ in range(3)
    ]
    assert codes == [500, 500, 200]


def test_latency_is_applied(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    vt_sandbox.faults.latency = 0.05
    started = time.monotonic()
    vt_client.get("listtypes")
    assert time.monotonic() - started >= 0.05


@pytest.fixture
def no_wait() -> Iterator[None]:
    with mock.patch("connector_sandboxes.vtiger._wait_for_interrupt", side_effect=KeyboardInterrupt):
        yield


def test_serve_prints_url_and_env_lines(no_wait: None, capsys: pytest.CaptureFixture[str]) -> None:
    serve("127.0.0.1", 0, seed_people=6)
    out = capsys.readouterr().out
    assert "http://127.0.0.1:" in out and "/webservice.php" in out
    assert "VTIGER_USERNAME=admin" in out
    assert any(
        line.startswith("VTIGER_ACCESS_KEY=") and len(line) == len("VTIGER_ACCESS_KEY=") + 16
        for line in out.splitlines()
    )
