"""The task ledger in the state (migration 7): one row per task occurrence and target, written as `pending`
before the CRM is asked to create it and marked `done` (with the CRM's record id) after; `rejected` keeps a
refusal for the next run. A `pending` row found by a later run means the run stopped between the CRM call and
this commit: the CRM is asked first whether it holds the task (by its key) before creating it again."""

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
    holds (the moment was seen; a refusal or a crash must not lose it)."""
    rows = store.db.execute(
        "SELECT payload FROM tasks WHERE target=? AND status IN (?, ?) ORDER BY key",
        (target, PENDING, REJECTED),
    )
    return [NewTask.from_json(json.loads(r[0])) for r in rows]


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
