"""The one retry policy every client uses.

Retries only `RetriableError` (callers classify 429, 5xx, connection errors and lock contention into it; a
plain 4xx never becomes one). Waits honour `Retry-After` when the server gave one and otherwise back off
exponentially with jitter. The sleep function is injectable so tests never sleep.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from .errors import RetriableError, UnreachableError

T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass
class RetryPolicy:
    """Attempts and backoff shared by all clients; `sleep` is swapped out in tests."""

    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 30.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetriableError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.max_retry_after)
        backoff = wait_exponential_jitter(
            multiplier=self.initial_wait, max=self.max_wait, jitter=self.initial_wait
        )
        return float(backoff(state))

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retry.wait",
            attempt=state.attempt_number,
            wait=round(state.upcoming_sleep, 3),
            error=type(exc).__name__,
            code=getattr(exc, "code", None),
        )

    def call(self, fn: Callable[..., T], *args: Any, what: str = "call", **kwargs: Any) -> T:
        """Run `fn`, retrying transient failures; raise `UnreachableError` once the attempts are used up."""
        retrying = Retrying(
            retry=retry_if_exception_type(RetriableError),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            sleep=self.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(fn, *args, **kwargs)
        except RetriableError as exc:
            raise UnreachableError(f"{what}: gave up after {self.attempts} attempts: {exc}") from exc


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    with contextlib.suppress(ValueError):  # not delta-seconds: try the HTTP-date form below
        return max(float(value), 0.0)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
