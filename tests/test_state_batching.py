"""State writes come in batches: a first run saves people and transitions with one statement per phase, not
one per person, and clearing rejections reads the pending set first instead of one DELETE per record read."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from spine_helpers import AS_OF, CONFIG_YAML, Project

from connector.pipeline import EXIT_OK, Runner
from connector.state_guard import GuardedConnection

PEOPLE = 300


@pytest.fixture
def many(tmp_path: Path) -> Project:
    proj = Project(tmp_path / "proj")
    proj.write("connector.yaml", CONFIG_YAML)
    rows = ["email;first_name;last_name;company;status;opt_out;external_id"]
    rows += [f"p{i}@acme.example;P{i};L{i};Acme;Working;nee;EXT-{i}" for i in range(PEOPLE)]
    proj.write("data/people.csv", "\n".join(rows) + "\n")
    proj.write("data/contracts.csv", "E-mail;Provider;Einddatum\n")
    proj.write("data/visits.jsonl", "")
    return proj


class Calls:
    """Every execute() and executemany() the state makes, by the first words of its SQL."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.execute: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()  # rows handed to executemany
        execute, executemany = GuardedConnection.execute, GuardedConnection.executemany

        def counting_execute(conn: GuardedConnection, sql: str, params: Any = ()) -> Any:
            self.execute[_head(sql)] += 1
            return execute(conn, sql, params)

        def counting_executemany(conn: GuardedConnection, sql: str, rows: Any) -> Any:
            rows = list(rows)
            self.rows[_head(sql)] += len(rows)
            return executemany(conn, sql, rows)

        monkeypatch.setattr(GuardedConnection, "execute", counting_execute)
        monkeypatch.setattr(GuardedConnection, "executemany", counting_executemany)


def _head(sql: str) -> str:
    return " ".join(sql.split()[:3])


def test_a_first_run_saves_people_and_transitions_in_one_statement_each(
    many: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch)
    summary = Runner(many.config()).execute("run", AS_OF)
    assert summary.exit_code == EXIT_OK, summary.errors
    assert summary.people["total"] == PEOPLE
    assert sum(summary.transitions.values()) == PEOPLE
    assert calls.execute["INSERT INTO people"] == 0
    assert calls.execute["INSERT INTO transitions"] == 0
    assert calls.rows["INSERT INTO people"] == PEOPLE
    assert calls.rows["INSERT INTO transitions"] == PEOPLE
    assert len(many.query("SELECT * FROM transitions")) == PEOPLE


def test_transition_ids_keep_growing_after_rows_are_gone(many: Project) -> None:
    """Ids given by the batch never reuse one AUTOINCREMENT handed out before (the event feed's ids rest on
    them)."""
    Runner(many.config()).execute("run", AS_OF)
    import sqlite3

    db = sqlite3.connect(many.state_path)
    top = db.execute("SELECT MAX(id) FROM transitions").fetchone()[0]
    db.execute("DELETE FROM transitions WHERE id=?", (top,))
    db.execute("DELETE FROM people WHERE person_key=(SELECT person_key FROM people LIMIT 1)")
    db.commit()
    db.close()
    # a person row deleted by hand is news only to a full recompute (an incremental run trusts the state)
    Runner(many.config(), full_recompute=True).execute("run", AS_OF)
    new = many.query("SELECT id FROM transitions WHERE run_id=2")
    assert [r[0] for r in new] == [top + 1]


def test_clearing_rejections_with_nothing_pending_deletes_nothing(
    many: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch)
    summary = Runner(many.config()).execute("run", AS_OF)
    assert summary.exit_code == EXIT_OK, summary.errors
    assert calls.rows["DELETE FROM rejected"] == 0
    assert calls.execute["DELETE FROM rejected"] == 0


def test_a_pending_rejection_is_still_cleared_once_fixed(many: Project) -> None:
    text = (many.root / "data/people.csv").read_text()
    many.write("data/people.csv", text + "not-an-email;X;Y;Z;Working;nee;EXT-X\n")
    first = Runner(many.config()).execute("run", AS_OF)
    assert first.rejected["pending"] == 1
    many.write("data/people.csv", text + "x@acme.example;X;Y;Z;Working;nee;EXT-X\n")
    second = Runner(many.config()).execute("run", AS_OF)
    assert second.exit_code == EXIT_OK, second.errors
    assert second.rejected["pending"] == 0
