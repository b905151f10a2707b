"""`connector state rebuild`: after a state is lost, move it aside and start a fresh one.

What a fresh state means for the next run: every source is read from scratch (no cursors), every person is
decided again, every label is written once more (none is known to have been written) and every segment member
is added again (already there: no change). Nothing is deleted: the broken file (with its -wal and -shm, so
SQLite can still open it for forensics) is renamed to `<state>.broken-<UTC stamp>`.

Only a damaged state is moved aside on its own; a healthy one, or one written by a newer connector, only with
`force`. A state that is read-only, on a full disk, a folder, a device or another program's database is left
alone: starting over would not help (or would take someone else's file).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StateError
from .state import StateStore, take_run_lock

MOVABLE = {"damaged"}
MOVABLE_WITH_FORCE = {"damaged", "newer"}


@dataclass
class Rebuilt:
    """What `rebuild` did: `moved` maps each original file to where it went (empty: nothing moved)."""

    path: Path
    problem: str | None  # why the state was unusable; None when it was healthy
    moved: dict[Path, Path] = field(default_factory=dict)
    schema_version: int | None = None


class NothingToDo(Exception):
    """The state is healthy (or newer) and `force` was not given: nothing was changed."""


def diagnose(path: Path) -> StateError | None:
    """Why the state at `path` cannot be used (None: it opens, passes quick_check and can be written)."""
    try:
        store = StateStore(path)
    except StateError as exc:
        return exc
    try:
        problems = [r[0] for r in store.db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            return StateError(f"state file {path} is damaged: {'; '.join(problems[:3])}", path=str(path))
        store.check_writable(0)
        return None
    except StateError as exc:
        return exc
    finally:
        store.close()


def rebuild(path: Path, *, force: bool = False, now: Callable[[], dt.datetime] | None = None) -> Rebuilt:
    """Move a damaged state aside and create a fresh one. Raises `StateError` when starting over cannot help,
    `LockedError` when a run holds the state, `NothingToDo` for a healthy state without `force`."""
    clock = now or (lambda: dt.datetime.now(dt.UTC))
    if path.is_dir() or (path.exists() and not path.is_file()):
        StateStore(path)  # raises the StateError that says what is wrong with the path
    lock = take_run_lock(path)
    try:
        problem = diagnose(path) if path.exists() else None
        if problem is not None and problem.kind not in MOVABLE_WITH_FORCE:
            raise problem
        if path.exists() and not (force or (problem is not None and problem.kind in MOVABLE)):
            raise NothingToDo(
                str(problem) if problem is not None else f"state file {path} is healthy (quick_check ok)"
            )
        result = Rebuilt(path, str(problem) if problem is not None else None)
        stamp = clock().astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = Path(f"{path}.broken-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            original = Path(f"{path}{suffix}")
            if original.exists():
                target = Path(f"{aside}{suffix}")
                original.rename(target)
                result.moved[original] = target
        fresh = StateStore(path)
        result.schema_version = fresh.schema_version
        fresh.close()
        return result
    finally:
        lock.close()  # closing the file releases the flock
