"""The per-object incremental cursor: newest SystemModstamp read, plus the records already seen near it.

Reads use an inclusive lower bound minus an overlap window (a record committed late can carry a SystemModstamp
older than records already read), so the records of that window come back on the next run. The cursor keeps
each of them with the stamp it had when read; a record that comes back with the same stamp is skipped, one
that changed since is read again. The list is capped: past the cap the oldest entries are dropped, which only
means a harmless re-read.

`reconciled` is when the object's ids were last reconciled (see `SalesforceSource`): purged records and records
that left the YAML's `where` filter never come back through the cursor.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

MAX_SEEN = 1000


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


@dataclass
class Cursor:
    newest: dt.datetime | None = None
    seen: dict[str, dt.datetime] = field(default_factory=dict)  # record id -> SystemModstamp when read
    reconciled: dt.datetime | None = None

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """From a stored cursor: JSON `{"ts": ..., "seen": {...}, "rec": ...}`, or a bare ISO timestamp."""
        if not text:
            return cls()
        if text.lstrip().startswith("{"):
            data = json.loads(text)
            seen = {str(k): _parse(v) for k, v in (data.get("seen") or {}).items()}
            reconciled = _parse(data["rec"]) if data.get("rec") else None
            return cls(_parse(data["ts"]) if data.get("ts") else None, seen, reconciled)
        return cls(_parse(text))

    def lower_bound(self, overlap: dt.timedelta) -> dt.datetime | None:
        return None if self.newest is None else self.newest - overlap

    def already_read(self, record_id: str, stamp: dt.datetime) -> bool:
        return self.seen.get(record_id) == stamp

    def note(self, record_id: str, stamp: dt.datetime, cap: dt.datetime) -> None:
        stamp = min(stamp, cap)
        self.seen[record_id] = stamp
        if self.newest is None or stamp > self.newest:
            self.newest = stamp

    def dump(self, overlap: dt.timedelta) -> str | None:
        if self.newest is None:
            return None
        floor = self.newest - overlap
        kept = sorted(((s, i) for i, s in self.seen.items() if s >= floor), reverse=True)[:MAX_SEEN]
        self.seen = {i: s for s, i in kept}
        data: dict[str, object] = {"ts": _iso(self.newest), "seen": {i: _iso(s) for s, i in sorted(kept)}}
        if self.reconciled is not None:
            data["rec"] = _iso(self.reconciled)
        return json.dumps(data, separators=(",", ":"))
