"""`SalesforceSandbox`: the loopback org — start/stop, routing, auth, faults and API-usage accounting."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from ..tls import CertFiles, loopback_cert, remove_cert, server_context
from . import auth, bulk, rest
from . import seed as seeding
from .faults import Faults
from .server import HttpsServer
from .store import Store
from .wire import ApiError, Request, Response, not_found

_DATA_RE = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")
_SOAP_RE = re.compile(r"^/services/Soap/u/(\d+\.\d)(/.*)?$")
Route = Callable[[Request], Response]


class SalesforceSandbox:
    """A loopback HTTPS server speaking Salesforce's REST, SOAP-login, OAuth and Bulk API 2.0 wire protocols."""

    def __init__(
        self,
        api_version: str = "59.0",
        batch_size: int = 2000,
        daily_limit: int = 15000,
        *,
        seed_people: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: auth.Credentials | None = None,
        clock: Callable[[], Any] | None = None,
        cert_dir: str | Path | None = None,
    ) -> None:
        self.api_version = api_version
        self.batch_size = batch_size
        self.daily_limit = daily_limit
        self.host = host
        self.port = port
        self.credentials = credentials or auth.Credentials()
        self.store = Store(clock=clock)
        seeding.seed_metadata(self.store)
        seeding.seed_people(self.store, seed_people)
        self.faults = Faults()
        self.calls: list[tuple[str, str]] = []
        # queries (REST query/queryAll and Bulk 2.0 query jobs) per object in their FROM: what was read
        self.queried: Counter[str] = Counter()
        self.api_usage = 0
        self.bulk_polls_in_progress = 1
        self.sessions = auth.Sessions()
        self.cursors = rest.Cursors()
        self.jobs = bulk.Jobs()
        major = int(float(api_version))
        self.versions = [f"{v}.0" for v in range(min(52, major), major + 1)]
        self._cert_dir = cert_dir
        self._cert: CertFiles | None = None  # minted on first use, removed by stop()
        self._lock = threading.Lock()
        self._server: HttpsServer | None = None
        self._thread: threading.Thread | None = None

    # ----- credentials and addresses ------------------------------------------------------------------------
    @property
    def username(self) -> str:
        return self.credentials.username

    @property
    def password(self) -> str:
        return self.credentials.password

    @property
    def security_token(self) -> str:
        return self.credentials.security_token

    @property
    def client_id(self) -> str:
        return self.credentials.client_id

    @property
    def client_secret(self) -> str:
        return self.credentials.client_secret

    @property
    def instance_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def login_url(self) -> str:
        return self.instance_url

    @property
    def ca_bundle(self) -> str:
        return str(self._cert_files().cert)

    def _cert_files(self) -> CertFiles:
        with self._lock:
            if self._cert is None:
                self._cert = loopback_cert(self._cert_dir)
            return self._cert

    # ----- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> SalesforceSandbox:
        if self._server is not None:
            return self
        files = self._cert_files()
        self._server = HttpsServer((self.host, self.port), self.handle, server_context(files))
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name="salesforce-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and remove the certificate's temporary folder (its private key with it)."""
        try:
            self._stop_server()
        finally:
            with self._lock:
                cert, self._cert = self._cert, None
            if cert is not None:
                remove_cert(cert)

    def _stop_server(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        # shutdown() waits for serve_forever to notice; a throwaway connection wakes its select() at once.
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        while stopper.is_alive():
            with contextlib.suppress(OSError):  # the listener may already be closed: then we are done
                socket.create_connection((self.host, self.port), timeout=1).close()
            stopper.join(timeout=0.01)
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SalesforceSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ----- accounting ---------------------------------------------------------------------------------------
    def reset_calls(self) -> None:
        """Forget the served-call log and the API usage (for measuring one run)."""
        with self._lock:
            self.calls.clear()
            self.queried.clear()
            self.api_usage = 0

    def call_counts(self) -> Counter[str]:
        """Served calls per kind, e.g. `{"query": 1, "queryMore": 2}`."""
        with self._lock:
            return Counter(kind for _, kind in self.calls)

    def note_query(self, obj: str) -> None:
        with self._lock:
            self.queried[obj] += 1

    def queried_objects(self) -> Counter[str]:
        """Queries served per object named in their FROM, e.g. `{"Lead": 2, "LeadStatus": 1}`."""
        with self._lock:
            return Counter(self.queried)

    def http_session(self, token: str | None = None) -> requests.Session:
        """A `requests.Session` that trusts the sandbox certificate (and, if given, sends `token`).

        `trust_env` is off because requests lets a REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE environment variable
        override `Session.verify` for calls made without an explicit `verify=` (simple-salesforce's calls).
        """
        session = requests.Session()
        session.verify = self.ca_bundle
        session.trust_env = False
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    def issued_tokens(self) -> list[str]:
        """Every access token this org handed out, revoked ones included."""
        return list(self.sessions.issued)

    def login(self) -> str:
        """An access token without going over HTTP (for tests that only need a session)."""
        return self.sessions.issue().token

    def _record(self, method: str, kind: str) -> None:
        with self._lock:
            self.calls.append((method, kind))

    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_usage}/{self.daily_limit}"}

    # ----- request handling ---------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        if self.faults.latency > 0:
            time.sleep(self.faults.latency)
        path = req.path.rstrip("/") or "/"
        if path == "/services/oauth2/token" and req.method == "POST":
            self._record(req.method, "login")
            return auth.oauth_token(req, self.credentials, self.sessions, self.instance_url)
        soap = _SOAP_RE.match(path)
        if soap and req.method == "POST":
            self._record(req.method, "login")
            return auth.soap_login(req, self.credentials, self.sessions, self.instance_url, soap.group(1))
        if path == "/services/data" and req.method == "GET":
            self._record(req.method, "versions")
            return rest.versions(self)
        data = _DATA_RE.match(path)
        if data is None:
            return not_found().response()
        req.version = data.group(1)
        parts = [p for p in (data.group(2) or "").split("/") if p]
        route, kind = self._route(req, parts)
        self._record(req.method, kind)
        self.faults.wait_if_held(kind)
        try:
            if req.version not in self.versions:
                raise not_found()
            self._admit(req)
            resp = route(req)
            if self.faults.answer_lost(kind):
                raise ApiError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable, please retry.")
        except ApiError as exc:
            resp = exc.response()
        resp.headers.update(self._limit_header())
        # the org's clock, which may differ from ours: clients settle their cursors on it
        resp.headers.setdefault("Date", formatdate(self.store.clock().timestamp(), usegmt=True))
        return resp

    def _admit(self, req: Request) -> None:
        """Auth, session expiry, the daily limit and injected faults, in the order Salesforce applies them."""
        header = req.header("authorization")
        scheme, _, token = header.partition(" ")
        session = self.sessions.get(token.strip()) if scheme.lower() in ("bearer", "oauth") else None
        if session is None:
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        req.token = session.token
        session.calls += 1
        if self.faults.expire_session_after and session.calls > self.faults.expire_session_after:
            self.sessions.revoke(session.token)
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self.faults.request_limit_exceeded or self.api_usage >= self.daily_limit:
            raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        fault = self.faults.draw_call_fault()
        if fault == "429":
            raise ApiError(
                429,
                "REQUEST_LIMIT_EXCEEDED",
                "ConcurrentPerOrgLongTxn Limit exceeded.",
                headers={"Retry-After": f"{self.faults.retry_after:g}"},
            )
        if fault == "503":
            raise ApiError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable, please retry.")
        with self._lock:
            self.api_usage += 1

    def _route(self, req: Request, parts: list[str]) -> tuple[Route, str]:
        m = req.method
        n = len(parts)
        head = parts[0] if parts else ""
        if n == 0 and m == "GET":
            return (lambda r: rest.resources(self, r)), "resources"
        if head == "limits" and n == 1 and m == "GET":
            return (lambda r: rest.limits(self, r)), "limits"
        if head in ("query", "queryAll") and m == "GET":
            if n == 1:
                return (lambda r: rest.query(self, r, include_deleted=head == "queryAll")), head
            if n == 2:
                return (lambda r: rest.query_more(self, r, parts[1])), "queryMore"
        if head == "sobjects":
            if n == 1 and m == "GET":
                return (lambda r: rest.global_describe(self, r)), "sobjects"
            if n == 2 and m == "GET":
                return (lambda r: rest.sobject_info(self, r, parts[1])), "sobject.info"
            if n == 2 and m == "POST":
                return (lambda r: rest.create_record(self, r, parts[1])), "sobject.post"
            if n == 3 and parts[2] == "describe" and m == "GET":
                return (lambda r: rest.describe(self, r, parts[1])), "describe"
            if n == 3 and m == "GET":
                return (lambda r: rest.get_record(self, r, parts[1], parts[2])), "sobject.get"
            if n == 3 and m == "PATCH":
                return (lambda r: rest.update_record(self, r, parts[1], parts[2])), "sobject.patch"
            if n == 3 and m == "DELETE":
                return (lambda r: rest.delete_record(self, r, parts[1], parts[2])), "sobject.delete"
            if n == 4 and m == "PATCH":
                return (lambda r: rest.upsert_record(self, r, parts[1], parts[2], parts[3])), "sobject.upsert"
        if parts[:2] == ["composite", "sobjects"] and n == 2:
            if m in ("POST", "PATCH"):
                return (lambda r: rest.collection_write(self, r)), "composite/sobjects"
            if m == "DELETE":
                return (lambda r: rest.collection_delete(self, r)), "composite/sobjects"
        if head == "jobs" and n >= 2 and parts[1] in ("query", "ingest"):
            kind = parts[1]
            route = self._job_route(m, kind, parts[2:])
            if route is not None:
                return route, f"bulk2.{kind}"
        return _raise_not_found, "unknown"

    def _job_route(self, m: str, kind: str, rest_parts: list[str]) -> Route | None:
        n = len(rest_parts)
        if n == 0 and m == "POST":
            create = bulk.create_query_job if kind == "query" else bulk.create_ingest_job
            return lambda r: create(self, r)
        if n == 0 and m == "GET":
            return lambda r: bulk.list_jobs(self, r, kind)
        job_id = rest_parts[0] if rest_parts else ""
        if n == 1 and m == "GET":
            get = bulk.get_query_job if kind == "query" else bulk.get_ingest_job
            return lambda r: get(self, r, job_id)
        if n == 1 and m == "PATCH":
            return lambda r: bulk.patch_job(self, r, job_id, kind)
        if n == 1 and m == "DELETE":
            return lambda r: bulk.delete_job(self, r, job_id, kind)
        sub = rest_parts[1] if n == 2 else ""
        if kind == "query" and sub == "results" and m == "GET":
            return lambda r: bulk.query_results(self, r, job_id)
        if kind == "ingest" and sub == "batches" and m == "PUT":
            return lambda r: bulk.upload_batch(self, r, job_id)
        if (
            kind == "ingest"
            and sub in ("successfulResults", "failedResults", "unprocessedrecords")
            and m == "GET"
        ):
            return lambda r: bulk.ingest_results(self, r, job_id, sub)
        return None


def _raise_not_found(req: Request) -> Response:
    raise not_found()
