"""Replay Salesforce's own documented request/response examples against the loopback sandbox.

The vtiger sandbox is held to a recording of a real vtiger; no real org is at hand for Salesforce, so the
sandbox is held to the examples in Salesforce's documentation instead (REST query and queryMore, sObject
Collections with partial errors, Bulk API 2.0 job states and results, Sforce-Limit-Info, INVALID_SESSION_ID,
DUPLICATE_VALUE, the OAuth token and SOAP login responses). Each pair is one JSON file under
fixtures/replay/ that names the page and section it comes from, what the sandbox must hold first (`setup`),
the pairs that must run before it (`needs`: a queryMore needs its first page), the request, and the
documented response. Where the request had to be adapted to this org's objects, `adapted` says how and why.

Answers are compared by shape (doc_shapes.py): status, keys and value types at every level, error and state
codes by value, ids, datetimes, URLs and counts by form.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from doc_shapes import csv_mismatches, header_mismatches, json_mismatches, xml_mismatches

from connector_sandboxes.salesforce import SalesforceSandbox

FIXTURES = Path(__file__).parent / "fixtures" / "replay"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
_PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.\d+)?)\}")


@pytest.fixture
def org() -> Iterator[SalesforceSandbox]:
    """The one place this module builds the sandbox (its import path is due to move)."""
    with SalesforceSandbox(api_version="59.0") as sandbox:
        yield sandbox


def load(name: str) -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return fixture


class DocReplayer:
    """Runs fixtures (and the fixtures they need) against one sandbox, collecting every mismatch."""

    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.sb = sandbox
        self.http = sandbox.http_session()
        self.values: dict[str, str] = {
            "version": sandbox.api_version,
            "username": sandbox.username,
            "password": sandbox.password + sandbox.security_token,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        }
        self.token = sandbox.login()
        self.done: set[str] = set()
        self.last: dict[str, requests.Response] = {}

    # ---- placeholders -------------------------------------------------------------------------------------
    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return _PLACEHOLDER.sub(lambda m: self.values[m.group(1)], value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    # ---- running ------------------------------------------------------------------------------------------
    def run(self, name: str) -> list[str]:
        fixture = load(name)
        problems: list[str] = []
        for needed in fixture.get("needs", []):
            if needed not in self.done:
                problems += self.run(needed)
        self.prepare(fixture.get("setup", {}))
        response = self.send(fixture["request"])
        self.last[name] = response
        problems += [f"{name}: {p}" for p in compare(fixture, response)]
        if response.headers.get("Content-Type", "").startswith("application/json") and response.content:
            body = response.json()
            for key, field in fixture.get("capture", {}).items():
                self.values[key] = str(body[field])
        self.done.add(name)
        return problems

    def prepare(self, setup: dict[str, Any]) -> None:
        for batch in setup.get("insert", []):
            for n in range(batch["count"]):
                record_id = self.sb.store.insert(batch["sobject"], self.fill(batch["fields"]))
                self.values[f"{batch['as']}.{n}"] = record_id
        if "bulk_polls_in_progress" in setup:
            self.sb.bulk_polls_in_progress = setup["bulk_polls_in_progress"]

    def send(self, request: dict[str, Any]) -> requests.Response:
        headers = dict(self.fill(request.get("headers", {})))
        auth = request.get("auth", "bearer")
        if auth == "bearer":
            headers["Authorization"] = f"Bearer {self.token}"
        elif auth == "invalid":
            headers["Authorization"] = "Bearer 00D5g000004SbxA!expired.or.never.issued"
        kwargs: dict[str, Any] = {"headers": headers, "timeout": 30}
        if "params" in request:
            kwargs["params"] = self.fill(request["params"])
        if "json" in request:
            kwargs["json"] = self.fill(request["json"])
        if "form" in request:
            kwargs["data"] = self.fill(request["form"])
        if "raw" in request:
            kwargs["data"] = self.fill(request["raw"]).encode()
        path = self.fill(request["path"])
        return self.http.request(request["method"], f"{self.sb.instance_url}{path}", **kwargs)


def compare(fixture: dict[str, Any], response: requests.Response) -> list[str]:
    """The mismatches between the sandbox's answer and the documented one (empty: same shape)."""
    documented = fixture["response"]
    if response.status_code != documented["status"]:
        return [f"HTTP {response.status_code}, documented {documented['status']}: {response.text[:200]}"]
    problems = header_mismatches(documented.get("headers", {}), dict(response.headers))
    if "body" in documented:
        try:
            actual = response.json()
        except ValueError:
            return [*problems, f"body is not JSON: {response.text[:120]!r}"]
        body = documented["body"]
        if documented.get("compare") == "documented-keys" and isinstance(actual, dict):
            actual = {k: v for k, v in actual.items() if k in body}
        problems += json_mismatches(body, actual, free=frozenset(fixture.get("free", [])))
    if "csv" in documented:
        problems += csv_mismatches(documented["csv"], response.text)
    if "xml" in documented:
        problems += xml_mismatches(documented["xml"], response.text)
    if documented.get("empty") and response.content:
        problems.append(f"body {response.content[:80]!r}, documented none")
    return problems


