"""The task ledger in the state (migration 8): one row per task occurrence and target, written as `pending`
before the CRM is asked to create it and marked `done` (with the CRM's record id) after; `rejected` keeps a
refusal for the next run. A `pending` row found by a later run means the run stopped between the CRM call and
this commit: the CRM is asked first whether it holds the task (by its key) before creating it again.

A row keeps the key it was created with for good, also when a merge renames its person (`rename_person`): the
key is on the CRM's task, and the surviving person's own key for the same occurrence is a different hash, so a
run maps an occurrence to the key already in the ledger (`keys_by_occurrence`) instead of creating it again."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from ..state import StateStore
from .model import NewTask

PENDING, DONE, REJECTED = "pending", "done", "rejected"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def statuses(store: StateStore, target: str, keys: Iterable[str]) -> dict[str, str]:
    wanted = list(keys)
    out: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = store.db.execute(
            f"SELECT key, status FROM tasks WHERE target=? AND key IN ({marks})", (target, *chunk)
        )
        out.update({str(r[0]): str(r[1]) for r in rows})
    return out


def unfinished(store: StateStore, target: str) -> list[NewTask]:
    """Tasks of `target` a run wrote as pending or saw refused: retried whether or not their trigger still
    holds (the moment was seen; a refusal or a crash must not lose it). Not one whose occurrence is done under
    another key: two people who each had it merged, and one of them got the task."""
    rows = store.db.execute(
        "SELECT payload FROM tasks t WHERE target=? AND status IN (?, ?) AND NOT EXISTS (SELECT 1 FROM tasks d "
        "WHERE d.target=t.target AND d.task=t.task AND d.person_key=t.person_key AND d.occurrence=t.occurrence "
        "AND d.status=?) ORDER BY key",
        (target, PENDING, REJECTED, DONE),
    )
    return [NewTask.from_json(json.loads(r[0])) for r in rows]


def keys_by_occurrence(store: StateStore, target: str, items: Iterable[NewTask]) -> dict[str, str]:
    """Key of a due task -> the key the ledger already holds for the same task, person and occurrence under
    another key (the person was merged since: see `rename_person`); a done row is preferred."""
    wanted = {(t.task, t.person_key, t.occurrence): t.key for t in items}
    people = sorted({person for _, person, _ in wanted})
    held: dict[tuple[str, str, str], tuple[str, str]] = {}
    for start in range(0, len(people), 500):
        chunk = people[start : start + 500]
        marks = ",".join("?" * len(chunk))
        cur = store.db.execute(
            f"SELECT task, person_key, occurrence, key, status FROM tasks WHERE target=? AND person_key IN "
            f"({marks}) ORDER BY key",
            (target, *chunk),
        )
        for task, person, occurrence, key, status in cur:
            seen = held.get((task, person, occurrence))
            if seen is None or (status == DONE and seen[1] != DONE):
                held[(task, person, occurrence)] = (str(key), str(status))
    return {new: held[occ][0] for occ, new in wanted.items() if occ in held and held[occ][0] != new}


def rename_person(store: StateStore, old: str, new: str) -> None:
    """A merge retired the person key `old` (inside the caller's transaction, with `StateStore.rename_person`):
    its tasks, and its refused ones kept for retry (`<person key>/<task>/<key>`), now belong to `new`. Their
    keys stay: they are what the CRMs hold."""
    cur = store.db.execute("SELECT key, target, payload FROM tasks WHERE person_key=?", (old,))
    for key, target, payload in list(cur):
        data = json.loads(payload)
        data["person_key"] = new
        store.db.execute(
            "UPDATE tasks SET person_key=?, payload=? WHERE key=? AND target=?",
            (new, json.dumps(data, sort_keys=True), key, target),
        )
    store.db.execute(
        "UPDATE rejected SET item = ? || substr(item, length(?) + 1) "
        "WHERE phase='write' AND object='task' AND substr(item, 1, length(?) + 1) = ? || '/'",
        (new, old, old, old),
    )


def mark(
    store: StateStore,
    target: str,
    items: Iterable[NewTask],
    status: str,
    run_id: int,
    record_ids: dict[str, str] | None = None,
    reasons: dict[str, str] | None = None,
) -> None:
    """Upsert rows (inside the caller's transaction)."""
    now = _now()
    for item in items:
        store.db.execute(
            "INSERT INTO tasks (key, target, task, person_key, occurrence, status, record_id, reason, payload, "
            "run_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key, target) DO UPDATE SET "
            "status=excluded.status, record_id=COALESCE(excluded.record_id, tasks.record_id), "
            "reason=excluded.reason, payload=excluded.payload, run_id=excluded.run_id, updated_at=excluded.updated_at",
            (
                item.key,
                target,
                item.task,
                item.person_key,
                item.occurrence,
                status,
                (record_ids or {}).get(item.key),
                (reasons or {}).get(item.key),
                json.dumps(item.to_json(), sort_keys=True),
                run_id,
                now,
            ),
        )


def rows(store: StateStore) -> list[dict[str, str | None]]:
    """Every row (tests, docs)."""
    names = ("key", "target", "task", "person_key", "occurrence", "status", "record_id", "reason")
    cur = store.db.execute(f"SELECT {', '.join(names)} FROM tasks ORDER BY key, target")
    return [dict(zip(names, r, strict=True)) for r in cur]


def latest_transitions(store: StateStore) -> dict[str, tuple[int, str | None, str, dt.date]]:
    """Person key -> (id, from, to, date) of the person's latest transition."""
    cur = store.db.execute(
        "SELECT t.person_key, t.id, t.from_stage, t.to_stage, t.at FROM transitions t "
        "JOIN (SELECT person_key, MAX(id) AS id FROM transitions GROUP BY person_key) m ON m.id = t.id"
    )
    return {str(r[0]): (int(r[1]), r[2], str(r[3]), dt.date.fromisoformat(str(r[4])[:10])) for r in cur}
