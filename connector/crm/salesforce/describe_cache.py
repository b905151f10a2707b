"""Org metadata kept between runs: describes and the picklist meaning rows (LeadStatus, OpportunityStage).

A cron run every 15 minutes would otherwise spend a call per object on metadata that changes a few times a
year. One JSON file per source (`<state_dir>/cache/salesforce-<source>-describe.json`, shared with the target
that writes back through that source's connection), replaced atomically. An entry is used while younger than
the TTL, and only when the file was written for the same API version and login endpoint (an org reached
another way may be another org). It holds field metadata and picklist labels, never a session, a credential or
a record.

The cache is advisory: a file that cannot be read or written is logged and ignored, never a failed run. The
source refreshes an entry when the org contradicts it (a mapped field the cached describe lacks, a query the
org refuses with INVALID_FIELD, a picklist value the cached rows do not know).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, Literal

import structlog

from ...atomic_file import replace_atomically

log = structlog.get_logger(__name__)

FORMAT = 1
Kind = Literal["describe", "rows"]
# what connector reads of a field's describe: a real org's full describe of Lead is hundreds of kilobytes
FIELD_KEYS = ("name", "type", "relationshipName", "referenceTo", "updateable", "restrictedPicklist")


def trim_describe(body: dict[str, Any]) -> dict[str, Any]:
    """The parts of an sObject describe connector uses (field names, types, relationships, updateable, and
    the values of a restricted picklist: `preflight` predicts the labels Salesforce would refuse)."""
    return {"name": body.get("name"), "fields": [_trim_field(f) for f in body.get("fields", [])]}


def _trim_field(f: dict[str, Any]) -> dict[str, Any]:
    out = {k: f[k] for k in FIELD_KEYS if k in f}
    if f.get("restrictedPicklist"):  # only these refuse a value; other picklists' values are not needed
        out["picklistValues"] = [
            {"value": v.get("value"), "active": v.get("active", True)} for v in f.get("picklistValues") or []
        ]
    return out


def cache_path(state_dir: Path, source: str) -> Path:
    # a source name is free text in YAML: keep the file name to characters every file system takes
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", source)
    return state_dir / "cache" / f"salesforce-{safe}-describe.json"


class DescribeCache:
    """Entries (`describe` / `rows`, by object name) with the time each was read from the org."""

    def __init__(self, path: Path, *, api_version: str, login: str, ttl: dt.timedelta) -> None:
        self.path = path
        self.key = {"api_version": api_version, "login": login}
        self.ttl = ttl
        # the run's start, set by the source and the target for each run: age is measured from it, like the
        # reconciliation period; None (a client used outside a run) takes the wall clock
        self.now: dt.datetime | None = None
        self._entries: dict[str, dict[str, Any]] | None = None

    def get(self, kind: Kind, obj: str) -> Any | None:
        """The cached value, or None when there is none younger than the TTL."""
        entry = self._load().get(kind, {}).get(obj)
        if not isinstance(entry, dict) or "value" not in entry:
            return None
        try:
            at = dt.datetime.fromisoformat(str(entry.get("at")))
        except ValueError:
            return None
        if at.tzinfo is None:
            return None
        # a stamp ahead of now (runs started by another host's clock, a clock set back) counts by its distance
        # too, so a wrong clock can keep an entry for at most twice the TTL
        if abs(self._now() - at) >= self.ttl:
            return None
        return entry["value"]

    def put(self, kind: Kind, obj: str, value: Any) -> None:
        stamp = self._now().astimezone(dt.UTC).isoformat()
        self._change(kind, obj, {"at": stamp, "value": value})

    def drop(self, kind: Kind, obj: str) -> None:
        self._change(kind, obj, None)

    # -- the file -------------------------------------------------------------------------------------------
    def _now(self) -> dt.datetime:
        return self.now or dt.datetime.now(dt.UTC)

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            body = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("salesforce.describe_cache.unreadable", path=str(self.path), error=type(exc).__name__)
            return {}
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            return {}
        if any(body.get(k) != v for k, v in self.key.items()):
            return {}  # written for another API version or login endpoint: nothing in it applies
        return {kind: dict(body[kind]) for kind in ("describe", "rows") if isinstance(body.get(kind), dict)}

    def _change(self, kind: Kind, obj: str, entry: dict[str, Any] | None) -> None:
        # The target shares this file with its source and may have loaded it earlier in the run: merge the
        # change into what the file holds now rather than overwrite it with an older picture.
        entries = self._read()
        if entry is None:
            if entries.get(kind, {}).pop(obj, None) is None:
                self._entries = entries
                return  # nothing to drop: leave the file alone
        else:
            entries.setdefault(kind, {})[obj] = entry
        self._entries = entries
        self._write({"format": FORMAT, **self.key, **entries})

    def _write(self, body: dict[str, Any]) -> None:
        # No fsync: a file lost in a crash costs one describe per object on the next run, nothing more.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(body, separators=(",", ":"), sort_keys=True)
            replace_atomically(self.path, text.encode("utf-8"))
        except OSError as exc:
            log.warning("salesforce.describe_cache.unwritable", path=str(self.path), error=type(exc).__name__)
