"""Request shapes of the vtiger client, answered with the recorded pairs of a real vtiger 8.2.0 (`responses`)."""

from __future__ import annotations

import hashlib
import json
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from connector.crm.vtiger import vtql
from connector.crm.vtiger.client import VtigerApiError, VtigerClient
from connector.errors import ConfigError, UnreachableError
from connector.retry import RetryPolicy

FIXTURES = Path(__file__).parent / "fixtures" / "recorded-webservice.jsonl"
URL = "http://crm.test"
ENDPOINT = URL + "/webservice.php"
ACCESS_KEY = "secretKey123"


def recorded(label: str, index: int = 0) -> dict[str, Any]:
    rows = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]
    matches = [r for r in rows if r["label"] == label]
    return matches[index]


def answer(label: str, index: int = 0) -> tuple[int, str]:
    row = recorded(label, index)
    raw = row["response"]
    body = raw.get("_raw", "") if isinstance(raw, dict) and "_raw" in raw else json.dumps(raw)
    return row["http"], body


class FakeVtiger:
    """Answers per operation from a queue of recorded answers (the last one repeats); records every request."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.answers: dict[str, deque[tuple[int, str]]] = {
            "getchallenge": deque([answer("getchallenge")]),
            "login": deque([answer("login")]),
        }
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.rsps = rsps
        rsps.add_callback(responses.GET, ENDPOINT, callback=self._serve)
        rsps.add_callback(responses.POST, ENDPOINT, callback=self._serve)

    def on(self, operation: str, *answers: tuple[int, str]) -> None:
        self.answers[operation] = deque(answers)

    def _serve(self, request: Any) -> tuple[int, dict[str, str], str]:
        if request.method == "GET":
            params = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
        else:
            assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
            params = dict(parse_qsl(request.body, keep_blank_values=True))
        self.requests.append((request.method, params))
        queue = self.answers[params["operation"]]
        status, body = queue.popleft() if len(queue) > 1 else queue[0]
        return status, {"Content-Type": "application/json"}, body

    def ops(self) -> list[tuple[str, str]]:
        return [(method, params["operation"]) for method, params in self.requests]


@pytest.fixture
def fake() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield FakeVtiger(rsps)


def client(attempts: int = 3) -> VtigerClient:
    return VtigerClient(URL, "admin", ACCESS_KEY, policy=RetryPolicy(attempts=attempts, sleep=lambda s: None))


def test_login_is_getchallenge_then_login_with_md5_of_token_and_key(fake: FakeVtiger) -> None:
    fake.on("listtypes", answer("listtypes"))
    vt = client()
    vt.call("listtypes")
    assert fake.ops() == [("GET", "getchallenge"), ("POST", "login"), ("GET", "listtypes")]
    token = recorded("getchallenge")["response"]["result"]["token"]
    assert fake.requests[0][1] == {"operation": "getchallenge", "username": "admin"}
    login = fake.requests[1][1]
    assert login["accessKey"] == hashlib.md5((token + ACCESS_KEY).encode()).hexdigest()
    assert login["username"] == "admin"
    session = recorded("login")["response"]["result"]["sessionName"]
    assert fake.requests[2][1]["sessionName"] == session
    assert vt.user_id == "19x1"


def test_one_login_serves_many_calls(fake: FakeVtiger) -> None:
    fake.on("listtypes", answer("listtypes"))
    vt = client()
    for _ in range(3):
        vt.call("listtypes")
    assert vt.logins == 1
    assert vt.calls["getchallenge"] == 1 and vt.calls["listtypes"] == 3


def test_get_and_post_per_operation_and_element_as_json_string(fake: FakeVtiger) -> None:
    fake.on("query", answer("query Leads where/order/limit"))
    fake.on("revise", answer("revise"))
    fake.on("add_related", answer("add_related Campaign<-Lead (label 'Leads')"))
    fake.on("describe", answer("describe"))
    vt = client()
    vt.query("select id from Leads;")
    vt.revise({"id": "10x32", "leadstatus": "Warm", "description": "revised"})
    vt.add_related("1x34", "10x32", "Leads")
    vt.describe("Leads")
    methods = {op: method for method, op in fake.ops()}
    assert methods == {
        "getchallenge": "GET",
        "login": "POST",
        "query": "GET",
        "revise": "POST",
        "add_related": "POST",
        "describe": "GET",
    }
    revise = next(p for _, p in fake.requests if p["operation"] == "revise")
    assert json.loads(revise["element"]) == {"id": "10x32", "leadstatus": "Warm", "description": "revised"}
    assert "element[id]" not in revise
    related = next(p for _, p in fake.requests if p["operation"] == "add_related")
    assert related["sourceRecordId"] == "1x34" and related["relatedRecordId"] == "10x32"
    assert related["relationIdLabel"] == "Leads"


def test_a_join_string_reaches_the_server_unchanged(fake: FakeVtiger) -> None:
    fake.on("revise", answer("more: revise multi-select joined by ' |##| '"))
    client().revise({"id": "10x728", "cf_855": "Nurture newsletter |##| Renewal 2027"})
    element = json.loads(fake.requests[-1][1]["element"])
    assert element["cf_855"] == "Nurture newsletter |##| Renewal 2027"


def test_query_ends_with_semicolon_and_query_related_does_not(fake: FakeVtiger) -> None:
    fake.on("query", answer("query Leads where/order/limit"))
    fake.on("query_related", answer("more: query_related paged with always-true WHERE"))
    vt = client()
    vt.query(vtql.select("Leads", ["id", "email"], where=[vtql.Cond("email", "=", "ann.smith@example.com")]))
    vt.query_related("1x727", "Leads", vtql.select_related("Leads", ["id", "email"], offset=100))
    query = next(p for _, p in fake.requests if p["operation"] == "query")["query"]
    related = next(p for _, p in fake.requests if p["operation"] == "query_related")
    assert query == "select id, email from Leads where email = 'ann.smith@example.com' limit 0, 100;"
    assert not related["query"].endswith(";")
    assert related["query"] == (
        "SELECT id, email FROM Leads WHERE createdtime > '1970-01-02 00:00:00' ORDER BY id LIMIT 100,100"
    )
    assert related["relatedLabel"] == "Leads" and related["id"] == "1x727"


def test_quoting_doubles_quote_and_backslash() -> None:
    assert vtql.quote("O'Neill") == "'O''Neill'"
    assert vtql.quote("a\\b") == "'a\\\\b'"
    hostile = "x' or lastname like '%"
    text = vtql.select("Leads", ["id"], where=[vtql.Cond("lastname", "=", hostile)])
    assert text == "select id from Leads where lastname = 'x'' or lastname like ''%' limit 0, 100;"
    assert vtql.quote("\\'") == "'\\\\'''"  # a backslash cannot escape the doubled quote
    with pytest.raises(vtql.VtqlError):
        vtql.quote("")


def test_a_like_pattern_escapes_backslash_percent_and_underscore_before_quoting() -> None:
    assert vtql.like_contains(r"Sales\EMEA 50%_x") == r"%Sales\\EMEA 50\%\_x%"
    text = vtql.select("Leads", ["id"], where=[vtql.Cond("cf_1", "like", vtql.like_contains("a\\b's"))])
    # MySQL reads the literal as `%a\\b's%`, and LIKE that as "a, backslash, b, quote, s" anywhere
    assert text == r"select id from Leads where cf_1 like '%a\\\\b''s%' limit 0, 100;"


def test_identifiers_are_checked() -> None:
    with pytest.raises(vtql.VtqlError):
        vtql.select("Leads", ["id; drop"])
    with pytest.raises(vtql.VtqlError):
        vtql.select("Leads", ["nosuchfield"], known={"email"})
    with pytest.raises(vtql.VtqlError):
        vtql.select("Leads;", ["id"])
    with pytest.raises(vtql.VtqlError):
        vtql.select("Leads", ["id"], where=[vtql.Cond("email", "; --", "x")])
    assert vtql.select("Leads", ["id"], limit=500).endswith("limit 0, 100;")


def test_empty_500_is_an_error_and_is_retried(fake: FakeVtiger) -> None:
    fake.on("sync", answer("sync Leads from 0"), answer("sync Leads since now-1h (after delete)"))
    result = client().sync("Leads", 1795434457)
    assert [op for _, op in fake.ops()].count("sync") == 2
    assert isinstance(result["updated"], list)


def test_empty_500_never_becomes_data_even_when_retries_run_out(fake: FakeVtiger) -> None:
    fake.on("sync", answer("sync Leads from 0"))
    with pytest.raises(UnreachableError):
        client(attempts=3).sync("Leads", 0)
    assert [op for _, op in fake.ops()].count("sync") == 3


def test_one_attempt_when_asked(fake: FakeVtiger) -> None:
    fake.on("sync", answer("sync all modules since now-1h"))
    from connector.errors import RetriableError

    with pytest.raises(RetriableError) as caught:
        client().sync("Leads", 1, retry=False)
    assert caught.value.code == "HTTP_500"
    assert [op for _, op in fake.ops()].count("sync") == 1


def test_invalid_session_logs_in_again_once_and_repeats(fake: FakeVtiger) -> None:
    fake.on("listtypes", answer("listtypes (invalid session)"), answer("listtypes"))
    fake.on("getchallenge", answer("getchallenge"), answer("getchallenge", 1))
    vt = client()
    result = vt.call("listtypes")
    assert "types" in result
    assert fake.ops() == [
        ("GET", "getchallenge"),
        ("POST", "login"),
        ("GET", "listtypes"),
        ("GET", "getchallenge"),
        ("POST", "login"),
        ("GET", "listtypes"),
    ]
    assert vt.logins == 2


def test_authentication_required_also_relogs_in(fake: FakeVtiger) -> None:
    missing = (
        200,
        json.dumps(
            {
                "success": False,
                "error": {"code": "AUTHENTICATION_REQUIRED", "message": "Authencation required"},
            }
        ),
    )
    fake.on("describe", missing, answer("describe"))
    assert client().describe("Leads")["name"] == "Leads"


def test_a_session_refused_right_after_login_is_a_config_error(fake: FakeVtiger) -> None:
    fake.on("listtypes", answer("listtypes (invalid session)"))
    with pytest.raises(ConfigError):
        client().call("listtypes")
    assert [op for _, op in fake.ops()].count("listtypes") == 2


def test_plain_errors_are_not_retried(fake: FakeVtiger) -> None:
    fake.on("retrieve", answer("retrieve (no such id)"))
    fake.on("query", answer("query (no semicolon)"))
    vt = client()
    with pytest.raises(VtigerApiError) as denied:
        vt.retrieve("10x999999")
    assert denied.value.code == "ACCESS_DENIED"
    with pytest.raises(VtigerApiError) as syntax:
        vt.query("select * from Leads")
    assert syntax.value.code == "QUERY_SYNTAX_ERROR"
    assert [op for _, op in fake.ops()].count("retrieve") == 1
    assert [op for _, op in fake.ops()].count("query") == 1


def test_integer_error_code_is_kept(fake: FakeVtiger) -> None:
    fake.on("create", answer("create Accounts (duplicate accountname)"))
    with pytest.raises(VtigerApiError) as dup:
        client().create("Accounts", {"accountname": "Acme", "assigned_user_id": "19x1"})
    assert dup.value.code == "0"


def test_bad_credentials_are_a_config_error_without_the_key(fake: FakeVtiger) -> None:
    fake.on("login", answer("login (bad key)"))
    with pytest.raises(ConfigError) as bad:
        client().call("listtypes")
    assert ACCESS_KEY not in str(bad.value)
    # one fresh challenge in case another login replaced our token, then give up
    assert [op for _, op in fake.ops()] == ["getchallenge", "login", "getchallenge", "login"]


def test_php_notices_before_the_envelope_are_tolerated(fake: FakeVtiger) -> None:
    status, body = answer("listtypes")
    fake.on("listtypes", (status, "<br />\n<b>Deprecated</b>: something in x.php<br />\n" + body))
    assert "types" in client().call("listtypes")


def test_html_instead_of_an_envelope_from_first_contact_on_is_a_config_error(fake: FakeVtiger) -> None:
    # once the url has answered like vtiger, a page instead of an envelope is an outage instead
    # (test_client_broken_bodies.py)
    fake.on("getchallenge", (200, "<html>login page</html>"))
    # no login may follow (nor may the POST stub stay unfired): a POST now finds no stub and fails the test
    fake.rsps.remove(responses.POST, ENDPOINT)
    with pytest.raises(ConfigError):
        client().call("listtypes")


def test_a_malformed_result_is_retried_inside_the_policy(fake: FakeVtiger) -> None:
    status, good = answer("query Leads where/order/limit")
    fake.on("query", (200, json.dumps({"success": True, "result": {"not": "rows"}})), (status, good))
    rows = client().query("select id from Leads;")
    assert rows and rows[0]["id"] == "10x4"
    assert [op for _, op in fake.ops()].count("query") == 2


def test_a_malformed_result_that_persists_ends_as_unreachable(fake: FakeVtiger) -> None:
    fake.on("describe", (200, json.dumps({"success": True, "result": []})))
    with pytest.raises(UnreachableError):
        client(attempts=2).describe("Leads")


def test_an_empty_200_is_retried_never_data(fake: FakeVtiger) -> None:
    fake.on("query", (200, ""), answer("query Leads where/order/limit"))
    assert client().query("select id from Leads;")[0]["id"] == "10x4"


def test_a_body_cut_short_is_retried() -> None:
    import requests

    attempts = 0

    def serve(request: Any) -> tuple[int, dict[str, str], str]:
        nonlocal attempts
        operation = dict(parse_qsl(urlsplit(request.url).query) or parse_qsl(request.body or ""))["operation"]
        if operation == "listtypes":
            attempts += 1
            if attempts == 1:
                raise requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")
        status, body = answer(operation)
        return status, {"Content-Type": "application/json"}, body

    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.add_callback(responses.GET, ENDPOINT, callback=serve)
        rsps.add_callback(responses.POST, ENDPOINT, callback=serve)
        assert "types" in client().call("listtypes")
    assert attempts == 2
