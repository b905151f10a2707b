"""Logging in to Salesforce: secrets from the environment, and the four auth flows.

The flows themselves are simple-salesforce's (`soap_login`, `token_login`); this module only decides which
flow the config asks for, where the login endpoint is (login / test / My Domain, or a full URL) and which
secrets it needs. Secrets come from the environment only (`<env_prefix>USERNAME`, ...), as `SecretStr`, and
never appear in a message: a failed login names the flow and Salesforce's error code, nothing else.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape as xml_escape
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from xml.parsers.expat import ExpatError

import jwt
import requests
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from simple_salesforce.login import soap_login, token_login

from ...errors import ConfigError, RetriableError
from ...logs import register_secret
from ..transport import certificate_error, certificate_failure
from .settings import SalesforceSettings

# A body cut off mid-transfer is as transient as a reset connection (requests raises these while reading it).
TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
SECRET_NAMES = (
    "username",
    "password",
    "security_token",
    "client_id",
    "client_secret",
    "private_key_file",
    "session_id",
    "instance_url",
)


class SalesforceSecrets(BaseSettings):
    """Credentials read from the environment; the prefix comes from the connection's `env_prefix`."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    private_key_file: str | None = None
    session_id: SecretStr | None = None
    instance_url: str | None = None

    @classmethod
    def load(cls, prefix: str, environ: Mapping[str, str] | None = None) -> SalesforceSecrets:
        """Read `<prefix>USERNAME` etc. from `environ` (tests) or the process environment."""
        if environ is None:
            return cls(_env_prefix=prefix)._masked()
        upper = {k.upper(): v for k, v in environ.items()}
        values = {n: upper[f"{prefix}{n}".upper()] for n in SECRET_NAMES if f"{prefix}{n}".upper() in upper}
        # init values only: a dict given by the caller replaces the process environment entirely
        wrapped: dict[str, Any] = {n: _wrap(n, values.get(n)) for n in SECRET_NAMES}
        return cls.model_construct(**wrapped)._masked()

    def _masked(self) -> SalesforceSecrets:
        """Tell the log masker every secret value, so no log line can carry one."""
        for value in (self.password, self.security_token, self.client_secret, self.session_id):
            if value is not None:
                register_secret(value.get_secret_value())
        return self


def _wrap(name: str, value: str | None) -> str | SecretStr | None:
    if value is None or value == "":
        return None
    if name in ("password", "security_token", "client_secret", "session_id"):
        return SecretStr(value)
    return value


@dataclass(frozen=True)
class Session:
    session_id: str
    instance_url: str  # https://host[:port]


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def _need(conn: SalesforceSettings, secrets: SalesforceSecrets, *names: str) -> None:
    missing = [f"{conn.env_prefix}{n.upper()}" for n in names if getattr(secrets, n) in (None, "")]
    if missing:
        raise ConfigError(f"Salesforce auth '{conn.auth}' needs environment variable(s) {', '.join(missing)}")


def check_secrets(conn: SalesforceSettings, secrets: SalesforceSecrets) -> None:
    """Fail before any network call when the chosen flow lacks a secret."""
    if conn.auth == "password":
        _need(conn, secrets, "username", "password")
        if secrets.client_id is None:
            _need(conn, secrets, "security_token")
        else:
            _need(conn, secrets, "client_secret")
    elif conn.auth == "client_credentials":
        _need(conn, secrets, "client_id", "client_secret")
    elif conn.auth == "jwt":
        _need(conn, secrets, "username", "client_id", "private_key_file")
        if not Path(str(secrets.private_key_file)).is_file():
            raise ConfigError(f"{conn.env_prefix}PRIVATE_KEY_FILE does not name a readable file")
    else:
        _need(conn, secrets, "session_id", "instance_url")


