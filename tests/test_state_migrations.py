"""The state's schema version: a version-1 state (tests/data/state-v1.sqlite, written by the version-1 code on
the spine's files-only project) is migrated on open, each step in its own transaction; a fresh state ends with
the same schema; a migration that fails leaves the state at the last version that completed."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from spine_helpers import AS_OF, Project

from connector import state_migrations
from connector.cli import cli
from connector.state import StateStore
from connector.state_migrations import SCHEMA_VERSION

pytestmark = pytest.mark.reliability("State")

V1_STATE = Path(__file__).parent / "data" / "state-v1.sqlite"


def schema(path: Path) -> set[tuple[str, str]]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        return {(r[0], " ".join(r[1].split())) for r in rows}
    finally:
        db.close()


def version(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
    finally:
        db.close()


def test_a_version_1_state_is_migrated_on_open_and_keeps_its_data(project: Project) -> None:
    project.state_path.parent.mkdir(parents=True)
    shutil.copy(V1_STATE, project.state_path)
    assert version(project.state_path) == "1"
    result = CliRunner().invoke(
        cli, ["run", "-c", str(project.config_path), "--as-of", AS_OF.isoformat(), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert version(project.state_path) == str(SCHEMA_VERSION) == "12"
    names = {name for name, _ in schema(project.state_path)}
    assert {
        "labels_person",
        "memberships_person",
        "baselines",
        "membership_records",
        "suppressions",
        "erasure_pending",
        "tasks",
        "fact_counts",
        "people_pipeline",
    } <= names
    # migration 12 counted the facts the state already held, and the run kept them counted
    assert project.query("SELECT source, object, n FROM fact_counts ORDER BY 1, 2") == project.query(
        "SELECT source, object, COUNT(*) FROM facts GROUP BY source, object ORDER BY 1, 2"
    )
    # every source the version-1 state had read counts as read: the run was not held for a baseline
    assert project.query("SELECT source FROM baselines ORDER BY source") == project.query(
        "SELECT DISTINCT source FROM cursors ORDER BY source"
    )
    # the same people, cursors and memberships: nothing new to decide or write
    assert project.query("SELECT COUNT(*) FROM people") == [(6,)]
    assert project.query("SELECT COUNT(*) FROM runs") == [(2,)]
    assert '"transitions": {}' in result.output


def test_a_fresh_state_has_the_schema_of_a_migrated_one(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite"
    shutil.copy(V1_STATE, old)
    StateStore(old).close()
    fresh = tmp_path / "fresh.sqlite"
    StateStore(fresh).close()
    assert schema(fresh) == schema(old)
    assert version(fresh) == version(old) == str(state_migrations.SCHEMA_VERSION)


def test_a_failing_migration_leaves_the_last_completed_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.sqlite"
    shutil.copy(V1_STATE, path)
    broken = {
        **state_migrations.MIGRATIONS,
        3: ("a step that fails half way", ("CREATE TABLE half (x)", "INSERT INTO no_such_table VALUES (1)")),
    }
    monkeypatch.setattr(state_migrations, "MIGRATIONS", broken)
    monkeypatch.setattr(state_migrations, "SCHEMA_VERSION", 3)
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        StateStore(path)
    assert version(path) == "2"  # migration 2 committed, 3 rolled back as a whole
    assert "half" not in {name for name, _ in schema(path)}
