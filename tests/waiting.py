"""Waiting for events, never for time: helpers for tests that drive child processes.

On a loaded CI machine an interpreter can take seconds to start, so a test that sleeps a fixed time and hopes
the child got somewhere fails there (or passes without testing anything). These wait for the thing itself (a
line on a pipe, an event) and take deadlines only as hang guards, far longer than any healthy wait.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Callable
from typing import IO, Any

HANG_GUARD = 120.0  # seconds; reached only when something is stuck, never by a slow machine


class LineWatcher:
    """Reads a child's pipe line by line on a thread, so the pipe never fills and a test can wait for a line."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)  # end of stream: the child closed the pipe or exited

    def wait_for(self, matches: Callable[[str], bool], timeout: float = HANG_GUARD) -> str:
        """The first line from now on that `matches`; fails if the stream ends first or the guard runs out."""
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no matching line within {timeout:g} s:\n{self.tail()}") from None
            if line is None:
                self._queue.put(None)  # later waits see the end too
                raise AssertionError(f"the stream ended without a matching line:\n{self.tail()}")
            self.lines.append(line)
            if matches(line):
                return line

    def rest(self, timeout: float = HANG_GUARD) -> str:
        """Everything up to the end of the stream (call once the child is gone)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the stream stayed open {timeout:g} s:\n{self.tail()}"
        while (line := self._queue.get_nowait()) is not None:
            self.lines.append(line)
        self._queue.put(None)
        return "".join(self.lines)

    def tail(self, n: int = 30) -> str:
        return "".join(self.lines[-n:])


def log_event(line: str) -> dict[str, Any]:
    """A `--log-json` line as a dict ({} for any other line)."""
    if not line.startswith("{"):
        return {}
    try:
        event: dict[str, Any] = json.loads(line)
    except ValueError:
        return {}
    return event


def is_event(name: str, **fields: Any) -> Callable[[str], bool]:
    """Matches the JSON log line of event `name` whose fields include `fields`."""

    def matches(line: str) -> bool:
        event = log_event(line)
        return event.get("event") == name and all(event.get(k) == v for k, v in fields.items())

    return matches


def stop(proc: subprocess.Popen[Any]) -> None:
    """Kill a child a failed test left behind (by its own pid) and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=HANG_GUARD)
