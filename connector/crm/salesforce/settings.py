"""Where and how to reach one Salesforce org: the YAML settings of a salesforce source (pydantic, no transport).

A salesforce target reaches its org through its source's connection (`connection.py`), so these settings are
written once, on the source. Validation here never touches the network.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, ValidationInfo, field_validator

from ...model import StrictModel
from ..transport import ca_bundle_path

AuthFlow = Literal["password", "client_credentials", "jwt", "session"]


class SalesforceSettings(StrictModel):
    """Where and how to reach one org; shared by the source and the target that reuses it."""

    auth: AuthFlow = "password"
    domain: str = "login"  # login | test | <my-domain> (-> https://<my-domain>.my.salesforce.com)
    login_url: str | None = None  # a full https:// login URL; wins over `domain`
    api_version: str = "59.0"
    env_prefix: str = "SF_"
    ca_bundle: str | None = None  # PEM file of the CAs to trust, relative to the config file
    # JWT bearer `aud`; by default derived from where we log in (login / test, or an Experience Cloud site)
    jwt_audience: str | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        text = value.strip().lstrip("vV")
        parts = text.split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"api_version must look like '59.0', got '{value}'")
        return text

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: str | None, info: ValidationInfo) -> str | None:
        return ca_bundle_path(value, info)

    @field_validator("login_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme != "https" or not parsed.netloc:
            raise ValueError("login_url must be an https:// URL")
        return f"https://{parsed.netloc}"

    @field_validator("jwt_audience")
    @classmethod
    def _audience(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("jwt_audience must be an https:// URL")
        return value.rstrip("/") if value else value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        text = value.strip()
        if not text or "/" in text or ":" in text:
            raise ValueError("domain is login, test or a My Domain name; use login_url for a full URL")
        return text

    def login_base(self) -> str:
        """The https origin of the login server."""
        if self.login_url:
            return self.login_url
        if self.domain in ("login", "test"):
            return f"https://{self.domain}.salesforce.com"
        host = self.domain
        if host.endswith(".salesforce.com"):
            return f"https://{host}"
        if not host.endswith(".my"):
            host = f"{host}.my"
        return f"https://{host}.salesforce.com"

    def audience(self) -> str:
        """The JWT bearer `aud`. Salesforce accepts only https://login.salesforce.com (production orgs, also
        when logging in through their My Domain), https://test.salesforce.com (sandboxes) or an Experience
        Cloud site's own URL, never a My Domain host."""
        if self.jwt_audience:
            return self.jwt_audience
        host = (urlparse(self.login_base()).hostname or "").lower()
        if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
            return "https://test.salesforce.com"
        if host == "login.salesforce.com" or host.endswith(".my.salesforce.com"):
            return "https://login.salesforce.com"
        return self.login_base()  # a site (or a loopback sandbox) is its own audience
