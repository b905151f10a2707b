"""The sandbox org keeps datetimes to the second, as Salesforce does: many writes share one SystemModstamp.

Real Salesforce renders its stamps as `2026-11-23T10:00:00.000+0000` (the milliseconds are always 000) and
compares datetimes in SOQL at that precision, ignoring a literal's fraction of a second. A sandbox that stamped
writes a millisecond apart hid every cursor bug that needs two records (or two versions of one record) to share
a stamp.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connector_sandboxes.salesforce import SalesforceSandbox

API = "59.0"

SECOND = dt.datetime(2026, 11, 23, 10, 0, 0, tzinfo=dt.UTC)


class OrgClock:
    """The org's clock, set by the test."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


@pytest.fixture
def clock() -> OrgClock:
    return OrgClock(SECOND + dt.timedelta(milliseconds=250))


@pytest.fixture
def sf_sandbox(clock: OrgClock) -> Iterator[SalesforceSandbox]:
    """The package's sandbox fixture, on the test's clock (`sf_client` and `sf_http` log in to this one)."""
    with SalesforceSandbox(api_version=API, clock=clock) as sandbox:
        yield sandbox


def test_many_writes_in_one_second_share_one_stamp_rendered_with_000(
    sf_sandbox: SalesforceSandbox, clock: OrgClock, sf_client: Salesforce
) -> None:
    ids = []
    for n in range(300):
        clock.at = SECOND + dt.timedelta(microseconds=n * 3000)  # 0 .. 897 ms into the second
        ids.append(sf_sandbox.store.insert("Lead", {"LastName": f"L{n}", "Company": "Acme"}))
    clock.at = SECOND + dt.timedelta(milliseconds=999)
    sf_sandbox.store.update("Lead", ids[0], {"Company": "Changed"})
    stored = sf_sandbox.store.all("Lead")
    assert {(r["CreatedDate"], r["LastModifiedDate"], r["SystemModstamp"]) for r in stored} == {
        (SECOND, SECOND, SECOND)
    }
    rows = sf_client.query_all("SELECT Id, CreatedDate, LastModifiedDate, SystemModstamp FROM Lead")[
        "records"
    ]
    assert len(rows) == 300
    rendered = {(r["CreatedDate"], r["LastModifiedDate"], r["SystemModstamp"]) for r in rows}
    assert rendered == {("2026-11-23T10:00:00.000+0000",) * 3}


def test_a_record_changed_twice_within_a_second_keeps_its_stamp(
    sf_sandbox: SalesforceSandbox, clock: OrgClock
) -> None:
    lead = sf_sandbox.store.insert("Lead", {"LastName": "Doe", "Company": "Acme"})
    clock.at = SECOND + dt.timedelta(milliseconds=400)
    sf_sandbox.store.update("Lead", lead, {"Company": "One"})
    clock.at = SECOND + dt.timedelta(milliseconds=800)
    sf_sandbox.store.update("Lead", lead, {"Company": "Two"})
    assert sf_sandbox.store.get("Lead", lead)["SystemModstamp"] == SECOND
    clock.at = SECOND + dt.timedelta(seconds=1, milliseconds=1)
    sf_sandbox.store.update("Lead", lead, {"Company": "Three"})
    assert sf_sandbox.store.get("Lead", lead)["SystemModstamp"] == SECOND + dt.timedelta(seconds=1)
    clock.at = SECOND  # a clock set back never moves a stamp backwards
    sf_sandbox.store.update("Lead", lead, {"Company": "Four"})
    assert sf_sandbox.store.get("Lead", lead)["SystemModstamp"] == SECOND + dt.timedelta(seconds=1)


def test_stamps_set_by_the_test_or_the_seeder_are_kept_to_the_second(sf_sandbox: SalesforceSandbox) -> None:
    lead = sf_sandbox.store.insert(
        "Lead", {"LastName": "Doe", "Company": "Acme", "SystemModstamp": "2026-01-31T10:00:00.789Z"}
    )
    assert sf_sandbox.store.get("Lead", lead)["SystemModstamp"] == dt.datetime(2026, 1, 31, 10, tzinfo=dt.UTC)
    stamp = sf_sandbox.store.touch("Lead", lead, dt.datetime(2026, 2, 1, 9, 30, 15, 999999, tzinfo=dt.UTC))
    assert stamp == dt.datetime(2026, 2, 1, 9, 30, 15, tzinfo=dt.UTC)
    assert sf_sandbox.store.get("Lead", lead)["LastModifiedDate"] == stamp


def test_bulk_results_and_job_dates_are_kept_to_the_second(
    sf_sandbox: SalesforceSandbox, clock: OrgClock, sf_http: requests.Session
) -> None:
    for n in range(5):
        clock.at = SECOND + dt.timedelta(milliseconds=100 * n + 7)
        sf_sandbox.store.insert("Lead", {"LastName": f"L{n}", "Company": "Acme"})
    api = f"{sf_sandbox.instance_url}/services/data/v{API}"
    job = sf_http.post(
        f"{api}/jobs/query",
        json={"operation": "queryAll", "query": "SELECT Id, CreatedDate, SystemModstamp FROM Lead"},
        timeout=10,
    ).json()
    assert job["createdDate"] == job["systemModstamp"] == "2026-11-23T10:00:00.000+0000"
    for _ in range(5):
        if sf_http.get(f"{api}/jobs/query/{job['id']}", timeout=10).json()["state"] == "JobComplete":
            break
    text = sf_http.get(f"{api}/jobs/query/{job['id']}/results", timeout=10).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 5
    assert {(r["CreatedDate"], r["SystemModstamp"]) for r in rows} == {("2026-11-23T10:00:00.000Z",) * 2}


@pytest.mark.parametrize(
    ("condition", "matches"),
    [
        # the literal's fraction is ignored: these compare with 10:00:00 exactly
        ("SystemModstamp = 2026-11-23T10:00:00.500Z", True),
        ("SystemModstamp >= 2026-11-23T10:00:00.900Z", True),
        ("SystemModstamp <= 2026-11-23T10:00:00.100Z", True),
        ("SystemModstamp > 2026-11-23T10:00:00.500Z", False),
        ("SystemModstamp < 2026-11-23T10:00:00.999Z", False),
        ("SystemModstamp != 2026-11-23T10:00:00.250Z", False),
        ("SystemModstamp > 2026-11-23T09:59:59.999Z", True),
        ("SystemModstamp < 2026-11-23T10:00:01Z", True),
        ("SystemModstamp >= 2026-11-23T10:00:01.000Z", False),
        ("SystemModstamp >= 2026-11-23T11:00:00.400+01:00", True),
    ],
)
def test_soql_compares_datetimes_at_the_second(
    sf_sandbox: SalesforceSandbox, sf_client: Salesforce, condition: str, matches: bool
) -> None:
    lead = sf_sandbox.store.insert(
        "Lead", {"LastName": "Doe", "Company": "Acme"}
    )  # stamped 10:00:00.250 -> 10:00:00
    rows = sf_client.query(f"SELECT Id FROM Lead WHERE {condition}")["records"]
    assert ([r["Id"] for r in rows] == [lead]) is matches


def test_soql_refuses_a_datetime_that_is_no_date(sf_client: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf_client.query("SELECT Id FROM Lead WHERE SystemModstamp > 2026-13-40T10:00:00Z")
    assert caught.value.content[0]["errorCode"] == "MALFORMED_QUERY"
