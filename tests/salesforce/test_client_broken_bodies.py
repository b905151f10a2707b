"""Salesforce treats a broken 2xx like vtiger does: a body cut short or a page instead of JSON is an outage
retried by the shared policy, never a config error and never a crash (issue 7, item 2)."""

from __future__ import annotations

import pytest
import responses
from sf_fakes import BASE, INSTANCE, PASSWORD_ENV, SOAP, TOKEN, client, soap_ok, source_config

from connector.errors import ConfigError, UnreachableError

pytestmark = pytest.mark.reliability("Outages and broken answers")

CUT_SHORT_PAGE = '{"totalSize": 2, "done": true, "records": [{"attributes": {"type": "Lead"}, "Id": "00Q'
PROXY_PAGE = "<!DOCTYPE html><html><body>Bad gateway</body></html>"


@pytest.mark.parametrize(
    ("flow", "answer"),
    [
        ("soap", {"body": soap_ok("00Dcut!x")[:120], "content_type": "text/xml"}),
        ("token", {"body": '{"access_token": "00Dcut!x", "instance_u', "content_type": "application/json"}),
    ],
    ids=["soap-cut-short", "token-cut-short"],
)
def test_a_login_answer_cut_short_is_retried(flow: str, answer: dict[str, str]) -> None:
    environ = dict(PASSWORD_ENV)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        if flow == "soap":
            rsps.post(SOAP, status=200, **answer)
            rsps.post(SOAP, body=soap_ok("00Dnew!x"), content_type="text/xml")
        else:
            environ.update(SF_CLIENT_ID="cid", SF_CLIENT_SECRET="csecret")
            rsps.post(TOKEN, status=200, **answer)
            rsps.post(TOKEN, json={"access_token": "00Dnew!x", "instance_url": INSTANCE})
        c = client(source_config(auth="password"), environ)
        c.login()
    assert c.logins == 1


def test_a_write_answer_cut_short_is_retried_then_used() -> None:
    records = [{"attributes": {"type": "Lead"}, "id": "00Q1", "Funnel_Stage__c": "lead"}]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.patch(f"{BASE}composite/sobjects", body='[{"id": "00Q1", "succ', status=200)
        rsps.patch(f"{BASE}composite/sobjects", json=[{"id": "00Q1", "success": True, "errors": []}])
        assert client().composite("PATCH", records) == [{"id": "00Q1", "success": True, "errors": []}]


@pytest.mark.parametrize("body", [CUT_SHORT_PAGE, PROXY_PAGE], ids=["cut-short", "html"])
def test_broken_answers_that_persist_end_as_unreachable_not_config(body: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsp = rsps.get(f"{BASE}query/", body=body, status=200)
        with pytest.raises(UnreachableError) as down:
            client(attempts=3).query_all("SELECT Id FROM Lead")
    assert not isinstance(down.value, ConfigError)
    assert rsp.call_count == 3
