from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
import responses
from sf_fakes import BASE, ctx, describe, env, page, source_config

from connector.errors import ConfigError
from connector.mappers.salesforce import parse_sf_datetime
from connector.sources.salesforce.cursor import Cursor, LowerBound
from connector.sources.salesforce.source import SalesforceSource

LEAD_FIELDS = [
    "Id",
    "SystemModstamp",
    "IsDeleted",
    "Status",
    "IsConverted",
    "ConvertedContactId",
    "Email",
    "LastName",
]
OPP_FIELDS = ["Id", "SystemModstamp", "IsDeleted", "StageName", "AccountId", "Amount"]
OCR_FIELDS = ["Id", "SystemModstamp", "IsDeleted", "OpportunityId", "ContactId"]


class FakeOrg:
    """Answers describe and (COUNT) queries from in-memory rows; records every SOQL text it saw."""

    def __init__(
        self, rows: dict[str, list[dict[str, Any]]], page_size: int = 2, queries: bool = True
    ) -> None:
        self.rows = rows
        self.page_size = page_size
        self.soql: list[str] = []
        self.describes = {
            "Lead": describe("Lead", LEAD_FIELDS),
            "LeadStatus": describe("LeadStatus", ["Id", "ApiName", "MasterLabel", "IsConverted"]),
            "Opportunity": describe("Opportunity", OPP_FIELDS),
            "OpportunityStage": describe(
                "OpportunityStage", ["Id", "ApiName", "MasterLabel", "IsClosed", "IsWon"]
            ),
            "OpportunityContactRole": describe("OpportunityContactRole", OCR_FIELDS),
        }
        self.filter: Callable[[str, dict[str, Any]], bool] = lambda q, r: True
        self.headers: dict[str, str] = {}  # e.g. the org clock's `Date`
        responses.add_callback(
            responses.GET, re.compile(rf"{re.escape(BASE)}sobjects/\w+/describe"), self._describe
        )
        if queries:  # off: the test expects no query at all (one would find no stub and fail)
            responses.add_callback(
                responses.GET, re.compile(rf"{re.escape(BASE)}query(All)?/.*"), self._query
            )

    def _describe(self, request):
        obj = request.path_url.split("/")[-2]
        if obj not in self.describes:
            return (404, {}, json.dumps([{"errorCode": "NOT_FOUND", "message": "no"}]))
        return (200, {}, json.dumps(self.describes[obj]))

    def _query(self, request):
        parsed = urllib.parse.urlparse(request.url)
        cursor = parsed.path.rsplit("/", 1)[-1]
        if cursor:  # nextRecordsUrl: .../query/<q>-<offset>
            key, offset = cursor.rsplit("-", 1)
            q = self.soql[int(key)]
            start = int(offset)
        else:
            q = urllib.parse.parse_qs(parsed.query)["q"][0]
            self.soql.append(q)
            start = 0
        obj = re.search(r"FROM (\w+)", q).group(1)
        rows = [r for r in self.rows.get(obj, []) if self.filter(q, r) and _in_window(q, r)]
        if q.startswith("SELECT COUNT()"):
            return (200, self.headers, json.dumps({"totalSize": len(rows), "done": True, "records": []}))
        chunk = rows[start : start + self.page_size]
        more = start + self.page_size < len(rows)
        nxt = f"/services/data/v59.0/query/{self.soql.index(q)}-{start + self.page_size}" if more else None
        # like the org, every page's `totalSize` is the rows of the whole query
        return (200, self.headers, json.dumps({**page(chunk, nxt), "totalSize": len(rows)}))


def _in_window(q: str, row: dict[str, Any]) -> bool:
    stamp = row.get("SystemModstamp")
    if stamp is None:
        return True
    when = parse_sf_datetime(stamp)
    low = re.search(r"SystemModstamp >= (\S+)", q)
    high = re.search(r"SystemModstamp <= (\S+)", q)
    if low and when < parse_sf_datetime(low.group(1)):
        return False
    return not (high and when > parse_sf_datetime(high.group(1)))


