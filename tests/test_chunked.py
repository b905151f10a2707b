"""The full path resolves and decides everyone one part at a time (chunked.py), with the same result.

Memory is judged by what is alive, not by timing or RSS: every fact decoded from the state is tracked (weak
references), and a first run of many unrelated people must never hold more than about one part of them. The
property test runs the same random histories (test_incremental.py's) with parts of a single record and with
one part for everyone: people, keys, merges, splits, stages and segment files must not depend on the cut.
"""

from __future__ import annotations

import datetime as dt
import weakref
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spine_helpers import AS_OF, Project
from test_incremental import CLOCK, make, outcome, state, step, write_inputs

from connector import chunked
from connector import state as state_module
from connector.pipeline import Runner
from connector.schema import Fact
from connector.state import StateStore


def _people_csv(n: int) -> str:
    rows = ["email;first_name;last_name;company;status;opt_out;external_id"]
    rows += [f"p{i}@bench.example;F{i};L{i};C{i};New;nee;" for i in range(n)]
    return "\n".join(rows) + "\n"


def _empty_inputs(project: Project) -> None:
    project.write("data/contracts.csv", "E-mail;Provider;Einddatum\n")
    project.write("data/visits.jsonl", "")


class _Alive:
    """Every Fact the state decodes, followed by a finalizer: how many are alive at once, at most."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    def _gone(self) -> None:
        self.now -= 1

    def decode(self, original: Any) -> Any:
        def wrapped(payload: bytes) -> Fact:
            fact = original(payload)
            weakref.finalize(fact, self._gone)
            self.now += 1
            self.most = max(self.most, self.now)
            return fact

        return wrapped


def test_a_first_run_never_holds_every_fact_at_once(project: Project, monkeypatch: Any) -> None:
    project.write("data/people.csv", _people_csv(600))
    _empty_inputs(project)
    alive = _Alive()
    monkeypatch.setattr(state_module, "decode_fact", alive.decode(state_module.decode_fact))
    monkeypatch.setattr(chunked, "PART", 50)
    summary = Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    assert summary.people["total"] == 600
    assert project.query("SELECT COUNT(*) FROM people") == [(600,)]
    # resolving everyone at once decoded all 600 facts into one list; a part is 50 records
    assert 0 < alive.most <= 2 * 50, alive.most


def test_full_recompute_of_a_stored_state_holds_one_part_too(project: Project, monkeypatch: Any) -> None:
    project.write("data/people.csv", _people_csv(300))
    _empty_inputs(project)
    Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)
    alive = _Alive()
    monkeypatch.setattr(state_module, "decode_fact", alive.decode(state_module.decode_fact))
    monkeypatch.setattr(chunked, "PART", 40)
    summary = Runner(project.config(), clock=lambda: CLOCK, full_recompute=True).execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    assert summary.people["total"] == 300 and summary.transitions == {}
    assert 0 < alive.most <= 2 * 40, alive.most


def test_parts_never_split_a_person_or_a_former_person(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    try:
        db = store.db
        # a: two records sharing an e-mail; b: a contract attached by e-mail; c: two records that share no key
        # any more but were one person before (a split); d: alone
        keys = [
            ("email:a@x.example", "crm:Lead:1"),
            ("email:a@x.example", "crm:Contact:2"),
            ("email:b@x.example", "crm:Lead:3"),
            ("email:b@x.example", "files:row:4"),
            ("email:c1@x.example", "crm:Lead:5"),
            ("email:c2@x.example", "crm:Lead:6"),
        ]
        with store.transaction():
            for source, obj, rid in [r.split(":") for r in {ref for _, ref in keys} | {"crm:Lead:7"}]:
                db.execute(
                    "INSERT INTO facts (source, object, record_id, kind, payload) VALUES (?, ?, ?, ?, ?)",
                    (source, obj, rid, "person", b""),
                )
            db.executemany("INSERT INTO fact_keys VALUES (?, ?)", keys)
            db.executemany(
                "INSERT INTO identity VALUES (?, ?)",
                [("crm:Lead:5", "P5"), ("crm:Lead:6", "P5"), ("email:c1@x.example", "P5")],
            )
        found = [sorted(p) for p in chunked.parts(store, size=1)]
        assert sorted(found) == [
            ["crm:Contact:2", "crm:Lead:1"],
            ["crm:Lead:3", "files:row:4"],
            ["crm:Lead:5", "crm:Lead:6"],
            ["crm:Lead:7"],
        ]
        # bigger parts hold whole groups, at least `size` records each but the last
        bigger = [sorted(p) for p in chunked.parts(store, size=3)]
        assert sorted(r for p in bigger for r in p) == sorted(r for p in found for r in p)
        assert all(len(p) >= 3 for p in bigger[:-1]) and len(bigger) < len(found)
        assert all(any(set(g) <= set(p) for p in bigger) for g in found)
    finally:
        store.close()


def _same_state(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]) -> None:
    # transitions are numbered in the order people were decided, which follows the parts: compare without ids
    for name in a:
        left, right = a[name], b[name]
        if name == "transitions":
            left, right = sorted((r[1:] for r in left), key=repr), sorted((r[1:] for r in right), key=repr)
        assert left == right, name


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(step, min_size=2, max_size=5))
def test_parts_of_one_record_match_one_part_for_everyone(
    tmp_path_factory: Any, history: list[dict[str, Any]]
) -> None:
    root = tmp_path_factory.mktemp("parts")
    small, whole = make(root / "small"), make(root / "whole")
    as_of = AS_OF
    for data in history:
        as_of += dt.timedelta(days=data["days"])
        results = []
        for project, size in ((small, 1), (whole, 10**9)):
            write_inputs(project, data, as_of)
            with mock.patch.object(chunked, "PART", size):
                runner = Runner(project.config(), full_recompute=True, clock=lambda: CLOCK)
                results.append(runner.execute("run", as_of))
        assert outcome(results[0]) == outcome(results[1])
        _same_state(state(small), state(whole))
        assert small.segment_files() == whole.segment_files()
