from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
import responses
from responses import matchers
from sf_fakes import BASE, PASSWORD_ENV, SOAP, Sleeps, client, page, soap_ok, source_config

from connector.crm.salesforce import bulk, soql
from connector.crm.salesforce.budget import parse_limit_info
from connector.crm.salesforce.client import SalesforceClient, SalesforceRequestError
from connector.errors import BudgetExceededError, ConfigError, UnreachableError

LIMIT = {"Sforce-Limit-Info": "api-usage=10/1000"}


@responses.activate(assert_all_requests_are_fired=True)
def test_query_pages_stream_lazily_with_batch_size_header() -> None:
    first = responses.get(
        f"{BASE}query/",
        json=page([{"Id": "00Q1"}], "/services/data/v59.0/query/01gX-2000"),
        match=[matchers.header_matcher({"Sforce-Query-Options": "batchSize=500"})],
    )
    second = responses.get(f"{BASE}query/01gX-2000", json=page([{"Id": "00Q2"}]))
    pages = client().query_pages("SELECT Id FROM Lead", batch_size=500)
    assert next(pages) == [{"Id": "00Q1"}]  # attributes stripped
    assert first.call_count == 1 and second.call_count == 0  # the next page waits until asked for
    assert next(pages) == [{"Id": "00Q2"}]
    assert second.calls[0].request.headers["Sforce-Query-Options"] == "batchSize=500"
    assert list(pages) == []


@responses.activate(assert_all_requests_are_fired=True)
def test_query_all_endpoint_for_deleted_rows() -> None:
    responses.get(f"{BASE}queryAll/", json=page([{"Id": "00Q1", "IsDeleted": True}]))
    assert client().query_all("SELECT Id FROM Lead", include_deleted=True) == [
        {"Id": "00Q1", "IsDeleted": True}
    ]


@responses.activate(assert_all_requests_are_fired=True)
def test_retry_after_is_honoured_then_success() -> None:
    responses.get(
        f"{BASE}limits/", status=429, headers={"Retry-After": "7"}, json=[{"errorCode": "x", "message": "m"}]
    )
    responses.get(f"{BASE}limits/", status=503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "busy"}])
    responses.get(f"{BASE}limits/", json={"ok": True})
    sleeps = Sleeps()
    assert client(sleeps=sleeps).get_json("limits/") == {"ok": True}
    assert sleeps[0] == 7.0 and len(sleeps) == 2


@responses.activate(assert_all_requests_are_fired=True)
def test_plain_400_is_not_retried() -> None:
    rsp = responses.get(
        f"{BASE}query/", status=400, json=[{"errorCode": "MALFORMED_QUERY", "message": "bad"}]
    )
    with pytest.raises(SalesforceRequestError) as info:
        client().query_all("SELECT Nope FROM Lead")
    assert info.value.code == "MALFORMED_QUERY" and info.value.status == 400
    assert isinstance(info.value, ConfigError)
    assert rsp.call_count == 1


@responses.activate(assert_all_requests_are_fired=True)
def test_lock_at_request_level_is_retried_and_gives_up_as_unreachable() -> None:
    rsp = responses.patch(
        f"{BASE}sobjects/Lead/00Q1", status=400, json=[{"errorCode": "UNABLE_TO_LOCK_ROW", "message": "l"}]
    )
    with pytest.raises(UnreachableError):
        client(attempts=3).request("PATCH", "sobjects/Lead/00Q1", json_body={"X": 1})
    assert rsp.call_count == 3


@responses.activate(assert_all_requests_are_fired=True)
def test_connection_error_is_retried() -> None:
    responses.get(f"{BASE}limits/", body=requests.ConnectionError("reset"))
    responses.get(f"{BASE}limits/", json={})
    assert client().get_json("limits/") == {}


