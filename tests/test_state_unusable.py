"""A state that cannot be trusted or written stops the command with exit 7, a message naming the file and
what to do, and no traceback: corrupt (at open and in a page met later), not a database, read-only file or
folder, full disk, a folder or a device as path, a newer schema, another program's database. The lock is
released, and the reading commands (explain, report, rejected) say the same.

Read-only cases: tests may run as root, where chmod does not stop a write. There the state is opened through
SQLite's own read-only mode (`?mode=ro` URI, at `connector.state.open_sqlite`), which answers with the same
SQLITE_READONLY / SQLITE_CANTOPEN codes SQLite gives an unprivileged user for a 0444 file or a 0555 folder.
"""

from __future__ import annotations

import fcntl
import os
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

AS_ROOT = os.geteuid() == 0


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--log-level", "warning", *args], catch_exceptions=False)


def command(project: Project, name: str) -> list[str]:
    extra = {"run": ["--as-of", AS_OF.isoformat()], "plan": ["--as-of", AS_OF.isoformat()]}
    return [name, "-c", str(project.config_path), *extra.get(name, [])]


def assert_state_unusable(result: Result, path: Path, *words: str) -> None:
    assert result.exit_code == 7, result.output
    assert f"state file {path}" in result.stderr or f"state lock file {path}" in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert "Traceback" not in result.output


def assert_lock_released(project: Project) -> None:
    with open(f"{project.state_path}.lock", "a+") as handle:
        fcntl.flock(
            handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB
        )  # BlockingIOError if the run still held it


def first_run(project: Project) -> None:
    assert invoke(*command(project, "run")).exit_code == 0


def overwrite_page(path: Path, page: int) -> None:
    """Fill one page (1-based) with bytes that are no b-tree page."""
    with sqlite3.connect(path) as db:
        size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with path.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xa5" * size)


def root_page(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()[0])
    finally:
        db.close()


def open_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """As root: open every state through SQLite's read-only mode (see the module docstring)."""

    def read_only(path: Path) -> sqlite3.Connection:
        return sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )

    monkeypatch.setattr(connector.state, "open_sqlite", read_only)


# ---- damaged -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["run", "plan"])
def test_a_corrupt_state_found_at_open(project: Project, name: str) -> None:
    first_run(project)
    overwrite_page(project.state_path, root_page(project.state_path, "meta"))
    result = invoke(*command(project, name))
    assert_state_unusable(result, project.state_path, "is damaged", "connector state rebuild")
    assert_lock_released(project)


def test_a_corrupt_page_met_later_in_the_run_still_ends_as_7(project: Project) -> None:
    first_run(project)
    project.write(
        "data/people.csv",
        (project.root / "data/people.csv").read_text() + "new@x.example;N;N;N;New;nee;EXT-9\n",
    )
    overwrite_page(project.state_path, root_page(project.state_path, "facts"))
    result = invoke(*command(project, "run"))
    assert_state_unusable(result, project.state_path, "is damaged")
    assert "state_unusable (exit 7)" in result.stdout
    assert_lock_released(project)


def test_a_file_that_is_not_a_database(project: Project) -> None:
    project.write("state/state.sqlite", "email;stage\nann@acme.example;lead\n" * 200)
    result = invoke(*command(project, "run"))
    assert_state_unusable(result, project.state_path, "is not a SQLite database", "connector state rebuild")
    assert not project.out.exists()  # no segment file written either


@pytest.mark.parametrize("name", ["explain", "report", "rejected"])
def test_reading_commands_say_so_too(project: Project, name: str) -> None:
    first_run(project)
    db = sqlite3.connect(project.state_path)
    pages = [
        r[0]
        for r in db.execute(
            "SELECT rootpage FROM sqlite_master WHERE tbl_name NOT IN ('meta') AND rootpage > 0"
        )
    ]
    db.close()
    for page in pages:  # every table and index but meta: the state opens, the first query meets the damage
        overwrite_page(project.state_path, page)
    args = command(project, name) + (["ann@acme.example"] if name == "explain" else [])
    assert_state_unusable(invoke(*args), project.state_path, "is damaged")


# ---- not writable --------------------------------------------------------------------------------------


def test_a_read_only_state_file(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    first_run(project)
    if AS_ROOT:
        open_read_only(monkeypatch)
    else:
        project.state_path.chmod(0o444)
    result = invoke(*command(project, "run"))
    assert_state_unusable(result, project.state_path, "is read-only", "writable by the user")
    assert_lock_released(project)


def test_a_read_only_state_folder(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project.state_path.parent
    folder.mkdir(parents=True)
    if AS_ROOT:
        open_read_only(monkeypatch)  # a new file: SQLite cannot create it (SQLITE_CANTOPEN)
    else:
        folder.chmod(0o555)
    try:
        result = invoke(*command(project, "run"))
    finally:
        folder.chmod(0o755)
    assert_state_unusable(result, project.state_path, "writable by the user")


def test_a_full_disk(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    def tiny_disk(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA max_page_count = 4")  # SQLite answers SQLITE_FULL beyond 4 pages
        return db

    monkeypatch.setattr(connector.state, "open_sqlite", tiny_disk)
    result = invoke(*command(project, "run"))
    assert_state_unusable(result, project.state_path, "disk (or its quota) is full", "free space")
    assert not project.out.exists()


# ---- not a state at all --------------------------------------------------------------------------------


def test_a_folder_as_state_path(project: Project) -> None:
    project.state_path.mkdir(parents=True)
    result = invoke(*command(project, "run"))
    assert_state_unusable(result, project.state_path, "is a folder", "state.path")


def test_dev_null_as_state_path(project: Project) -> None:
    text = project.config_path.read_text(encoding="utf-8")
    project.write("connector.yaml", text.replace("path: state/state.sqlite", "path: /dev/null"))
    before = {p.name for p in Path("/dev").iterdir()}
    result = invoke(*command(project, "run"))
    assert_state_unusable(result, Path("/dev/null"), "not a regular file")
    assert {p.name for p in Path("/dev").iterdir()} == before  # no /dev/null-wal, -shm or .lock


def test_a_state_written_by_a_newer_connector_is_refused(project: Project) -> None:
    first_run(project)
    db = sqlite3.connect(project.state_path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    result = invoke(*command(project, "run"))
    assert_state_unusable(result, project.state_path, "schema version 99", "newer connector", "upgrade")
    assert project.query("SELECT value FROM meta WHERE key='schema_version'") == [("99",)]


def test_another_programs_database_is_refused_and_left_alone(project: Project) -> None:
    project.state_path.parent.mkdir(parents=True)
    db = sqlite3.connect(project.state_path)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    db.commit()
    db.close()
    result = invoke(*command(project, "run"))
    assert_state_unusable(result, project.state_path, "not a connector state", "invoices")
    assert project.query("SELECT name FROM sqlite_master WHERE type='table'") == [("invoices",)]
