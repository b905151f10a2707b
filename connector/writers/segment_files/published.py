"""What the segment file writer last published, so a run where a segment did not change can leave its files
alone without rendering them again.

Per segment file: the SHA-256 of the bytes the writer wrote there, the same for its change log, and the
oldest day the log still holds (the first run on which a row will fall out of retention). A segment whose
members and their values did not change (`SegmentChange.touched` is False) and whose files still hold
exactly those bytes is already published: rendering would give the same bytes. A file deleted or saved over
by hand no longer matches and is written again, as before.

Kept beside the state (`<state_dir>/cache/segment-files-<target>.json`): it only ever saves work, so a
missing or unreadable one means "render everything", as a state that is rebuilt does anyway. The entry of a
segment is dropped before its files are written and set again after, so a write that fails half way never
leaves an entry vouching for files that are not what this run meant.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from ...atomic_file import replace_atomically

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Published:
    file: str  # sha256 of the segment file's bytes as written
    changes: str | None  # sha256 of the change log's bytes, None when there was none
    oldest: dt.date | None  # the oldest day a change log row holds
    config: str  # the writer's config, rendered the same way only while it stays the same

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "changes": self.changes,
            "oldest": self.oldest.isoformat() if self.oldest else None,
            "config": self.config,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Published:
        oldest = data.get("oldest")
        return cls(
            file=str(data["file"]),
            changes=None if data.get("changes") is None else str(data["changes"]),
            oldest=dt.date.fromisoformat(oldest) if oldest else None,
            config=str(data["config"]),
        )


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def file_digest(path: Path) -> str | None:
    """The SHA-256 of a file's bytes, None when it is not there (or not readable as a file)."""
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None


class PublishedFiles:
    """The entries of one target, keyed by segment file path; saved after every change."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, Published] = self._load()

    @classmethod
    def beside_state(cls, state_dir: Path | None, target: str) -> PublishedFiles:
        if state_dir is None:  # a writer built without a state (tests, tools): always render
            return cls(None)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", target)
        return cls(Path(state_dir) / "cache" / f"segment-files-{safe}.json")

    def get(self, file: Path) -> Published | None:
        return self._entries.get(str(file))

    def drop(self, file: Path) -> None:
        if self._entries.pop(str(file), None) is not None:
            self._save()

    def set(self, file: Path, entry: Published) -> None:
        if self._entries.get(str(file)) != entry:
            self._entries[str(file)] = entry
            self._save()

    def _load(self) -> dict[str, Published]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(k): Published.from_json(v) for k, v in data.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # only ever saves work: start over (every segment renders once more)
            log.warning("segment_files.published.unreadable", file=str(self.path), error=str(exc))
            return {}

    def _save(self) -> None:
        if self.path is None:
            return
        text = json.dumps({k: v.to_json() for k, v in sorted(self._entries.items())}, sort_keys=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(self.path, text.encode("utf-8"))
