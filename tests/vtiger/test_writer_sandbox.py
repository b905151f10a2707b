"""The vtiger writer end to end over real HTTP against the loopback sandbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from connector.context import PluginEnv, RunContext
from connector.errors import ConfigError, RetriableError
from connector.plan import LabelChange, Member, SegmentChange
from connector.retry import RetryPolicy
from connector.schema import RecordRef
from connector.sources.vtiger.config import VtigerSourceConfig
from connector.writers.vtiger.config import VtigerWriterConfig
from connector.writers.vtiger.writer import VtigerWriter, join_multi, split_multi
from connector_sandboxes.vtiger import VtigerSandbox

pytestmark = pytest.mark.e2e
T0 = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.UTC)


def writer(sandbox: VtigerSandbox, concurrency: int = 4, **overrides: Any) -> VtigerWriter:
    source_cfg = VtigerSourceConfig.model_validate(
        {
            "name": "vt",
            "type": "vtiger",
            "url": sandbox.url,
            "modules": {"Leads": {"fields": {"email": "email"}}, "Contacts": {"fields": {"email": "email"}}},
        }
    )
    data: dict[str, Any] = {
        "name": "vt_out",
        "type": "vtiger",
        "source": "vt",
        "label_field": {"Leads": "label:Funnel stage", "Contacts": "label:Funnel stage"},
        "segments_field": {"Leads": "label:Segments", "Contacts": "label:Segments"},
        "concurrency": concurrency,
        "campaigns": {
            "renewal": {"campaign": "Renewal 2027", "create": True, "closingdate": "2027-12-31"},
            "nurture": {"campaign": "Nurture newsletter", "create": True, "closingdate": "2027-06-30"},
        },
    }
    data.update(overrides)
    env = PluginEnv(
        sources=[source_cfg],
        environ=sandbox.env(),
        policy=RetryPolicy(attempts=12, sleep=lambda s: None),
    )
    return VtigerWriter.from_config(VtigerWriterConfig.model_validate(data), env)


def ctx(minutes: int = 0) -> RunContext:
    return RunContext(as_of=T0.date(), started_at=T0 + dt.timedelta(minutes=minutes))


def person(sandbox: VtigerSandbox, module: str, n: int) -> Member:
    record = sandbox.store.create(module, {"lastname": f"P{n}", "email": f"p{n}@example.com"})
    ref = RecordRef("vt", module, record["id"])
    return Member(f"person-{module}-{n}", (ref,), f"p{n}@example.com", None, f"P{n}", None, "lead", "Lead")


def field(sandbox: VtigerSandbox, ref: RecordRef, label: str) -> str:
    name = sandbox.store.field_by_label(ref.object, label)
    record = sandbox.store.get(ref.id)
    assert record is not None
    return record[name]


def test_labels_are_revised_only_for_the_given_changes(vt_sandbox: VtigerSandbox) -> None:
    people = [person(vt_sandbox, "Leads", n) for n in range(6)] + [person(vt_sandbox, "Contacts", 9)]
    out = writer(vt_sandbox)
    vt_sandbox.reset_calls()
    changes = [LabelChange(p.person_key, p.refs[0], None, "Prospect") for p in people]
    result = out.write_labels(changes, ctx())
    assert result.failed == {}
    assert vt_sandbox.calls["revise"] == 7
    assert all(field(vt_sandbox, p.refs[0], "Funnel stage") == "Prospect" for p in people)
    assert result.calls == sum(vt_sandbox.calls.values())
    vt_sandbox.reset_calls()
    again = out.write_labels([], ctx(1))
    assert sum(vt_sandbox.calls.values()) == 0 and again.calls == 0


def test_a_rejected_label_is_reported_and_the_rest_written(vt_sandbox: VtigerSandbox) -> None:
    good, gone = person(vt_sandbox, "Leads", 1), person(vt_sandbox, "Leads", 2)
    vt_sandbox.store.delete(gone.refs[0].id)
    result = writer(vt_sandbox, concurrency=1).write_labels(
        [LabelChange(p.person_key, p.refs[0], None, "Customer") for p in (good, gone)], ctx()
    )
    assert list(result.failed) == [str(gone.refs[0])]
    assert result.failed[str(gone.refs[0])].code == "ACCESS_DENIED"
    assert field(vt_sandbox, good.refs[0], "Funnel stage") == "Customer"


def test_segments_kept_exact_in_the_field_with_campaign_relations(vt_sandbox: VtigerSandbox) -> None:
    a, b, c = (person(vt_sandbox, m, n) for m, n in (("Leads", 1), ("Leads", 2), ("Contacts", 3)))
    out = writer(vt_sandbox)
    run = ctx()
    out.sync_segment(SegmentChange("renewal", [a, b, c], adds=[a, b, c], removes=[]), run)
    out.sync_segment(SegmentChange("nurture", [a], adds=[a], removes=[]), run)
    assert split_multi(field(vt_sandbox, a.refs[0], "Segments")) == ["Renewal 2027", "Nurture newsletter"]
    assert field(vt_sandbox, c.refs[0], "Segments") == "Renewal 2027"
    renewal = out._campaign_ids["renewal"]
    assert set(vt_sandbox.store.related(renewal, "Leads")) == {a.refs[0].id, b.refs[0].id}
    assert set(vt_sandbox.store.related(renewal, "Contacts")) == {c.refs[0].id}

    # next run: a leaves renewal (keeps nurture), b leaves too; the relations stay as history
    out2 = writer(vt_sandbox)
    vt_sandbox.reset_calls()
    result = out2.sync_segment(SegmentChange("renewal", [c], adds=[], removes=[a, b]), ctx(10))
    assert result.failed == {}
    assert field(vt_sandbox, a.refs[0], "Segments") == "Nurture newsletter"
    assert field(vt_sandbox, b.refs[0], "Segments") == ""
    # one query per module for the records holding the value (with their current values): nothing else read
    assert vt_sandbox.calls["query"] == 2
    assert vt_sandbox.calls["revise"] == 2 and vt_sandbox.calls["add_related"] == 0
    assert set(vt_sandbox.store.related(renewal, "Leads")) == {a.refs[0].id, b.refs[0].id}
    assert out2.field_members("renewal", "Leads") == set()
    assert out2.field_members("renewal", "Contacts") == {c.refs[0].id}
    assert out2.field_members("nurture", "Leads") == {a.refs[0].id}

    # a run with nothing to change makes no call at all
    vt_sandbox.reset_calls()
    quiet = writer(vt_sandbox).sync_segment(SegmentChange("renewal", [c], adds=[], removes=[]), ctx(20))
    assert quiet.calls == 0 and sum(vt_sandbox.calls.values()) == 0


def test_campaign_is_found_not_duplicated(vt_sandbox: VtigerSandbox) -> None:
    existing = vt_sandbox.store.create(
        "Campaigns", {"campaignname": "Renewal 2027", "closingdate": "2027-12-31"}
    )
    a = person(vt_sandbox, "Leads", 1)
    out = writer(vt_sandbox)
    out.sync_segment(SegmentChange("renewal", [a], adds=[a], removes=[]), ctx())
    assert out._campaign_ids["renewal"] == existing["id"]
    assert vt_sandbox.calls["create"] == 0


def test_missing_campaign_without_create_is_a_config_error(vt_sandbox: VtigerSandbox) -> None:
    a = person(vt_sandbox, "Leads", 1)
    out = writer(vt_sandbox, campaigns={"renewal": {"campaign": "Nope"}})
    with pytest.raises(ConfigError, match="no campaign named 'Nope'"):
        out.sync_segment(SegmentChange("renewal", [a], adds=[a], removes=[]), ctx())


def test_membership_read_back_pages_past_100(vt_sandbox: VtigerSandbox) -> None:
    people = [person(vt_sandbox, "Leads", n) for n in range(130)]
    out = writer(vt_sandbox, concurrency=8)
    result = out.sync_segment(SegmentChange("renewal", people, adds=people, removes=[]), ctx())
    assert result.failed == {}
    ids = {p.refs[0].id for p in people}
    assert out.campaign_members("renewal", "Leads") == ids
    assert out.field_members("renewal", "Leads") == ids
    assert vt_sandbox.calls["query_related"] == 2


def test_segment_writes_survive_500s_and_session_expiry(vt_sandbox: VtigerSandbox) -> None:
    people = [person(vt_sandbox, "Leads", n) for n in range(40)]
    vt_sandbox.faults.error_500_rate = 0.2
    vt_sandbox.faults.seed = 5
    vt_sandbox.faults.expire_sessions_after = 15
    out = writer(vt_sandbox)
    result = out.sync_segment(SegmentChange("renewal", people, adds=people, removes=[]), ctx())
    labels = out.write_labels([LabelChange(p.person_key, p.refs[0], None, "Lead") for p in people], ctx())
    assert result.failed == {} and labels.failed == {}
    assert sum(vt_sandbox.faults.injected.values()) > 3
    assert out.client.logins > 1
    vt_sandbox.faults.error_500_rate = 0.0
    assert all(field(vt_sandbox, p.refs[0], "Segments") == "Renewal 2027" for p in people)
    assert all(field(vt_sandbox, p.refs[0], "Funnel stage") == "Lead" for p in people)
    assert out.campaign_members("renewal", "Leads") == {p.refs[0].id for p in people}
    campaigns = vt_sandbox.store.all("Campaigns")
    assert [c["campaignname"] for c in campaigns].count("Renewal 2027") == 1


def test_a_gone_record_fails_its_person_only(vt_sandbox: VtigerSandbox) -> None:
    a, b = person(vt_sandbox, "Leads", 1), person(vt_sandbox, "Leads", 2)
    vt_sandbox.store.delete(b.refs[0].id)
    result = writer(vt_sandbox).sync_segment(SegmentChange("renewal", [a, b], adds=[a, b], removes=[]), ctx())
    assert list(result.failed) == [b.person_key]
    assert result.failed[b.person_key].code == "GONE"
    assert field(vt_sandbox, a.refs[0], "Segments") == "Renewal 2027"


def test_own_fields_must_not_be_mapped_as_signals(vt_sandbox: VtigerSandbox) -> None:
    source_cfg = VtigerSourceConfig.model_validate(
        {
            "name": "vt",
            "type": "vtiger",
            "url": vt_sandbox.url,
            "modules": {"Leads": {"fields": {"label:Funnel stage": "extra.stage"}}},
        }
    )
    cfg = VtigerWriterConfig.model_validate(
        {"name": "o", "type": "vtiger", "source": "vt", "label_field": {"Leads": "label:Funnel stage"}}
    )
    # a config check now (validate names file, line and key path), made before any connection is opened
    assert cfg.cross_check({"vt": source_cfg}) == [
        (
            ("label_field", "Leads"),
            "'label:Funnel stage' is written by this target and must not be mapped as a signal in "
            "sources.vt.modules.Leads.fields",
        )
    ]


def test_multi_select_join_and_split() -> None:
    assert join_multi(["A", "B"]) == "A |##| B"
    assert split_multi("A |##| B") == ["A", "B"]
    assert split_multi("") == []


def set_segments(sandbox: VtigerSandbox, ref: RecordRef, value: str) -> None:
    sandbox.store.revise(ref.id, {sandbox.store.field_by_label(ref.object, "Segments"): value})


def test_values_set_by_hand_survive_and_stray_managed_values_are_cleared(vt_sandbox: VtigerSandbox) -> None:
    a, b, c, d = (
        person(vt_sandbox, m, n) for m, n in (("Leads", 1), ("Leads", 2), ("Leads", 3), ("Contacts", 4))
    )
    set_segments(vt_sandbox, a.refs[0], "VIP")  # an admin's own value on a member
    set_segments(vt_sandbox, b.refs[0], "Renewal 2027 |##| VIP")  # a managed value on a non-member, by hand
    set_segments(vt_sandbox, c.refs[0], "Renewal 2027 extra")  # not the managed value, only like it
    set_segments(vt_sandbox, d.refs[0], "VIP |##| Renewal 2027")  # a contact holding it, not a member
    out = writer(vt_sandbox)
    result = out.sync_segment(SegmentChange("renewal", [a], adds=[a], removes=[]), ctx())
    assert result.failed == {} and result.notes == []
    assert split_multi(field(vt_sandbox, a.refs[0], "Segments")) == ["VIP", "Renewal 2027"]
    assert field(vt_sandbox, b.refs[0], "Segments") == "VIP"
    assert field(vt_sandbox, c.refs[0], "Segments") == "Renewal 2027 extra"
    assert field(vt_sandbox, d.refs[0], "Segments") == "VIP"
    renewal = out._campaign_ids["renewal"]
    assert vt_sandbox.store.related(renewal, "Leads") == [a.refs[0].id]  # strays are cleared, not related
    assert out.field_members("renewal", "Leads") == {a.refs[0].id}
    assert out.field_members("renewal", "Contacts") == set()


def test_a_person_in_two_segments_leaving_one_keeps_the_other_and_hand_values(
    vt_sandbox: VtigerSandbox,
) -> None:
    a, b = person(vt_sandbox, "Leads", 1), person(vt_sandbox, "Contacts", 2)
    set_segments(vt_sandbox, a.refs[0], "VIP")
    out = writer(vt_sandbox)
    out.sync_segment(SegmentChange("renewal", [a, b], adds=[a, b], removes=[]), ctx())
    out.sync_segment(SegmentChange("nurture", [a, b], adds=[a, b], removes=[]), ctx())
    assert split_multi(field(vt_sandbox, a.refs[0], "Segments")) == [
        "VIP",
        "Renewal 2027",
        "Nurture newsletter",
    ]
    set_segments(
        vt_sandbox, b.refs[0], "Nurture newsletter |##| Renewal 2027 |##| Partner"
    )  # reordered by hand
    # next run, a fresh writer (no cache): a leaves nurture, b leaves renewal
    out2 = writer(vt_sandbox)
    assert out2.sync_segment(SegmentChange("nurture", [b], adds=[], removes=[a]), ctx(10)).failed == {}
    assert out2.sync_segment(SegmentChange("renewal", [a], adds=[], removes=[b]), ctx(10)).failed == {}
    assert split_multi(field(vt_sandbox, a.refs[0], "Segments")) == ["VIP", "Renewal 2027"]
    assert split_multi(field(vt_sandbox, b.refs[0], "Segments")) == ["Nurture newsletter", "Partner"]


def test_removing_a_record_deleted_from_vtiger_is_done_not_failed(vt_sandbox: VtigerSandbox) -> None:
    a, b = person(vt_sandbox, "Leads", 1), person(vt_sandbox, "Leads", 2)
    out = writer(vt_sandbox)
    out.sync_segment(SegmentChange("renewal", [a, b], adds=[a, b], removes=[]), ctx())
    vt_sandbox.store.delete(b.refs[0].id)  # b's only record is gone: b leaves the segment
    result = writer(vt_sandbox).sync_segment(SegmentChange("renewal", [a], adds=[], removes=[b]), ctx(10))
    assert result.failed == {}  # nothing left to undo: not a rejection kept (and counted) run after run
    assert field(vt_sandbox, a.refs[0], "Segments") == "Renewal 2027"


def test_a_dead_server_stops_the_writer_after_one_round_of_retries(vt_sandbox: VtigerSandbox) -> None:
    people = [person(vt_sandbox, "Leads", n) for n in range(40)]
    out = writer(vt_sandbox, concurrency=4)
    out.client.policy = RetryPolicy(attempts=3, sleep=lambda s: None)
    out.label_field("Leads")  # described before the server goes down
    vt_sandbox.faults.error_500_ops = {"revise"}
    vt_sandbox.faults.fail_next = 10**6
    result = out.write_labels([LabelChange(p.person_key, p.refs[0], None, "Lead") for p in people], ctx())
    assert result.unreachable is not None and "gave up after 3 attempts" in result.unreachable
    assert set(result.failed) == {str(p.refs[0]) for p in people}
    assert {e.code for e in result.failed.values()} == {"UNREACHABLE"}
    # the threads that were already running each spend the policy; nobody starts the other 36 records
    assert vt_sandbox.faults.injected["revise"] <= 4 * 3


@pytest.mark.parametrize("concurrency", [1, 4])
def test_labels_written_before_vtiger_went_away_are_reported_as_written(
    vt_sandbox: VtigerSandbox, concurrency: int
) -> None:
    people = [person(vt_sandbox, "Leads", n) for n in range(30)]
    out = writer(vt_sandbox, concurrency=concurrency)
    out.client.policy = RetryPolicy(attempts=2, sleep=lambda s: None)
    vt_sandbox.faults.error_500_ops = {"revise"}
    vt_sandbox.faults.down_after = 5  # five revises land, then vtiger stops answering
    result = out.write_labels([LabelChange(p.person_key, p.refs[0], None, "Lead") for p in people], ctx())

    assert result.unreachable is not None and "vtiger revise" in result.unreachable
    written = {str(p.refs[0]) for p in people if field(vt_sandbox, p.refs[0], "Funnel stage") == "Lead"}
    assert len(written) >= 5
    assert set(result.failed) == {str(p.refs[0]) for p in people} - written  # failed: exactly the unwritten
    assert {e.code for e in result.failed.values()} == {"UNREACHABLE"}
    if concurrency == 1:
        assert len(written) == 5 and vt_sandbox.faults.injected["revise"] == 2  # one item spent the policy


def test_segment_members_written_before_vtiger_went_away_are_reported_as_written(
    vt_sandbox: VtigerSandbox,
) -> None:
    people = [person(vt_sandbox, "Leads", n) for n in range(30)]
    out = writer(vt_sandbox, concurrency=3)
    out.client.policy = RetryPolicy(attempts=2, sleep=lambda s: None)
    out._campaign("renewal")  # found (created) while vtiger still answers
    vt_sandbox.faults.error_500_ops = {"revise", "add_related"}
    vt_sandbox.faults.down_after = 12  # about six members land (revise + add_related), then vtiger goes away
    result = out.sync_segment(SegmentChange("renewal", people, adds=people, removes=[]), ctx())

    assert result.unreachable is not None
    assert {e.code for e in result.failed.values()} == {"UNREACHABLE"}
    done = [p for p in people if p.person_key not in result.failed]
    assert len(done) >= 5 and len(result.failed) >= 20
    campaign = out._campaign_ids["renewal"]
    related = set(vt_sandbox.store.related(campaign, "Leads"))
    for p in done:  # reported as added: the field holds the value and the campaign relation is there
        assert field(vt_sandbox, p.refs[0], "Segments") == "Renewal 2027"
        assert p.refs[0].id in related

    vt_sandbox.faults.down_after = None  # vtiger is back: the next run hands over what failed
    lost = [p for p in people if p.person_key in result.failed]
    again = writer(vt_sandbox).sync_segment(SegmentChange("renewal", people, adds=lost, removes=[]), ctx(10))
    assert again.failed == {} and again.unreachable is None
    assert all(field(vt_sandbox, p.refs[0], "Segments") == "Renewal 2027" for p in people)
    assert set(vt_sandbox.store.related(campaign, "Leads")) == {p.refs[0].id for p in people}


def test_a_campaign_whose_create_answer_was_lost_is_found_not_created_again(
    vt_sandbox: VtigerSandbox,
) -> None:
    a = person(vt_sandbox, "Leads", 1)
    out = writer(vt_sandbox)
    real_create = out.client.create

    def create(module: str, element: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        real_create(module, element, **kwargs)  # vtiger created it, then the answer got lost
        raise RetriableError("vtiger create: connection reset", code="CONNECTION")

    out.client.create = create  # type: ignore[method-assign]
    assert out.sync_segment(SegmentChange("renewal", [a], adds=[a], removes=[]), ctx()).failed == {}
    names = [c["campaignname"] for c in vt_sandbox.store.all("Campaigns")]
    assert names == ["Renewal 2027"]
    assert vt_sandbox.store.related(out._campaign_ids["renewal"], "Leads") == [a.refs[0].id]


def test_a_segments_field_the_user_may_not_read_is_a_config_error(vt_sandbox: VtigerSandbox) -> None:
    a = person(vt_sandbox, "Leads", 1)
    out = writer(vt_sandbox)
    out.segment_field("Leads"), out.segment_field("Contacts")  # resolved while the field was readable
    name = vt_sandbox.store.field_by_label("Leads", "Segments")
    meta = vt_sandbox.store.modules["Leads"]
    meta.fields = [f for f in meta.fields if f.name != name]
    with pytest.raises(ConfigError, match="ACCESS_DENIED"):
        out.sync_segment(SegmentChange("renewal", [a], adds=[a], removes=[]), ctx())


def test_strict_checks_an_unchanged_segment_and_clears_hand_typed_values(vt_sandbox: VtigerSandbox) -> None:
    a, b = person(vt_sandbox, "Leads", 1), person(vt_sandbox, "Contacts", 2)
    assert not writer(vt_sandbox).publishes_snapshots  # by default: only changed segments are handed over
    out = writer(vt_sandbox, strict=True)
    assert out.publishes_snapshots
    out.sync_segment(SegmentChange("renewal", [a], adds=[a], removes=[]), ctx())
    set_segments(vt_sandbox, b.refs[0], "Renewal 2027")  # typed by hand onto a non-member
    vt_sandbox.reset_calls()
    result = writer(vt_sandbox, strict=True).sync_segment(
        SegmentChange("renewal", [a], adds=[], removes=[]), ctx(10)
    )
    assert result.failed == {}
    assert field(vt_sandbox, b.refs[0], "Segments") == ""
    assert field(vt_sandbox, a.refs[0], "Segments") == "Renewal 2027"
    assert vt_sandbox.calls["revise"] == 1 and vt_sandbox.calls["add_related"] == 0

    # nothing off: an unchanged segment costs the holder queries (one per module) and no write
    vt_sandbox.reset_calls()
    quiet = writer(vt_sandbox, strict=True).sync_segment(
        SegmentChange("renewal", [a], adds=[], removes=[]), ctx(20)
    )
    assert quiet.failed == {}
    assert {op for op, n in vt_sandbox.calls.items() if n} <= {"getchallenge", "login", "describe", "query"}
    assert vt_sandbox.calls["query"] == 2


def test_a_segment_value_with_a_backslash_finds_its_stray_holders(vt_sandbox: VtigerSandbox) -> None:
    # MySQL's LIKE takes `\` as its escape character: unescaped, `%Sales\EMEA%` would look for "SalesEMEA"
    a, b, c = (person(vt_sandbox, m, n) for m, n in (("Leads", 1), ("Leads", 2), ("Contacts", 3)))
    emea = {"campaign": "EMEA push", "value": "Sales\\EMEA", "create": True, "closingdate": "2027-12-31"}
    out = writer(vt_sandbox, strict=True, campaigns={"emea": emea})
    set_segments(vt_sandbox, b.refs[0], "Sales\\EMEA |##| VIP")  # typed by hand onto a non-member
    set_segments(vt_sandbox, c.refs[0], "SalesEMEA")  # only looks like it: not ours to clear
    result = out.sync_segment(SegmentChange("emea", [a], adds=[a], removes=[]), ctx())
    assert result.failed == {}
    assert field(vt_sandbox, a.refs[0], "Segments") == "Sales\\EMEA"
    assert field(vt_sandbox, b.refs[0], "Segments") == "VIP"
    assert field(vt_sandbox, c.refs[0], "Segments") == "SalesEMEA"
    assert out.field_members("emea", "Leads") == {a.refs[0].id}
