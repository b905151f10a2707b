"""The handful of error types every part of connector raises.

Each failure is classified once, where it happens, so the run loop only has to ask *what kind* of failure it
is: a config error stops before anything is written, a retriable error goes through the shared retry policy,
a record error is kept in state and the rest of the batch goes on, an unreachable system ends the run with its
own exit code.
"""

from __future__ import annotations

from typing import Any


class ConnectorError(Exception):
    """Base of every error connector raises on purpose."""


class ConfigError(ConnectorError):
    """The configuration (or credentials) is wrong; retrying cannot help. Also 401/403 after one re-login."""


class RetriableError(ConnectorError):
    """A transient failure (429, 5xx, lock contention, connection reset). `retry_after` in seconds if known."""

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.code = code


class UnreachableError(ConnectorError):
    """A system stayed unavailable after the retry policy gave up (or never answered)."""


class BudgetExceededError(ConnectorError):
    """An API budget (daily allocation share, configured ceiling) would be crossed: stop cleanly."""


class RecordError(ConnectorError):
    """One record cannot be read or written; it is kept with its reason and retried next run."""

    def __init__(self, message: str, *, code: str | None = None, payload: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.payload = payload


class LockedError(ConnectorError):
    """Another run holds the state lock; overlapping runs must not interleave."""


class StateError(ConnectorError):
    """The state file cannot be trusted or written (corrupt, not a database, read-only, disk full, not a file).

    The run stops before any further CRM write: a write the state cannot record would be repeated or lost.
    The message names the file and what to do; `path` is that file. `kind` says what `state rebuild` can do:
    "damaged" (corrupt, not a database: move it aside), "newer" (written by a newer connector), "foreign" (a
    database of something else), "access" (read-only, cannot be opened), "disk" (full, I/O error) or "path"
    (a folder or a device): the last four are not fixed by starting over."""

    def __init__(self, message: str, *, path: str, kind: str = "damaged") -> None:
        super().__init__(message)
        self.path = path
        self.kind = kind
