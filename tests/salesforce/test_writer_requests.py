from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
import responses
from sf_fakes import BASE, SESSION_ENV, Sleeps, ctx, describe, env, page, source_config

from connector.context import PluginEnv
from connector.errors import BudgetExceededError, ConfigError
from connector.plan import LabelChange, Member, SegmentChange
from connector.schema import RecordRef
from connector.writers.salesforce.config import SalesforceWriterConfig
from connector.writers.salesforce.writer import SalesforceWriter

COMPOSITE = f"{BASE}composite/sobjects"


def writer(sleeps: Sleeps | None = None, **overrides: Any) -> SalesforceWriter:
    data: dict[str, Any] = {
        "name": "sf_out",
        "type": "salesforce",
        "source": "sf_prod",
        "label_field": {"Lead": "Funnel_Stage__c", "Contact": "Funnel_Stage__c"},
        "campaigns": {"renewal": {"campaign": "Renewal 2027", "member_status": "Sent"}},
    }
    data.update(overrides)
    cfg = SalesforceWriterConfig.model_validate(data)
    return SalesforceWriter.from_config(cfg, env(source_config(), sleeps=sleeps))


def changes(n: int, obj: str = "Lead") -> list[LabelChange]:
    prefix = "00Q" if obj == "Lead" else "003"
    return [
        LabelChange(f"p{i}", RecordRef("sf_prod", obj, f"{prefix}{i:015d}"), "Lead", "Prospect")
        for i in range(n)
    ]


def describes(*objects: str) -> None:
    """Describes of the objects the test labels (only those: every stub must be called)."""
    for obj in objects:
        responses.get(f"{BASE}sobjects/{obj}/describe", json=describe(obj, ["Id", "Funnel_Stage__c"]))


class Collections:
    """Answers sObject Collections calls; `errors[id] = [codes...]` fails a record once per listed code."""

    def __init__(self, *methods: str) -> None:
        """Stubs only the `methods` (PATCH, POST, DELETE) the test expects: every stub must be called."""
        self.errors: dict[str, list[str]] = {}
        self.bodies: list[dict[str, Any]] = []
        self.deleted: list[list[str]] = []
        for method in methods:
            callback = self._delete if method == responses.DELETE else self._write
            responses.add_callback(method, COMPOSITE, callback=callback)

    def _result(self, key: str) -> dict[str, Any]:
        queue = self.errors.get(key)
        if queue:
            code = queue.pop(0)
            return {
                "success": False,
                "errors": [{"statusCode": code, "message": f"{code} message", "fields": []}],
            }
        return {"id": key, "success": True, "errors": []}

    def _write(self, request) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        self.bodies.append(body)
        keys = [r.get("id") or r.get("ContactId") or r.get("LeadId") for r in body["records"]]
        return (200, {"Sforce-Limit-Info": "api-usage=5/1000"}, json.dumps([self._result(k) for k in keys]))

    def _delete(self, request) -> tuple[int, dict[str, str], str]:
        params = urllib.parse.parse_qs(urllib.parse.urlparse(request.url).query)
        assert params["allOrNone"] == ["false"]
        ids = params["ids"][0].split(",")
        self.deleted.append(ids)
        return (200, {}, json.dumps([self._result(i) for i in ids]))


@responses.activate(assert_all_requests_are_fired=True)
def test_labels_go_in_collections_of_200_with_auto_assign_off() -> None:
    describes("Lead")
    coll = Collections(responses.PATCH)
    coll.errors["00Q000000000000007"] = ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]
    run = ctx()
    result = writer().write_labels(changes(450), run)
    assert [len(b["records"]) for b in coll.bodies] == [200, 200, 50]
    assert all(b["allOrNone"] is False for b in coll.bodies)
    assert coll.bodies[0]["records"][0] == {
        "attributes": {"type": "Lead"},
        "id": "00Q000000000000000",
        "Funnel_Stage__c": "Prospect",
    }
    patches = [c for c in responses.calls if c.request.method == "PATCH"]
    assert all(c.request.headers["Sforce-Auto-Assign"] == "FALSE" for c in patches)
    assert list(result.failed) == ["sf_prod:Lead:00Q000000000000007"]
    assert result.failed["sf_prod:Lead:00Q000000000000007"].code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert result.calls == 4 == run.api_calls["sf_out"]  # one describe + ceil(450/200)