def lead(i: int, stamp: str, **kw: Any) -> dict[str, Any]:
    return {
        "Id": f"00Q{i:015d}",
        "SystemModstamp": stamp,
        "IsDeleted": False,
        "Status": "Open",
        "IsConverted": False,
        "ConvertedContactId": None,
        "Email": f"p{i}@x.nl",
        "LastName": f"P{i}",
        **kw,
    }


def make_source(**overrides: Any) -> SalesforceSource:
    cfg = source_config(**overrides)
    return SalesforceSource.from_config(cfg, env(cfg))


@responses.activate(assert_all_requests_are_fired=True)
def test_first_read_streams_pages_with_cursor_and_deletions() -> None:
    org = FakeOrg(
        {
            "Lead": [
                lead(1, "2026-10-01T08:00:00.000+0000"),
                lead(2, "2026-10-01T09:00:00.000+0000"),
                lead(3, "2026-10-01T10:00:00.000+0000", IsDeleted=True),
            ],
            "LeadStatus": [{"ApiName": "Open", "MasterLabel": "Open", "IsConverted": False}],
        }
    )
    src = make_source()
    run = ctx()
    batches = list(src.read({}, run))
    assert [len(b.records) for b in batches] == [2, 0]
    assert batches[1].deleted == ["00Q000000000000003"]
    data = [q for q in org.soql if q.startswith("SELECT Id") and "FROM Lead " in q]
    assert data == [
        "SELECT Id, SystemModstamp, IsDeleted, Status, IsConverted, ConvertedContactId, Email, LastName "
        "FROM Lead WHERE SystemModstamp <= 2026-11-01T12:00:00Z ORDER BY SystemModstamp, Id"
    ]
    assert json.loads(batches[0].cursor)["ts"] == "2026-10-01T09:00:00.000Z"
    assert json.loads(batches[1].cursor)["ts"] == "2026-10-01T10:00:00.000Z"
    assert run.api_calls["sf_prod"] == len(responses.calls)
    facts = [src.map("Lead", r) for r in batches[0].records]
    # "Open" is neither in a value map nor converted per the org: reported, never guessed
    assert all("lead_status" not in f.values for f in facts)
    assert src.unknown_values[("lead_status", "Open")] == 2


@responses.activate(assert_all_requests_are_fired=True)
def test_second_read_uses_overlap_and_skips_records_already_read() -> None:
    rows = [lead(1, "2026-10-01T08:00:00.000+0000"), lead(2, "2026-10-01T09:00:00.000+0000")]
    org = FakeOrg({"Lead": rows})
    # the org's clock 30 s after the newest stamp: its second is over, the overlap window is not
    org.headers = {"Date": "Thu, 01 Oct 2026 09:00:30 GMT"}
    src = make_source()
    first = list(src.read({}, ctx()))
    cursor = first[-1].cursor
    # one record changes after the first run; the window also returns the unchanged record 2
    rows[0]["SystemModstamp"] = "2026-10-02T08:00:00.000+0000"
    org.headers = {"Date": "Fri, 02 Oct 2026 08:00:30 GMT"}
    second = list(src.read({"Lead": cursor}, ctx()))
    assert any(
        "SystemModstamp > 2026-10-01T08:59:29Z AND SystemModstamp <= 2026-11-01T12:00:00Z" in q
        for q in org.soql
    )
    assert [r["Id"] for b in second for r in b.records] == ["00Q000000000000001"]
    assert json.loads(second[-1].cursor)["ts"] == "2026-10-02T08:00:00.000Z"
    # nothing changed: the third read yields nothing and keeps the cursor
    third = list(src.read({"Lead": second[-1].cursor}, ctx()))
    assert [r for b in third for r in b.records] == []


