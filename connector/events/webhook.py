"""The webhook sink: a batch of events POSTed as a CloudEvents JSON batch, signed, through the shared retry
policy.

- Signature: `<signature_header>: sha256=<hex>`, HMAC-SHA256 of the exact body bytes with the secret from the
  environment variable the config names. The receiver recomputes it over the raw body before parsing.
- `Idempotency-Key`: the event id for a single event, else an id derived from the batch's event ids; each
  event carries its own stable `id` too, which is what receivers should deduplicate on (a batch may be cut
  differently on the next run).
- 429, 408, 5xx, time-outs and connection errors are retried (Retry-After honoured); any other answer outside
  2xx (a plain 4xx, a redirect: the body must not be re-sent elsewhere) is not, and the events stay for the
  next run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

import requests
from pydantic import SecretStr

from ..crm.transport import certificate_error, certificate_failure
from ..errors import ConnectorError, RetriableError
from ..retry import RetryPolicy, parse_retry_after
from .cloudevents import event_id
from .config import WebhookConfig

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json; charset=utf-8"
RETRIED_STATUS = frozenset({408, 429})


class WebhookRefused(ConnectorError):
    """The receiver answered outside 2xx with a status that retrying cannot change (a plain 4xx, a redirect)."""


def signature(secret: SecretStr, body: bytes) -> str:
    digest = hmac.new(secret.get_secret_value().encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def batch_body(bodies: Sequence[str]) -> bytes:
    return ("[" + ",".join(bodies) + "]").encode("utf-8")


class WebhookSender:
    def __init__(
        self,
        config: WebhookConfig,
        secret: SecretStr,
        policy: RetryPolicy,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self._secret = secret
        self.policy = policy
        self.session = session or requests.Session()

    @property
    def sink(self) -> str:
        return f"webhook:{self.config.name}"

    def post(self, bodies: Sequence[str]) -> int:
        """Deliver one batch; returns the attempts it took. Raises `UnreachableError` once the policy gives up,
        `WebhookRefused` on an answer not worth retrying, `ConfigError` on a certificate that fails."""
        body = batch_body(bodies)
        ids = [json.loads(b)["id"] for b in bodies]
        headers = {
            "Content-Type": BATCH_CONTENT_TYPE,
            self.config.signature_header: signature(self._secret, body),
            "Idempotency-Key": ids[0] if len(ids) == 1 else event_id("batch", *ids),
        }
        attempts = 0

        def once() -> None:
            nonlocal attempts
            attempts += 1
            self._send(body, headers)

        self.policy.call(once, what=f"webhook {self.config.name}")
        return attempts

    def _send(self, body: bytes, headers: dict[str, str]) -> None:
        url = self.config.url
        try:
            response = self.session.post(
                url,
                data=body,
                headers=headers,
                timeout=self.config.timeout,
                verify=self.config.ca_bundle or True,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            reason = certificate_failure(exc)
            if reason:
                raise certificate_error(
                    f"webhook {self.config.name}", url, reason, self.config.ca_bundle
                ) from None
            raise RetriableError(f"webhook {self.config.name}: TLS error: {type(exc).__name__}") from None
        except requests.exceptions.Timeout:
            raise RetriableError(
                f"webhook {self.config.name}: no answer within {self.config.timeout:g} s"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise RetriableError(
                f"webhook {self.config.name}: connection failed: {type(exc).__name__}"
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in RETRIED_STATUS or status >= 500:
            raise RetriableError(
                f"webhook {self.config.name}: HTTP {status}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                code=str(status),
            )
        raise WebhookRefused(f"webhook {self.config.name}: HTTP {status} (not retried: fix the receiver)")

    def close(self) -> None:
        self.session.close()