@responses.activate(assert_all_requests_are_fired=True)
def test_leads_and_contacts_share_collection_calls_grouped_by_type() -> None:
    describes("Lead")
    responses.get(f"{BASE}sobjects/Contact/describe", json=describe("Contact", ["Id", "Stage__c"]))
    coll = Collections(responses.PATCH)
    coll.errors["003000000000000001"] = ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]
    run = ctx()
    result = writer(label_field={"Lead": "Funnel_Stage__c", "Contact": "Stage__c"}).write_labels(
        changes(250) + changes(150, "Contact"), run
    )
    # 400 changes: two full calls, not 250 -> 200 + 50 and 150 -> 150 (three)
    assert [len(b["records"]) for b in coll.bodies] == [200, 200]
    mixed = coll.bodies[1]["records"]
    # one run per type (Salesforce processes a run of one type as one chunk, at most 10 a call)
    assert [r["attributes"]["type"] for r in mixed] == ["Contact"] * 150 + ["Lead"] * 50
    assert mixed[0] == {"attributes": {"type": "Contact"}, "id": "003000000000000000", "Stage__c": "Prospect"}
    assert mixed[-1] == {
        "attributes": {"type": "Lead"},
        "id": "00Q000000000000249",
        "Funnel_Stage__c": "Prospect",
    }
    assert list(result.failed) == ["sf_prod:Contact:003000000000000001"]
    assert result.calls == 2 + 2 == run.api_calls["sf_out"]  # a describe per object + ceil(400/200)


@responses.activate(assert_all_requests_are_fired=True)
def test_only_locked_records_are_sent_again() -> None:
    describes("Lead")
    coll = Collections(responses.PATCH)
    coll.errors["00Q000000000000001"] = ["UNABLE_TO_LOCK_ROW", "UNABLE_TO_LOCK_ROW"]
    result = writer().write_labels(changes(3), ctx())
    assert [[r["id"] for r in b["records"]] for b in coll.bodies] == [
        ["00Q000000000000000", "00Q000000000000001", "00Q000000000000002"],
        ["00Q000000000000001"],
        ["00Q000000000000001"],
    ]
    assert result.failed == {}


@responses.activate(assert_all_requests_are_fired=True)
def test_lock_that_never_clears_is_reported_failed() -> None:
    describes("Lead")
    coll = Collections(responses.PATCH)
    coll.errors["00Q000000000000001"] = ["UNABLE_TO_LOCK_ROW"] * 10
    result = writer().write_labels(changes(2), ctx())
    assert list(result.failed) == ["sf_prod:Lead:00Q000000000000001"]
    assert result.failed["sf_prod:Lead:00Q000000000000001"].code == "UNABLE_TO_LOCK_ROW"
    assert len(coll.bodies) == 4  # the policy's attempts


@responses.activate(assert_all_requests_are_fired=True)
def test_nothing_changed_makes_no_call() -> None:
    result = writer().write_labels([], ctx())
    assert result.calls == 0 and len(responses.calls) == 0


@responses.activate(assert_all_requests_are_fired=True)
def test_missing_label_field_is_config_error() -> None:
    responses.get(f"{BASE}sobjects/Lead/describe", json=describe("Lead", ["Id"]))
    with pytest.raises(ConfigError, match="Funnel_Stage__c"):
        writer().write_labels(changes(1), ctx())


