"""Logins (OAuth 2.0 token endpoint and SOAP `login`) and the sessions they hand out."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography import x509

from .wire import Request, Response

ORG_ID = "00D5g000004SbxAEAS"
USER_ID = "0055g00000AbCdEAAV"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class Credentials:
    username: str = "integration@connector.sandbox"
    password: str = "sandbox-password"
    security_token: str = "SANDBOXTOKEN42"
    client_id: str = "3MVG9sandbox.consumer.key"
    client_secret: str = "sandbox-consumer-secret"
    # The certificate (or public key) PEM uploaded to the connected app for the JWT bearer flow. When set,
    # assertions must be RS256-signed by its private key, as in a real org; when None, signatures go unchecked
    # (so a test can mint an assertion without a key pair).
    jwt_public_key: str | None = None


@dataclass
class Session:
    token: str
    calls: int = 0
    issued_at: int = field(default_factory=lambda: int(time.time() * 1000))


class Sessions:
    """Issued access tokens; revoking one makes every later call with it answer 401."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, Session] = {}
        self.issued: list[str] = []  # every token ever handed out (tests check none leaks into logs)

    def issue(self) -> Session:
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        session = Session(token=token)
        with self._lock:
            self._live[token] = session
            self.issued.append(token)
        return session

    def get(self, token: str | None) -> Session | None:
        with self._lock:
            return self._live.get(token or "")

    def revoke(self, token: str) -> None:
        with self._lock:
            self._live.pop(token, None)

    def revoke_all(self) -> None:
        with self._lock:
            self._live.clear()


def oauth_token(req: Request, creds: Credentials, sessions: Sessions, instance_url: str) -> Response:
    """`POST /services/oauth2/token` for the password, client_credentials and JWT bearer grants."""
    form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    grant = form.get("grant_type", "")
    if grant == "password":
        if form.get("client_id") != creds.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if form.get("client_secret") != creds.client_secret:
            return _oauth_error("invalid_client", "invalid client credentials")
        if (
            form.get("username") != creds.username
            or form.get("password") != creds.password + creds.security_token
        ):
            return _oauth_error("invalid_grant", "authentication failure")
    elif grant == "client_credentials":
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = req.header("authorization")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return _oauth_error("invalid_client", "invalid client credentials")
        if client_id != creds.client_id or client_secret != creds.client_secret:
            return _oauth_error("invalid_client", "invalid client credentials")
    elif grant == JWT_BEARER:
        claims = _jwt_claims(form.get("assertion", ""), creds.jwt_public_key)
        if claims is None:
            return _oauth_error("invalid_grant", "invalid assertion")
        if claims.get("iss") != creds.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if claims.get("aud") not in _audiences(instance_url):
            return _oauth_error("invalid_grant", "audience is invalid")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp < time.time():
            return _oauth_error("invalid_grant", "expired assertion")
        if claims.get("sub") != creds.username:
            return _oauth_error("invalid_grant", "authentication failure")
    else:
        return _oauth_error("unsupported_grant_type", "grant type not supported")
    session = sessions.issue()
    signature = hmac.new(
        creds.client_secret.encode(), f"{instance_url}{session.issued_at}".encode(), hashlib.sha256
    )
    return Response.json(
        {
            "access_token": session.token,
            "instance_url": instance_url,
            "id": f"{instance_url}/id/{ORG_ID}/{USER_ID}",
            "token_type": "Bearer",
            "issued_at": str(session.issued_at),
            "signature": base64.b64encode(signature.digest()).decode(),
        }
    )


def _oauth_error(code: str, description: str) -> Response:
    return Response.json({"error": code, "error_description": description}, status=400)


def _audiences(instance_url: str) -> tuple[str, ...]:
    """What a real org accepts as `aud` (login / test), plus this sandbox's own URL (it is the login server)."""
    return ("https://login.salesforce.com", "https://test.salesforce.com", instance_url)


def _jwt_claims(assertion: str, public_key: str | None) -> dict[str, Any] | None:
    """The JWT's claims: signature checked against the connected app's key when one is registered."""
    if public_key is not None:
        try:
            claims = jwt.decode(
                assertion,
                _verifying_key(public_key),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False},  # checked by the caller, with its errors
            )
        except jwt.PyJWTError:
            return None
        return claims if isinstance(claims, dict) else None
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _verifying_key(pem: str) -> Any:
    """A public key from a certificate PEM (what a connected app holds) or a bare public key PEM."""
    if "BEGIN CERTIFICATE" in pem:
        return x509.load_pem_x509_certificate(pem.encode()).public_key()
    return pem


_SOAP_FIELD = r"<(?:\w+:)?{name}>(.*?)</(?:\w+:)?{name}>"


def soap_login(
    req: Request, creds: Credentials, sessions: Sessions, instance_url: str, version: str
) -> Response:
    """`POST /services/Soap/u/<ver>` with a partner `login` envelope, as simple-salesforce sends it."""
    text = req.body.decode("utf-8", "replace")
    username = re.search(_SOAP_FIELD.format(name="username"), text, re.DOTALL)
    password = re.search(_SOAP_FIELD.format(name="password"), text, re.DOTALL)
    if (
        username is None
        or password is None
        or html.unescape(username.group(1)) != creds.username
        or html.unescape(password.group(1)) != creds.password + creds.security_token
    ):
        return _soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
    session = sessions.issue()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><loginResponse><result>"
        f"<metadataServerUrl>{instance_url}/services/Soap/m/{version}/{ORG_ID[:15]}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{instance_url}/services/Soap/u/{version}/{ORG_ID[:15]}</serverUrl>"
        f"<sessionId>{html.escape(session.token)}</sessionId><userId>{USER_ID}</userId>"
        f"<userInfo><organizationId>{ORG_ID}</organizationId><userName>{html.escape(creds.username)}</userName>"
        "<userTimeZone>Europe/Amsterdam</userTimeZone></userInfo>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body=body.encode(), content_type="text/xml;charset=UTF-8")


def _soap_fault(code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring>"
        f'<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}</sf:exceptionCode>'
        f"<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(status=500, body=body.encode(), content_type="text/xml;charset=UTF-8")
