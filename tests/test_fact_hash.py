"""content_hash builds the hashed text directly: it must stay the hash of `Fact.to_json` without its times,
byte for byte, or every fact in an existing state would look changed (and be decided again) after an upgrade.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.fact_index import content_hash
from connector.schema import Fact, FactKind, RecordRef


def reference_hash(fact: Fact) -> bytes:
    """The hash as it was computed before: from to_json, times left out."""
    content = {k: v for k, v in fact.to_json().items() if k not in ("modified_at", "changed_at")}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


names = st.text(alphabet="abcxyz_.é", min_size=1, max_size=8)
stamps = st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC))
plain = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.dates(),
    stamps,
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(Decimal),  # not JSON: default=str
)
values = st.one_of(plain, st.lists(plain, max_size=3), st.dictionaries(names, plain, max_size=2))
keys = st.lists(st.text(alphabet="abc:@.", min_size=1, max_size=10), max_size=3)


def facts_of(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Fact]:
    """Facts whose values and extras are drawn from `value`."""
    return st.builds(
        Fact,
        ref=st.builds(RecordRef, names, names, st.text(alphabet="ab:1é", min_size=1, max_size=6)),
        kind=st.sampled_from(list(FactKind)),
        modified_at=st.none() | stamps,
        keys=keys,
        attach=keys,
        member_of=keys,
        values=st.dictionaries(names, value, max_size=4),
        extra=st.dictionaries(names, value, max_size=3),
        changed_at=st.dictionaries(names, stamps, max_size=2),
    )


facts = facts_of(values)


@settings(max_examples=500, deadline=None)
@given(facts)
def test_the_hash_is_the_hash_of_to_json_without_times(fact: Fact) -> None:
    assert content_hash(fact) == reference_hash(fact)


def test_times_are_not_content() -> None:
    ref = RecordRef("crm", "Lead", "1")
    one = Fact(ref=ref, kind=FactKind.PERSON, values={"email": "a@b.example"})
    other = Fact(
        ref=ref,
        kind=FactKind.PERSON,
        values={"email": "a@b.example"},
        modified_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        changed_at={"email": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)},
    )
    assert content_hash(one) == content_hash(other)
    assert content_hash(one) != content_hash(
        Fact(ref=ref, kind=FactKind.PERSON, values={"email": "c@b.example"})
    )


json_plain = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=12), st.dates(), stamps
)
json_facts = facts_of(json_plain)


@settings(max_examples=300, deadline=None)
@given(json_facts)
def test_a_fact_comes_back_from_its_json_as_it_was(fact: Fact) -> None:
    # from_json skips decode_value for plain values: dates and datetimes must still come back as such
    assert Fact.from_json(json.loads(json.dumps(fact.to_json()))) == fact