@responses.activate(assert_all_requests_are_fired=True)
def test_bulk_ingest_above_threshold_and_locked_rows_retried_by_collection() -> None:
    describes("Lead")
    coll = Collections(responses.PATCH)
    created = responses.post(f"{BASE}jobs/ingest", json={"id": "750I", "state": "Open"})
    upload = responses.put(f"{BASE}jobs/ingest/750I/batches", status=201)
    close = responses.patch(f"{BASE}jobs/ingest/750I", json={"id": "750I", "state": "UploadComplete"})
    responses.get(f"{BASE}jobs/ingest/750I", json={"id": "750I", "state": "JobComplete"})
    responses.get(
        f"{BASE}jobs/ingest/750I/failedResults/",
        body='"sf__Id","sf__Error",Id,Funnel_Stage__c\n'
        '"00Q000000000000002","CANNOT_UPDATE_CONVERTED_LEAD:cannot reference converted lead:--",'
        "00Q000000000000002,Prospect\n"
        '"00Q000000000000003","UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--",'
        "00Q000000000000003,Prospect\n",
        content_type="text/csv",
    )
    result = writer(bulk_threshold=4).write_labels(changes(5), ctx())
    assert json.loads(created.calls[0].request.body)["operation"] == "update"
    assert upload.calls[0].request.headers["Content-Type"] == "text/csv"
    assert upload.calls[0].request.body.decode().splitlines()[:2] == [
        "Id,Funnel_Stage__c",
        "00Q000000000000000,Prospect",
    ]
    assert json.loads(close.calls[0].request.body) == {"state": "UploadComplete"}
    assert [[r["id"] for r in b["records"]] for b in coll.bodies] == [["00Q000000000000003"]]
    assert {k: e.code for k, e in result.failed.items()} == {
        "sf_prod:Lead:00Q000000000000002": "CANNOT_UPDATE_CONVERTED_LEAD"
    }


@responses.activate(assert_all_requests_are_fired=True)
def test_budget_share_stops_the_writer() -> None:
    responses.get(
        f"{BASE}sobjects/Lead/describe",
        json=describe("Lead", ["Id", "Funnel_Stage__c"]),
        headers={"Sforce-Limit-Info": "api-usage=800/1000"},
    )
    with pytest.raises(BudgetExceededError):
        writer().write_labels(changes(1), ctx())
    assert len(responses.calls) == 1


def member(key: str, *refs: tuple[str, str]) -> Member:
    return Member(
        key,
        tuple(RecordRef("sf_prod", o, i) for o, i in refs),
        None,
        None,
        None,
        None,
        "customer",
        "Customer",
    )


def campaign_queries(statuses: list[str], rows: list[dict[str, Any]] | None = None) -> list[str]:
    seen: list[str] = []

    def answer(request):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(request.url).query)["q"][0]
        seen.append(q)
        if "FROM Campaign " in q:
            return (
                200,
                {},
                json.dumps(page([{"Id": "701C", "Name": "Renewal 2027"}] if "'Renewal 2027'" in q else [])),
            )
        if "FROM CampaignMemberStatus" in q:
            return (200, {}, json.dumps(page([{"Label": s} for s in statuses])))
        return (200, {}, json.dumps(page(rows or [])))

    responses.add_callback(responses.GET, f"{BASE}query/", callback=answer)
    return seen


@responses.activate(assert_all_requests_are_fired=True)
def test_campaign_adds_prefer_contact_and_duplicate_counts_as_present() -> None:
    seen = campaign_queries(["Sent", "Responded"])
    coll = Collections(responses.POST)
    coll.errors["003B"] = ["DUPLICATE_VALUE"]
    coll.errors["00QC"] = ["INVALID_CROSS_REFERENCE_KEY"]
    adds = [
        member("pa", ("Lead", "00QA"), ("Contact", "003A")),
        member("pb", ("Contact", "003B")),
        member("pc", ("Lead", "00QC")),
        member("pd"),
    ]
    result = writer().sync_segment(SegmentChange("renewal", adds, adds, []), ctx())
    assert coll.bodies[0]["records"] == [
        {
            "attributes": {"type": "CampaignMember"},
            "CampaignId": "701C",
            "ContactId": "003A",
            "Status": "Sent",
        },
        {
            "attributes": {"type": "CampaignMember"},
            "CampaignId": "701C",
            "ContactId": "003B",
            "Status": "Sent",
        },
        {"attributes": {"type": "CampaignMember"}, "CampaignId": "701C", "LeadId": "00QC", "Status": "Sent"},
    ]
    assert {k: e.code for k, e in result.failed.items()} == {
        "pc": "INVALID_CROSS_REFERENCE_KEY",
        "pd": "NO_SALESFORCE_RECORD",
    }
    assert seen[0] == "SELECT Id, Name FROM Campaign WHERE Name = 'Renewal 2027'"
    assert seen[1] == "SELECT Label FROM CampaignMemberStatus WHERE CampaignId = '701C'"