# ----- the replay ---------------------------------------------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.parametrize("name", NAMES)
def test_sandbox_answers_like_the_documentation(org: SalesforceSandbox, name: str) -> None:
    problems = DocReplayer(org).run(name)
    assert not problems, "\n".join(problems)


def test_every_fixture_cites_its_documentation() -> None:
    assert len(NAMES) >= 15
    for name in NAMES:
        fixture = load(name)
        source = fixture["source"]
        assert source["url"].startswith(("https://developer.salesforce.com/", "https://help.salesforce.com/"))
        assert source["section"], name
        for needed in fixture.get("needs", []):
            assert needed in NAMES, f"{name} needs unknown fixture {needed}"


# ----- the comparison can fail --------------------------------------------------------------------------------
def _broken_variants(body: Any) -> Iterator[tuple[str, Any]]:
    """Deliberately wrong answers derived from a right one: each must be caught by the comparison."""
    first = body[0] if isinstance(body, list) else body
    if isinstance(first, dict) and first:
        dropped = copy.deepcopy(body)
        target = dropped[0] if isinstance(dropped, list) else dropped
        target.pop(next(iter(target)))
        yield "a key left out", dropped
        added = copy.deepcopy(body)
        target = added[0] if isinstance(added, list) else added
        target["unexpectedKey"] = 1
        yield "an undocumented key", added
    yield "a different type", {"unexpected": "shape"} if isinstance(body, list) else [body]


@pytest.mark.e2e
@pytest.mark.parametrize(
    "name", [n for n in NAMES if "body" in load(n)["response"] or "xml" in load(n)["response"]]
)
def test_the_comparison_catches_broken_answers(org: SalesforceSandbox, name: str) -> None:
    replayer = DocReplayer(org)
    assert replayer.run(name) == []
    fixture = load(name)
    documented = fixture["response"]
    real = replayer.last[name]
    if "xml" in documented:
        broken_xml = real.text.replace("<sessionId>", "<sessionID>").replace("</sessionId>", "</sessionID>")
        assert xml_mismatches(documented["xml"], broken_xml)
        return
    free = frozenset(fixture.get("free", []))
    for what, broken in _broken_variants(real.json()):
        assert json_mismatches(documented["body"], broken, free=free), f"{name}: {what} went unnoticed"


def test_the_comparison_checks_codes_and_forms() -> None:
    documented = load("collections-update-partial")["response"]["body"]
    right = [
        {"id": "0015g0000AbCdEfAAA", "success": True, "errors": []},
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "MALFORMED_ID",
                    "message": documented[1]["errors"][0]["message"],
                    "fields": ["Id"],
                }
            ],
        },
    ]
    assert json_mismatches(documented, right) == []
    wrong_code = copy.deepcopy(right)
    wrong_code[1]["errors"][0]["statusCode"] = "INVALID_CROSS_REFERENCE_KEY"
    wrong_id = copy.deepcopy(right)
    wrong_id[0]["id"] = "0015g0000AbCdEf"  # a 15-character id where the documentation answers 18
    failed_with_id = copy.deepcopy(right)
    failed_with_id[1]["id"] = "001xx000003DGb2999"
    for broken in (wrong_code, wrong_id, failed_with_id):
        assert json_mismatches(documented, broken), broken
    job = load("bulk-query-job")["response"]["body"]
    assert json_mismatches(job, {**job, "createdDate": "2018-12-10T17:50:19Z"})
    assert json_mismatches(job, {**job, "state": "InProgress"})
    assert header_mismatches({"Sforce-Limit-Info": "api-usage=18/5000"}, {"Sforce-Limit-Info": "18 of 5000"})
    assert header_mismatches({"Sforce-Limit-Info": "api-usage=18/5000"}, {})
