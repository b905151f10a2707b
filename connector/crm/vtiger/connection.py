"""The run's one connection to a vtiger CRM: credentials from the environment and one logged-in client.

A run opens it once per vtiger source and hands it to the source and to every vtiger target writing back to
that source: one client with a pool of webservice sessions (one per concurrent worker of the most concurrent
target: vtiger serves one request at a time per session), one connection pool, one call counter. The
connection owns the client: plugins use it, the run closes it (logging its sessions out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ...errors import ConfigError
from ...logs import register_secret
from ...retry import RetryPolicy
from .client import VtigerClient
from .settings import VtigerSettings

DEFAULT_POOL = 8


class VtigerCredentials(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    username: str
    access_key: SecretStr


def load_credentials(prefix: str, environ: Mapping[str, str] | None) -> VtigerCredentials:
    """User name and access key from the environment (or the given mapping), never from YAML."""
    try:
        if environ is None:
            return VtigerCredentials(_env_prefix=prefix)
        return VtigerCredentials(
            username=environ.get(f"{prefix}USERNAME", ""), access_key=environ.get(f"{prefix}ACCESS_KEY", "")
        )
    except ValidationError:
        raise ConfigError(f"set {prefix}USERNAME and {prefix}ACCESS_KEY in the environment") from None


class VtigerConnection:
    """One vtiger CRM as the run reaches it: `name` is the source's name (API calls are counted under it)."""

    system: ClassVar[str] = "vtiger"

    def __init__(self, name: str, settings: VtigerSettings, client: VtigerClient) -> None:
        self.name = name
        self.settings = settings
        self.client = client

    @classmethod
    def open(
        cls,
        name: str,
        settings: VtigerSettings,
        *,
        environ: Mapping[str, str] | None,
        policy: RetryPolicy,
        pool_size: int = DEFAULT_POOL,
    ) -> VtigerConnection:
        """Check the credentials and build the client; no network call (the client logs in on first use)."""
        creds = load_credentials(settings.env_prefix, environ)
        key = creds.access_key.get_secret_value()
        if not creds.username or not key:
            raise ConfigError(
                f"set {settings.env_prefix}USERNAME and {settings.env_prefix}ACCESS_KEY in the environment"
            )
        register_secret(key)
        client = VtigerClient(
            settings.url,
            creds.username,
            key,
            policy=policy,
            timeout=settings.timeout_seconds,
            verify=settings.ca_bundle or True,
            pool_size=pool_size,
        )
        return cls(name, settings, client)

    def want_pool(self, size: int) -> None:
        """A target that writes `size` requests at once asks for that many pooled connections."""
        self.client.ensure_pool(size)

    def want_sessions(self, size: int) -> None:
        """A target with `size` workers asks for that many webservice sessions (each logs in on first use)."""
        self.client.ensure_sessions(size)

    def close(self) -> None:
        self.client.close()
