"""SIGTERM and Ctrl-C: how a stop request becomes exit 130 at any moment, start-up included.

A container stop sends SIGTERM, and cron's kill too. Python's default for SIGTERM is to die on the spot (exit
143, no clean-up, the run row left open), so the handler is installed before anything else is imported and
turns the signal into `KeyboardInterrupt`, which the run loop already treats as "roll back the open
transaction, record the run as interrupted, release the lock".

Writing the run's own history row must not be cut in half, so a stop that arrives while that happens is held
(`deferred`) and raised right after, once the row says what happened.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class _State:
    depth: int = 0
    pending: int | None = None  # a signal that arrived inside `deferred`


_state = _State()


def _handler(signum: int, frame: object) -> None:
    if _state.depth:
        _state.pending = signum
        return
    raise KeyboardInterrupt(f"signal {signum}")


def install() -> None:
    """Handle SIGTERM like Ctrl-C, and unblock both in case the process was started with them blocked."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _handler)
    # a signal sent while the interpreter was starting stays pending when the parent blocked it: deliver it
    # now, to the handler above, rather than never
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@dataclass
class Deferred:
    @property
    def pending(self) -> bool:
        return _state.pending is not None


@contextlib.contextmanager
def deferred() -> Iterator[Deferred]:
    """Hold stop signals for the length of the block; one that arrived is raised when the block ends."""
    _state.depth += 1
    try:
        yield Deferred()
    finally:
        _state.depth -= 1
        if not _state.depth and _state.pending is not None:
            signum, _state.pending = _state.pending, None
            raise KeyboardInterrupt(f"signal {signum}")
