"""The per-object incremental cursor: newest SystemModstamp read, how far everything is read, and the records
already seen near the newest.

A transaction can commit after a later one and still carry the older SystemModstamp, so a read cannot simply
continue after the newest stamp it saw. connector assumes what the overlap window states: a transaction commits
within `overlap` of its stamp. Then two bounds hold:
- `settled`: every record stamped at or before it has been read. It is the newest stamp read, but no later than
  Salesforce's own clock (the `Date` of a response received before the query) minus the overlap: a record
  stamped earlier had committed when the query ran. While a read is still going, a record sharing the newest
  stamp may sit on a later page, so a partial read settles just before the newest stamp.
- `newest - overlap`: a late commit can only carry a stamp after it (the bound used when `settled` is unknown,
  e.g. no `Date` header).
The next read starts after `settled` (exclusive), or at `newest - overlap` (inclusive), whichever is later, and
skips records it already has: those at or before `settled`, and those in `seen` (id -> stamp when read) with an
unchanged stamp; a record that changed since is read again. `seen` holds only stamps after `settled`, newest
first, capped: past the cap an entry is dropped, which only means a harmless re-read.

Salesforce keeps its stamps to the second, so many records share one, and a record changed again within the
second it was read in keeps the stamp it was read with. A stamp therefore only tells versions apart once its
second is over: `settled` stays before the second the org's clock was in (the `Date` header has whole
seconds), and a record read while its second was still going (its stamp at or after that `Date`, or, without
one, in the newest second read) is not remembered in `seen`, so the next read takes it again: at most the
records of that boundary second come back, and the run loop finds them unchanged.

`rereads` counts the records read that the next read returns again (stamped after where it will start: the
overlap window, and the records whose second was still going), however many `seen` could keep. It is the
cursor's own estimate of that read's size before it is asked: after a burst of changes (a writing run's own
labels read back within a minute of it) tens of thousands of records may sit in the window, and the next read
then goes to Bulk API 2.0 at once instead of asking a REST page first only to learn it (see `read_path`).

`read_in` is the start of the run whose read saved the cursor. Records connector's own targets wrote since
then come back in the next read too, and the cursor has never seen them: the writer counts them by run (see
`crm.salesforce.own_writes`), and the read adds those of runs started at or after `read_in` to `rereads`.

`reconciled` is when the object's ids were last reconciled (see `reconcile`): purged records and records
that left the YAML's `where` filter never come back through the cursor.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field

MAX_SEEN = 1000
ONE_MS = dt.timedelta(milliseconds=1)
ONE_SECOND = dt.timedelta(seconds=1)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _floor_second(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(microsecond=0)


def _parse(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


@dataclass(frozen=True)
class LowerBound:
    at: dt.datetime
    strict: bool  # `SystemModstamp > at` (everything up to it is read) rather than `>= at`


@dataclass
class Cursor:
    newest: dt.datetime | None = None
    seen: dict[str, dt.datetime] = field(default_factory=dict)  # record id -> SystemModstamp when read
    reconciled: dt.datetime | None = None
    settled: dt.datetime | None = None  # every record stamped at or before it has been read
    rereads: int = 0  # records the next read returns again (loaded: the last read's; see `dump`)
    read_in: dt.datetime | None = None  # the start of the run whose read saved it (None: not recorded)
    # this read's records that `seen` no longer holds (capped by `dump`, or still in their second), by stamp
    _dropped: Counter[dt.datetime] = field(default_factory=Counter, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """From a stored cursor: JSON `{"ts", "seen", "set", "rec", "re", "run"}`, or a bare ISO timestamp."""
        if not text:
            return cls()
        if text.lstrip().startswith("{"):
            data = json.loads(text)
            seen = {str(k): _parse(v) for k, v in (data.get("seen") or {}).items()}
            return cls(
                newest=_parse(data["ts"]) if data.get("ts") else None,
                seen=seen,
                reconciled=_parse(data["rec"]) if data.get("rec") else None,
                settled=_parse(data["set"]) if data.get("set") else None,
                rereads=int(data.get("re") or 0),
                read_in=_parse(data["run"]) if data.get("run") else None,
            )
        return cls(_parse(text))

    def lower_bound(self, overlap: dt.timedelta) -> LowerBound | None:
        if self.newest is None:
            return None
        loose = self.newest - overlap
        if self.settled is not None and self.settled >= loose:
            return LowerBound(self.settled, strict=True)
        return LowerBound(loose, strict=False)

    def already_read(self, record_id: str, stamp: dt.datetime) -> bool:
        if self.settled is not None and stamp <= self.settled:
            return True
        return self.seen.get(record_id) == stamp

    def note(self, record_id: str, stamp: dt.datetime, cap: dt.datetime) -> None:
        """Remember a record read; `cap` is the run's start. The read's upper bound is that start truncated
        to the second (SOQL has no finer literal), so a stamp past it is held there: the record is read again
        next run, and the cursor never runs ahead of what this run could see."""
        stamp = min(stamp, _floor_second(cap))
        self.seen[record_id] = stamp
        if self.newest is None or stamp > self.newest:
            self.newest = stamp

    def settle(self, server_time: dt.datetime | None, overlap: dt.timedelta, *, complete: bool) -> None:
        """Move `settled` after a read (`complete`: every page of it) whose query followed `server_time`, and
        forget the records read while their second was still going."""
        if self.newest is None:
            return
        # the first second that may still have taken writes when the query ran: the org's clock was in it
        # (or, without the org's clock, a newer stamp than the newest read may still follow in its second)
        still_going = _floor_second(server_time) if server_time is not None else _floor_second(self.newest)
        going = {rid: stamp for rid, stamp in self.seen.items() if stamp >= still_going}
        self._dropped.update(going.values())
        self.seen = {rid: stamp for rid, stamp in self.seen.items() if stamp < still_going}
        if server_time is None:
            return
        # a read cut short may have left records sharing the newest stamp on its unread pages
        settled = min(self.newest if complete else self.newest - ONE_MS, still_going - ONE_SECOND - overlap)
        if self.settled is None or settled > self.settled:
            self.settled = settled

    def dump(self, overlap: dt.timedelta) -> str | None:
        if self.newest is None:
            return None
        floor = self.newest - overlap

        def read_again(stamp: dt.datetime) -> bool:  # the next read starts at or before it (`lower_bound`)
            return stamp >= floor and (self.settled is None or stamp > self.settled)

        window = sorted(((s, i) for i, s in self.seen.items() if read_again(s)), reverse=True)
        kept = window[:MAX_SEEN]
        self._dropped.update(s for s, _ in window[MAX_SEEN:])
        self._dropped = Counter({s: n for s, n in self._dropped.items() if read_again(s)})
        self.rereads = len(kept) + self._dropped.total()
        self.seen = {i: s for s, i in kept}
        data: dict[str, object] = {"ts": _iso(self.newest), "seen": {i: _iso(s) for s, i in sorted(kept)}}
        if self.settled is not None:
            data["set"] = _iso(self.settled)
        if self.reconciled is not None:
            data["rec"] = _iso(self.reconciled)
        if self.rereads:
            data["re"] = self.rereads
        if self.read_in is not None:
            data["run"] = _iso(self.read_in)
        return json.dumps(data, separators=(",", ":"))