def test_cursor_never_passes_run_start_and_round_trips() -> None:
    started = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    cursor = Cursor()
    cursor.note("00Q1", started + dt.timedelta(seconds=5), started)  # a server that ignored the upper bound
    cursor.note("00Q2", started - dt.timedelta(seconds=30), started)
    cursor.note("00Q3", started - dt.timedelta(hours=2), started)
    text = cursor.dump(dt.timedelta(seconds=60))
    back = Cursor.parse(text)
    assert back.newest == started
    assert set(back.seen) == {"00Q1", "00Q2"}  # only the overlap window is remembered
    assert back.already_read("00Q2", started - dt.timedelta(seconds=30))
    assert not back.already_read("00Q2", started - dt.timedelta(seconds=10))  # changed since: read again
    assert Cursor.parse("2026-10-01T08:00:00Z").newest == dt.datetime(2026, 10, 1, 8, tzinfo=dt.UTC)
    # a run starting within a second: its read covers stamps up to that second, and so does its cursor
    within = Cursor()
    within.note("00Q1", started + dt.timedelta(seconds=5), started + dt.timedelta(milliseconds=700))
    assert within.newest == started


@responses.activate(assert_all_requests_are_fired=True)
def test_bulk_query_above_threshold_streams_by_locator() -> None:
    org = FakeOrg({"Lead": [lead(i, f"2026-10-01T0{i}:00:00.000+0000") for i in range(1, 4)]})
    created = responses.post(f"{BASE}jobs/query", json={"id": "750Q", "state": "UploadComplete"})
    responses.get(f"{BASE}jobs/query/750Q", json={"id": "750Q", "state": "InProgress"})
    responses.get(f"{BASE}jobs/query/750Q", json={"id": "750Q", "state": "JobComplete"})
    header = "Id,SystemModstamp,IsDeleted,Status,IsConverted,ConvertedContactId,Email,LastName\n"
    responses.get(
        f"{BASE}jobs/query/750Q/results",
        body=header + '00Q3,2026-10-01T03:00:00.000Z,false,Open,false,,"a,b@x.nl",Z\n',
        headers={"Sforce-Locator": "L2", "Sforce-NumberOfRecords": "1"},
        content_type="text/csv",
        match=[responses.matchers.query_param_matcher({"maxRecords": "10000"})],
    )
    responses.get(
        f"{BASE}jobs/query/750Q/results",
        body=header + "00Q1,2026-10-01T01:00:00.000Z,true,Open,false,,,\n",
        headers={"Sforce-Locator": "null"},
        content_type="text/csv",
        match=[responses.matchers.query_param_matcher({"maxRecords": "10000", "locator": "L2"})],
    )
    batches = list(make_source(bulk_threshold=2).read({}, ctx()))
    body = json.loads(created.calls[0].request.body)
    assert body["operation"] == "queryAll" and body["contentType"] == "CSV"
    assert "ORDER BY" not in body["query"]
    assert [b.cursor is None for b in batches] == [True, False]  # the cursor rides on the last page
    assert (
        batches[0].records[0]["Email"] == "a,b@x.nl" and batches[0].records[0]["ConvertedContactId"] is None
    )
    assert batches[1].deleted == ["00Q1"]
    assert json.loads(batches[1].cursor)["ts"] == "2026-10-01T03:00:00.000Z"
    # no COUNT(): the first REST page announced 3 rows (its `totalSize`), and the read left REST for Bulk
    leads = [q for q in org.soql if "FROM Lead " in q]
    assert len(leads) == 1 and leads[0].startswith("SELECT Id") and "ORDER BY SystemModstamp" in leads[0]


@responses.activate(assert_all_requests_are_fired=True)
def test_unknown_field_fails_against_describe_before_reading() -> None:
    org = FakeOrg({}, queries=False)
    src = make_source(objects={"Lead": {"fields": {"Emial": "email"}}, "Nope": {"fields": {}}})
    with pytest.raises(ConfigError) as info:
        list(src.read({}, ctx()))
    assert "Emial" in str(info.value) and "Nope" in str(info.value)
    assert org.soql == []


