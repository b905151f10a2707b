"""Replace a file atomically: write a temporary file beside it, then rename it over the old one.

A reader (a marketer's import, the next run) sees the old file or the new one, never half of one. Every file
connector itself writes goes through here; each caller keeps its own policy for a failure (a cache logs and
goes on, a segment file fails the write).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def replace_atomically(path: Path, data: bytes, *, mode: int | None = None, durable: bool = False) -> None:
    """Make `path` hold `data`. `mode`: its permission bits (mkstemp creates 0600). `durable`: fsync the file and
    its folder, so the new content survives a power cut (a cache, which only saves work, does without)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened, hence best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        # some filesystems cannot fsync a directory; the rename still stands
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
