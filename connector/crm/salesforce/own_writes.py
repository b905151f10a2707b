"""How many records of each object connector itself wrote to an org, and in which run: the next read's size hint.

A label write moves the record's SystemModstamp, so the source's next read returns every record the writer
wrote since that source's cursor was saved (the writer runs after the read in a run). The cursor cannot count
them (it has never seen them), and the first REST page's `totalSize` would learn it only by asking: above the
Bulk threshold that is a REST page and then a Bulk job, two queries where one does. The writer notes here what
it wrote; the source adds the writes of the runs since its cursor's read to the cursor's own estimate.

Source and writer are separate plugins that share only the run's connection and the state directory's
`cache/` folder, so this is a file there (`cache/salesforce-<source>-writes.json`, beside the describe cache):
per object, a few entries `{"at": run start, "n": records written}`, the newest last. It holds counts and
times, never a record, an id or a credential.

It is a hint, never a fact: a file that cannot be read or written is logged and ignored. A count too high
(records written again by hand since, a write the org then rolled back) costs one Bulk job for a read REST
would have done in a page; too low (the file lost) costs the REST page whose `totalSize` then decides. Both
reads return the same records.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import structlog

from ...atomic_file import replace_atomically

log = structlog.get_logger(__name__)

FORMAT = 1
# entries kept per object, one per writing run: a read counts only those since its cursor's read, so the older
# ones matter only to a cursor whose reads failed for that many runs (it then asks the REST page: still safe)
MAX_ENTRIES = 16


def writes_path(state_dir: Path, source: str) -> Path:
    # a source name is free text in YAML: keep the file name to characters every file system takes
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", source)
    return state_dir / "cache" / f"salesforce-{safe}-writes.json"


def run_stamp(value: dt.datetime) -> str:
    """A run's start as both sides store it (milliseconds, UTC), so equal starts compare equal."""
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(text: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo is not None else None


class OwnWrites:
    """The records connector wrote to one org's objects, by run (see the module's docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, obj: str, count: int, run_started: dt.datetime) -> None:
        """Note `count` records of `obj` written by the run started at `run_started`. Merged into what the
        file holds now: two targets writing back through one source each add their own."""
        if count <= 0:
            return
        body = self._read()
        entries = body.setdefault(obj, [])
        at = run_stamp(run_started)
        if entries and entries[-1].get("at") == at:
            entries[-1]["n"] = int(entries[-1].get("n") or 0) + count
        else:
            entries.append({"at": at, "n": count})
        body[obj] = entries[-MAX_ENTRIES:]
        self._write(body)

    def since(self, obj: str, read_started: dt.datetime | None) -> int:
        """Records of `obj` written by runs that started at or after `read_started` (the start of the run
        whose read saved the cursor: that run's own writes came after its read). None (a cursor that does
        not say when it was read): none are counted."""
        if read_started is None:
            return 0
        since = _parse(run_stamp(read_started))  # to the millisecond, as the entries are kept
        total = 0
        for entry in self._read().get(obj, []):
            at = _parse(str(entry.get("at")))
            if at is not None and since is not None and at >= since:
                total += int(entry.get("n") or 0)
        return total

    # -- the file -------------------------------------------------------------------------------------------
    def _read(self) -> dict[str, list[dict[str, Any]]]:
        try:
            body = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("salesforce.own_writes.unreadable", path=str(self.path), error=type(exc).__name__)
            return {}
        if (
            not isinstance(body, dict)
            or body.get("format") != FORMAT
            or not isinstance(body.get("writes"), dict)
        ):
            return {}
        return {
            str(obj): [e for e in entries if isinstance(e, dict)]
            for obj, entries in body["writes"].items()
            if isinstance(entries, list)
        }

    def _write(self, writes: dict[str, list[dict[str, Any]]]) -> None:
        # No fsync: a file lost in a crash costs the next read one REST page, nothing more.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"format": FORMAT, "writes": writes}, separators=(",", ":"), sort_keys=True)
            replace_atomically(self.path, text.encode("utf-8"))
        except OSError as exc:
            log.warning("salesforce.own_writes.unwritable", path=str(self.path), error=type(exc).__name__)
