"""The `events:` section: where the feed goes. Secrets are never here: a webhook names the environment variable
that holds its signing secret."""

from __future__ import annotations

import re

from pydantic import Field, ValidationInfo, field_validator

from ..crm.transport import ca_bundle_path, https_unless_loopback
from ..model import StrictModel, check_name

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class WebhookConfig(StrictModel):
    name: str  # in logs, the run summary and the state (the sink `webhook:<name>`)
    url: str  # https://, or http:// to a loopback host
    # the environment variable holding the HMAC-SHA256 secret that signs each body (never the secret itself)
    secret_env: str
    signature_header: str = "X-Connector-Signature"
    batch_size: int = Field(default=100, ge=1, le=1000)  # events per POST (a CloudEvents JSON batch)
    timeout: float = Field(default=10.0, gt=0, le=300)  # seconds to connect and to wait for the answer
    # PEM of the CA that signed the receiver's certificate (relative to the config file)
    ca_bundle: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return https_unless_loopback(value)

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_NAME.match(value):
            raise ValueError(f"'{value}' is not an environment variable name (CONNECTOR_WEBHOOK_SECRET)")
        return value

    @field_validator("signature_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not HEADER_NAME.match(value):
            raise ValueError(f"'{value}' is not an HTTP header name")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: str | None, info: ValidationInfo) -> str | None:
        return ca_bundle_path(value, info)


class EventsConfig(StrictModel):
    # the CloudEvents `source` of every event: which connector installation speaks (a URI reference)
    source: str = Field(default="/connector", min_length=1)
    file: str | None = None  # a JSON Lines file the events are appended to (relative to the config file)
    webhooks: list[WebhookConfig] = Field(default_factory=list)

    @field_validator("webhooks")
    @classmethod
    def _unique(cls, value: list[WebhookConfig]) -> list[WebhookConfig]:
        names = [w.name for w in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"webhook name '{twice[0]}' is used twice")
        return value
