"""Structured logging: readable on a terminal, JSON lines otherwise; secrets masked in every event.

Events have dotted names and key-value fields (`source.read.done source=sf_prod object=Lead records=1200`).
Logs go to stderr so `--json` output on stdout stays one clean JSON object.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRETS: set[str] = set()
_SECRET_KEYS = re.compile(r"(password|secret|token|access_?key|session_?id|authorization)", re.I)


def register_secret(value: str | None) -> None:
    """Values registered here are replaced by `***` wherever they appear in a log event."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def mask_text(text: str) -> str:
    """`text` with every registered secret replaced by `***` (for logs, the run summary and state)."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def mask_secrets(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key) and value not in (None, "", False):
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = mask_text(value)
        elif isinstance(value, BaseException):
            event[key] = mask_text(str(value))
    return event


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(file=sys.stderr)


# what configure() chose; JSON until it runs (machine-readable is the safe default): progress.py draws no bar then
_json_logs = True


def json_logs() -> bool:
    return _json_logs


def configure(level: str = "info", json_logs: bool | None = None) -> None:
    global _json_logs
    if json_logs is None:
        json_logs = not sys.stderr.isatty()
    _json_logs = json_logs
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # resolve sys.stderr at each logger creation, not once: it may be replaced (capture, daemonising)
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
