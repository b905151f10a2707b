"""The embedded state store: one SQLite file (WAL) holding everything a run must remember.

Tables: per-source cursors; the last known facts of every source record; identity links (merge key -> person
key); each person's stage with its reason; the stage transition history; the last label written per record per
target; segment memberships per target (with the target records connector created for them); one row per run;
and rejected records (read and write) with their reason so the next run retries them.

The run loop decides transaction boundaries (`transaction()`): facts and the cursor that covers them commit
together, so a cursor never moves past something not stored. A `plan` runs everything inside one outer
transaction that is rolled back (`dry_run()`), so it sees its own reads without keeping them. Overlapping runs
are kept apart by an exclusive lock file beside the database.

A state that cannot be trusted or written (corrupt, not a database, read-only, disk full, not a regular file)
raises `StateError` at open or at whichever later statement finds it (state_guard.py); its schema version is
checked and migrated on open (state_migrations.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import LockedError, StateError
from .fact_index import content_hash, link_keys
from .schema import Fact, RecordRef
from .state_codec import Codec, decode_fact, decode_reason, fact_json
from .state_guard import GuardedConnection, open_sqlite, state_error
from .state_migrations import prepare

# Version 1 of the schema, as first shipped. Never edit it: change the schema with a numbered migration in
# state_migrations.py (a fresh state is created as version 1 and then migrated like any old one).
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, mode TEXT NOT NULL, as_of TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT, outcome TEXT, exit_code INTEGER, summary TEXT);
CREATE TABLE IF NOT EXISTS cursors (
    source TEXT NOT NULL, object TEXT NOT NULL, value TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (source, object));
CREATE TABLE IF NOT EXISTS facts (
    source TEXT NOT NULL, object TEXT NOT NULL, record_id TEXT NOT NULL, kind TEXT NOT NULL,
    modified_at TEXT, payload TEXT NOT NULL, PRIMARY KEY (source, object, record_id));
CREATE TABLE IF NOT EXISTS identity (merge_key TEXT PRIMARY KEY, person_key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS identity_person ON identity (person_key);
CREATE TABLE IF NOT EXISTS people (
    person_key TEXT PRIMARY KEY, stage TEXT NOT NULL, path_stage TEXT, since TEXT NOT NULL,
    decision TEXT NOT NULL, snapshot TEXT NOT NULL, updated_run INTEGER);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, person_key TEXT NOT NULL, from_stage TEXT, to_stage TEXT NOT NULL,
    at TEXT NOT NULL, run_id INTEGER, rule TEXT, reason TEXT);
CREATE INDEX IF NOT EXISTS transitions_person ON transitions (person_key, id);
CREATE TABLE IF NOT EXISTS labels (
    target TEXT NOT NULL, ref TEXT NOT NULL, person_key TEXT NOT NULL, label TEXT NOT NULL,
    written_at TEXT NOT NULL, run_id INTEGER, PRIMARY KEY (target, ref));
CREATE TABLE IF NOT EXISTS memberships (
    target TEXT NOT NULL, segment TEXT NOT NULL, person_key TEXT NOT NULL, since TEXT NOT NULL,
    run_id INTEGER, PRIMARY KEY (target, segment, person_key));
CREATE TABLE IF NOT EXISTS rejected (
    phase TEXT NOT NULL, system TEXT NOT NULL, item TEXT NOT NULL, object TEXT, code TEXT, reason TEXT NOT NULL,
    payload TEXT, first_run INTEGER, last_run INTEGER, attempts INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (phase, system, item));
"""


def _check_state_path(path: Path) -> None:
    """Refuse a state path SQLite would open without complaint but could not keep a state in: a folder, or a
    device such as /dev/null (reads come back empty, writes vanish, and -wal/-shm files land beside it)."""
    if path.is_dir():
        raise StateError(
            f"state file {path} is a folder: set state.path in the config to a file inside it",
            path=str(path),
            kind="path",
        )
    if path.exists() and not path.is_file():
        raise StateError(
            f"state file {path} is not a regular file (a device or a pipe cannot keep a state): set state.path "
            "in the config to a file",
            path=str(path),
            kind="path",
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"state file {path}: its folder cannot be created ({exc.strerror}): create it, writable by the user "
            "running connector, or set state.path in the config",
            path=str(path),
            kind="access",
        ) from None


