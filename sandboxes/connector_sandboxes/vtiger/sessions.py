"""Challenge tokens and sessions: one token per user (a new getchallenge replaces it), 300 s lifetime; and
the lock each session holds while it serves a request, with counters of the requests being served."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from connector_sandboxes.vtiger.clock import SandboxClock
from connector_sandboxes.vtiger.wserrors import WebserviceError

TOKEN_LIFETIME = 300
# PHP's session.gc_maxlifetime on the observed instance
SESSION_LIFETIME = 86400


@dataclass
class Session:
    username: str
    started: int
    calls: int = 0
    #: held for the whole of each request carrying this session's name (see `Sessions.serving`)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class InFlight:
    """How many requests were being served at once: in total and within one session (peaks since `reset`).

    Tests judge concurrency by these counts, never by wall-clock time. A request waiting for its session's lock
    is not being served yet, so it counts only as `peak_arrived`.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._arrived = 0
        self._total = 0
        self._per_session: dict[str, int] = {}
        self.peak_arrived = 0
        self.peak_total = 0
        self.peak_per_session = 0
        self.sessions_seen: set[str] = set()

    def wait_until(self, ready: Callable[[InFlight], bool], timeout: float) -> bool:
        """Wait until `ready(self)` holds (checked at every change), at most `timeout` seconds."""
        with self._lock:
            return self._lock.wait_for(lambda: ready(self), timeout)

    @property
    def now_arrived(self) -> int:
        return self._arrived

    @property
    def now_served(self) -> int:
        return self._total

    def reset(self) -> None:
        with self._lock:
            self.peak_arrived = self._arrived
            self.peak_total = self._total
            self.peak_per_session = max(self._per_session.values(), default=0)
            self.sessions_seen = set(self._per_session)

    @contextmanager
    def arrived(self) -> Iterator[None]:
        with self._lock:
            self._arrived += 1
            self.peak_arrived = max(self.peak_arrived, self._arrived)
            self._lock.notify_all()
        try:
            yield
        finally:
            with self._lock:
                self._arrived -= 1
                self._lock.notify_all()

    @contextmanager
    def served(self, name: str | None) -> Iterator[None]:
        with self._lock:
            self._total += 1
            self.peak_total = max(self.peak_total, self._total)
            if name is not None:
                now = self._per_session.get(name, 0) + 1
                self._per_session[name] = now
                self.peak_per_session = max(self.peak_per_session, now)
                self.sessions_seen.add(name)
            self._lock.notify_all()
        try:
            yield
        finally:
            with self._lock:
                self._total -= 1
                if name is not None:
                    self._per_session[name] -= 1
                    if not self._per_session[name]:
                        del self._per_session[name]
                self._lock.notify_all()


class Sessions:
    def __init__(self, clock: SandboxClock, users: dict[str, str]) -> None:
        self.clock = clock
        self.users = users  # username -> access key
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, int]] = {}
        self._sessions: dict[str, Session] = {}
        self.in_flight = InFlight()

    def challenge(self, username: str | None) -> dict[str, object]:
        if not username:
            raise WebserviceError("ACCESS_DENIED", "No username given")
        if username not in self.users:
            raise WebserviceError("ACCESS_DENIED", "username does not exists")
        now = self.clock.timestamp()
        token = secrets.token_hex(7)[:13]
        with self._lock:
            self._tokens[username] = (token, now + TOKEN_LIFETIME)
        return {"token": token, "serverTime": now, "expireTime": now + TOKEN_LIFETIME}

    def login(self, username: str, key_hash: str) -> str:
        with self._lock:
            entry = self._tokens.get(username)
        if entry is None or entry[1] < self.clock.timestamp():
            raise WebserviceError("INVALID_AUTH_TOKEN", "Specified token is invalid or expired")
        expected = hashlib.md5((entry[0] + self.users[username]).encode()).hexdigest()
        if not secrets.compare_digest(expected, (key_hash or "").lower()):
            raise WebserviceError("INVALID_USER_CREDENTIALS", "Invalid username or password")
        name = secrets.token_hex(11)[:21]
        with self._lock:
            self._sessions[name] = Session(username, self.clock.timestamp())
        return name

    def check(self, name: str | None, max_calls: int | None) -> Session:
        if not name:
            # sic: the upstream message has this typo
            raise WebserviceError("AUTHENTICATION_REQUIRED", "Authencation required")
        with self._lock:
            session = self._sessions.get(name)
            if session is not None and self.clock.timestamp() - session.started > SESSION_LIFETIME:
                del self._sessions[name]
                session = None
            if session is not None and max_calls is not None and session.calls >= max_calls:
                del self._sessions[name]
                session = None
            if session is None:
                raise WebserviceError("INVALID_SESSIONID", "Session Identifier provided is Invalid")
            session.calls += 1
            return session

    @contextmanager
    def serving(self, name: str | None) -> Iterator[None]:
        """Serve one request: under its session's lock when it names a live session.

        vtiger keeps a webservice session in a PHP session file, and PHP's file handler holds that file locked
        from `session_start()` to the end of the request, so requests carrying the same sessionName are served
        one at a time while other sessions' requests run in parallel. getchallenge and login carry no session.
        A name no session has (expired, made up) fails at once in `check`, so it needs no lock here.
        """
        with self.in_flight.arrived():
            with self._lock:
                session = self._sessions.get(name) if name else None
            if session is None:
                with self.in_flight.served(None):
                    yield
                return
            assert name is not None
            with session.lock, self.in_flight.served(name):
                yield

    def logout(self, name: str) -> None:
        with self._lock:
            self._sessions.pop(name, None)

    def expire_all(self) -> None:
        """Test hook: every open session becomes invalid at once."""
        with self._lock:
            self._sessions.clear()
