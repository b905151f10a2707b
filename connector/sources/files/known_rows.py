"""Which rows of a file the state already holds, so a changed file costs what changed in it.

After each complete read of a file object the source keeps, beside the state
(`<state_dir>/cache/files-<source>-<object hash>.rows`), one 16-byte BLAKE2b digest per row that mapped to a
fact: the digest of the row's id and its raw content (not its line: a row that only moved maps to the same
fact, which the fact content never carries). The next read of the changed file maps only rows whose digest is
not there; the others still count as live (nothing is deleted) and yield nothing (their stored fact is already
what mapping them would give). A row that was rejected is never recorded, so it is mapped again.

The record is trusted only while it is provably the state's: it names the cursor of the read that wrote it,
and the stored cursor must still be that one (a `plan`, whose reads roll back, never writes it; a run that
stopped between its state commit and this file leaves the old cursor's record, which then no longer matches).
It also names this source's config fingerprint, the connector version and the record format, so a mapping or
code change maps everything again. A read removes the record before its first batch can reach the state, so a
read that stops half way (some batches stored, the cursor not moved) never leaves a record vouching for facts
that batch replaced. It holds digests only: no e-mail, id or value of a row (erasure leaves nothing here). A
missing, foreign or damaged record (checked by a SHA-256 over the whole file) means a full read: never wrong,
only slower.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
from collections.abc import Mapping
from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import structlog

from ...atomic_file import replace_atomically

log = structlog.get_logger(__name__)

MAGIC = b"connector file rows\n"
FORMAT = 1  # bump when the digest or the file layout changes
DIGEST_BYTES = 16  # 128 bits: a changed row wrongly taken for a known one is out of reach at any file size
CHECK_BYTES = 32  # the SHA-256 over everything before it


def row_digest(row_id: str, row: Mapping[str, Any]) -> bytes:
    """The digest of a row as read (before the source adds its file, line and id keys) under its final id.

    repr() tells the value types apart (a date cell from the same text in a string cell, 1 from "1"), which
    map differently; the id is part of it because a repeat's `#n` suffix depends on the rows before it."""
    text = f"{row_id}\x00{row!r}"
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES).digest()


@cache
def _connector_version() -> str:
    try:
        return package_version("connector")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def stamp(fingerprint: str) -> str:
    """What must be the same for recorded rows to map the same: the config, the code, the record format."""
    py = f"{sys.version_info.major}.{sys.version_info.minor}"  # repr() of a value is Python's own
    return f"{FORMAT}/{_connector_version()}/{py}/{fingerprint}"


class KnownRows:
    """The records of one file source, one file per file object; no folder (no state_dir): keep nothing."""

    def __init__(self, folder: Path | None, source: str) -> None:
        self.folder = folder
        self.source = source

    @classmethod
    def beside_state(cls, state_dir: Path | None, source: str) -> KnownRows:
        return cls(None if state_dir is None else Path(state_dir) / "cache", source)

    def path(self, obj: str) -> Path | None:
        if self.folder is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.source)
        # the object is a path (maybe long, with any characters): a short hash of it names its record
        key = hashlib.sha256(obj.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return self.folder / f"files-{safe}-{key}.rows"

    @staticmethod
    def drop_every(state_dir: Path) -> None:
        """Every file source's records beside this state: after an erasure deleted facts of rows they list as
        stored (the next read of a changed file maps all its rows; `Batch.live_stored` relies on them)."""
        for path in (Path(state_dir) / "cache").glob("files-*.rows"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def load(self, obj: str, cursor: str | None, expected_stamp: str) -> frozenset[bytes] | None:
        """The digests recorded by the read that ended at `cursor` under `expected_stamp`; None: read all."""
        path = self.path(obj)
        if path is None or cursor is None:
            return None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("files.rows.unreadable", source=self.source, file=obj, error=str(exc))
            return None
        try:
            header, digests = _parse(data)
        except ValueError as exc:
            log.warning("files.rows.damaged", source=self.source, file=obj, error=str(exc))
            return None
        if header.get("cursor") != cursor or header.get("stamp") != expected_stamp:
            log.info("files.rows.outdated", source=self.source, file=obj)
            return None
        return frozenset(digests[i : i + DIGEST_BYTES] for i in range(0, len(digests), DIGEST_BYTES))

    def drop(self, obj: str) -> None:
        path = self.path(obj)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def save(self, obj: str, cursor: str, record_stamp: str, digests: bytes) -> None:
        """Write the record atomically; a failure only costs the next read its shortcut."""
        path = self.path(obj)
        if path is None:
            return
        header = json.dumps(
            {"cursor": cursor, "stamp": record_stamp, "rows": len(digests) // DIGEST_BYTES}, sort_keys=True
        ).encode()
        body = MAGIC + header + b"\n" + digests
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(path, body + hashlib.sha256(body).digest())
        except OSError as exc:
            log.warning("files.rows.not_saved", source=self.source, file=obj, error=str(exc))


def _parse(data: bytes) -> tuple[dict[str, Any], bytes]:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + CHECK_BYTES:
        raise ValueError("not a row record")
    body, check = data[:-CHECK_BYTES], data[-CHECK_BYTES:]
    if hashlib.sha256(body).digest() != check:
        raise ValueError("checksum mismatch")
    end = body.index(b"\n", len(MAGIC))
    header = json.loads(body[len(MAGIC) : end])
    digests = body[end + 1 :]
    rows = header.get("rows") if isinstance(header, dict) else None
    if not isinstance(rows, int) or rows * DIGEST_BYTES != len(digests):
        raise ValueError("row count does not match")
    return header, digests
