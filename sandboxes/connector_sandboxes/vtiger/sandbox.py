"""`VtigerSandbox`: a loopback vtiger CRM 8.2.0 webservice for tests, the demo and benchmarks."""

from __future__ import annotations

import secrets
import string
from collections import Counter
from types import TracebackType

from connector_sandboxes.tls import CertFiles, loopback_cert, remove_cert, server_context
from connector_sandboxes.vtiger.clock import SandboxClock
from connector_sandboxes.vtiger.faults import Faults
from connector_sandboxes.vtiger.operations import Operations
from connector_sandboxes.vtiger.seed import seed_people as _seed_people
from connector_sandboxes.vtiger.server import ENDPOINT, HttpServer
from connector_sandboxes.vtiger.sessions import InFlight, Sessions
from connector_sandboxes.vtiger.store import VtigerStore


def new_access_key() -> str:
    # vtiger access keys are 16 alphanumerics
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(16))


class VtigerSandbox:
    """A vtiger webservice on 127.0.0.1 that answers like the recorded real server.

    `store`, `faults` and `clock` are live: change them while the server runs.

    * `url` / `endpoint` (`url + "/webservice.php"`), `username`, `access_key`, `env()`
    * `store`: create / update / revise / delete / get / all / relate / related / field_by_label /
      add_custom_field / set_modifiedtime / deletions; records are plain string dicts without `label`
    * `faults`: latency, error_500_rate (+ error_500_ops, fail_next, down_after, seed), sync_broken,
      logout_broken, convertlead_broken (all False: the patched instance the recording comes from;
      `stock_php8()` sets them), sync_zero_fails, expire_sessions_after, injected; broken_body ("truncated"
      JSON or an "html" page with HTTP 200; + broken_body_ops, broken_body_after, broken_body_count), broken
    * `calls` (operations answered, by name), `reset_calls()`, `clock` (set / advance / now)
    * one request at a time per session, like vtiger's locked PHP session file (other sessions in parallel);
      `in_flight` counts the peaks (`peak_total`, `peak_per_session`, `peak_arrived`, `sessions_seen`)
    * `tls=True`: serve HTTPS with a self-signed certificate (`ca_bundle`), as a real install behind TLS does;
      its temporary key folder is removed by `stop()`
    """

    def __init__(
        self,
        username: str = "admin",
        access_key: str | None = None,
        *,
        custom_fields: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        seed_people: int = 0,
        faults: Faults | None = None,
        tls: bool = False,
    ) -> None:
        self.username = username
        self.access_key = access_key or new_access_key()
        self.clock = SandboxClock()
        self.store = VtigerStore(self.clock, custom_fields=custom_fields)
        self.faults = faults or Faults()
        self.sessions = Sessions(self.clock, {username: self.access_key})
        self.operations = Operations(self.store, self.sessions, self.faults)
        self._host, self._port = host, port
        self._http: HttpServer | None = None
        self.tls = tls
        self._cert: CertFiles | None = None
        if seed_people:
            _seed_people(self.store, seed_people)

    # ---- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> VtigerSandbox:
        if self._http is None:
            context = server_context(self._cert_files()) if self.tls else None
            self._http = HttpServer(self.operations, self._host, self._port, context)
            self._http.start()
        return self

    def stop(self) -> None:
        """Stop serving; with `tls`, also remove the certificate's temporary folder (its private key too)."""
        try:
            if self._http is not None:
                self._http.stop()
                self._http = None
        finally:
            cert, self._cert = self._cert, None
            if cert is not None:
                remove_cert(cert)

    def _cert_files(self) -> CertFiles:
        if self._cert is None:
            self._cert = loopback_cert()
        return self._cert

    def __enter__(self) -> VtigerSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- addresses and counters -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._http.address
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    @property
    def ca_bundle(self) -> str:
        """The certificate to verify the server with (`tls=True` only)."""
        if not self.tls:
            raise RuntimeError("the sandbox serves plain HTTP; start it with tls=True")
        return str(self._cert_files().cert)

    @property
    def endpoint(self) -> str:
        return self.url + ENDPOINT

    @property
    def calls(self) -> Counter[str]:
        """Operations answered so far, by name (injected empty 500s are in `faults.injected`)."""
        return self.operations.calls

    @property
    def in_flight(self) -> InFlight:
        """Peaks of requests served at once, in total and within one session (`peak_total`,
        `peak_per_session`; `peak_arrived` counts those still waiting for their session's lock too)."""
        return self.sessions.in_flight

    @property
    def queried(self) -> Counter[str]:
        """VTQL queries answered (`query`, `query_related`) per module named in their FROM."""
        return self.operations.queried

    def reset_calls(self) -> None:
        self.operations.calls.clear()
        self.operations.queried.clear()
        self.sessions.in_flight.reset()
        self.faults.injected.clear()
        self.faults.broken.clear()

    def env(self) -> dict[str, str]:
        """What a connector run needs in its environment to reach this sandbox."""
        return {
            "VTIGER_URL": self.url,
            "VTIGER_USERNAME": self.username,
            "VTIGER_ACCESS_KEY": self.access_key,
        }
