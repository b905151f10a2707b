"""Progress bars for long phases (Bulk polling, thousands of writes), on a terminal only.

A person watching a run on a TTY with human-readable logs sees a bar on stderr; cron, Kubernetes and anything
that parses the output get the usual JSON log lines and nothing else (a bar's carriage returns would corrupt
them). tqdm draws the bar; disabled, it is a no-op.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import IO, Any

from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no type hints

from . import logs


def shown(stream: IO[str] | None = None) -> bool:
    """A bar only where a person reads the output: stderr is a terminal and the logs are not JSON."""
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not logs.json_logs()


@contextlib.contextmanager
def progress(label: str, total: int | None = None, unit: str = "item") -> Iterator[Any]:
    """`with progress("sf_out: labels", total=n) as bar: ... bar.update(k)`; `total=None` counts without end
    (polls of a Bulk job). The bar goes when the phase ends (leave=False): the log line that follows says how
    it went."""
    stream = sys.stderr  # resolved now, not at import: tests and daemonising replace it
    bar = tqdm(
        total=total,
        desc=label,
        unit=unit,
        file=stream,
        leave=False,
        disable=not shown(stream),
        dynamic_ncols=True,
    )
    try:
        yield bar
    finally:
        bar.close()