@responses.activate(assert_all_requests_are_fired=True)
def test_relogin_once_on_invalid_session_repeats_call_with_same_headers_and_body() -> None:
    responses.post(SOAP, body=soap_ok("00Dfirst!1"), content_type="text/xml")
    responses.post(SOAP, body=soap_ok("00Dsecond!2"), content_type="text/xml")
    expired = responses.post(
        f"{BASE}jobs/ingest",
        status=401,
        json=[{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}],
        match=[matchers.header_matcher({"Authorization": "Bearer 00Dfirst!1"})],
    )
    fresh = responses.post(
        f"{BASE}jobs/ingest",
        json={"id": "750X"},
        match=[matchers.header_matcher({"Authorization": "Bearer 00Dsecond!2"})],
    )
    c = client(source_config(auth="password"), PASSWORD_ENV)
    c.request("POST", "jobs/ingest", json_body={"object": "Lead"}, headers={"Sforce-Auto-Assign": "FALSE"})
    before, after = expired.calls[0].request, fresh.calls[0].request
    assert before.body == after.body == b'{"object": "Lead"}'
    for name in ("Sforce-Auto-Assign", "Content-Type", "Accept"):
        assert before.headers[name] == after.headers[name]
    assert c.logins == 2


@responses.activate(assert_all_requests_are_fired=True)
def test_second_401_after_relogin_is_config_error() -> None:
    responses.post(SOAP, body=soap_ok(), content_type="text/xml")
    responses.get(f"{BASE}limits/", status=401, json=[{"errorCode": "INVALID_SESSION_ID", "message": "no"}])
    c = client(source_config(auth="password"), PASSWORD_ENV)
    with pytest.raises(ConfigError):
        c.get_json("limits/")
    assert c.logins == 2  # the first login and exactly one re-login


@responses.activate(assert_all_requests_are_fired=True)
def test_budget_stops_before_crossing_share() -> None:
    responses.get(f"{BASE}limits/", json={}, headers={"Sforce-Limit-Info": "api-usage=79/100"})
    c = client(share=0.8)
    c.get_json("limits/")  # unknown usage before the first answer: allowed; now 79/100 known
    assert c.budget.used == 79 and c.budget.remaining() == 1
    c.get_json("limits/")  # 79 + 1 <= 80
    responses.replace(
        responses.GET, f"{BASE}limits/", json={}, headers={"Sforce-Limit-Info": "api-usage=80/100"}
    )
    c.get_json("limits/")
    with pytest.raises(BudgetExceededError):
        c.get_json("limits/")  # 80 + 1 > 80
    assert len(responses.calls) == 3


@responses.activate(assert_all_requests_are_fired=True)
def test_daily_limit_stops_without_retry_storm() -> None:
    rsp = responses.get(
        f"{BASE}limits/",
        status=403,
        json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
    )
    with pytest.raises(BudgetExceededError):
        client().get_json("limits/")
    assert rsp.call_count == 1


@responses.activate(assert_all_requests_are_fired=True)
def test_every_request_has_timeout_and_ca_bundle(tmp_path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    responses.get(f"{BASE}limits/", json={})
    client(source_config(ca_bundle=str(bundle), timeout_seconds=12)).get_json("limits/")
    sent = responses.calls[0].request.req_kwargs
    assert sent["timeout"] == 12 and sent["verify"] == str(bundle)


@responses.activate(assert_all_requests_are_fired=True)
def test_refuses_to_send_session_to_another_host() -> None:
    with pytest.raises(ConfigError):
        client().get_json("https://evil.example/steal")


def test_soql_escaping_and_identifiers() -> None:
    assert soql.literal("O'Brien\\x") == "'O\\'Brien\\\\x'"
    assert soql.in_list(["a'b", "c"]) == "('a\\'b','c')"
    assert soql.identifier("Account.Name") == "Account.Name"
    assert soql.identifier("Funnel_Stage__c") == "Funnel_Stage__c"
    for bad in ("Name; DROP", "Id FROM Lead--", "a b", "", "1abc"):
        with pytest.raises(ConfigError):
            soql.identifier(bad)


def test_limit_info_parsing() -> None:
    assert parse_limit_info("api-usage=25/5000; per-app-api-usage=17/250(appName=x)") == (25, 5000)
    assert parse_limit_info("per-app-api-usage=17/250(appName=x)") is None
    assert parse_limit_info(None) is None


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (429, "Too many requests, try again later."),  # no 'concurrent' in the text: still the passing kind
        (403, "ConcurrentPerOrgLongTxn Limit exceeded."),
    ],
)
@responses.activate(assert_all_requests_are_fired=True)
def test_concurrency_request_limit_is_retried(status: int, message: str) -> None:
    responses.get(
        f"{BASE}limits/",
        status=status,
        headers={"Retry-After": "3"},
        json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": message}],
    )
    responses.get(f"{BASE}limits/", json={"ok": True})
    sleeps = Sleeps()
    assert client(sleeps=sleeps).get_json("limits/") == {"ok": True}
    assert sleeps == [3.0]


