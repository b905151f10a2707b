"""Knobs that make the sandbox misbehave the way real vtiger installs do. All mutable at any time."""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class Faults:
    #: seconds slept before answering every call
    latency: float = 0.0
    #: probability (0..1) that a call is answered HTTP 500 with an empty body, drawn from `seed`
    error_500_rate: float = 0.0
    #: restrict `error_500_rate` to these operations (empty: every operation)
    error_500_ops: set[str] = field(default_factory=set)
    #: the next N calls (of `error_500_ops`, if set) fail with an empty HTTP 500, then calls succeed again
    fail_next: int = 0
    #: the server goes away mid-run: after N more calls (of `error_500_ops`, if set) every such call fails
    #: with an empty HTTP 500 until this is set back to None
    down_after: int | None = None
    #: stock 8.2 on PHP 8: `sync`, `logout` and `convertlead` answer HTTP 500 with an empty body. The
    #: recording comes from an instance with those lines patched, so the defaults are the patched behaviour.
    sync_broken: bool = False
    logout_broken: bool = False
    convertlead_broken: bool = False
    #: `sync` with modifiedTime=0 fails with an empty 500 even on the patched instance (recorded)
    sync_zero_fails: bool = True
    #: a session stops working after this many calls (INVALID_SESSIONID); a new login works
    expire_sessions_after: int | None = None
    #: hold every call of these operations until `release` is set; `arrived` is set when one is waiting
    #: (tests stop a client at an exact point of its run this way, instead of guessing with sleeps)
    hold_ops: set[str] = field(default_factory=set)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    #: answer HTTP 200 with a body that is no webservice envelope: "truncated" (the operation runs and its JSON
    #: is cut off half way, as when PHP dies mid-output) or "html" (a proxy's or maintenance page in front of
    #: vtiger: the operation never runs); None: off
    broken_body: Literal["truncated", "html"] | None = None
    #: restrict `broken_body` to these operations (empty: every operation)
    broken_body_ops: set[str] = field(default_factory=set)
    #: that many calls (of `broken_body_ops`, if set) are answered whole before the broken answers start
    broken_body_after: int = 0
    #: then this many broken answers before vtiger answers whole again (None: until `broken_body` is reset)
    broken_body_count: int | None = None
    seed: int = 0
    #: empty-500 answers given so far, by operation
    injected: Counter[str] = field(default_factory=Counter)
    #: broken-body answers given so far, by operation
    broken: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._seeded = self.seed

    def stock_php8(self) -> Faults:
        """Behave like an unpatched 8.2.0 on PHP 8."""
        self.sync_broken = self.logout_broken = self.convertlead_broken = True
        return self

    def hold(self, operation: str) -> None:
        """Wait while `operation` is held (bounded, so a forgotten release cannot hang a test run)."""
        if operation in self.hold_ops:
            self.arrived.set()
            self.release.wait(timeout=600)

    def should_fail(self, operation: str) -> bool:
        with self._lock:
            if self.error_500_ops and operation not in self.error_500_ops:
                return False
            if self.down_after is not None:
                if self.down_after > 0:
                    self.down_after -= 1
                else:
                    self.injected[operation] += 1
                    return True
            if self.fail_next > 0:
                self.fail_next -= 1
                self.injected[operation] += 1
                return True
            if self.error_500_rate <= 0:
                return False
            if self._seeded != self.seed:
                self._rng, self._seeded = random.Random(self.seed), self.seed
            if self._rng.random() < self.error_500_rate:
                self.injected[operation] += 1
                return True
            return False

    def broken_answer(self, operation: str) -> Literal["truncated", "html"] | None:
        """Whether (and how) this call's answer is broken; counts it when it is."""
        with self._lock:
            kind = self.broken_body
            if kind is None or (self.broken_body_ops and operation not in self.broken_body_ops):
                return None
            if self.broken_body_after > 0:
                self.broken_body_after -= 1
                return None
            if self.broken_body_count is not None:
                if self.broken_body_count <= 0:
                    return None
                self.broken_body_count -= 1
            self.broken[operation] += 1
            return kind
