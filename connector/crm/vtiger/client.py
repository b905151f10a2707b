"""Transport for the vtiger webservice (`/webservice.php`): login, sessions, methods, envelopes, errors.

Built to what a real vtiger 8.2.0 does (see docs in the vtiger package), not to what its manual implies:
- every operation has exactly one HTTP method; the wrong one is refused with ACCESS_DENIED;
- `element` travels as a JSON *string* in a form body;
- stock 8.2 on PHP 8 answers some operations (`sync`, `logout`) with HTTP 500 and an *empty* body: that is an
  error (retriable), never an empty result;
- a challenge token is per user and a new `getchallenge` replaces the previous one, so logins are serialised;
- one session serves one request at a time (its PHP session file is locked for the whole request), so
  concurrent calls take sessions of their own from a pool (`session_pool.py`), each logged in on first use;
- a 200 whose body is no webservice envelope (JSON cut short when PHP dies mid-output, a proxy's or a
  maintenance page) is an outage, retried like a 5xx; only a url that never answered with an envelope (first
  contact, every attempt) is a config error.

This module knows nothing about the funnel: `vtql.py` builds queries, `describe.py` reads module fields, and
connector/sources/vtiger and connector/writers/vtiger decide what to read and write.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import requests
import structlog
from requests.adapters import HTTPAdapter

from ...errors import ConfigError, ConnectorError, RecordError, RetriableError, UnreachableError
from ...logs import register_secret
from ...retry import RetryPolicy, parse_retry_after
from ..transport import certificate_error, certificate_failure
from .session_pool import SessionPool, Slot

log = structlog.get_logger(__name__)

GET_OPERATIONS = frozenset(
    {
        "getchallenge",
        "query",
        "retrieve",
        "describe",
        "listtypes",
        "sync",
        "relatedtypes",
        "retrieve_related",
        "query_related",
    }
)
POST_OPERATIONS = frozenset(
    {"login", "create", "update", "revise", "delete", "logout", "add_related", "convertlead"}
)
SESSION_ERRORS = frozenset({"INVALID_SESSIONID", "AUTHENTICATION_REQUIRED"})
LOGIN_ERRORS = frozenset({"INVALID_USER_CREDENTIALS", "INVALID_AUTH_TOKEN"})
RETRIABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
CONFIG_STATUS = frozenset({401, 403, 404, 405})
NOT_AN_ENVELOPE = "NOT_AN_ENVELOPE"
# a logout at the end of a run must not hold up the exit behind a slow or gone server
LOGOUT_TIMEOUT = 5.0


class VtigerApiError(RecordError):
    """vtiger answered `success: false` for one operation (the code is vtiger's, e.g. ACCESS_DENIED)."""


class _SessionRejected(Exception):
    """Internal: the server no longer accepts our session; re-login once and repeat."""


# A challenge token is per *user on a server*, and a new getchallenge replaces it, so every client of one
# user (the source's and the writer's in one run, or two targets) must take turns at logging in, not only the
# threads of one client.
_LOGIN_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOGIN_LOCKS_GUARD = threading.Lock()


def login_lock(endpoint: str, username: str) -> threading.Lock:
    with _LOGIN_LOCKS_GUARD:
        return _LOGIN_LOCKS.setdefault((endpoint, username), threading.Lock())


def read_error(exc: VtigerApiError, what: str) -> ConnectorError:
    """A `success: false` answer to a read the run depends on (a query, a describe) as a run-level error.

    ACCESS_DENIED on a query built from describe means the user may not read that module or field: config.
    Anything else (a syntax error, a database error) ends this system's part of the run, cursors kept.
    """
    if exc.code == "ACCESS_DENIED":
        return ConfigError(f"{what}: {exc} (check the vtiger user's access to this module and its fields)")
    return UnreachableError(f"{what}: {exc}")


class VtigerClient:
    """Webservice sessions (up to `sessions` at once, one per concurrent caller) over one `requests.Session`
    (connection reuse, thread-safe calls).

    `call()` runs an operation through the shared retry policy; `call(..., retry=False)` makes one attempt
    (used to probe `sync`, and inside callers that wrap a whole read-check-write step in the policy).
    """

    def __init__(
        self,
        url: str,
        username: str,
        access_key: str,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 30.0,
        verify: bool | str = True,
        session: requests.Session | None = None,
        pool_size: int = 8,
        sessions: int = 1,
    ) -> None:
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/webservice.php") else base + "/webservice.php"
        self.username = username
        self._access_key = access_key
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.http = session or requests.Session()
        # passed with every request (`_request`): requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the
        # environment override `Session.verify`, which would silently drop the configured ca_bundle
        self.verify = verify
        self.http.verify = verify
        self.pool_size = 0
        self.ensure_pool(pool_size)
        self.calls: Counter[str] = Counter()  # HTTP requests made, per operation
        self.logins = 0
        self._described: dict[str, dict[str, Any]] = {}
        self.on_call: Callable[[str], None] | None = None  # per-run hook, e.g. ctx.count_call
        self.sessions = SessionPool(sessions)
        self.user_id: str | None = None
        # what the last login said of the server and the user (versions, time zone): for `connector check`
        self.login_info: dict[str, str] = {}
        self._login_lock = login_lock(self.endpoint, username)
        self._count_lock = threading.Lock()
        # whether this url ever answered like vtiger: until it has, answers that are never an envelope point
        # at a wrong url (config), afterwards they are an outage
        self._envelope_seen = False

    # -- public -------------------------------------------------------------------------------------------
    def ensure_pool(self, size: int) -> None:
        """At least `size` pooled connections: the targets sharing this client ask for what their concurrency
        needs while the run builds them, before any request. Only grows."""
        if size <= self.pool_size:
            return
        self.pool_size = max(size, 1)
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)

    def call(
        self,
        operation: str,
        params: Mapping[str, Any] | None = None,
        *,
        retry: bool = True,
        check: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Run `operation` with `params` (dict/list values are JSON-encoded) and return its `result`.

        `check` validates (and may convert) the result inside each attempt, so a malformed answer is retried
        like a 500 instead of escaping the policy as a bare `RetriableError`.
        """
        encoded = _encode_params(params or {})
        failures: list[str | None] = []  # the code of each failed attempt, to tell a wrong url from an outage
        if not retry:
            return self._attempt(operation, encoded, check, failures)
        try:
            return self.policy.call(
                self._attempt, operation, encoded, check, failures, what=f"vtiger {operation}"
            )
        except UnreachableError:
            # every attempt got a page or a fragment, and this url never answered like vtiger: a wrong url
            if failures and not self._envelope_seen and all(code == NOT_AN_ENVELOPE for code in failures):
                raise ConfigError(
                    f"is url the vtiger base URL? {self.endpoint} never answered with a webservice envelope"
                ) from None
            raise

    def query(self, vtql: str, *, retry: bool = True) -> list[dict[str, Any]]:
        return list(self.call("query", {"query": vtql}, retry=retry, check=_rows))

    def query_related(self, record_id: str, related_label: str, vtql: str) -> list[dict[str, Any]]:
        params = {"id": record_id, "relatedLabel": related_label, "query": vtql}
        return list(self.call("query_related", params, check=_rows))

    def describe(self, module: str) -> dict[str, Any]:
        # module metadata does not change within a run, and a client lives for one run: describe once
        if module not in self._described:
            self._described[module] = dict(self.call("describe", {"elementType": module}, check=_describe))
        return dict(self._described[module])

    def revise(self, element: Mapping[str, Any], *, retry: bool = True) -> dict[str, Any]:
        return dict(self.call("revise", {"element": dict(element)}, retry=retry))

    def create(self, module: str, element: Mapping[str, Any], *, retry: bool = True) -> dict[str, Any]:
        return dict(self.call("create", {"elementType": module, "element": dict(element)}, retry=retry))

    def retrieve(self, record_id: str) -> dict[str, Any]:
        return dict(self.call("retrieve", {"id": record_id}))

    def add_related(self, source_id: str, related_id: str, label: str | None = None) -> Any:
        params = {"sourceRecordId": source_id, "relatedRecordId": related_id}
        if label:
            params["relationIdLabel"] = label
        return self.call("add_related", params)

    def sync(self, module: str, modified_time: int, *, retry: bool = True) -> dict[str, Any]:
        params = {"modifiedTime": str(modified_time), "elementType": module}
        return dict(self.call("sync", params, retry=retry, check=_sync_page))

    def ensure_sessions(self, size: int) -> None:
        """Up to `size` sessions at once: a target asks for one per worker while the run builds it."""
        self.sessions.grow(size)

    def open_sessions(self, count: int) -> None:
        """Log in until `count` sessions (at most the pool's limit) are open, one after another (logins take
        turns). A writer calls it on a thread of its own before its first describe, so the workers' logins
        overlap the describe instead of following it. A login that fails here is left to the call that needs
        the session: it logs in again and reports the failure where it belongs."""
        for slot in self.sessions.reserve(count):
            try:
                self._session_of(slot)
            except Exception as exc:  # the next call on this slot logs in again and raises it
                log.info("vtiger.login.early_failed", reason=getattr(exc, "code", None) or type(exc).__name__)
                return

    def close(self) -> None:
        """Log out every session no call is using, one attempt each, then close the connections.

        Stock 8.2 on PHP 8 answers `logout` with an empty HTTP 500: at the first such answer (or a server that
        does not answer) the rest are left to expire by themselves. A session still serving a call stopped
        part way is skipped: vtiger would hold the logout until that call ends.
        """
        for name in self.sessions.take_idle():
            try:
                self._request("logout", {"sessionName": name}, timeout=min(self.timeout, LOGOUT_TIMEOUT))
            except (_SessionRejected, VtigerApiError):
                continue  # already gone (expired, logged out): nothing to end
            except ConnectorError as exc:
                log.info("vtiger.logout.skipped", reason=getattr(exc, "code", None) or type(exc).__name__)
                break
        self.http.close()

    # -- session ------------------------------------------------------------------------------------------
    def _session_of(self, slot: Slot) -> str:
        name = slot.name
        if name is not None:
            # no lock for a session already open: a worker that has one must not wait while another worker
            # logs in (logins take turns, 2 calls each)
            return name
        with self._login_lock:
            if slot.name is None:
                slot.name = self._login_locked()
            return slot.name

    def _relogin(self, slot: Slot, stale: str) -> str:
        with self._login_lock:
            # another thread sharing the slot may already have replaced the stale session while we waited
            if slot.name in (None, stale):
                slot.name = self._login_locked()
            return slot.name

    def _login_locked(self) -> str:
        for attempt in (1, 2):
            challenge = self._request("getchallenge", {"username": self.username})
            token = challenge.get("token") if isinstance(challenge, dict) else None
            if not token:
                raise RetriableError("vtiger getchallenge: no token in the answer", code="BAD_RESPONSE")
            digest = hashlib.md5((str(token) + self._access_key).encode("utf-8")).hexdigest()
            try:
                result = self._request("login", {"username": self.username, "accessKey": digest})
            except VtigerApiError as exc:
                # a concurrent login elsewhere (same user) replaces our token; one fresh challenge settles it
                if exc.code in LOGIN_ERRORS and attempt == 1:
                    log.warning("vtiger.login.retry", code=exc.code)
                    continue
                if exc.code in LOGIN_ERRORS:
                    raise ConfigError(
                        f"vtiger login refused for user '{self.username}' ({exc.code}): check the user name "
                        "and access key (My Preferences > Access Key) in the environment"
                    ) from None
                raise
            if not isinstance(result, dict) or not result.get("sessionName"):
                raise RetriableError("vtiger login: no sessionName in the answer", code="BAD_RESPONSE")
            name = str(result["sessionName"])
            register_secret(name)
            self.user_id = str(result.get("userId") or "") or None
            self.login_info = {k: str(result.get(k) or "") for k in ("version", "vtigerVersion", "time_zone")}
            self.logins += 1
            log.info("vtiger.login", user=self.username, vtiger_version=result.get("vtigerVersion"))
            return name
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _attempt(
        self,
        operation: str,
        params: dict[str, str],
        check: Callable[[Any], Any] | None,
        failures: list[str | None],
    ) -> Any:
        try:
            result = self._call_with_session(operation, params)
            return check(result) if check is not None else result
        except RetriableError as exc:
            failures.append(exc.code)
            raise

    def _call_with_session(self, operation: str, params: dict[str, str]) -> Any:
        with self.sessions.checkout() as slot:
            session = self._session_of(slot)
            try:
                return self._request(operation, {**params, "sessionName": session})
            except _SessionRejected as first:
                log.info("vtiger.session.expired", operation=operation, code=str(first))
            session = self._relogin(slot, session)
            try:
                return self._request(operation, {**params, "sessionName": session})
            except _SessionRejected as again:
                raise ConfigError(
                    f"vtiger refused a fresh session for {operation} ({again}): the user may lack "
                    "webservice access"
                ) from None

    # -- wire ---------------------------------------------------------------------------------------------
    def _count(self, operation: str) -> None:
        with self._count_lock:
            self.calls[operation] += 1
        hook = self.on_call
        if hook is not None:
            hook(operation)

    def _request(self, operation: str, params: dict[str, str], *, timeout: float | None = None) -> Any:
        data = {"operation": operation, **params}
        self._count(operation)
        wait = timeout or self.timeout
        try:
            if operation in GET_OPERATIONS:
                response = self.http.get(self.endpoint, params=data, timeout=wait, verify=self.verify)
            elif operation in POST_OPERATIONS:
                response = self.http.post(self.endpoint, data=data, timeout=wait, verify=self.verify)
            else:
                raise ValueError(f"unknown vtiger operation '{operation}'")
        except requests.exceptions.SSLError as exc:
            reason = certificate_failure(exc)
            if reason is not None:  # waiting does not make a certificate valid
                ca_bundle = self.verify if isinstance(self.verify, str) else None
                raise certificate_error(f"vtiger {operation}", self.endpoint, reason, ca_bundle) from None
            raise RetriableError(
                f"vtiger {operation}: SSLError talking to {self.endpoint}", code="TLS"
            ) from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            # a reset or a body cut short mid-transfer is as transient as a refused connection
            raise RetriableError(
                f"vtiger {operation}: {type(exc).__name__} talking to {self.endpoint}", code="CONNECTION"
            ) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise ConfigError(f"vtiger url '{self.endpoint}' is not usable: {type(exc).__name__}") from None
        return self._parse(operation, response)

    def _parse(self, operation: str, response: requests.Response) -> Any:
        status = response.status_code
        if status in RETRIABLE_STATUS or status >= 500:
            raise RetriableError(
                f"vtiger {operation}: HTTP {status}"
                + (" with an empty body" if not response.content else ""),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                code=f"HTTP_{status}",
            )
        if status in CONFIG_STATUS:
            raise ConfigError(f"vtiger {operation}: HTTP {status} from {self.endpoint}: check the url")
        if status >= 400:
            raise RecordError(f"vtiger {operation}: HTTP {status}", code=f"HTTP_{status}")
        if not response.content.strip():
            # PHP dying before it printed anything is not an answer (and not an empty result) whatever the status
            raise RetriableError(f"vtiger {operation}: HTTP {status} with an empty body", code="EMPTY_BODY")
        body = _decode(response.text)
        if body is None or not isinstance(body.get("success"), bool):
            # cut short, a proxy's page, a maintenance page: the server (or something in front of it) is not
            # answering properly right now. `call` turns it into a config error if this url never answered so.
            raise RetriableError(
                f"vtiger {operation}: HTTP {status} but the answer is not a webservice envelope "
                f"({_body_kind(response)})",
                code=NOT_AN_ENVELOPE,
            )
        self._envelope_seen = True
        if body.get("success") is True:
            return body.get("result")
        error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
        code = str(error.get("code", "UNKNOWN"))
        message = str(error.get("message", ""))
        if code in SESSION_ERRORS:
            raise _SessionRejected(code)
        raise VtigerApiError(f"vtiger {operation}: {code} {message}".strip(), code=code)


def _encode_params(params: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, dict | list):
            # vtiger wants `element` (and `fieldTypeList`) as a JSON string, not as form sub-keys
            out[key] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        elif value is None:
            continue
        else:
            out[key] = str(value)
    return out


def _decode(text: str) -> dict[str, Any] | None:
    try:
        body = json.loads(text)
    except ValueError:
        # PHP installs with display_errors on prepend notices to the JSON; the envelope is still there
        start = text.find('{"success"')
        if start < 0:
            return None
        try:
            body = json.loads(text[start:])
        except ValueError:
            return None
        log.warning("vtiger.response.noise", prefix_chars=start)
    return body if isinstance(body, dict) else None


def _body_kind(response: requests.Response) -> str:
    """What came instead of an envelope, for the log: the type and size only, never the body (it may echo
    the request, session name included)."""
    content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip() or "no content type"
    return f"{content_type}, {len(response.content)} bytes"


def _rows(result: Any) -> list[dict[str, Any]]:
    if not isinstance(result, list):
        raise RetriableError("vtiger: expected a list of rows", code="BAD_RESPONSE")
    return [row for row in result if isinstance(row, dict)]


def _describe(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict) or not isinstance(result.get("fields"), list):
        raise RetriableError("vtiger describe: expected a module description", code="BAD_RESPONSE")
    return result


def _sync_page(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict) or not isinstance(result.get("updated"), list):
        raise RetriableError("vtiger sync: expected updated/deleted lists", code="BAD_RESPONSE")
    return result
