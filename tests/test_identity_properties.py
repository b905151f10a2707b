"""Properties of identity resolution that must hold for any mix of records."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.identity import resolve
from connector.schema import Fact, FactKind, RecordRef

AS_OF = dt.date(2026, 11, 23)
EMAILS = [f"p{i}@x.example" for i in range(6)]
EXTS = [f"E{i}" for i in range(4)]


@st.composite
def person_facts(draw: st.DrawFn) -> list[Fact]:
    n = draw(st.integers(min_value=1, max_value=12))
    facts = []
    for i in range(n):
        source = draw(st.sampled_from(["sf", "vt", "file"]))
        ref = RecordRef(source, "Contact", str(i))
        keys = [str(ref)]
        email = draw(st.none() | st.sampled_from(EMAILS))
        ext = draw(st.none() | st.sampled_from(EXTS))
        if email:
            keys.append(f"email:{email}")
        if ext:
            keys.append(f"ext:{ext}")
        facts.append(Fact(ref, FactKind.PERSON, keys=keys, values={"email": email} if email else {}))
    return facts


def partition(people: list) -> set[frozenset[str]]:
    return {frozenset(str(r) for r in p.refs) for p in people}


@settings(max_examples=150, deadline=None)
@given(person_facts(), st.randoms(use_true_random=False))
def test_the_order_of_records_never_changes_who_is_one_person(facts: list[Fact], rnd) -> None:
    first = resolve(facts, {}, as_of=AS_OF)
    shuffled = list(facts)
    rnd.shuffle(shuffled)
    second = resolve(shuffled, {}, as_of=AS_OF)
    assert partition(first.people) == partition(second.people)
    assert {p.key for p in first.people} == {p.key for p in second.people}


@settings(max_examples=150, deadline=None)
@given(person_facts())
def test_records_sharing_a_key_are_one_person_and_keys_are_unique(facts: list[Fact]) -> None:
    people = resolve(facts, {}, as_of=AS_OF).people
    owner = {str(r): p.key for p in people for r in p.refs}
    assert len(owner) == len(facts)  # every record belongs to exactly one person
    assert len({p.key for p in people}) == len(people)
    for a in facts:
        for b in facts:
            if set(a.keys) & set(b.keys):
                assert owner[str(a.ref)] == owner[str(b.ref)]


@settings(max_examples=150, deadline=None)
@given(person_facts(), person_facts())
def test_known_people_keep_their_keys_when_more_records_arrive(old: list[Fact], new: list[Fact]) -> None:
    new = [
        Fact(
            RecordRef("new", f.ref.object, f.ref.id),
            f.kind,
            keys=[f"new:Contact:{f.ref.id}", *f.keys[1:]],
            values=f.values,
        )
        for f in new
    ]
    before = resolve(old, {}, as_of=AS_OF)
    after = resolve(old + new, before.identity, as_of=AS_OF)
    keys_after = {str(r): p.key for p in after.people for r in p.refs}
    for person in before.people:
        survivors = {keys_after[str(r)] for r in person.refs}
        # a person keeps their key unless a new record merged them with another known person
        assert len(survivors) == 1
        (key,) = survivors
        assert key == person.key or after.aliases.get(person.key) == key