def test_config_rejects_bad_identifiers() -> None:
    with pytest.raises(ValueError, match="valid Salesforce API name"):
        source_config(objects={"Lead": {"fields": {"Email; DELETE": "email"}}})


@responses.activate(assert_all_requests_are_fired=True)
def test_opportunities_carry_contact_roles_and_role_changes_reread_opportunity() -> None:
    stamp = "2026-10-01T08:00:00.000+0000"
    org = FakeOrg(
        {
            "Opportunity": [
                {
                    "Id": "006A",
                    "SystemModstamp": stamp,
                    "IsDeleted": False,
                    "StageName": "Closed Won",
                    "AccountId": "001A",
                    "Amount": 10,
                }
            ],
            "OpportunityStage": [
                {"ApiName": "Closed Won", "MasterLabel": "Closed Won", "IsClosed": True, "IsWon": True}
            ],
            "OpportunityContactRole": [
                {
                    "Id": "00K1",
                    "SystemModstamp": stamp,
                    "IsDeleted": False,
                    "OpportunityId": "006A",
                    "ContactId": "003A",
                }
            ],
        }
    )
    # the org's clock two hours past the stamps: their second is over (else the opportunity is read again)
    org.headers = {"Date": "Thu, 01 Oct 2026 10:00:00 GMT"}
    objects = {"Opportunity": {"kind": "opportunity", "fields": {"Amount": "opportunity_amount"}}}
    src = make_source(objects=objects)
    first = list(src.read({}, ctx()))
    assert [b.object for b in first] == ["Opportunity", "OpportunityContactRole"]
    fact = src.map("Opportunity", first[0].records[0])
    assert fact.attach == ["sf_prod:Contact:003A"] and fact.values["opportunity_stage"] == "won"
    roles_query = [q for q in org.soql if "FROM OpportunityContactRole WHERE OpportunityId IN" in q]
    assert roles_query == [
        "SELECT Id, SystemModstamp, OpportunityId, ContactId FROM OpportunityContactRole "
        "WHERE OpportunityId IN ('006A')"
    ]
    assert first[1].cursor is not None  # full read: no role scan needed
    # a role is added later; the opportunity itself did not change
    org.rows["OpportunityContactRole"].append(
        {
            "Id": "00K2",
            "SystemModstamp": "2026-10-20T08:00:00.000+0000",
            "IsDeleted": False,
            "OpportunityId": "006A",
            "ContactId": "003B",
        }
    )
    cursors = {b.object: b.cursor for b in first if b.cursor}
    cursors["OpportunityContactRole"] = json.dumps({"ts": "2026-10-10T00:00:00.000Z", "seen": {}})
    second = list(src.read(cursors, ctx()))
    reread = [b for b in second if b.object == "Opportunity" and b.records]
    assert len(reread) == 1 and reread[0].cursor is None
    assert src.map("Opportunity", reread[0].records[0]).attach == [
        "sf_prod:Contact:003A",
        "sf_prod:Contact:003B",
    ]
    assert second[-1].object == "OpportunityContactRole" and second[-1].cursor is not None


