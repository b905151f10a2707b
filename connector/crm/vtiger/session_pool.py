"""The webservice sessions of one vtiger client: up to one per concurrent worker, each logged in on first use.

vtiger keeps a webservice session in a PHP session file and holds that file locked for the whole request, so
one session serves one request at a time: threads sharing a session queue behind each other at the server (on
a real 8.2.0, 4 threads on one session were no faster than 1). Parallel writes need one session per worker.

A call takes a slot for its length: an idle slot if there is one (the first idle one, so a single reader keeps
reusing one session), else a new slot while there are fewer than `limit`, else the least busy one, shared. The
client logs a slot in on first use and again when vtiger rejects its session, each slot on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(eq=False)
class Slot:
    name: str | None = None  # the sessionName, None until logged in (a secret: never logged)
    users: int = 0  # calls using it right now
    # a call was stopped (Ctrl-C, SIGTERM) part way: vtiger may still be serving it under the session's lock,
    # so the slot is neither handed out again nor logged out (a logout would queue behind that request)
    abandoned: bool = False


class SessionPool:
    def __init__(self, limit: int = 1) -> None:
        self.limit = max(limit, 1)
        self._slots: list[Slot] = []
        self._lock = threading.Lock()

    def grow(self, limit: int) -> None:
        """At least `limit` sessions: each target asks for its concurrency while the run builds it. Only grows."""
        with self._lock:
            self.limit = max(self.limit, limit)

    def pin(self, limit: int) -> None:
        """Exactly `limit` sessions from now on (benchmarks and tests compare one shared session with a pool)."""
        with self._lock:
            self.limit = max(limit, 1)

    @property
    def opened(self) -> int:
        """Slots handed out so far (each logs in on first use)."""
        with self._lock:
            return len(self._slots)

    @contextmanager
    def checkout(self) -> Iterator[Slot]:
        """A slot for the length of one call."""
        with self._lock:
            usable = [s for s in self._slots if not s.abandoned]
            slot = next((s for s in usable if s.users == 0), None)
            if slot is None and len(usable) < self.limit:
                slot = Slot()
                self._slots.append(slot)
            if slot is None:  # every session is busy and no more are allowed: queue at the server
                slot = min(usable, key=lambda s: s.users)
            slot.users += 1
        try:
            yield slot
        except BaseException as exc:
            if not isinstance(exc, Exception):  # a stop, not an answer
                slot.abandoned = True
            raise
        finally:
            with self._lock:
                slot.users -= 1

    def reserve(self, count: int) -> list[Slot]:
        """At least `count` slots (no more than `limit`), to log in ahead of the calls that will take them:
        the slots not logged in yet. A call may take one of them meanwhile (its login waits its turn)."""
        with self._lock:
            while len([s for s in self._slots if not s.abandoned]) < min(count, self.limit):
                self._slots.append(Slot())
            return [s for s in self._slots if s.name is None and not s.abandoned]

    def take_idle(self) -> list[str]:
        """Remove every slot and return the names of the logged-in ones no call is using (to log them out)."""
        with self._lock:
            slots, self._slots = self._slots, []
        return [s.name for s in slots if s.name and not s.users and not s.abandoned]