def take_run_lock(path: Path) -> IO[str]:
    """The exclusive run lock of the state at `path` (held until the returned file is closed), or
    `LockedError` when another run holds it. `state rebuild` takes it too, without opening the state."""
    lock_path = Path(str(path) + ".lock")
    try:
        handle = open(lock_path, "a+")  # noqa: SIM115 - held for the life of the run
    except OSError as exc:
        raise StateError(
            f"state lock file {lock_path} cannot be created ({exc.strerror}): the folder of the state file "
            "must be writable by the user running connector",
            path=str(path),
            kind="access",
        ) from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise LockedError(f"another run holds {lock_path}; not starting an overlapping run") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


@dataclass(frozen=True)
class PersonIndex:
    """What a run keeps beside a person's decision so later runs need not decide everyone again: the next
    date the outcome could flip by itself (a date window crossed), the sources that know the person, and
    the open pipeline values (run totals are counted from these)."""

    next_check: dt.date | None = None
    sources: tuple[str, ...] = ()
    pipeline: dict[str, Any] | None = None


# (key, stage, path_stage, since, decision, snapshot, run_id, index) of one person to save; decision and
# snapshot as dicts, or already encoded (state_codec.py) by a caller that compared them with the stored ones
PersonRow = tuple[
    str, str, str | None, dt.date, dict[str, Any] | bytes, dict[str, Any] | bytes, int, PersonIndex
]
# (key, from_stage, to_stage, at, run_id, rule, reason) of one transition to record
TransitionRow = tuple[str, str | None, str, dt.date, int, str | None, str]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class StateStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._depth = 0
        self._lock_file: Any = None
        if str(self.path) != ":memory:":
            _check_state_path(self.path)
        try:
            raw = open_sqlite(self.path)
        except sqlite3.Error as exc:
            error = state_error(exc, self.path)
            if error is None:
                raise
            raise error from exc
        raw.row_factory = sqlite3.Row
        self.db = GuardedConnection(raw, self.path)
        try:
            # a new state gives its free pages back at the end of each run (`finish_run`); this has to be set
            # before the first table is made (an existing state keeps its mode, and reuses its free pages)
            self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.schema_version = prepare(self.db, self.path, SCHEMA)
            raw.create_function("connector_reason", 1, decode_reason, deterministic=True)
            self.codec = Codec(self.db)
        except BaseException:
            raw.close()  # a half-opened state must not keep the file open (rebuild moves it aside)
            raise

    def close(self) -> None:
        self.unlock()
        self.db.close()

    # ---- locking and transactions ---------------------------------------------------------------------

    def lock(self) -> None:
        """Take the exclusive run lock, or raise `LockedError` when another run holds it."""
        self._lock_file = take_run_lock(self.path)

    def unlock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Atomic unit; nested inside another (or inside `dry_run`) it becomes a savepoint."""
        if self._depth == 0:
            self.db.execute("BEGIN IMMEDIATE")
        else:
            self.db.execute(f"SAVEPOINT sp{self._depth}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if not self.db.in_transaction:
                pass  # SQLite already rolled the whole transaction back (disk full, I/O error): nothing to undo
            elif self._depth == 0:
                self.db.execute("ROLLBACK")
            else:
                self.db.execute(f"ROLLBACK TO sp{self._depth}")
                self.db.execute(f"RELEASE sp{self._depth}")
            self.codec.reload()  # a dictionary trained inside is gone with it
            raise
        self._depth -= 1
        if self._depth == 0:
            self.db.execute("COMMIT")
        else:
            self.db.execute(f"RELEASE sp{self._depth}")

    @contextlib.contextmanager
    def dry_run(self) -> Iterator[None]:
        """Everything inside is rolled back at the end: `plan` sees its own reads, keeps nothing."""
        self.db.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self.db.in_transaction:  # SQLite may have rolled back by itself (disk full, I/O error)
                self.db.execute("ROLLBACK")
            self.codec.reload()

    def check_writable(self, rows: int) -> None:
        """Prove the state can still record about `rows` rows before a CRM write it will have to record.

        Called right before each writer call: a state that turned read-only or full stops the run *before* the
        CRM is changed, not after (a write the state cannot record would be lost or repeated). The space is
        taken and handed back in one committed transaction, so the pages stay in the file for the record that
        follows (SQLite reuses freed pages) and a full disk or quota shows up here."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO meta VALUES ('write_check', ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                (_now(),),
            )
            if rows > 0:
                # about what a label, membership or rejected row takes with its index entries
                self.db.execute("INSERT INTO meta VALUES ('write_reserve', zeroblob(?))", (rows * 512,))
                self.db.execute("DELETE FROM meta WHERE key='write_reserve'")

    # ---- runs ---------------------------------------------------------------------------------------

    def begin_run(self, mode: str, as_of: dt.date, started_at: dt.datetime) -> int:
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO runs (mode, as_of, started_at) VALUES (?, ?, ?)",
                (mode, as_of.isoformat(), started_at.isoformat()),
            )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, outcome: str, exit_code: int, summary: dict[str, Any]) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET finished_at=?, outcome=?, exit_code=?, summary=? WHERE id=?",
                (_now(), outcome, exit_code, json.dumps(summary, default=str), run_id),
            )
        if not self.db.in_transaction:  # (a plan's finish is rolled back with the rest)
            # the run's passing rows (write_check's reserve, dirty_facts, rows rewritten smaller) leave free
            # pages: a new state (auto_vacuum=INCREMENTAL) hands them back, an old one keeps them for reuse
            # as a script: SQLite frees one page per step, and execute() steps a pragma once
            self.db.executescript("PRAGMA incremental_vacuum")

    def runs(self, limit: int = 20) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)))

    # ---- cursors ------------------------------------------------------------------------------------

    def cursors(self, source: str) -> dict[str, str]:
        rows = self.db.execute("SELECT object, value FROM cursors WHERE source=?", (source,))
        return {r["object"]: r["value"] for r in rows}

    def set_cursor(self, source: str, obj: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT (source, object) DO UPDATE SET "
            "value=excluded.value, updated_at=excluded.updated_at",
            (source, obj, value, _now()),
        )

    # ---- baselines ------------------------------------------------------------------------------------

    def mark_baseline(self, source: str, run_id: int) -> None:
        """`source` has been read to its end once: its facts are a baseline decisions may rest on."""
        self.db.execute(
            "INSERT INTO baselines VALUES (?, ?, ?) ON CONFLICT (source) DO NOTHING", (source, run_id, _now())
        )

    def has_baseline(self, source: str) -> bool:
        row = self.db.execute("SELECT 1 FROM baselines WHERE source=?", (source,)).fetchone()
        return row is not None

    # ---- facts --------------------------------------------------------------------------------------

    def upsert_facts(self, facts: Iterable[Fact]) -> int:
        facts = list(facts)
        rows = [
            (
                f.ref.source,
                f.ref.object,
                f.ref.id,
                f.kind.value,
                f.modified_at.isoformat() if f.modified_at else None,
                self.codec.encode_fact(f),
                content_hash(f),
            )
            for f in facts
        ]
        # the rows zlib'd while their dictionary was being sampled take it now that it exists
        rows = [
            (*r[:5], self.codec.settle(self.codec.fact_kind(f), r[5]), r[6])
            for r, f in zip(rows, facts, strict=True)
        ]
        refs = [str(f.ref) for f in facts]
        self._unlink(refs)
        self.db.executemany(
            "INSERT OR IGNORE INTO fact_keys VALUES (?, ?)",
            [(key, ref) for ref, f in zip(refs, facts, strict=True) for key in link_keys(f) if key != ref],
        )
        self.db.executemany(
            "INSERT INTO facts (source, object, record_id, kind, modified_at, payload, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, object, record_id) DO UPDATE SET "
            "kind=excluded.kind, modified_at=excluded.modified_at, payload=excluded.payload, hash=excluded.hash",
            rows,
        )
        return len(rows)

    def delete_facts(self, source: str, obj: str, ids: Iterable[str]) -> int:
        ids = list(ids)
        refs = [str(RecordRef(source, obj, i)) for i in ids]
        self._unlink(refs)
        cur = self.db.executemany(
            "DELETE FROM facts WHERE source=? AND object=? AND record_id=?", [(source, obj, i) for i in ids]
        )
        return max(cur.rowcount, 0)

    def _unlink(self, refs: list[str]) -> None:
        """Before these records are stored again or deleted: mark them dirty and take their rows out of the
        link-key index. Their old keys come from their stored facts: the index is searched by key only, and
        keeps no row for a record's own key (that is the record itself), so it holds each link once."""
        old = {ref: link_keys(fact) for ref, fact in self.stored_facts(refs).items()}
        self._mark_dirty(refs, old)
        self.db.executemany(
            "DELETE FROM fact_keys WHERE key=? AND ref=?",
            [(key, ref) for ref, keys in old.items() for key in keys if key != ref],
        )

    def stored_facts(self, refs: Iterable[str]) -> dict[str, Fact]:
        """The stored facts of these records (`source:object:id`), by ref; records not stored are left out."""
        by_object: dict[tuple[str, str], list[str]] = {}
        for text in refs:
            ref = RecordRef.parse(text)
            by_object.setdefault((ref.source, ref.object), []).append(ref.id)
        out: dict[str, Fact] = {}
        for (source, obj), ids in by_object.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in self.db.execute(
                    f"SELECT payload FROM facts WHERE source=? AND object=? AND record_id IN ({marks})",
                    (source, obj, *chunk),
                ):
                    fact = decode_fact(row[0])
                    out[str(fact.ref)] = fact
        return out

    def _mark_dirty(self, refs: list[str], old: Mapping[str, set[str]]) -> None:
        """Remember these records changed, with the link keys they had when last resolved (the first change
        since then keeps them): the people they belonged to are affected even when the new keys point away."""
        self.db.executemany(
            "INSERT OR IGNORE INTO dirty_facts VALUES (?, ?)",
            [(r, json.dumps(sorted(old.get(r, [])))) for r in refs],
        )

    def fact_hashes(self, source: str, obj: str, ids: list[str]) -> dict[str, bytes | None]:
        """Content hash of these stored records (None for one stored before hashes were kept)."""
        out: dict[str, bytes | None] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT record_id, hash FROM facts WHERE source=? AND object=? AND record_id IN ({marks})",
                (source, obj, *chunk),
            )
            out.update({r[0]: r[1] for r in rows})
        return out

    def fact_payloads(self, source: str, obj: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Stored facts of these records (id -> the JSON form), to compare a fresh read against."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT record_id, payload FROM facts WHERE source=? AND object=? AND record_id IN ({marks})",
                (source, obj, *chunk),
            )
            out.update({r[0]: fact_json(r[1]) for r in rows})
        return out

    def fact_ids(self, source: str, obj: str) -> set[str]:
        rows = self.db.execute("SELECT record_id FROM facts WHERE source=? AND object=?", (source, obj))
        return {r[0] for r in rows}

    def all_facts(self) -> Iterator[Fact]:
        for row in self.db.execute("SELECT payload FROM facts ORDER BY source, object, record_id"):
            yield decode_fact(row[0])

    def fact_sources(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT DISTINCT source FROM facts")}

    def count_facts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT source, COUNT(*) FROM facts GROUP BY source")
        return {r[0]: r[1] for r in rows}

    # ---- identity -----------------------------------------------------------------------------------

    def identity(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.db.execute("SELECT merge_key, person_key FROM identity")}

    def identity_of(self, keys: list[str]) -> dict[str, str]:
        """The identity rows of these merge keys (merge key -> person key)."""
        out: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                self.db.execute(
                    f"SELECT merge_key, person_key FROM identity WHERE merge_key IN ({marks})", chunk
                )
            )
        return out

    def replace_identity(self, mapping: dict[str, str]) -> None:
        current = self.identity()
        stale = [k for k in current if k not in mapping]
        changed = [(k, v) for k, v in mapping.items() if current.get(k) != v]
        self.db.executemany("DELETE FROM identity WHERE merge_key=?", [(k,) for k in stale])
        self.db.executemany(
            "INSERT INTO identity VALUES (?, ?) ON CONFLICT (merge_key) DO UPDATE SET person_key=excluded.person_key",
            changed,
        )

    def replace_identity_of(self, people: Iterable[str], mapping: dict[str, str]) -> None:
        """`replace_identity` for part of everyone: the rows of `people` give way to `mapping`."""
        keys = sorted(set(people))
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"DELETE FROM identity WHERE person_key IN ({marks})", chunk)
        self.db.executemany(
            "INSERT INTO identity VALUES (?, ?) ON CONFLICT (merge_key) DO UPDATE SET person_key=excluded.person_key",
            list(mapping.items()),
        )

    # ---- people and transitions ---------------------------------------------------------------------

    def people_of(self, keys: Iterable[str]) -> dict[str, sqlite3.Row]:
        ordered = sorted(set(keys))
        out: dict[str, sqlite3.Row] = {}
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                (r["person_key"], r)
                for r in self.db.execute(f"SELECT * FROM people WHERE person_key IN ({marks})", chunk)
            )
        return out

    def people(self) -> dict[str, sqlite3.Row]:
        return {r["person_key"]: r for r in self.db.execute("SELECT * FROM people")}

    def person_keys(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT person_key FROM people")}

    def person(self, key: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM people WHERE person_key=?", (key,)
        ).fetchone()
        return row

    def save_person(
        self,
        key: str,
        stage: str,
        path_stage: str | None,
        since: dt.date,
        decision: dict[str, Any],
        snapshot: dict[str, Any],
        run_id: int,
    ) -> None:
        self.save_people([(key, stage, path_stage, since, decision, snapshot, run_id, PersonIndex())])

    def save_people(self, rows: Iterable[PersonRow]) -> None:
        """`save_person` for many people in one statement (a first run saves everyone)."""
        encoded = [
            (
                key,
                stage,
                path_stage,
                since,
                decision if isinstance(decision, bytes) else self.codec.encode_decision(decision),
                snapshot if isinstance(snapshot, bytes) else self.codec.encode_snapshot(snapshot),
                run_id,
                index,
            )
            for key, stage, path_stage, since, decision, snapshot, run_id, index in rows
        ]
        self.db.executemany(
            "INSERT INTO people (person_key, stage, path_stage, since, decision, snapshot, updated_run, "
            "next_check, sources, pipeline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (person_key) DO UPDATE SET "
            "stage=excluded.stage, path_stage=excluded.path_stage, since=excluded.since, "
            "decision=excluded.decision, snapshot=excluded.snapshot, updated_run=excluded.updated_run, "
            "next_check=excluded.next_check, sources=excluded.sources, pipeline=excluded.pipeline",
            [
                (
                    key,
                    stage,
                    path_stage,
                    since.isoformat(),
                    # settled after all are encoded: the first rows of a first run were the dictionary's samples
                    self.codec.settle("decision", decision),
                    self.codec.settle("snapshot", snapshot),
                    run_id,
                    index.next_check.isoformat() if index.next_check else None,
                    "\n".join(index.sources),
                    json.dumps(index.pipeline, sort_keys=True) if index.pipeline else None,
                )
                for key, stage, path_stage, since, decision, snapshot, run_id, index in encoded
            ],
        )

    def remove_people(self, keys: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM people WHERE person_key=?", [(k,) for k in keys])

    def rename_person(self, old: str, new: str) -> None:
        """A merge retired `old`: keep its history and memberships under `new`."""
        self.db.execute("UPDATE transitions SET person_key=? WHERE person_key=?", (new, old))
        self.db.execute("UPDATE OR IGNORE labels SET person_key=? WHERE person_key=?", (new, old))
        self.db.execute("UPDATE OR IGNORE memberships SET person_key=? WHERE person_key=?", (new, old))
        self.db.execute("DELETE FROM memberships WHERE person_key=?", (old,))
        # every record either person's membership created is still connector's to remove
        self.db.execute("UPDATE OR IGNORE membership_records SET person_key=? WHERE person_key=?", (new, old))
        self.db.execute("DELETE FROM membership_records WHERE person_key=?", (old,))
        self.db.execute("DELETE FROM people WHERE person_key=?", (old,))

    def add_transition(
        self,
        key: str,
        from_stage: str | None,
        to_stage: str,
        at: dt.date,
        run_id: int,
        rule: str | None,
        reason: str,
    ) -> int:
        """Record a transition; returns its row id (the event feed derives the event's id from it)."""
        cur = self.db.execute(
            "INSERT INTO transitions (person_key, from_stage, to_stage, at, run_id, rule, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, from_stage, to_stage, at.isoformat(), run_id, rule, self.codec.encode_reason(reason)),
        )
        return int(cur.lastrowid or 0)

    def add_transitions(self, rows: list[TransitionRow]) -> list[int]:
        """`add_transition` for many in one statement; returns their row ids, in order.

        The ids are given here rather than left to SQLite so one executemany can insert them all and the event
        feed still gets each id: the caller's transaction holds the write lock, so no one else takes them."""
        if not rows:
            return []
        row = self.db.execute("SELECT MAX(id) FROM transitions").fetchone()
        seq = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name='transitions'").fetchone()
        # AUTOINCREMENT never reuses an id, even one whose row is gone: start past both
        first = max(int(row[0] or 0), int(seq[0] if seq else 0)) + 1
        ids = list(range(first, first + len(rows)))
        reasons = [self.codec.encode_reason(row[6]) for row in rows]
        reasons = [self.codec.settle("reason", r) for r in reasons]  # the sampled ones too
        self.db.executemany(
            "INSERT INTO transitions (id, person_key, from_stage, to_stage, at, run_id, rule, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (i, key, from_stage, to_stage, at.isoformat(), run_id, rule, reason)
                for i, reason, (key, from_stage, to_stage, at, run_id, rule, _) in zip(
                    ids, reasons, rows, strict=True
                )
            ],
        )
        return ids

    def transitions(self, key: str | None = None) -> list[sqlite3.Row]:
        """The stage history (all of it, or one person's) with each reason as text (state_codec.py)."""
        columns = "id, person_key, from_stage, to_stage, at, run_id, rule, connector_reason(reason) AS reason"
        if key is None:
            return list(self.db.execute(f"SELECT {columns} FROM transitions ORDER BY id"))
        return list(
            self.db.execute(f"SELECT {columns} FROM transitions WHERE person_key=? ORDER BY id", (key,))
        )

    # ---- labels and memberships ---------------------------------------------------------------------

    def labels(self, target: str) -> dict[str, str]:
        rows = self.db.execute("SELECT ref, label FROM labels WHERE target=?", (target,))
        return {r[0]: r[1] for r in rows}

    def count_labels(self, target: str) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM labels WHERE target=?", (target,)).fetchone()
        return int(row[0])

    def set_labels(self, target: str, items: Iterable[tuple[RecordRef, str, str]], run_id: int) -> None:
        now = _now()
        self.db.executemany(
            "INSERT INTO labels VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (target, ref) DO UPDATE SET "
            "person_key=excluded.person_key, label=excluded.label, written_at=excluded.written_at, "
            "run_id=excluded.run_id",
            [(target, str(ref), key, label, now, run_id) for ref, key, label in items],
        )

    def forget_labels(self, target: str, refs: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM labels WHERE target=? AND ref=?", [(target, r) for r in refs])

    def members(self, target: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for row in self.db.execute("SELECT segment, person_key FROM memberships WHERE target=?", (target,)):
            out.setdefault(row[0], set()).add(row[1])
        return out

    def member_counts(self, target: str) -> dict[str, int]:
        """Members per segment of `target`, counted by SQLite (nobody's key is read)."""
        rows = self.db.execute(
            "SELECT segment, COUNT(*) FROM memberships WHERE target=? GROUP BY segment", (target,)
        )
        return {r[0]: int(r[1]) for r in rows}

    def members_among(self, target: str, keys: Iterable[str]) -> dict[str, set[str]]:
        """`members`, only for these people: segment -> which of them it holds."""
        ordered = sorted(set(keys))
        out: dict[str, set[str]] = {}
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"SELECT segment, person_key FROM memberships WHERE target=? AND person_key IN ({marks})",
                (target, *chunk),
            ):
                out.setdefault(row[0], set()).add(row[1])
        return out

    def segment_members(self, target: str, segment: str) -> list[str]:
        """The person keys of one segment of `target`, in key order."""
        rows = self.db.execute(
            "SELECT person_key FROM memberships WHERE target=? AND segment=? ORDER BY person_key",
            (target, segment),
        )
        return [r[0] for r in rows]

    def add_members(
        self, target: str, segment: str, keys: Iterable[str], as_of: dt.date, run_id: int
    ) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO memberships VALUES (?, ?, ?, ?, ?)",
            [(target, segment, k, as_of.isoformat(), run_id) for k in keys],
        )

    def remove_members(self, target: str, segment: str, keys: Iterable[str]) -> None:
        rows = [(target, segment, k) for k in keys]
        self.db.executemany("DELETE FROM memberships WHERE target=? AND segment=? AND person_key=?", rows)
        self.db.executemany(
            "DELETE FROM membership_records WHERE target=? AND segment=? AND person_key=?", rows
        )

    def membership_records(self, target: str, segment: str) -> dict[str, tuple[str, ...]]:
        """Person key -> the target records connector created for that membership (see `set_...`)."""
        out: dict[str, list[str]] = {}
        for row in self.db.execute(
            "SELECT person_key, record_id FROM membership_records WHERE target=? AND segment=? "
            "ORDER BY person_key, record_id",
            (target, segment),
        ):
            out.setdefault(row[0], []).append(row[1])
        return {k: tuple(v) for k, v in out.items()}

    def set_membership_records(self, target: str, segment: str, records: Mapping[str, Iterable[str]]) -> None:
        """Replace the created records of these memberships: a record made again (e.g. a strict campaign
        adding back a member deleted by hand) supersedes the one that is gone."""
        for key, ids in records.items():
            self.db.execute(
                "DELETE FROM membership_records WHERE target=? AND segment=? AND person_key=?",
                (target, segment, key),
            )
            self.db.executemany(
                "INSERT OR IGNORE INTO membership_records VALUES (?, ?, ?, ?)",
                [(target, segment, key, rid) for rid in ids],
            )

    # ---- rejected records ---------------------------------------------------------------------------

    def reject(
        self,
        phase: str,
        system: str,
        item: str,
        reason: str,
        run_id: int,
        *,
        obj: str | None = None,
        code: str | None = None,
        payload: Any = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO rejected VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (phase, system, item) DO UPDATE "
            "SET reason=excluded.reason, code=excluded.code, payload=COALESCE(excluded.payload, rejected.payload), "
            "last_run=excluded.last_run, attempts=rejected.attempts + 1",
            (
                phase,
                system,
                item,
                obj,
                code,
                reason,
                json.dumps(payload, default=str) if payload is not None else None,
                run_id,
                run_id,
            ),
        )

    def rejected(self, phase: str | None = None, system: str | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM rejected WHERE 1=1"
        args: list[Any] = []
        if phase:
            sql += " AND phase=?"
            args.append(phase)
        if system:
            sql += " AND system=?"
            args.append(system)
        return list(self.db.execute(sql + " ORDER BY phase, system, item", args))

    def clear_rejected(self, phase: str, system: str, items: Iterable[str]) -> None:
        # most runs have nothing pending: look first, so clearing 100,000 records read costs one query, not
        # 100,000 DELETEs
        pending = {
            r[0]
            for r in self.db.execute("SELECT item FROM rejected WHERE phase=? AND system=?", (phase, system))
        }
        if not pending:
            return
        self.db.executemany(
            "DELETE FROM rejected WHERE phase=? AND system=? AND item=?",
            [(phase, system, i) for i in items if i in pending],
        )