@responses.activate(assert_all_requests_are_fired=True)
def test_campaign_removes_delete_only_the_member_rows_connector_created() -> None:
    seen = campaign_queries(["Sent"])
    coll = Collections(responses.DELETE)
    removes = [
        member("pa", ("Contact", "003A")),
        member("pb", ("Lead", "00QB")),
        member("pc", ("Lead", "00QC")),
    ]
    # pa's and pc's rows came from connector's inserts (state kept their Ids); pb's was there before
    created = {"pa": ("00vA",), "pc": ("00vC",)}
    coll.errors["00vC"] = ["INVALID_CROSS_REFERENCE_KEY"]  # purged with its Lead: gone is gone
    result = writer().sync_segment(SegmentChange("renewal", [], [], removes, created), ctx())
    assert coll.deleted == [["00vA", "00vC"]]  # by Id: no member query
    assert result.failed == {}
    assert len(seen) == 2  # the campaign and its statuses
    assert result.notes == [
        "sf_out: kept 1 member(s) of segment renewal in the campaign: connector did not create their member "
        "rows (set strict: true to mirror the segment exactly)"
    ]


@responses.activate(assert_all_requests_are_fired=True)
def test_strict_campaign_removes_query_member_rows_then_delete_in_chunks() -> None:
    rows = [
        {"Id": "00vA", "ContactId": "003A", "LeadId": None},
        {"Id": "00vB", "ContactId": None, "LeadId": "00QB"},
    ]
    seen = campaign_queries(["Sent"], rows)
    coll = Collections(responses.DELETE)
    removes = [member("pa", ("Contact", "003A")), member("pb", ("Lead", "00QB"))]
    w = writer(campaigns={"renewal": {"campaign": "Renewal 2027", "strict": True}})
    result = w.sync_segment(SegmentChange("renewal", [], [], removes), ctx())
    assert coll.deleted[0] == ["00vA", "00vB"]  # whoever made them; then the scan (answered the same rows)
    assert result.failed == {}
    assert seen[2] == (
        "SELECT Id, ContactId, LeadId FROM CampaignMember WHERE CampaignId = '701C' "
        "AND (ContactId IN ('003A','00QB') OR LeadId IN ('003A','00QB'))"
    )


@responses.activate(assert_all_requests_are_fired=True)
def test_strict_campaign_removes_hand_added_members() -> None:
    rows = [
        {"Id": "00vA", "ContactId": "003A", "LeadId": None},
        {"Id": "00vX", "ContactId": "003X", "LeadId": None},
    ]
    campaign_queries(["Sent"], rows)
    coll = Collections(responses.DELETE)
    keep = [member("pa", ("Contact", "003A"))]
    w = writer(campaigns={"renewal": {"campaign": "Renewal 2027", "strict": True}})
    result = w.sync_segment(SegmentChange("renewal", keep, [], []), ctx())
    assert coll.deleted == [["00vX"]]
    assert result.notes == ["strict: removed 1 member(s) not in segment renewal"]


