"""The sandbox's notion of "now": real UTC time by default, settable so tests can move time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SandboxClock:
    """Real time plus an offset, or a frozen instant.

    Frozen time lets a test put several writes in the same second (sync boundary pages) or step past a
    token's 300 s lifetime without sleeping.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen: datetime | None = None
        self._offset = timedelta()

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def set(self, when: datetime | None, *, frozen: bool = True) -> None:
        """Make `when` the current time (frozen, or ticking from there); None goes back to real time."""
        with self._lock:
            if when is None:
                self._frozen, self._offset = None, timedelta()
                return
            if when.tzinfo is None:
                raise ValueError("the sandbox clock takes timezone-aware datetimes only")
            when = when.astimezone(UTC)
            if frozen:
                self._frozen = when
            else:
                self._frozen, self._offset = None, when - datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            step = timedelta(seconds=seconds)
            if self._frozen is not None:
                self._frozen += step
            else:
                self._offset += step

    def timestamp(self) -> int:
        return int(self.now().timestamp())

    def wall(self) -> str:
        """Now as vtiger writes it: UTC, whole seconds."""
        return format_wall(self.now())


def format_wall(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_wall(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
