"""A loopback webhook receiver for the event feed: records every POST (headers and raw body) and can be told to
fail, to hang until released (the sender's time-out fires) or to answer slowly, one scripted answer per request.

    with WebhookReceiver().start() as hook:
        hook.script("fail:503", "hang", "slow")   # the next three requests; later ones answer 200
        ... POST to hook.url ...
        hook.accepted  # the requests answered 2xx, in order
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLOW_SECONDS = 0.3  # "slow" answers after this long: slower than a loopback call, far inside any time-out


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answer: int | None  # the status sent back; None when the request was left hanging


class WebhookReceiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._release = threading.Event()  # lets hanging requests go (at stop)
        self._server: ThreadingHTTPServer | None = None

    # ---- control ----------------------------------------------------------------------------------------

    def script(self, *answers: str) -> None:
        """Answers for the next requests: "ok", "fail:<status>" (optionally "fail:<status>:<retry-after>"),
        "hang" (no answer until the receiver stops), "slow" (200 after SLOW_SECONDS)."""
        with self._lock:
            self._script.extend(answers)

    @property
    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.answer is not None and 200 <= r.answer < 300]

    def wait_for_requests(self, n: int, timeout: float) -> list[Received]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= n, timeout):
                raise AssertionError(f"{len(self.requests)} requests within {timeout:g} s, expected {n}")
            return list(self.requests)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)
        return f"http://{host}:{port}/events"

    @contextlib.contextmanager
    def start(self) -> Iterator[WebhookReceiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    answer = receiver._script.popleft() if receiver._script else "ok"
                if answer == "hang":
                    receiver._record(self, body, None)
                    receiver._release.wait()
                    self.close_connection = True
                    return
                if answer == "slow":
                    receiver._release.wait(SLOW_SECONDS)
                    answer = "ok"
                status, retry_after = 200, None
                if answer.startswith("fail:"):
                    parts = answer.split(":")
                    status = int(parts[1])
                    retry_after = parts[2] if len(parts) > 2 else None
                # recorded before the answer goes out: a client that has its 200 must find the request here
                # (recording after it raced the test on a busy machine)
                receiver._record(self, body, status)
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests read `requests`

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._release.set()
            self._server.shutdown()
            self._server.server_close()
            thread.join()

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes, status: int | None) -> None:
        with self._changed:
            headers = {k: v for k, v in handler.headers.items()}
            self.requests.append(Received(handler.path, headers, body, status))
            self._changed.notify_all()