def test_settled_bound_from_the_org_clock() -> None:
    overlap = dt.timedelta(seconds=60)
    newest = dt.datetime(2026, 10, 1, 8, 0, 0, tzinfo=dt.UTC)  # Salesforce keeps stamps to the second
    cursor = Cursor()
    cursor.note("00Q1", newest - dt.timedelta(seconds=30), newest)
    cursor.note("00Q2", newest, newest)
    # the org's clock barely passed the newest stamp: a late commit may still carry a stamp from the window,
    # and its `Date` (whole seconds) only vouches for the seconds before the one it names
    cursor.settle(newest + dt.timedelta(seconds=5), overlap, complete=True)
    assert cursor.settled == newest - dt.timedelta(seconds=56)
    bound = cursor.lower_bound(overlap)
    assert bound is not None and bound.strict and bound.at == cursor.settled
    assert set(Cursor.parse(cursor.dump(overlap)).seen) == {"00Q1", "00Q2"}
    # much later, with no change since: everything up to the newest stamp is read, nothing needs remembering
    cursor.settle(newest + dt.timedelta(hours=1), overlap, complete=True)
    back = Cursor.parse(cursor.dump(overlap))
    assert back.settled == newest and back.seen == {}
    assert back.already_read("00Q9", newest) and not back.already_read(
        "00Q9", newest + dt.timedelta(seconds=1)
    )
    # a read cut short: records sharing the newest stamp may be on pages not read yet
    partial = Cursor()
    partial.note("00Q1", newest, newest)
    partial.settle(newest + dt.timedelta(hours=1), overlap, complete=False)
    assert partial.settled == newest - dt.timedelta(milliseconds=1)
    assert not partial.already_read("00Q7", newest)
    # without the org's clock the bound stays the inclusive overlap window
    assert Cursor(newest=newest).lower_bound(overlap) == type(bound)(newest - overlap, strict=False)


def test_records_of_a_second_still_going_when_read_are_read_again() -> None:
    # Salesforce keeps stamps to the second: a record changed again within the second it was read in keeps the
    # stamp it was read with, so neither `settled` nor `seen` may vouch for that second
    second = dt.datetime(2026, 10, 1, 8, 0, tzinfo=dt.UTC)
    before = second - dt.timedelta(seconds=1)
    no_overlap = dt.timedelta(0)
    cursor = Cursor()
    cursor.note("00Q1", before, second)
    cursor.note("00Q2", second, second)
    cursor.settle(second, no_overlap, complete=True)  # the org's `Date` names the newest second itself
    back = Cursor.parse(cursor.dump(no_overlap))
    assert back.settled == before and back.already_read("00Q1", before)
    assert not back.already_read("00Q2", second) and not back.already_read("00Q3", second)
    assert back.lower_bound(no_overlap) == LowerBound(second, strict=False)  # `>= 08:00:00`: read again
    # without the org's clock only the newest second read may still have been going
    blind = Cursor()
    blind.note("00Q1", before, second)
    blind.note("00Q2", second, second)
    blind.settle(None, no_overlap, complete=True)
    assert blind.settled is None and set(blind.seen) == {"00Q1"}


@responses.activate(assert_all_requests_are_fired=True)
def test_strict_lower_bound_once_the_org_clock_has_passed() -> None:
    rows = [lead(1, "2026-10-01T08:00:00.000+0000"), lead(2, "2026-10-01T09:00:00.000+0000")]
    org = FakeOrg({"Lead": rows})
    org.headers = {"Date": "Thu, 01 Oct 2026 10:00:00 GMT"}  # the org's clock, an hour after the newest stamp
    src = make_source()
    cursor = list(src.read({}, ctx()))[-1].cursor
    assert json.loads(cursor)["set"] == "2026-10-01T09:00:00.000Z" and json.loads(cursor)["seen"] == {}
    second = list(src.read({"Lead": cursor}, ctx()))
    assert any("FROM Lead WHERE SystemModstamp > 2026-10-01T09:00:00Z AND" in q for q in org.soql)
    assert [r for b in second for r in b.records] == []


@responses.activate(assert_all_requests_are_fired=True)
def test_role_cursor_after_a_full_opportunity_read_follows_the_org_clock() -> None:
    org = FakeOrg({"Opportunity": [], "OpportunityStage": []})
    org.headers = {"Date": "Thu, 01 Oct 2026 10:00:00 GMT"}  # our clock (ctx) says 1 November: a month ahead
    objects = {"Opportunity": {"kind": "opportunity", "fields": {"Amount": "opportunity_amount"}}}
    batches = list(make_source(objects=objects).read({}, ctx()))
    roles = [b for b in batches if b.object == "OpportunityContactRole"]
    # a role changed after the opportunities were read carries an org stamp after 10:00, not after our clock
    assert json.loads(roles[-1].cursor)["ts"] == "2026-10-01T10:00:00.000Z"
