"""The HTTP shell: `/webservice.php` on a loopback `ThreadingHTTPServer`."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from connector_sandboxes.vtiger.operations import Operations

ENDPOINT = "/webservice.php"
MAX_BODY = 10 * 1024 * 1024
# what a reverse proxy or a maintenance mode in front of vtiger answers, with HTTP 200
MAINTENANCE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Down for maintenance</title></head>"
    b"<body><h1>We'll be back soon</h1><p>The CRM is being updated.</p></body></html>\n"
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes; without this, Nagle + delayed ACK add ~40 ms a call
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        if url.path != ENDPOINT:
            self._send(404, b"", "text/plain")
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if method == "POST":
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            # PHP's $_REQUEST: the form body wins over the query string
            params.update(parse_qsl(body, keep_blank_values=True))
        operations = self.server.operations
        broken = operations.faults.broken_answer(params.get("operation", ""))
        if broken == "html":
            self._send(200, MAINTENANCE_PAGE, "text/html; charset=UTF-8")
            return
        status, payload = operations.handle(method, params)
        if payload is None:
            self._send(status, b"", "text/html; charset=UTF-8")
            return
        answer = _encode(payload)
        if broken == "truncated":
            answer = answer[: max(len(answer) // 2, 1)]  # Content-Length matches: PHP's output simply stopped
            status = 200
        self._send(status, answer, "application/json; charset=UTF-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # request lines would drown test output; the sandbox's counters say what was served
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # a pool of sessions opens its connections at once; socketserver's backlog of 5 would drop the SYNs of the
    # rest and leave them to the kernel's one-second retransmit
    request_queue_size = 64

    def __init__(
        self, address: tuple[str, int], operations: Operations, context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(address, _Handler)
        self.operations = operations
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is None:
            # a client that gave up (a time-out test, a cancelled run) is not an error of the sandbox:
            # socketserver would print its BrokenPipe traceback into the test output
            with contextlib.suppress(ConnectionError, TimeoutError):
                super().finish_request(request, client_address)
            return
        # the handshake runs in the connection's own thread, so a client that never completes it stalls no one
        try:
            request.settimeout(10)
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that refused our certificate (the point of some tests) or probed the port
        try:
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):  # the client hung up
                _Handler(tls, client_address, self)
        finally:
            with contextlib.suppress(OSError):  # already closed by the peer
                tls.close()


def _encode(payload: dict[str, Any]) -> bytes:
    # PHP's json_encode escapes non-ASCII and "/"; clients must not depend on either, so match it
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode("ascii")


class HttpServer:
    def __init__(
        self,
        operations: Operations,
        host: str = "127.0.0.1",
        port: int = 0,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self._server = _Server((host, port), operations, context)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="vtiger-sandbox",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
