"""Failures the sandbox can inject, so clients prove their retry, re-login and budget handling.

Everything random draws from one `random.Random(seed)`, so a failing test replays the same way.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Faults:
    """Mutable switches read on every call; all off by default."""

    latency: float = 0.0  # seconds added to every call
    error_503_rate: float = 0.0  # share of API calls answered 503 SERVER_UNAVAILABLE
    rate_limit_every: int = 0  # every Nth API call is answered 429 (0: never)
    retry_after: float = 1.0  # seconds, sent as Retry-After on 429 and 503
    lock_row_ids: set[str] = field(default_factory=set)  # each fails once with UNABLE_TO_LOCK_ROW
    lock_row_rate: float = 0.0  # share of written records failing with UNABLE_TO_LOCK_ROW
    expire_session_after: int = 0  # after N API calls on a session it answers 401 and is gone (0: never)
    request_limit_exceeded: bool = False  # answer 403 REQUEST_LIMIT_EXCEEDED as if the daily limit were spent
    # calls of these kinds (as counted by `call_counts()`, e.g. "composite/sobjects") wait until `release()`:
    # a test can stop a run at a point it names and act there (send a signal), instead of guessing a time
    hold: set[str] = field(default_factory=set)
    # the next N calls of these kinds (empty: any API call) are carried out and committed, then answered 503 as
    # if the answer was lost on its way back (a gateway time-out): a client retrying blindly writes twice
    lose_answers: int = 0
    lose_answer_kinds: set[str] = field(default_factory=set)
    held: threading.Event = field(default_factory=threading.Event, repr=False)  # set once a call is waiting
    seed: int = 0
    _released: threading.Event = field(default_factory=threading.Event, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _attempts: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "seed" and "_rng" in self.__dict__:
            self._rng.seed(value)

    def reset(self) -> None:
        """Everything off again, counters and random stream restarted."""
        with self._lock:
            self.latency = 0.0
            self.error_503_rate = 0.0
            self.rate_limit_every = 0
            self.retry_after = 1.0
            self.lock_row_ids = set()
            self.lock_row_rate = 0.0
            self.expire_session_after = 0
            self.request_limit_exceeded = False
            self.lose_answers = 0
            self.lose_answer_kinds = set()
            self._attempts = 0
            self._rng.seed(self.seed)
        self.release()
        self.held = threading.Event()

    def wait_if_held(self, kind: str) -> None:
        """Block a call of a held kind until `release()`; no time-out: `release()` or `reset()` ends the wait."""
        released = self._released
        if kind in self.hold and not released.is_set():
            self.held.set()
            released.wait()

    def release(self) -> None:
        """Let every held call go on, and stop holding (setting `hold` again holds anew)."""
        released, self._released = self._released, threading.Event()
        self.hold = set()
        released.set()

    def draw_call_fault(self) -> str | None:
        """For one API call: '429', '503' or None. The 429 cadence counts every API call that got this far."""
        with self._lock:
            self._attempts += 1
            if self.rate_limit_every and self._attempts % self.rate_limit_every == 0:
                return "429"
            if self.error_503_rate and self._rng.random() < self.error_503_rate:
                return "503"
            return None

    def answer_lost(self, kind: str) -> bool:
        """Whether this call's answer, after its work is done, is replaced by a 503 (counts it down)."""
        with self._lock:
            if self.lose_answers <= 0 or (self.lose_answer_kinds and kind not in self.lose_answer_kinds):
                return False
            self.lose_answers -= 1
            return True

    def row_locked(self, record_id: str | None) -> bool:
        """Whether writing this record fails with UNABLE_TO_LOCK_ROW (a listed id fails only once)."""
        with self._lock:
            if record_id is not None and record_id in self.lock_row_ids:
                self.lock_row_ids.discard(record_id)
                return True
            return bool(self.lock_row_rate) and self._rng.random() < self.lock_row_rate
