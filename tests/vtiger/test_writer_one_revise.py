"""The vtiger writer handed a target's whole plan first (`begin_writes`, issue 10 item 5) sends one revise per
record with its label and every segment change of its Segments field, and still answers per label change and
per segment member (over real HTTP to the sandbox)."""

from __future__ import annotations

import pytest

from connector.plan import LabelChange, Member, SegmentChange
from connector.retry import RetryPolicy
from connector.writers.vtiger.writer import split_multi
from connector_sandboxes.vtiger import VtigerSandbox

from .test_writer_sandbox import ctx, field, person, writer

pytestmark = pytest.mark.e2e


def label(member: Member, new: str) -> LabelChange:
    return LabelChange(member.person_key, member.refs[0], None, new)


def test_one_revise_carries_a_records_label_and_all_its_segment_changes(vt_sandbox: VtigerSandbox) -> None:
    a, b, c = (
        person(vt_sandbox, "Leads", 1),
        person(vt_sandbox, "Contacts", 2),
        person(vt_sandbox, "Leads", 3),
    )
    writer(vt_sandbox).sync_segment(SegmentChange("renewal", [a], adds=[a], removes=[]), ctx())
    out = writer(vt_sandbox)
    run = ctx(10)
    labels = [label(a, "Customer"), label(b, "Lead")]
    renewal = SegmentChange("renewal", [c], adds=[c], removes=[a])  # a leaves renewal, c enters
    nurture = SegmentChange("nurture", [a, b], adds=[a, b], removes=[])
    vt_sandbox.reset_calls()
    before = sum(out.client.calls.values())

    out.begin_writes(labels, [renewal, nurture], run)
    # a: label, renewal out, nurture in; b: label, nurture in; c: renewal in: one revise per record
    assert vt_sandbox.calls["revise"] == 3
    assert vt_sandbox.calls["add_related"] == 3  # c to Renewal, a and b to Nurture
    # the calls the client made (a request retried after a dropped connection on a busy machine counts twice
    # here and once in the sandbox): the results report these
    made = sum(out.client.calls.values()) - before
    assert made >= sum(vt_sandbox.calls.values())
    vt_sandbox.reset_calls()
    results = [out.write_labels(labels, run), out.sync_segment(renewal, run), out.sync_segment(nurture, run)]
    assert sum(vt_sandbox.calls.values()) == 0  # answered from what begin_writes did
    assert [r.failed for r in results] == [{}, {}, {}]
    assert [r.calls for r in results] == [made, 0, 0]
    assert all(r.unreachable is None for r in results)

    assert field(vt_sandbox, a.refs[0], "Funnel stage") == "Customer"
    assert split_multi(field(vt_sandbox, a.refs[0], "Segments")) == ["Nurture newsletter"]
    assert field(vt_sandbox, b.refs[0], "Funnel stage") == "Lead"
    assert split_multi(field(vt_sandbox, b.refs[0], "Segments")) == ["Nurture newsletter"]
    assert split_multi(field(vt_sandbox, c.refs[0], "Segments")) == ["Renewal 2027"]

    # the plan's estimate counts those records, not one revise per change (4 label and segment changes of
    # a and b, 2 of c... 6 in all, on 3 records)
    counts = out.estimate_calls(len(labels), adds=3, removes=1)
    assert out.estimate_plan_calls(labels, [renewal, nurture]) == counts - (6 - 3)


def test_a_refused_campaign_relation_fails_that_membership_only(vt_sandbox: VtigerSandbox) -> None:
    a = person(vt_sandbox, "Leads", 1)
    out = writer(vt_sandbox)
    run = ctx()
    out.preflight([label(a, "Lead")], [], run)
    nurture_id = out._campaign("nurture")
    assert nurture_id is not None
    vt_sandbox.store.delete(
        nurture_id
    )  # deleted in vtiger after the writer found it: vtiger refuses relating
    labels = [label(a, "Lead")]
    renewal = SegmentChange("renewal", [a], adds=[a], removes=[])
    nurture = SegmentChange("nurture", [a], adds=[a], removes=[])
    vt_sandbox.reset_calls()

    out.begin_writes(labels, [renewal, nurture], run)
    assert vt_sandbox.calls["revise"] == 1
    assert out.write_labels(labels, run).failed == {}
    assert out.sync_segment(renewal, run).failed == {}
    failed = out.sync_segment(nurture, run).failed
    assert list(failed) == [a.person_key] and failed[a.person_key].code == "ACCESS_DENIED"
    assert field(vt_sandbox, a.refs[0], "Funnel stage") == "Lead"


@pytest.mark.parametrize("concurrency", [1, 4])
def test_records_written_before_vtiger_went_away_count_for_every_part(
    vt_sandbox: VtigerSandbox, concurrency: int
) -> None:
    people = [person(vt_sandbox, "Leads", n) for n in range(30)]
    out = writer(vt_sandbox, concurrency=concurrency)
    out.client.policy = RetryPolicy(attempts=2, sleep=lambda s: None)
    run = ctx()
    labels = [label(p, "Lead") for p in people]
    plain = SegmentChange("plain", people, adds=people, removes=[])  # no campaign: the revise is all
    vt_sandbox.faults.error_500_ops = {"revise"}
    vt_sandbox.faults.down_after = 5  # five records land, then vtiger stops answering

    out.begin_writes(labels, [plain], run)
    labelled, joined = out.write_labels(labels, run), out.sync_segment(plain, run)
    written = [p for p in people if field(vt_sandbox, p.refs[0], "Funnel stage") == "Lead"]
    assert len(written) >= 5
    assert all(field(vt_sandbox, p.refs[0], "Segments") == "plain" for p in written)
    lost = [p for p in people if p not in written]
    assert set(labelled.failed) == {str(p.refs[0]) for p in lost}
    assert set(joined.failed) == {p.person_key for p in lost}
    assert {e.code for e in [*labelled.failed.values(), *joined.failed.values()]} == {"UNREACHABLE"}
    # said once, on the last result the run loop asks for: it records both before it stops the target
    assert labelled.unreachable is None
    assert joined.unreachable is not None and "vtiger revise" in joined.unreachable
    if concurrency == 1:
        assert len(written) == 5


def test_strict_puts_a_value_back_in_the_same_revise_as_the_label(vt_sandbox: VtigerSandbox) -> None:
    a = person(vt_sandbox, "Leads", 1)
    writer(vt_sandbox, strict=True).sync_segment(SegmentChange("renewal", [a], adds=[a], removes=[]), ctx())
    name = vt_sandbox.store.field_by_label("Leads", "Segments")
    vt_sandbox.store.revise(a.refs[0].id, {name: "VIP"})  # the managed value unticked by hand
    out = writer(vt_sandbox, strict=True)
    run = ctx(10)
    labels = [label(a, "Customer")]
    unchanged = SegmentChange("renewal", [a], adds=[], removes=[])
    vt_sandbox.reset_calls()

    out.begin_writes(labels, [unchanged], run)
    assert vt_sandbox.calls["revise"] == 1 and vt_sandbox.calls["add_related"] == 0
    assert out.write_labels(labels, run).failed == {}
    result = out.sync_segment(unchanged, run)
    assert result.failed == {} and any("put 'Renewal 2027' back" in n for n in result.notes)
    assert split_multi(field(vt_sandbox, a.refs[0], "Segments")) == ["VIP", "Renewal 2027"]
    assert field(vt_sandbox, a.refs[0], "Funnel stage") == "Customer"
