"""HTTP plumbing: a threaded HTTPS server whose handler turns each request into a `wire.Request`.

The TLS handshake runs in the connection's own thread (not in `accept`), so one slow client cannot stall the
others, and open keep-alive connections are closed on stop so no handler thread outlives the sandbox.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import structlog

from .wire import Request, Response

log = structlog.get_logger(__name__)
Handler = Callable[[Request], Response]


class HttpsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handle: Handler, context: ssl.SSLContext) -> None:
        self.handle = handle
        self.context = context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(10)
            # Without NODELAY, Nagle plus the client's delayed ACK adds ~40 ms to every keep-alive request.
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that gave up on the handshake (or probed the port) is not our problem
        with self._open_lock:
            self._open.add(tls)
        try:
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):  # the client hung up
                _RequestHandler(tls, client_address, self)
        finally:
            with self._open_lock:
                self._open.discard(tls)
            with contextlib.suppress(OSError):  # already closed by the peer
                tls.close()

    def close_connections(self) -> None:
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):  # already gone
                conn.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HttpsServer
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request line http.server writes to stderr (tests and the demo count calls instead)."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=parts.path,
            params=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            resp = self.server.handle(req)
        except Exception as exc:  # an unexpected bug must show up as a 500, not a hung client
            log.exception("salesforce_sandbox.handler.crashed", path=parts.path)
            resp = Response.json(
                [{"message": f"sandbox error: {exc!r}", "errorCode": "UNKNOWN_EXCEPTION"}], 500
            )
        self._write(resp)

    def _write(self, resp: Response) -> None:
        # Head and body go out in one write (one TLS record): no extra round trip per response.
        head = [
            f"{self.protocol_version} {resp.status} {_reason(resp.status)}",
            f"Date: {resp.headers.get('Date') or self.date_time_string()}",
            "Server: connector-salesforce-sandbox",
        ]
        if resp.content_type:
            head.append(f"Content-Type: {resp.content_type}")
        head.extend(f"{name}: {value}" for name, value in resp.headers.items() if name != "Date")
        head.append(f"Content-Length: {len(resp.body)}")
        body = resp.body if self.command != "HEAD" else b""
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.wfile.flush()

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
