"""Challenge tokens and sessions: one token per user (a new getchallenge replaces it), 300 s lifetime."""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass

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


class Sessions:
    def __init__(self, clock: SandboxClock, users: dict[str, str]) -> None:
        self.clock = clock
        self.users = users  # username -> access key
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, int]] = {}
        self._sessions: dict[str, Session] = {}

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

    def logout(self, name: str) -> None:
        with self._lock:
            self._sessions.pop(name, None)

    def expire_all(self) -> None:
        """Test hook: every open session becomes invalid at once."""
        with self._lock:
            self._sessions.clear()