@responses.activate(assert_all_requests_are_fired=True)
def test_daily_limit_is_a_budget_stop_even_when_sent_as_429() -> None:
    rsp = responses.get(
        f"{BASE}limits/",
        status=429,
        json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
    )
    with pytest.raises(BudgetExceededError):
        client().get_json("limits/")
    assert rsp.call_count == 1


@responses.activate(assert_all_requests_are_fired=True)
def test_body_cut_off_mid_transfer_is_retried() -> None:
    responses.get(f"{BASE}limits/", body=requests.exceptions.ChunkedEncodingError("connection broken"))
    responses.get(f"{BASE}limits/", body=requests.Timeout("read timed out"))
    responses.get(f"{BASE}limits/", json={"ok": 1})
    assert client().get_json("limits/") == {"ok": 1}


@responses.activate(assert_all_requests_are_fired=True)
def test_a_2xx_that_is_not_json_is_retried() -> None:
    responses.get(f"{BASE}query/", body="<html>upstream proxy hiccup</html>", content_type="text/html")
    responses.get(f"{BASE}query/", body='{"totalSize": 1, "done": true, "records": [{"Id": "00Q', status=200)
    responses.get(f"{BASE}query/", json=page([{"Id": "00Q1"}]))
    assert client().query_all("SELECT Id FROM Lead") == [{"Id": "00Q1"}]
    assert len(responses.calls) == 3


BROKEN_PAGES = [
    None,  # `null`
    [],
    {"totalSize": 1, "done": True},  # no records
    {"totalSize": 1, "done": True, "records": None},
    {"totalSize": 1, "done": True, "records": ["00Q1"]},
    {"totalSize": 1, "records": []},  # no done
    {"totalSize": 4001, "done": False, "records": []},  # not done, and no next page to go to
]


@pytest.mark.parametrize("broken", BROKEN_PAGES)
@responses.activate(assert_all_requests_are_fired=True)
def test_a_query_page_of_the_wrong_shape_is_retried(broken: object) -> None:
    responses.get(f"{BASE}query/", json=broken)
    responses.get(f"{BASE}query/", json=page([{"Id": "00Q1"}], "/services/data/v59.0/query/01gX-1"))
    responses.get(f"{BASE}query/01gX-1", json=broken)
    responses.get(f"{BASE}query/01gX-1", json=page([{"Id": "00Q2"}]))
    sleeps = Sleeps()
    assert client(sleeps=sleeps).query_all("SELECT Id FROM Lead") == [{"Id": "00Q1"}, {"Id": "00Q2"}]
    assert len(responses.calls) == 4 and len(sleeps) == 2  # each broken answer cost one retry, no crash


SHAPED_CALLS: dict[str, tuple[str, str, Callable[[SalesforceClient], object]]] = {
    "count": ("GET", "query/", lambda c: c.count("SELECT COUNT() FROM Lead")),
    "describe": ("GET", "sobjects/Lead/describe", lambda c: c.field_names("Lead")),
    "composite": (
        "PATCH",
        "composite/sobjects",
        lambda c: c.composite("PATCH", [{"attributes": {"type": "Lead"}, "id": "00Q1"}]),
    ),
    "bulk": (
        "POST",
        "jobs/query",
        lambda c: next(bulk.query_pages(c, "SELECT Id FROM Lead", include_deleted=False, page_size=200)),
    ),
}


@pytest.mark.parametrize(
    ("call", "broken"),
    [
        ("count", None),
        ("count", {"totalSize": "3", "done": True, "records": []}),
        ("describe", None),
        ("describe", {"name": "Lead", "fields": [None]}),
        ("composite", {"success": True}),
        ("composite", [{"success": False, "errors": "UNABLE_TO_LOCK_ROW"}]),
        ("bulk", {"state": "UploadComplete"}),  # a job without its id
    ],
)
@responses.activate(assert_all_requests_are_fired=True)
def test_other_answers_of_the_wrong_shape_end_as_unreachable_not_as_a_crash(
    call: str, broken: object
) -> None:
    method, path, run = SHAPED_CALLS[call]
    rsp = responses.add(method, f"{BASE}{path}", json=broken)
    with pytest.raises(UnreachableError, match="wrong shape"):
        run(client(attempts=3))
    assert rsp.call_count == 3  # retried inside the policy like a 5xx, then given up cleanly
