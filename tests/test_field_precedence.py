"""Precedence per field: a value is as new as its own last change, not as the record it sits on.

Reading compares each record with its stored previous facts and stamps every value with when it last changed;
identity resolution lets the value that changed last win. So an edit of one field (a company name) never makes
another field of that record (a sales decision) look newer than a decision taken since in another CRM.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from connector.context import RunContext
from connector.identity import resolve
from connector.reading import new_stats, read_source
from connector.schema import Fact, FactKind, RecordRef
from connector.sources.base import Batch
from connector.state import StateStore
from connector.state_codec import fact_json

AS_OF = dt.date(2026, 11, 23)
T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def lead(
    source: str, rid: str, modified: dt.datetime, changed: dict[str, dt.datetime] | None = None, **values: Any
) -> Fact:
    ref = RecordRef(source, "Lead", rid)
    return Fact(
        ref,
        FactKind.PERSON,
        modified,
        keys=[str(ref), "email:ann@x.example"],
        values={"email": "ann@x.example", **values},
        changed_at=changed or {},
    )


# ---- identity: the precedence rule -------------------------------------------------------------------------


def test_a_decision_stands_when_another_field_of_the_other_record_changed_later() -> None:
    # vtiger: qualified out at T0+2h. Salesforce: the old status dates from T0, only the company moved at T0+3h.
    vt = lead("vt", "2", T0 + 2 * HOUR, lead_status="qualified_out", company="Acme")
    sf = lead(
        "sf",
        "1",
        T0 + 3 * HOUR,
        {"email": T0, "lead_status": T0},
        lead_status="new",
        company="Acme Holding",
    )
    roles = {"sf": "sales", "vt": "sales"}
    p = resolve([sf, vt], {}, as_of=AS_OF, roles=roles).people[0]
    assert p.values["lead_status"] == "qualified_out"
    assert p.provenance["lead_status"] == "vt:Lead:2"
    # the field that did change later still wins
    assert p.values["company"] == "Acme Holding"
    assert p.provenance["company"] == "sf:Lead:1"


def test_a_value_without_a_stamp_is_as_new_as_its_record() -> None:
    # facts stored before stamps existed carry none: the record's modified time stands in
    vt = lead("vt", "2", T0 + 2 * HOUR, lead_status="qualified_out")
    sf = lead("sf", "1", T0 + 3 * HOUR, lead_status="new")
    p = resolve([sf, vt], {}, as_of=AS_OF).people[0]
    assert p.values["lead_status"] == "new"


def test_sales_role_still_beats_a_later_marketing_change_and_priority_still_breaks_ties() -> None:
    crm = lead("crm", "1", T0, lead_status="qualified_out", company="Old BV")
    form = lead("forms", "a", T0 + HOUR, {"lead_status": T0 + HOUR}, lead_status="working", company="New BV")
    p = resolve([crm, form], {}, as_of=AS_OF, roles={"crm": "sales", "forms": "marketing"}).people[0]
    assert p.values["lead_status"] == "qualified_out"  # (1) sales over marketing
    assert p.values["company"] == "New BV"  # (2) the later change
    a = lead("a_src", "1", T0 + 5 * HOUR, {"company": T0}, company="A")
    b = lead("b_src", "1", T0 + HOUR, {"company": T0}, company="B")
    for order, expected in ((["a_src", "b_src"], "A"), (["b_src", "a_src"], "B")):
        # (3) the same change time: source_priority decides, whatever the records' modified times say
        person = resolve([a, b], {}, as_of=AS_OF, source_priority=order).people[0]
        assert person.values["company"] == expected


# ---- schema: the stored form ---------------------------------------------------------------------------------


def test_stamps_survive_the_stored_json_form_and_old_payloads_still_decode() -> None:
    fact = lead("sf", "1", T0 + HOUR, {"lead_status": T0}, lead_status="new", company="Acme")
    back = Fact.from_json(json.loads(json.dumps(fact.to_json())))
    assert back.changed("lead_status") == T0
    assert back.changed("company") == T0 + HOUR

    old = fact.to_json()
    del old["changed_at"]  # a payload written before per-field stamps
    legacy = Fact.from_json(old)
    assert legacy.changed_at == {}
    assert legacy.changed("lead_status") == T0 + HOUR


# ---- reading: stamping each value from the stored previous facts -----------------------------------------------


class LeadSource:
    """An incremental CRM read: hands out whatever lead rows the test put in."""

    name = "crm"

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        yield Batch(object="Lead", records=list(self.rows), deleted=list(self.deleted), cursor="c")

    def map(self, obj: str, raw: dict[str, Any]) -> Fact:
        values = {k: v for k, v in raw.items() if k not in ("Id", "modified")}
        ref = RecordRef("crm", obj, raw["Id"])
        return Fact(ref, FactKind.PERSON, raw["modified"], keys=[str(ref)], values=values)

    def mapping_for(self, obj: str) -> None:
        return None

    def close(self) -> None:
        """Nothing to release."""


def _read(store: StateStore, source: LeadSource, **row: Any) -> Fact | None:
    source.rows = [{"Id": "1", **row}] if row else []
    ctx = RunContext(as_of=AS_OF, started_at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC))
    read_source(store, source, ctx, new_stats(), 1, Counter())
    facts = list(store.all_facts())
    return facts[0] if facts else None


def test_reading_stamps_each_value_with_when_it_last_changed(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    source = LeadSource()
    # first read: every value changed when the record did
    fact = _read(store, source, modified=T0, lead_status="new", company="Acme")
    assert fact is not None
    assert fact.changed("lead_status") == fact.changed("company") == T0

    # only the company changed: the status keeps its stamp
    fact = _read(store, source, modified=T0 + HOUR, lead_status="new", company="Acme Holding")
    assert fact is not None
    assert fact.modified_at == T0 + HOUR
    assert fact.changed("lead_status") == T0
    assert fact.changed("company") == T0 + HOUR

    # the same values with a later modified time (our own label write coming back): nothing moves
    fact = _read(store, source, modified=T0 + 2 * HOUR, lead_status="new", company="Acme Holding")
    assert fact is not None
    assert fact.changed("lead_status") == T0
    assert fact.changed("company") == T0 + HOUR

    # A -> B -> A: stamped at the last change, not at the first time the value was seen
    _read(store, source, modified=T0 + 3 * HOUR, lead_status="working", company="Acme Holding")
    fact = _read(store, source, modified=T0 + 4 * HOUR, lead_status="new", company="Acme Holding")
    assert fact is not None
    assert fact.changed("lead_status") == T0 + 4 * HOUR
    assert fact.changed("company") == T0 + HOUR

    # a value that appears where there was none is a change too
    fact = _read(
        store, source, modified=T0 + 5 * HOUR, lead_status="new", company="Acme Holding", country="NL"
    )
    assert fact is not None
    assert fact.changed("country") == T0 + 5 * HOUR
    assert fact.changed("lead_status") == T0 + 4 * HOUR

    # a deleted record takes its stamps with it; the same id read again later starts afresh
    source.deleted = ["1"]
    assert _read(store, source) is None
    source.deleted = []
    fact = _read(store, source, modified=T0 + 6 * HOUR, lead_status="new", company="Acme Holding")
    assert fact is not None
    assert fact.changed("lead_status") == T0 + 6 * HOUR
    store.close()


def test_a_fact_stored_without_stamps_falls_back_to_its_modified_time(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    source = LeadSource()
    _read(store, source, modified=T0, lead_status="new", company="Acme")
    # rewrite the stored payload the way a connector without per-field stamps kept it
    (payload,) = [fact_json(r[0]) for r in store.db.execute("SELECT payload FROM facts")]
    payload.pop("changed_at", None)
    with store.transaction():
        store.db.execute("UPDATE facts SET payload=?", (json.dumps(payload, sort_keys=True),))

    fact = _read(store, source, modified=T0 + HOUR, lead_status="new", company="Acme Holding")
    assert fact is not None
    assert fact.changed("lead_status") == T0
    assert fact.changed("company") == T0 + HOUR
    store.close()
