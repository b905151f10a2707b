"""Every Bulk API 2.0 call survives an expired session: one re-login, the same call again, headers and body intact."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from typing import Any

import responses
from sf_fakes import BASE, PASSWORD_ENV, SOAP, client, soap_ok, source_config

from connector.crm.salesforce import bulk

EXPIRED = '[{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]'


class ExpiresOncePerCall:
    """Answers each (method, path) with 401 the first time, then with `answers[(method, path)]`."""

    def __init__(self, answers: dict[tuple[str, str], tuple[int, dict[str, str], str]]) -> None:
        self.answers = answers
        self.seen: dict[tuple[str, str], list[Any]] = defaultdict(list)
        tokens = (f"00Dtoken!{n}" for n in itertools.count(1))
        responses.add_callback(
            responses.POST, SOAP, callback=lambda r: (200, {}, soap_ok(next(tokens))), content_type="text/xml"
        )
        for method in sorted({method for method, _ in answers}):  # only what the test expects: all are fired
            responses.add_callback(method, re.compile(rf"{re.escape(BASE)}jobs/.*"), callback=self._answer)

    def _answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        key = (request.method, request.path_url.split("?", 1)[0].removeprefix("/services/data/v59.0/"))
        self.seen[key].append(request)
        if len(self.seen[key]) == 1:
            return (401, {"Content-Type": "application/json"}, EXPIRED)
        return self.answers[key]

    def assert_repeated_intact(self) -> None:
        assert self.seen, "no bulk call was made"
        for key, (first, again) in self.seen.items():
            assert first.url == again.url, key
            assert first.body == again.body, key
            assert first.headers["Authorization"] != again.headers["Authorization"], key
            for name, value in first.headers.items():
                if name not in ("Authorization", "Content-Length"):
                    assert again.headers.get(name) == value, (key, name)


@responses.activate(assert_all_requests_are_fired=True)
def test_bulk_ingest_every_step_relogs_in_and_repeats_the_call_intact() -> None:
    job = '{"id": "750I", "state": "Open"}'
    fake = ExpiresOncePerCall(
        {
            ("POST", "jobs/ingest"): (200, {}, job),
            ("PUT", "jobs/ingest/750I/batches"): (201, {}, ""),
            ("PATCH", "jobs/ingest/750I"): (200, {}, '{"id": "750I", "state": "UploadComplete"}'),
            ("GET", "jobs/ingest/750I"): (200, {}, '{"id": "750I", "state": "JobComplete"}'),
            ("GET", "jobs/ingest/750I/failedResults/"): (
                200,
                {"Content-Type": "text/csv"},
                '"sf__Id","sf__Error",Id,Funnel_Stage__c\n"00Q2","FIELD_CUSTOM_VALIDATION_EXCEPTION:no:--",00Q2,X\n',
            ),
        }
    )
    c = client(source_config(auth="password"), PASSWORD_ENV)
    rows = [{"Id": "00Q1", "Funnel_Stage__c": "X"}, {"Id": "00Q2", "Funnel_Stage__c": "X"}]
    result = bulk.ingest_update(c, "Lead", rows, ["Id", "Funnel_Stage__c"], {"Sforce-Auto-Assign": "FALSE"})
    assert result.failed == {"00Q2": ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "no")}
    assert set(fake.seen) == {
        ("POST", "jobs/ingest"),
        ("PUT", "jobs/ingest/750I/batches"),
        ("PATCH", "jobs/ingest/750I"),
        ("GET", "jobs/ingest/750I"),
        ("GET", "jobs/ingest/750I/failedResults/"),
    }
    fake.assert_repeated_intact()
    upload = fake.seen[("PUT", "jobs/ingest/750I/batches")][1]
    assert upload.headers["Content-Type"] == "text/csv" and upload.headers["Sforce-Auto-Assign"] == "FALSE"
    assert c.logins == 1 + len(fake.seen)  # the first login, then one per expired call


@responses.activate(assert_all_requests_are_fired=True)
def test_bulk_query_every_step_relogs_in_and_repeats_the_call_intact() -> None:
    fake = ExpiresOncePerCall(
        {
            ("POST", "jobs/query"): (200, {}, '{"id": "750Q", "state": "UploadComplete"}'),
            ("GET", "jobs/query/750Q"): (200, {}, '{"id": "750Q", "state": "JobComplete"}'),
            ("GET", "jobs/query/750Q/results"): (
                200,
                {"Content-Type": "text/csv", "Sforce-Locator": "null"},
                "Id,Email\n00Q1,a@x.nl\n",
            ),
        }
    )
    c = client(source_config(auth="password"), PASSWORD_ENV)
    pages = list(bulk.query_pages(c, "SELECT Id, Email FROM Lead", include_deleted=True, page_size=500))
    assert pages == [[{"Id": "00Q1", "Email": "a@x.nl"}]]
    assert len(fake.seen) == 3
    fake.assert_repeated_intact()
    assert fake.seen[("GET", "jobs/query/750Q/results")][1].headers["Accept"] == "text/csv"