@responses.activate(assert_all_requests_are_fired=True)
def test_strict_campaign_adds_back_a_member_deleted_by_hand() -> None:
    campaign_queries(["Sent"], [{"Id": "00vA", "ContactId": "003A", "LeadId": None}])
    coll = Collections(responses.POST)
    segment = [member("pa", ("Contact", "003A")), member("pb", ("Lead", "00QB"), ("Contact", "003B"))]
    w = writer(campaigns={"renewal": {"campaign": "Renewal 2027", "strict": True}})
    result = w.sync_segment(SegmentChange("renewal", segment, [], []), ctx())
    assert coll.deleted == []
    [body] = coll.bodies  # the scan saw no row of pb: her row is inserted again, on her Contact
    assert body["records"] == [
        {
            "attributes": {"type": "CampaignMember"},
            "CampaignId": "701C",
            "ContactId": "003B",
            "Status": "Sent",
        }
    ]
    assert result.failed == {}
    assert result.created == {"pb": ("003B",)}  # the answered Id (this double answers the record's own key)
    assert result.notes == ["strict: added back 1 member(s) of segment renewal"]


@responses.activate(assert_all_requests_are_fired=True)
def test_a_member_strict_cannot_add_back_is_a_note_not_a_rejected_membership() -> None:
    campaign_queries(["Sent"])
    coll = Collections(responses.POST)
    coll.errors["003B"] = ["INVALID_CROSS_REFERENCE_KEY"]  # her Contact was deleted since the read
    w = writer(campaigns={"renewal": {"campaign": "Renewal 2027", "strict": True}})
    result = w.sync_segment(SegmentChange("renewal", [member("pb", ("Contact", "003B"))], [], []), ctx())
    assert len(coll.bodies) == 1
    assert result.failed == {} and result.created == {}  # the state keeps her membership as it was
    [note] = result.notes
    assert note.startswith("strict: could not add back pb to segment renewal: ")


@responses.activate(assert_all_requests_are_fired=True)
def test_unknown_member_status_and_missing_campaign_are_config_errors() -> None:
    campaign_queries(["Responded"])
    with pytest.raises(ConfigError, match="member_status 'Sent'"):
        writer().sync_segment(SegmentChange("renewal", [], [member("pa", ("Contact", "003A"))], []), ctx())
    w = writer(campaigns={"renewal": {"campaign": "Gone 2030"}})
    with pytest.raises(ConfigError, match="does not exist"):
        w.sync_segment(SegmentChange("renewal", [], [member("pa", ("Contact", "003A"))], []), ctx())


@responses.activate(assert_all_requests_are_fired=True)
def test_campaign_created_when_asked() -> None:
    campaign_queries(["Sent"])
    created = responses.post(f"{BASE}sobjects/Campaign", json={"id": "701N", "success": True, "errors": []})
    Collections(responses.POST)
    w = writer(campaigns={"renewal": {"campaign": "O'Neil \\ Renewal", "create": True}})
    w.sync_segment(SegmentChange("renewal", [], [member("pa", ("Contact", "003A"))], []), ctx())
    assert json.loads(created.calls[0].request.body) == {"Name": "O'Neil \\ Renewal", "IsActive": True}
    first_q = urllib.parse.parse_qs(urllib.parse.urlparse(responses.calls[0].request.url).query)["q"][0]
    assert first_q == "SELECT Id, Name FROM Campaign WHERE Name = 'O\\'Neil \\\\ Renewal'"


def test_estimate_calls() -> None:
    w = writer()
    assert w.estimate_calls(0, 0, 0) == 0
    # a describe per label object, then 3 collection calls the label objects share
    assert w.estimate_calls(401, 0, 0) == 2 + 3
    assert w.estimate_calls(1, 0, 0) == 1 + 1
    assert w.estimate_calls(5000, 0, 0) == 2 + 6  # one bulk job
    assert w.estimate_calls(0, 250, 201) == 2 + 2 + 2  # removals delete by the Ids state kept: no query
    # a strict campaign is looked up and scanned every run, whether its segment changed or not
    strict = writer(campaigns={"a": {"campaign": "A", "strict": True}, "b": {"campaign": "B"}})
    assert strict.estimate_calls(0, 0, 0) == 2 + 1
    assert strict.estimate_calls(0, 1, 0) == 2 * 2 + 1 + 1
    assert strict.estimate_calls(0, 0, 1) == 2 * 2 + 1 + 2  # strict removes any row: a query, then a delete


