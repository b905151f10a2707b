"""The SQLite state store: transactions, dry runs, the run lock and round trips of what a run remembers."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from spine_helpers import AS_OF
from waiting import HANG_GUARD

from connector.errors import LockedError
from connector.schema import Fact, FactKind, RecordRef
from connector.state import StateStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "state" / "s.sqlite")
    yield s
    s.close()


def fact(rid: str, **values: object) -> Fact:
    ref = RecordRef("crm", "Lead", rid)
    return Fact(
        ref,
        FactKind.PERSON,
        dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC),
        keys=[str(ref), f"email:{rid}@x.example"],
        values=dict(values),
    )


def outside(path: Path, sql: str) -> list[tuple[object, ...]]:
    """What another connection (another process) sees: only committed data."""
    db = sqlite3.connect(str(path))
    try:
        return [tuple(r) for r in db.execute(sql)]
    finally:
        db.close()


# ---- transactions ----------------------------------------------------------------------------------------


def test_a_transaction_commits(store: StateStore) -> None:
    with store.transaction():
        store.set_cursor("crm", "Lead", "2026-01-01T00:00:00Z")
    assert outside(store.path, "SELECT value FROM cursors") == [("2026-01-01T00:00:00Z",)]


def test_a_transaction_rolls_back_on_error(store: StateStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_facts([fact("1", lead_status="new")])
        store.set_cursor("crm", "Lead", "c1")
        raise RuntimeError("boom")
    assert store.cursors("crm") == {}
    assert list(store.all_facts()) == []
    # the store is usable afterwards
    with store.transaction():
        store.set_cursor("crm", "Lead", "c2")
    assert store.cursors("crm") == {"Lead": "c2"}


def test_a_nested_transaction_rolls_back_alone(store: StateStore) -> None:
    with store.transaction():
        store.set_cursor("crm", "Lead", "outer")
        with pytest.raises(ValueError), store.transaction():
            store.set_cursor("crm", "Contact", "inner")
            raise ValueError("inner fails")
    assert store.cursors("crm") == {"Lead": "outer"}


def test_uncommitted_work_is_invisible_to_other_connections(store: StateStore) -> None:
    with store.transaction():
        store.set_cursor("crm", "Lead", "c1")
        assert outside(store.path, "SELECT * FROM cursors") == []


def test_dry_run_rolls_back_and_sees_its_own_writes(store: StateStore) -> None:
    with store.dry_run():
        with store.transaction():  # a savepoint inside the dry run
            store.upsert_facts([fact("1")])
            store.set_cursor("crm", "Lead", "c1")
        assert store.cursors("crm") == {"Lead": "c1"}
        assert [f.ref.id for f in store.all_facts()] == ["1"]
    assert store.cursors("crm") == {}
    assert list(store.all_facts()) == []


def test_dry_run_rolls_back_on_error_too(store: StateStore) -> None:
    with pytest.raises(KeyError), store.dry_run():
        store.set_cursor("crm", "Lead", "c1")
        raise KeyError("x")
    assert store.cursors("crm") == {}


# ---- the run lock ---------------------------------------------------------------------------------------


def test_the_lock_keeps_a_second_run_out(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first, second = StateStore(path), StateStore(path)
    try:
        first.lock()
        with pytest.raises(LockedError, match="another run holds"):
            second.lock()
        first.unlock()
        second.lock()  # free again once released
        second.unlock()
    finally:
        first.close()
        second.close()


def test_the_lock_holds_against_another_process(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = StateStore(path)
    store.lock()
    try:
        code = (
            "import sys\nfrom connector.state import StateStore\nfrom connector.errors import LockedError\n"
            f"s = StateStore({str(path)!r})\n"
            "try:\n    s.lock()\nexcept LockedError:\n    sys.exit(5)\nsys.exit(0)\n"
        )
        assert subprocess.run([sys.executable, "-c", code], timeout=HANG_GUARD).returncode == 5
    finally:
        store.close()
    assert subprocess.run([sys.executable, "-c", code], timeout=HANG_GUARD).returncode == 0


# ---- round trips ------------------------------------------------------------------------------------------


def test_facts_round_trip(store: StateStore) -> None:
    original = fact("1", lead_status="working", contract_end=dt.date(2027, 1, 31), web_visits=3)
    original.extra = {"seen": dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC)}
    with store.transaction():
        store.upsert_facts([original, fact("2")])
    loaded = {f.ref.id: f for f in store.all_facts()}
    assert loaded["1"] == original
    assert store.count_facts() == {"crm": 2}
    assert store.fact_ids("crm", "Lead") == {"1", "2"}
    with store.transaction():
        store.upsert_facts([fact("1", lead_status="qualified")])
        assert store.delete_facts("crm", "Lead", ["2", "missing"]) == 1
    assert [(f.ref.id, f.values) for f in store.all_facts()] == [("1", {"lead_status": "qualified"})]


def test_cursors_round_trip(store: StateStore) -> None:
    with store.transaction():
        store.set_cursor("crm", "Lead", "a")
        store.set_cursor("crm", "Contact", "b")
        store.set_cursor("vt", "Leads", "c")
        store.set_cursor("crm", "Lead", "a2")
    assert store.cursors("crm") == {"Lead": "a2", "Contact": "b"}
    assert store.cursors("vt") == {"Leads": "c"}


def test_identity_replace_drops_stale_keys(store: StateStore) -> None:
    with store.transaction():
        store.replace_identity({"email:a": "P1", "email:b": "P2"})
    with store.transaction():
        store.replace_identity({"email:a": "P1", "email:c": "P1"})
    assert store.identity() == {"email:a": "P1", "email:c": "P1"}


def test_labels_round_trip(store: StateStore) -> None:
    ref = RecordRef("crm", "Lead", "1")
    with store.transaction():
        store.set_labels("sf", [(ref, "P1", "Lead")], run_id=1)
        store.set_labels("sf", [(ref, "P1", "Prospect")], run_id=2)
        store.set_labels("vt", [(ref, "P1", "Lead")], run_id=2)
    assert store.labels("sf") == {"crm:Lead:1": "Prospect"}
    with store.transaction():
        store.forget_labels("sf", ["crm:Lead:1"])
    assert (store.labels("sf"), store.labels("vt")) == ({}, {"crm:Lead:1": "Lead"})


def test_memberships_round_trip(store: StateStore) -> None:
    with store.transaction():
        store.add_members("files", "warm", ["P1", "P2"], AS_OF, run_id=1)
        store.add_members("files", "warm", ["P2"], AS_OF, run_id=2)  # idempotent
        store.add_members("files", "cold", ["P3"], AS_OF, run_id=1)
        store.remove_members("files", "warm", ["P1"])
    assert store.members("files") == {"warm": {"P2"}, "cold": {"P3"}}
    assert store.members("other") == {}


def test_rejected_round_trip_counts_attempts_and_keeps_the_payload(store: StateStore) -> None:
    with store.transaction():
        store.reject("read", "crm", "Lead:1", "bad date", 1, obj="Lead", code="BAD_VALUE", payload={"d": "x"})
        store.reject("read", "crm", "Lead:1", "still bad", 2, obj="Lead", code="BAD_VALUE")
        store.reject("write", "sf", "crm:Lead:2", "locked", 2, obj="label")
    (row,) = store.rejected("read", "crm")
    assert (row["reason"], row["attempts"], row["first_run"], row["last_run"]) == ("still bad", 2, 1, 2)
    assert row["payload"] == '{"d": "x"}'
    assert len(store.rejected()) == 2
    with store.transaction():
        store.clear_rejected("read", "crm", ["Lead:1"])
    assert [r["item"] for r in store.rejected()] == ["crm:Lead:2"]


def test_people_transitions_and_renames(store: StateStore) -> None:
    with store.transaction():
        store.save_person("P2", "lead", "lead", AS_OF, {"rule": "interest"}, {"refs": []}, 1)
        store.add_transition("P2", None, "lead", AS_OF, 1, "interest", "rule interest proposed lead")
        store.add_members("files", "warm", ["P2"], AS_OF, 1)
        store.save_person("P1", "prospect", "prospect", AS_OF, {}, {"refs": []}, 1)
        store.rename_person("P2", "P1")
    assert set(store.people()) == {"P1"}
    assert [(t["person_key"], t["to_stage"]) for t in store.transitions()] == [("P1", "lead")]
    assert store.members("files") == {"warm": {"P1"}}


def test_runs_are_recorded(store: StateStore) -> None:
    run_id = store.begin_run("run", AS_OF, dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC))
    store.finish_run(run_id, "ok", 0, {"people": {"total": 3}})
    (row,) = store.runs()
    assert (row["mode"], row["as_of"], row["outcome"], row["exit_code"]) == ("run", "2026-11-23", "ok", 0)
    assert row["summary"] == '{"people": {"total": 3}}'
