"""The event outbox in the state (migration 5): events are added in the transaction of the change they report,
and each sink (the file, each webhook) keeps how far it has taken them, so every sink gets every event in order,
at least once, whatever fails in between."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from ..state import StateStore


def add(store: StateStore, event_id: str, person_key: str, body: str, run_id: int) -> None:
    # the same id twice is the same event (a replayed step): keep the first
    store.db.execute(
        "INSERT OR IGNORE INTO event_outbox (event_id, person_key, body, run_id) VALUES (?, ?, ?, ?)",
        (event_id, person_key, body, run_id),
    )


def delivered_seq(store: StateStore, sink: str) -> int:
    row = store.db.execute("SELECT delivered_seq FROM event_sinks WHERE sink=?", (sink,)).fetchone()
    return int(row[0]) if row else 0


def pending(store: StateStore, sink: str, limit: int) -> list[tuple[int, str]]:
    """The next `limit` events `sink` has not taken yet, oldest first: (seq, body)."""
    rows = store.db.execute(
        "SELECT seq, body FROM event_outbox WHERE seq > ? ORDER BY seq LIMIT ?",
        (delivered_seq(store, sink), limit),
    )
    return [(int(r[0]), str(r[1])) for r in rows]


def count_pending(store: StateStore, sink: str) -> int:
    row = store.db.execute(
        "SELECT COUNT(*) FROM event_outbox WHERE seq > ?", (delivered_seq(store, sink),)
    ).fetchone()
    return int(row[0])


def mark_delivered(store: StateStore, sink: str, seq: int) -> None:
    with store.transaction():
        store.db.execute(
            "INSERT INTO event_sinks VALUES (?, ?, ?) ON CONFLICT (sink) DO UPDATE SET "
            "delivered_seq=MAX(event_sinks.delivered_seq, excluded.delivered_seq), updated_at=excluded.updated_at",
            (sink, seq, dt.datetime.now(dt.UTC).isoformat()),
        )


def prune(store: StateStore, sinks: Iterable[str]) -> int:
    """Drop the events every configured sink has taken; a sink not heard of yet holds everything back."""
    names = list(sinks)
    if not names:
        return 0
    low = min(delivered_seq(store, s) for s in names)
    with store.transaction():
        cur = store.db.execute("DELETE FROM event_outbox WHERE seq <= ?", (low,))
    return max(cur.rowcount, 0)


def bodies(store: StateStore) -> list[str]:
    """Every event still kept, oldest first (for tests and `report`)."""
    return [str(r[0]) for r in store.db.execute("SELECT body FROM event_outbox ORDER BY seq")]
