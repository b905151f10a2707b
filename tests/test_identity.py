"""Identity resolution: merging across sources, attaching facts, stable keys, precedence and folding."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from spine_helpers import AS_OF, days

from connector.coverage import pipeline_figures
from connector.coverage_config import PipelineConfig
from connector.identity import resolve
from connector.schema import Fact, FactKind, Person, RecordRef, normalise_email
from connector.stage_model import StageModel, load_preset

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def person_fact(
    source: str,
    obj: str,
    rid: str,
    *,
    email: str | None = None,
    ext: str | None = None,
    xref: str | None = None,
    member_of: list[str] | None = None,
    modified: dt.datetime | None = None,
    **values: Any,
) -> Fact:
    """A person fact the way mappers build one: own ref, normalised e-mail, external id, cross-reference."""
    ref = RecordRef(source, obj, rid)
    keys = [str(ref)]
    normal = normalise_email(email)
    if normal:
        keys.append(f"email:{normal}")
        values["email"] = normal
    if ext:
        keys.append(f"ext:{ext}")
    if xref:
        keys.append(xref)
    return Fact(ref, FactKind.PERSON, modified, keys=keys, member_of=member_of or [], values=values)


def attached_fact(
    kind: FactKind,
    source: str,
    rid: str,
    attach: list[str],
    modified: dt.datetime | None = None,
    **values: Any,
) -> Fact:
    return Fact(RecordRef(source, kind.value, rid), kind, modified, attach=attach, values=values)


def by_email(people: list[Person]) -> dict[str, Person]:
    return {p.values["email"]: p for p in people if p.values.get("email")}


def one(people: list[Person]) -> Person:
    assert len(people) == 1, people
    return people[0]


# ---- merging -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["Ann@Acme.example", "  ann@acme.EXAMPLE ", "mailto:ann@acme.example"])
def test_merges_across_sources_by_email(variant: str) -> None:
    sf = person_fact("sf", "Contact", "003A", email="ann@acme.example", first_name="Ann")
    vt = person_fact("vt", "Contacts", "12x5", email=variant, company="Acme")
    p = one(resolve([sf, vt], {}, as_of=AS_OF).people)
    assert p.refs == sorted([sf.ref, vt.ref])
    assert p.values["email"] == "ann@acme.example"
    assert (p.values["first_name"], p.values["company"], p.values["domain"]) == (
        "Ann",
        "Acme",
        "acme.example",
    )
    assert p.values["sources"] == ["sf", "vt"]


def test_merges_by_external_id() -> None:
    a = person_fact("sf", "Contact", "1", email="ann@old.example", ext="E-1")
    b = person_fact("vt", "Contacts", "2", email="ann@new.example", ext="E-1")
    c = person_fact("vt", "Contacts", "3", email="other@new.example", ext="E-2")
    people = resolve([a, b, c], {}, as_of=AS_OF).people
    assert sorted(len(p.refs) for p in people) == [1, 2]


def test_merges_a_converted_lead_with_its_contact_by_cross_reference() -> None:
    lead = person_fact("sf", "Lead", "00Q1", email="old@acme.example", xref="sf:Contact:0031", converted=True)
    contact = person_fact("sf", "Contact", "0031", email="new@acme.example", is_contact=True)
    p = one(resolve([lead, contact], {}, as_of=AS_OF).people)
    assert {str(r) for r in p.refs} == {"sf:Lead:00Q1", "sf:Contact:0031"}
    assert p.values["converted"] is True


def test_transitive_merges() -> None:
    a = person_fact("sf", "Contact", "1", email="a@x.example")
    b = person_fact("vt", "Contacts", "2", email="a@x.example", ext="E")
    c = person_fact("files", "people.csv", "3", ext="E")
    assert len(one(resolve([c, b, a], {}, as_of=AS_OF).people).refs) == 3


def test_merge_on_without_email_does_not_merge_on_email() -> None:
    a = person_fact("sf", "Contact", "1", email="a@x.example", ext="E-1")
    b = person_fact("vt", "Contacts", "2", email="a@x.example", ext="E-2")
    c = person_fact("vt", "Contacts", "3", email="z@x.example", ext="E-1")
    res = resolve([a, b, c], {}, as_of=AS_OF, merge_on=["external_id"])
    groups = sorted(sorted(str(r) for r in p.refs) for p in res.people)
    assert groups == [["sf:Contact:1", "vt:Contacts:3"], ["vt:Contacts:2"]]
    assert not any(k.startswith("email:") for k in res.identity)


def test_merge_on_email_only_ignores_external_ids() -> None:
    a = person_fact("sf", "Contact", "1", email="a@x.example", ext="E-1")
    b = person_fact("vt", "Contacts", "2", email="b@x.example", ext="E-1")
    assert len(resolve([a, b], {}, as_of=AS_OF, merge_on=["email"]).people) == 2


def test_deleted_facts_are_ignored() -> None:
    a = person_fact("sf", "Contact", "1", email="a@x.example")
    a.deleted = True
    assert resolve([a], {}, as_of=AS_OF).people == []


# ---- attaching enrichment, contracts and opportunities --------------------------------------------------


def test_enrichment_attaches_by_email_and_sums_visits() -> None:
    p = person_fact("sf", "Contact", "1", email="a@x.example")
    visits1 = attached_fact(
        FactKind.ENRICHMENT, "web", "a", ["email:a@x.example"], web_visits=2, newsletter=False
    )
    visits2 = attached_fact(
        FactKind.ENRICHMENT, "web2", "a", ["email:a@x.example"], web_visits=3, newsletter=True
    )
    person = one(resolve([p, visits1, visits2], {}, as_of=AS_OF).people)
    assert person.values["web_visits"] == 5
    assert person.values["newsletter"] is True
    assert person.values["sources"] == ["sf", "web", "web2"]


def test_enrichment_attaches_by_external_id() -> None:
    p = person_fact("sf", "Contact", "1", email="a@x.example", ext="E-9")
    row = attached_fact(FactKind.ENRICHMENT, "scores", "E-9", ["ext:E-9"], review_score=9.5)
    assert one(resolve([p, row], {}, as_of=AS_OF).people).values["review_score"] == 9.5


def test_contract_and_opportunity_attach_by_account_membership() -> None:
    ann = person_fact("sf", "Contact", "1", email="ann@acme.example", member_of=["sf:Account:A1"])
    bob = person_fact("sf", "Contact", "2", email="bob@acme.example", member_of=["sf:Account:A1"])
    eve = person_fact("sf", "Contact", "3", email="eve@other.example", member_of=["sf:Account:A2"])
    contract = attached_fact(FactKind.CONTRACT, "sf", "800", ["sf:Account:A1"], contract_end=days(60))
    opp = attached_fact(
        FactKind.OPPORTUNITY, "sf", "006", ["sf:Account:A1"], opportunity_stage="won", opportunity_won=True
    )
    people = by_email(resolve([ann, bob, eve, contract, opp], {}, as_of=AS_OF).people)
    for email in ("ann@acme.example", "bob@acme.example"):
        assert people[email].values["contract_end"] == days(60)
        assert people[email].values["opportunity_won"] is True
    assert "contract_end" not in people["eve@other.example"].values
    # membership attaches, it does not merge
    assert len(people) == 3


def test_orphan_enrichment_rows_found_a_new_person() -> None:
    known = person_fact("sf", "Contact", "1", email="a@x.example")
    orphan = attached_fact(FactKind.ENRICHMENT, "web", "n", ["email:new@y.example"], web_visits=4)
    again = attached_fact(
        FactKind.CONTRACT, "comp", "n", ["email:new@y.example"], competitor="TeleCorp", contract_end=days(30)
    )
    res = resolve([known, orphan, again], {}, as_of=AS_OF)
    people = by_email(res.people)
    assert set(people) == {"a@x.example", "new@y.example"}
    new = people["new@y.example"]
    assert new.refs == []  # known only to marketing data
    assert new.values["web_visits"] == 4
    assert new.values["competitor_contract_end"] == days(30)
    assert res.identity["email:new@y.example"] == new.key
    assert res.orphans == 0


def test_an_opportunity_that_matches_nobody_is_an_orphan() -> None:
    opp = attached_fact(FactKind.OPPORTUNITY, "sf", "006", ["sf:Account:none"], opportunity_stage="open")
    res = resolve([opp], {}, as_of=AS_OF)
    assert (res.people, res.orphans) == ([], 1)


# ---- stable keys ---------------------------------------------------------------------------------------


def _facts() -> list[Fact]:
    return [
        person_fact("sf", "Contact", "1", email="a@x.example"),
        person_fact("vt", "Contacts", "2", email="a@x.example"),
        person_fact("vt", "Contacts", "3", email="b@x.example"),
        attached_fact(FactKind.ENRICHMENT, "web", "c", ["email:c@x.example"], web_visits=1),
    ]


def test_keys_are_stable_across_runs() -> None:
    first = resolve(_facts(), {}, as_of=AS_OF)
    keys = {p.values["email"]: p.key for p in first.people}
    assert len(set(keys.values())) == 3
    second = resolve(list(reversed(_facts())), first.identity, as_of=AS_OF + dt.timedelta(days=1))
    assert {p.values["email"]: p.key for p in second.people} == keys
    assert second.identity == first.identity
    assert second.aliases == {}


def test_a_new_record_leaves_existing_keys_alone() -> None:
    first = resolve(_facts(), {}, as_of=AS_OF)
    keys = {p.values["email"]: p.key for p in first.people}
    more = [*_facts(), person_fact("sf", "Contact", "9", email="0first@x.example")]
    second = resolve(more, first.identity, as_of=AS_OF)
    after = {p.values["email"]: p.key for p in second.people}
    assert {k: after[k] for k in keys} == keys
    assert after["0first@x.example"] not in keys.values()


def test_an_e_mail_change_keeps_the_key_through_the_record_id() -> None:
    first = resolve([person_fact("sf", "Contact", "1", email="a@x.example")], {}, as_of=AS_OF)
    second = resolve([person_fact("sf", "Contact", "1", email="a@new.example")], first.identity, as_of=AS_OF)
    assert one(second.people).key == one(first.people).key


def test_a_merge_of_two_known_people_keeps_the_smallest_key_and_reports_the_alias() -> None:
    a = person_fact("sf", "Contact", "1", email="a@x.example")
    b = person_fact("vt", "Contacts", "2", email="b@x.example", ext="E")
    first = resolve([a, b], {}, as_of=AS_OF)
    ka, kb = (by_email(first.people)[e].key for e in ("a@x.example", "b@x.example"))
    a_linked = person_fact("sf", "Contact", "1", email="a@x.example", ext="E")
    second = resolve([a_linked, b], first.identity, as_of=AS_OF)
    merged = one(second.people)
    survivor, retired = min(ka, kb), max(ka, kb)
    assert merged.key == survivor
    assert second.aliases == {retired: survivor}
    assert set(second.identity.values()) == {survivor}


def test_a_split_gives_each_side_its_own_key() -> None:
    a = person_fact("sf", "Contact", "1", email="a@x.example")
    b = person_fact("vt", "Contacts", "2", email="a@x.example")
    first = resolve([a, b], {}, as_of=AS_OF)
    key = one(first.people).key
    b_moved = person_fact("vt", "Contacts", "2", email="b@x.example")
    second = resolve([a, b_moved], first.identity, as_of=AS_OF)
    keys = [p.key for p in second.people]
    assert len(set(keys)) == 2, keys  # never two people under one key
    assert key in keys
    assert second.aliases == {}


# ---- precedence ----------------------------------------------------------------------------------------


def test_a_sales_decision_from_a_sales_source_beats_a_newer_marketing_value() -> None:
    crm = person_fact(
        "crm", "Lead", "1", email="a@x.example", modified=T0, lead_status="qualified_out", company="Old BV"
    )
    forms = person_fact(
        "forms",
        "signups.csv",
        "a",
        email="a@x.example",
        modified=T0 + dt.timedelta(days=30),
        lead_status="working",
        company="New BV",
    )
    roles = {"crm": "sales", "forms": "marketing"}
    p = one(resolve([crm, forms], {}, as_of=AS_OF, roles=roles).people)
    assert p.values["lead_status"] == "qualified_out"
    assert p.provenance["lead_status"] == "crm:Lead:1"
    # not a sales decision: the newer value wins
    assert p.values["company"] == "New BV"
    assert p.provenance["company"] == "forms:signups.csv:a"


def test_between_two_sales_sources_the_newer_decision_wins() -> None:
    sf = person_fact("sf", "Lead", "1", email="a@x.example", modified=T0, lead_status="working")
    vt = person_fact(
        "vt", "Leads", "2", email="a@x.example", modified=T0 + dt.timedelta(hours=1), lead_status="qualified"
    )
    p = one(resolve([vt, sf], {}, as_of=AS_OF, roles={"sf": "sales", "vt": "sales"}).people)
    assert p.values["lead_status"] == "qualified"


def test_files_without_a_time_count_as_oldest() -> None:
    crm = person_fact("crm", "Contact", "1", email="a@x.example", modified=T0, company="CRM BV")
    file = person_fact("file", "people.csv", "a", email="a@x.example", company="File BV")
    assert one(resolve([file, crm], {}, as_of=AS_OF).people).values["company"] == "CRM BV"


def test_source_priority_breaks_a_tie() -> None:
    a = person_fact("a_src", "x", "1", email="a@x.example", company="A")
    b = person_fact("b_src", "x", "1", email="a@x.example", company="B")
    assert (
        one(resolve([a, b], {}, as_of=AS_OF, source_priority=["b_src", "a_src"]).people).values["company"]
        == "B"
    )
    assert (
        one(resolve([a, b], {}, as_of=AS_OF, source_priority=["a_src", "b_src"]).people).values["company"]
        == "A"
    )


def test_opt_out_anywhere_wins() -> None:
    a = person_fact("a", "x", "1", email="a@x.example", opted_out=False, modified=T0 + dt.timedelta(days=9))
    b = person_fact("b", "x", "1", email="a@x.example", opted_out=True, modified=T0)
    assert one(resolve([a, b], {}, as_of=AS_OF).people).values["opted_out"] is True


# ---- contracts -----------------------------------------------------------------------------------------


def test_own_and_competitor_contracts_fold_apart() -> None:
    p = person_fact("sf", "Contact", "1", email="a@x.example")
    key = ["email:a@x.example"]
    facts = [
        p,
        attached_fact(
            FactKind.CONTRACT, "sf", "own-past", key, contract_end=days(-10), contract_start=days(-400)
        ),
        attached_fact(
            FactKind.CONTRACT, "sf", "own-near", key, contract_end=days(40), contract_start=days(-300)
        ),
        attached_fact(FactKind.CONTRACT, "sf", "own-far", key, contract_end=days(400)),
        attached_fact(FactKind.CONTRACT, "comp", "c1", key, competitor="TeleCorp", contract_end=days(200)),
        attached_fact(FactKind.CONTRACT, "comp", "c2", key, competitor="Netco", contract_end=days(20)),
    ]
    v = one(resolve(facts, {}, as_of=AS_OF).people).values
    assert v["contract_end"] == days(40)  # the nearest end on or after as-of
    assert v["contract_start"] == days(-300)
    assert v["competitor_contract_end"] == days(20)
    assert v["competitor"] == "Netco"


def test_when_every_contract_ended_the_latest_end_counts() -> None:
    key = ["email:a@x.example"]
    facts = [
        person_fact("sf", "Contact", "1", email="a@x.example"),
        attached_fact(FactKind.CONTRACT, "sf", "1", key, contract_end=days(-100)),
        attached_fact(FactKind.CONTRACT, "sf", "2", key, contract_end=days(-5)),
    ]
    v = one(resolve(facts, {}, as_of=AS_OF).people).values
    assert v["contract_end"] == days(-5)
    assert "competitor_contract_end" not in v


# ---- opportunities -------------------------------------------------------------------------------------


def opp(rid: str, stage: str, close: int | None = None, amount: float = 0.0) -> Fact:
    values: dict[str, Any] = {
        "opportunity_stage": stage,
        "opportunity_closed": stage in ("won", "lost"),
        "opportunity_won": stage == "won",
        "opportunity_amount": amount,
    }
    if close is not None:
        values["opportunity_close_date"] = days(close)
    return attached_fact(FactKind.OPPORTUNITY, "sf", rid, ["email:a@x.example"], **values)


def fold(*opps: Fact) -> dict[str, Any]:
    return one(
        resolve([person_fact("sf", "Contact", "1", email="a@x.example"), *opps], {}, as_of=AS_OF).people
    ).values


@pytest.mark.parametrize(
    ("opps", "expected"),
    [
        (
            [opp("1", "open", 10, 100.0)],
            {
                "opportunity_open": True,
                "opportunity_stage": "open",
                "opportunity_won": False,
                "opportunity_lost": False,
            },
        ),
        (
            [opp("1", "open", 10), opp("2", "proposal", 20)],
            {"opportunity_open": True, "opportunity_stage": "proposal", "opportunity_lost": False},
        ),
        (
            [opp("1", "won", -100, 500.0), opp("2", "proposal", 20, 100.0)],
            {
                "opportunity_open": True,
                "opportunity_stage": "won",
                "opportunity_won": True,
                "opportunity_amount": 600.0,
            },
        ),
        (
            [opp("1", "lost", -10)],
            {"opportunity_open": False, "opportunity_stage": "lost", "opportunity_lost": True},
        ),
        # lost only when the last closed one was lost
        (
            [opp("1", "lost", -100), opp("2", "won", -10)],
            {"opportunity_lost": False, "opportunity_won": True},
        ),
        ([opp("1", "won", -100), opp("2", "lost", -10)], {"opportunity_lost": True, "opportunity_won": True}),
        # something still open: not lost
        (
            [opp("1", "lost", -10), opp("2", "open", 30)],
            {"opportunity_lost": False, "opportunity_open": True},
        ),
    ],
)
def test_opportunity_folding(opps: list[Fact], expected: dict[str, Any]) -> None:
    values = fold(*opps)
    assert {k: values.get(k) for k in expected} == expected
    assert values["opportunity_count"] == len(opps)


def test_a_won_deal_beside_an_open_one_is_no_open_pipeline() -> None:
    values = fold(opp("1", "won", -100, 500.0), opp("2", "proposal", 20, 100.0), opp("3", "lost", -5, 70.0))
    assert values["opportunity_open_amount"] == 100.0
    assert values["opportunity_amount"] == 600.0  # open and won, as before
    assert fold(opp("1", "won", -100, 500.0))["opportunity_open_amount"] == 0.0
    # pipeline coverage weighs the open deal alone: the won 500 is revenue already
    model = StageModel.model_validate(load_preset("default"))
    figures = pipeline_figures(PipelineConfig(target=1000), model, [("opportunity", values)], AS_OF)
    assert figures["stages"]["opportunity"]["value"] == 100.0
    assert figures["value"] == 100.0


def test_won_date_is_the_latest_won_close_date() -> None:
    values = fold(opp("1", "won", -400), opp("2", "won", -20), opp("3", "lost", -5))
    assert values["won_date"] == days(-20)
    assert values["opportunity_close_date"] == days(-5)


def test_a_person_founded_by_enrichment_alone_carries_the_e_mail_it_joined_on() -> None:
    row = attached_fact(FactKind.ENRICHMENT, "web", "n", ["email:new@y.example"], web_visits=4)
    p = one(resolve([row], {}, as_of=AS_OF).people)
    assert (p.values["email"], p.values["domain"]) == ("new@y.example", "y.example")


# ---- cross-references mapped from a field (xref.<source>.<Object>) ---------------------------------------


def test_a_field_holding_another_crms_record_id_merges_the_two_records() -> None:
    from connector.mappers.fields import ObjectMapping, map_fields

    mapping = ObjectMapping.model_validate({"fields": {"cf_880": "xref.sf.prod.Contact", "email": "email"}})
    mapped = map_fields({"cf_880": "0035g00000ABCDEAA1", "email": "other@x.example"}, mapping)
    vt = Fact(
        RecordRef("vt", "Contacts", "12x4"),
        FactKind.PERSON,
        keys=["vt:Contacts:12x4", "email:other@x.example"],
        values=mapped.values,
        extra=mapped.extra,
    )
    sf = person_fact("sf.prod", "Contact", "0035g00000ABCDEAA1", email="ann@x.example")
    person = one(resolve([sf, vt], {}, as_of=AS_OF).people)
    assert {str(r) for r in person.refs} == {"vt:Contacts:12x4", "sf.prod:Contact:0035g00000ABCDEAA1"}


def test_an_xref_target_must_name_a_source_and_an_object() -> None:
    from pydantic import ValidationError

    from connector.mappers.fields import ObjectMapping

    with pytest.raises(ValidationError, match=r"xref.<source name>.<Object>"):
        ObjectMapping.model_validate({"fields": {"cf_880": "xref.Contact"}})
