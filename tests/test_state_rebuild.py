"""`connector state rebuild`: a damaged state is moved aside to <state>.broken-<UTC stamp> (with its -wal and
-shm), a fresh state takes its place and the next run reads every source from scratch; a healthy state is only
replaced with --force; a read-only state, a running job, or another program's database are left alone."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner, Result
from spine_helpers import AS_OF, Project

import connector.state
from connector.cli import cli

pytestmark = pytest.mark.reliability("State")


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--log-level", "warning", *args], catch_exceptions=False)


def run(project: Project) -> Result:
    return invoke("run", "-c", str(project.config_path), "--as-of", AS_OF.isoformat(), "--json")


def rebuild(project: Project, *extra: str) -> Result:
    return invoke("state", "rebuild", "-c", str(project.config_path), *extra)


def aside(project: Project) -> list[Path]:
    return sorted(project.state_path.parent.glob("state.sqlite.broken-*"))


def test_a_damaged_state_is_moved_aside_and_the_next_run_reads_everything(project: Project) -> None:
    assert run(project).exit_code == 0
    broken = b"not a database any more " * 500
    project.state_path.write_bytes(broken)
    assert run(project).exit_code == 7

    result = rebuild(project)
    assert result.exit_code == 0, result.output
    (moved,) = aside(project)
    assert re.fullmatch(r"state\.sqlite\.broken-\d{8}T\d{6}Z", moved.name)
    assert moved.read_bytes() == broken  # kept as it was, for a look or a restore
    assert "not a SQLite database" in result.stdout
    assert f"moved {project.state_path} -> {moved}" in result.stdout
    assert "reads every source from scratch" in result.stdout

    after = run(project)
    assert after.exit_code == 0, after.output
    assert '"records": 4' in after.output  # crm's four people read again, not "unchanged"
    assert project.query("SELECT COUNT(*) FROM people") == [(6,)]


def test_a_healthy_state_is_kept_unless_forced(project: Project) -> None:
    assert run(project).exit_code == 0
    kept = rebuild(project)
    assert kept.exit_code == 2
    assert "healthy" in kept.stderr and "--force" in kept.stderr
    assert aside(project) == []

    forced = rebuild(project, "--force")
    assert forced.exit_code == 0, forced.output
    assert len(aside(project)) == 1
    assert project.query("SELECT COUNT(*) FROM people") == [(0,)]


def test_not_while_a_run_holds_the_lock(project: Project) -> None:
    project.state_path.parent.mkdir(parents=True)
    project.state_path.write_bytes(b"x" * 4096)
    handle = connector.state.take_run_lock(project.state_path)
    try:
        result = rebuild(project)
    finally:
        handle.close()
    assert result.exit_code == 5
    assert aside(project) == []


def test_a_read_only_state_is_left_alone(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(project).exit_code == 0
    if os.geteuid() == 0:  # chmod does not stop root: open through SQLite's read-only mode instead

        def read_only(path: Path) -> sqlite3.Connection:
            return sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )

        monkeypatch.setattr(connector.state, "open_sqlite", read_only)
    else:
        project.state_path.chmod(0o444)
    result = rebuild(project)
    assert result.exit_code == 7
    assert "is read-only" in result.stderr and "would not help" in result.stderr
    assert aside(project) == []


def test_another_programs_database_is_not_moved(project: Project) -> None:
    project.state_path.parent.mkdir(parents=True)
    db = sqlite3.connect(project.state_path)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    db.commit()
    db.close()
    result = rebuild(project, "--force")
    assert result.exit_code == 7
    assert "not a connector state" in result.stderr
    assert aside(project) == []