def test_target_needs_a_salesforce_source() -> None:
    cfg = SalesforceWriterConfig.model_validate({"name": "o", "type": "salesforce", "source": "missing"})
    fake_env = PluginEnv(sources=[], environ=SESSION_ENV)
    with pytest.raises(ConfigError, match="missing"):
        SalesforceWriter.from_config(cfg, fake_env)


@responses.activate(assert_all_requests_are_fired=True)
def test_every_campaign_write_sends_auto_assign_off() -> None:
    rows = [{"Id": "00vA", "ContactId": "003A", "LeadId": None}]
    campaign_queries(["Sent"], rows)
    responses.post(f"{BASE}sobjects/Campaign", json={"id": "701N", "success": True, "errors": []})
    Collections(responses.POST, responses.DELETE)
    w = writer(campaigns={"renewal": {"campaign": "New one", "create": True}})
    adds, removes = [member("pb", ("Lead", "00QB"))], [member("pa", ("Contact", "003A"))]
    w.sync_segment(SegmentChange("renewal", adds, adds, removes, {"pa": ("00vA",)}), ctx())
    writes = [c.request for c in responses.calls if c.request.method != "GET"]
    assert [r.method for r in writes] == ["POST", "POST", "DELETE"]  # campaign, member add, member remove
    assert all(r.headers.get("Sforce-Auto-Assign") == "FALSE" for r in writes)


@responses.activate(assert_all_requests_are_fired=True)
def test_adding_a_deleted_person_fails_but_removing_a_deleted_row_is_done() -> None:
    rows = [{"Id": "00vA", "ContactId": "003A", "LeadId": None}]
    campaign_queries(["Sent"], rows)
    coll = Collections(responses.POST, responses.DELETE)
    coll.errors["00QB"] = ["ENTITY_IS_DELETED"]
    coll.errors["00vA"] = ["ENTITY_IS_DELETED"]
    adds, removes = [member("pb", ("Lead", "00QB"))], [member("pa", ("Contact", "003A"))]
    result = writer().sync_segment(SegmentChange("renewal", adds, adds, removes, {"pa": ("00vA",)}), ctx())
    # the add did not happen: kept as failed, so state never claims a membership Salesforce lacks
    assert {k: e.code for k, e in result.failed.items()} == {"pb": "ENTITY_IS_DELETED"}


@responses.activate(assert_all_requests_are_fired=True)
def test_strict_removal_deletes_page_by_page() -> None:
    first = [{"Id": f"00vX{i:03d}", "ContactId": f"003X{i:03d}", "LeadId": None} for i in range(3)]
    second = [{"Id": "00vY", "ContactId": "003Y", "LeadId": None}]

    def answer(request):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(request.url).query)["q"][0]
        if "FROM Campaign " in q:
            return (200, {}, json.dumps(page([{"Id": "701C", "Name": "Renewal 2027"}])))
        if "FROM CampaignMemberStatus" in q:
            return (200, {}, json.dumps(page([{"Label": "Sent"}])))
        return (200, {}, json.dumps(page(first, "/services/data/v59.0/query/01gM-3")))

    responses.add_callback(responses.GET, f"{BASE}query/", callback=answer)
    responses.get(f"{BASE}query/01gM-3", json=page(second))
    coll = Collections(responses.DELETE)
    w = writer(campaigns={"renewal": {"campaign": "Renewal 2027", "strict": True}})
    result = w.sync_segment(SegmentChange("renewal", [], [], []), ctx())
    assert coll.deleted == [["00vX000", "00vX001", "00vX002"], ["00vY"]]
    order = [c.request.method + " " + c.request.path_url.split("?")[0] for c in responses.calls]
    # the first page's strangers are gone before the second page is fetched: one page in memory at a time
    assert order.index("DELETE /services/data/v59.0/composite/sobjects") < order.index(
        "GET /services/data/v59.0/query/01gM-3"
    )
    assert result.notes == ["strict: removed 4 member(s) not in segment renewal"]


def test_strict_campaigns_ask_for_every_segment_each_run() -> None:
    assert writer().publishes_snapshots is False
    assert writer(campaigns={"renewal": {"campaign": "R", "strict": True}}).publishes_snapshots is True
