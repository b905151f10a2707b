"""Each injectable fault of the sandbox, seen from a client over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession
from waiting import HANG_GUARD

from connector_sandboxes.salesforce import SalesforceSandbox
from connector_sandboxes.salesforce.server import HttpsServer


def statuses(http: requests.Session, url: str, n: int) -> list[int]:
    return [http.get(url, timeout=10).status_code for _ in range(n)]


def test_rate_limit_every_nth_call_with_retry_after(
    sf_sandbox: SalesforceSandbox, sf_http: requests.Session, sf_api: str
) -> None:
    sf_sandbox.faults.rate_limit_every = 3
    sf_sandbox.faults.retry_after = 7
    sf_sandbox.reset_calls()
    responses = [sf_http.get(f"{sf_api}/limits", timeout=10) for _ in range(6)]
    assert [r.status_code for r in responses] == [200, 200, 429, 200, 200, 429]
    assert responses[2].headers["Retry-After"] == "7"
    assert responses[2].json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert sf_sandbox.api_usage == 4  # refused calls do not count against the daily limit
    assert len(sf_sandbox.calls) == 6  # but every attempt is in the call log


def test_503_rate_is_deterministic_for_a_seed(
    sf_sandbox: SalesforceSandbox, sf_http: requests.Session, sf_api: str
) -> None:
    sf_sandbox.faults.error_503_rate = 0.5
    sf_sandbox.faults.seed = 42
    first = statuses(sf_http, f"{sf_api}/limits", 20)
    sf_sandbox.faults.seed = 42
    again = statuses(sf_http, f"{sf_api}/limits", 20)
    assert first == again
    assert set(first) == {200, 503}
    failed = sf_http.get(f"{sf_api}/limits", timeout=10)
    while failed.status_code != 503:
        failed = sf_http.get(f"{sf_api}/limits", timeout=10)
    assert failed.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"


def test_latency_is_added_to_every_call(
    sf_sandbox: SalesforceSandbox, sf_http: requests.Session, sf_api: str
) -> None:
    sf_sandbox.faults.latency = 0.05
    started = time.perf_counter()
    sf_http.get(f"{sf_api}/limits", timeout=10)
    assert time.perf_counter() - started >= 0.05


def test_session_expires_after_n_calls_and_a_new_login_works(
    sf_sandbox: SalesforceSandbox, sf_client: Salesforce, sf_login: Callable[..., dict[str, str]]
) -> None:
    sf_sandbox.faults.expire_session_after = 2
    sf_client.query("SELECT Id FROM Lead")
    sf_client.query("SELECT Id FROM Lead")
    with pytest.raises(SalesforceExpiredSession):
        sf_client.query("SELECT Id FROM Lead")
    with pytest.raises(SalesforceExpiredSession):
        sf_client.query("SELECT Id FROM Lead")  # the expired session stays dead
    fresh = sf_login(sf_sandbox)["access_token"]
    http = sf_sandbox.http_session(fresh)
    resp = http.get(f"{sf_sandbox.instance_url}/services/data/v59.0/limits", timeout=10)
    assert resp.status_code == 200


def test_request_limit_exceeded_switch(
    sf_sandbox: SalesforceSandbox, sf_http: requests.Session, sf_api: str
) -> None:
    sf_sandbox.faults.request_limit_exceeded = True
    resp = sf_http.get(f"{sf_api}/limits", timeout=10)
    assert resp.status_code == 403
    assert resp.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    sf_sandbox.faults.reset()
    assert sf_http.get(f"{sf_api}/limits", timeout=10).status_code == 200


def test_lock_row_ids_fail_once_in_composite_updates(
    sf_sandbox: SalesforceSandbox, sf_http: requests.Session, sf_api: str
) -> None:
    lead = sf_sandbox.store.insert("Lead", {"LastName": "L", "Company": "C"})
    sf_sandbox.faults.lock_row_ids = {lead}
    body = {"records": [{"attributes": {"type": "Lead"}, "id": lead, "Funnel_Stage__c": "Lead"}]}
    first = sf_http.patch(f"{sf_api}/composite/sobjects", json=body, timeout=10).json()
    assert first[0]["success"] is False
    assert first[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    second = sf_http.patch(f"{sf_api}/composite/sobjects", json=body, timeout=10).json()
    assert second[0] == {"id": lead, "success": True, "errors": []}


def test_lock_row_rate_hits_some_records(
    sf_sandbox: SalesforceSandbox, sf_http: requests.Session, sf_api: str
) -> None:
    sf_sandbox.faults.lock_row_rate = 0.3
    records = [{"attributes": {"type": "Account"}, "Name": f"A{n}"} for n in range(100)]
    result = sf_http.post(f"{sf_api}/composite/sobjects", json={"records": records}, timeout=10).json()
    locked = [r for r in result if not r["success"]]
    assert 10 < len(locked) < 50
    assert {r["errors"][0]["statusCode"] for r in locked} == {"UNABLE_TO_LOCK_ROW"}
    assert len(sf_sandbox.store.all("Account")) == 100 - len(locked)


def test_faults_are_off_in_a_fresh_fixture(sf_sandbox: SalesforceSandbox) -> None:
    f = sf_sandbox.faults
    assert (f.latency, f.error_503_rate, f.rate_limit_every, f.lock_row_rate, f.expire_session_after) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert f.lock_row_ids == set() and f.request_limit_exceeded is False


def test_stopping_a_sandbox_is_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prompt by construction, not by a stopwatch (which a busy machine would fail): stop() wakes the server at
    # once instead of waiting out its poll interval. (Each sandbox mints its own key folder, removed by stop():
    # see test_sandbox_tls_files.py.)
    serve_forever = HttpsServer.serve_forever
    served = threading.Event()

    def serve_with_a_long_poll(self: HttpsServer, poll_interval: float) -> None:
        # a poll interval no test could wait out: the server is down only if stop() wakes it
        serve_forever(self, 3600)
        served.set()

    monkeypatch.setattr(HttpsServer, "serve_forever", serve_with_a_long_poll)
    sb = SalesforceSandbox().start()
    assert sb.instance_url.startswith("https://127.0.0.1:")
    stopper = threading.Thread(target=sb.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=HANG_GUARD)
    assert not stopper.is_alive(), "stop() hung"
    assert served.is_set(), "stop() returned with the server still waiting out its poll interval"


def test_a_held_kind_of_call_waits_until_released(
    sf_sandbox: SalesforceSandbox, sf_http: requests.Session, sf_api: str
) -> None:
    # Tests stop a run at a named point with this (and then signal it), instead of sleeping and hoping.
    sf_sandbox.faults.hold = {"composite/sobjects"}
    body = {"records": [{"attributes": {"type": "Account"}, "Name": "Held"}]}
    answers: list[requests.Response] = []
    writer = threading.Thread(
        target=lambda: answers.append(sf_http.post(f"{sf_api}/composite/sobjects", json=body, timeout=120))
    )
    writer.start()
    try:
        assert sf_sandbox.faults.held.wait(timeout=120), "the write never reached the sandbox"
        # other kinds go on meanwhile, and the held write has not been applied
        assert sf_sandbox.http_session(sf_sandbox.login()).get(f"{sf_api}/limits", timeout=120).ok
        assert answers == [] and sf_sandbox.store.all("Account") == []
    finally:
        sf_sandbox.faults.release()
        writer.join(timeout=120)
    assert not writer.is_alive()
    assert answers[0].json()[0]["success"] is True
    assert [a["Name"] for a in sf_sandbox.store.all("Account")] == ["Held"]
    # released for good: the next call of that kind is answered at once
    assert sf_http.post(f"{sf_api}/composite/sobjects", json=body, timeout=120).ok
