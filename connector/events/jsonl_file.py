"""The JSON Lines sink: events appended one per line and forced to disk before the outbox moves past them.

A crash between the append and the outbox update appends the same events again on the next run: their ids
make that harmless to a reader that deduplicates. A crash part way through a line leaves it unterminated; the
next append starts on a new line, so only that torn line is unreadable and its event follows again whole.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from ..atomic_file import replace_atomically


def append(path: Path, bodies: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        prefix = b""
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                prefix = b"\n"
        fh.write(prefix + b"".join(body.encode("utf-8") + b"\n" for body in bodies))
        fh.flush()
        os.fsync(fh.fileno())


def rewrite_without(path: Path, drop: Callable[[str], bool]) -> int:
    """Erasure: rewrite the file without the lines `drop` picks (atomically: a reader sees the old file or the
    new one, never a mix); returns how many lines went."""
    if not path.exists():
        return 0
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines(keepends=True)
    kept = [line for line in lines if not drop(line)]
    if len(kept) == len(lines):
        return 0
    replace_atomically(
        path, "".join(kept).encode("utf-8"), mode=stat.S_IMODE(path.stat().st_mode), durable=True
    )
    return len(lines) - len(kept)
