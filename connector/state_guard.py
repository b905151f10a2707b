"""The SQLite boundary of the state store: every failure that means "this state file cannot be trusted or
written" becomes one `StateError` that names the file and what to do.

SQLite can report a broken file at open or at any later statement (a corrupt page is found when it is first
read; a full disk when a page is first needed), so every statement and every row fetch goes through the guard,
not only the open. Errors that are not about the file (a constraint, a bad statement) stay what they are: they
are bugs, and a traceback is what helps there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import StateError

# primary result codes (https://www.sqlite.org/rescode.html); Python 3.11 gives the extended code, whose low
# byte is the primary one (SQLITE_READONLY_DIRECTORY = 1544 -> 8)
_DAMAGED = {11: "is damaged (database disk image is malformed)", 26: "is not a SQLite database"}
_NOT_WRITABLE = {3: "cannot be accessed", 8: "is read-only", 14: "cannot be opened", 23: "cannot be accessed"}
_DISK = {
    10: "could not be read or written (disk I/O error)",
    13: "cannot grow: the disk (or its quota) is full",
}

REBUILD_HINT = (
    "move it aside and start a fresh state with `connector state rebuild -c <config>` "
    "(the next run re-reads every source from scratch)"
)


def advice(code: int) -> str | None:
    """What a user can do about a SQLite failure with this (primary) code; None: not a problem of the file."""
    if code in _DAMAGED:
        return f"{_DAMAGED[code]}: restore it from a backup, or {REBUILD_HINT}"
    if code in _NOT_WRITABLE:
        return (
            f"{_NOT_WRITABLE[code]}: the file and its folder must be readable and writable by the user "
            "running connector (SQLite also creates <file>-wal, <file>-shm and <file>.lock beside it)"
        )
    if code in _DISK:
        return f"{_DISK[code]}: free space on the volume that holds it, then run again"
    return None


def state_error(exc: sqlite3.Error, path: Path | str) -> StateError | None:
    """The `StateError` a SQLite failure stands for, or None when it is not about the file."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    what = advice(primary)
    if what is None:
        return None
    kind = "damaged" if primary in _DAMAGED else "access" if primary in _NOT_WRITABLE else "disk"
    return StateError(f"state file {path} {what} [{exc}]", path=str(path), kind=kind)


def open_sqlite(path: Path) -> sqlite3.Connection:
    """The one place a state connection is opened (tests replace `connector.state.open_sqlite` to open it
    read-only or with a page limit: chmod does not stop root, and a full disk is hard to come by)."""
    return sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)


class GuardedCursor:
    """A cursor whose fetches turn file failures into `StateError` (a corrupt page shows up mid-iteration)."""

    def __init__(self, cursor: sqlite3.Cursor, path: Path) -> None:
        self._cursor = cursor
        self._path = path

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._cursor)
        except sqlite3.Error as exc:
            _raise_state_error(exc, self._path)
            raise

    def fetchone(self) -> Any:
        try:
            return self._cursor.fetchone()
        except sqlite3.Error as exc:
            _raise_state_error(exc, self._path)
            raise

    def fetchall(self) -> list[Any]:
        return list(self)

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


class GuardedConnection:
    """The state's connection: the calls the store makes, each one guarded."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.raw = db
        self.path = path

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def execute(self, sql: str, params: Any = ()) -> GuardedCursor:
        try:
            return GuardedCursor(self.raw.execute(sql, params), self.path)
        except sqlite3.Error as exc:
            _raise_state_error(exc, self.path)
            raise

    def executemany(self, sql: str, rows: Any) -> GuardedCursor:
        try:
            return GuardedCursor(self.raw.executemany(sql, rows), self.path)
        except sqlite3.Error as exc:
            _raise_state_error(exc, self.path)
            raise

    def executescript(self, script: str) -> None:
        try:
            self.raw.executescript(script)
        except sqlite3.Error as exc:
            _raise_state_error(exc, self.path)
            raise

    def close(self) -> None:
        try:
            self.raw.close()
        except sqlite3.Error as exc:
            _raise_state_error(exc, self.path)
            raise


def _raise_state_error(exc: sqlite3.Error, path: Path) -> None:
    """Raise the `StateError` this failure stands for; return (the caller re-raises it as is) otherwise."""
    error = state_error(exc, path)
    if error is not None:
        raise error from exc