def login(conn: SalesforceSettings, secrets: SalesforceSecrets, http: requests.Session) -> Session:
    """Run the configured flow once and return a fresh session; ConfigError when credentials are refused."""
    check_secrets(conn, secrets)
    if conn.auth == "session":
        parsed = urlparse(str(secrets.instance_url))
        if parsed.scheme != "https" or not parsed.netloc:
            raise ConfigError(f"{conn.env_prefix}INSTANCE_URL must be an https:// URL")
        return Session(_secret(secrets.session_id), f"https://{parsed.netloc}")
    try:
        token, instance = _run_flow(conn, secrets, http)
    except SalesforceAuthenticationFailed as exc:
        code = exc.code
        if isinstance(code, int) and (code >= 500 or code == 429):
            raise RetriableError(f"Salesforce login ({conn.auth}): HTTP {code}", code=str(code)) from None
        if (isinstance(code, int) and code < 300) or code == "UNKNOWN_EXCEPTION_CODE":
            # simple-salesforce's word for a 2xx that is no login answer at all (a proxy's page, a body cut
            # short): the credentials were never judged
            raise _broken_answer(conn) from None
        raise ConfigError(f"Salesforce login ({conn.auth}) refused: {code}") from None
    except (ExpatError, AttributeError):
        # a 2xx whose XML does not parse, or whose JSON lacks the token fields simple-salesforce reads
        raise _broken_answer(conn) from None
    except TRANSIENT_ERRORS as exc:
        reason = certificate_failure(exc)
        if reason is not None:  # waiting does not make a certificate valid
            raise certificate_error(
                f"Salesforce login ({conn.auth})", conn.login_base(), reason, conn.ca_bundle
            ) from None
        raise RetriableError(f"Salesforce login ({conn.auth}): {type(exc).__name__}") from None
    if not token or not instance:
        raise _broken_answer(conn)
    register_secret(str(token))
    return Session(str(token), f"https://{instance}")


def _broken_answer(conn: SalesforceSettings) -> RetriableError:
    return RetriableError(
        f"Salesforce login ({conn.auth}): the answer is not a login answer", code="BAD_RESPONSE"
    )


def _run_flow(
    conn: SalesforceSettings, secrets: SalesforceSecrets, http: requests.Session
) -> tuple[str, str]:
    base = conn.login_base()
    token_url = f"{base}/services/oauth2/token"
    if conn.auth == "password" and secrets.client_id is None:
        body = _soap_body(str(secrets.username), _secret(secrets.password) + _secret(secrets.security_token))
        headers = {"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"}
        return soap_login(f"{base}/services/Soap/u/{conn.api_version}", body, headers, None, http)
    if conn.auth == "password":
        data = {
            "grant_type": "password",
            "client_id": str(secrets.client_id),
            "client_secret": _secret(secrets.client_secret),
            "username": str(secrets.username),
            "password": _secret(secrets.password) + _secret(secrets.security_token),
        }
        return token_login(token_url, data, conn.domain, str(secrets.client_id), None, None, http)
    if conn.auth == "client_credentials":
        pair = f"{secrets.client_id}:{_secret(secrets.client_secret)}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        data = {"grant_type": "client_credentials"}
        return token_login(token_url, data, conn.domain, str(secrets.client_id), headers, None, http)
    key = Path(str(secrets.private_key_file)).read_bytes()
    claims = {
        "iss": str(secrets.client_id),
        "sub": str(secrets.username),
        "aud": conn.audience(),
        "exp": int((dt.datetime.now(dt.UTC) + dt.timedelta(minutes=3)).timestamp()),
    }
    try:
        assertion = jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{conn.env_prefix}PRIVATE_KEY_FILE is not a usable RSA private key") from exc
    data = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    return token_login(token_url, data, conn.domain, str(secrets.client_id), None, None, http)


def _soap_body(username: str, password: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com">'
        "<soapenv:Header><urn:CallOptions><urn:client>connector</urn:client></urn:CallOptions></soapenv:Header>"
        f"<soapenv:Body><urn:login><urn:username>{xml_escape(username)}</urn:username>"
        f"<urn:password>{xml_escape(password)}</urn:password></urn:login></soapenv:Body>"
        "</soapenv:Envelope>"
    )
