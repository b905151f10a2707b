"""Transport settings every CRM client shares: https unless loopback, the CA bundle, certificate failures.

- A CRM url must be `https://`; plain `http://` is allowed only to a loopback host (127.0.0.0/8, ::1,
  localhost), where nothing crosses a network (the sandboxes, an SSH tunnel).
- `ca_bundle` is a path relative to the config file (like every path in it), checked by `validate`, and given
  as `verify=` on every request: requests lets `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` in the environment
  override a `Session.verify`, so a session setting alone would silently trust something else.
- A certificate that fails verification is a config error naming `ca_bundle`: retrying cannot make it valid.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationInfo

from ..errors import ConfigError

LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def https_unless_loopback(url: str) -> str:
    """`url` without its trailing slash; ValueError unless it is https://, or http:// to a loopback host."""
    parts = urlsplit(url.strip())
    if not parts.hostname:
        raise ValueError(f"'{url}' is not a URL with a host (https://crm.example.com)")
    if parts.scheme == "https":
        return url.strip().rstrip("/")
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return url.strip().rstrip("/")
    raise ValueError(
        f"'{url}' must be an https:// URL (plain http:// is allowed only to 127.0.0.1, ::1 or localhost)"
    )


def ca_bundle_path(value: str | None, info: ValidationInfo) -> str | None:
    """A pydantic `field_validator` body: the bundle as an absolute path, relative to the config file's folder
    (the loader passes `base_dir` in the validation context), and readable."""
    if value is None:
        return None
    path = Path(value).expanduser()
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    try:
        with path.open("rb"):
            pass
    except OSError:
        raise ValueError(
            f"{path} is not a readable file (a PEM file of the CA certificates to trust)"
        ) from None
    if not path.is_file():
        raise ValueError(f"{path} is not a readable file (a PEM file of the CA certificates to trust)")
    return str(path)


def certificate_failure(exc: BaseException) -> str | None:
    """Why the server's certificate was refused (`certificate verify failed: ...`, a hostname mismatch), or
    None when `exc` is some other TLS or connection problem (those stay transient)."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLCertVerificationError):
            return str(item.verify_message or item.reason or "certificate verify failed")
        # requests wraps urllib3's MaxRetryError, whose `reason` wraps the ssl error
        stack.extend([*item.args, getattr(item, "reason", None), item.__cause__, item.__context__])
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "certificate verify failed"
    if "doesn't match" in text or "Hostname mismatch" in text:
        return "hostname mismatch"
    return None


def certificate_error(what: str, url: str, reason: str, ca_bundle: str | None) -> ConfigError:
    host = urlsplit(url).netloc or url
    trusted = f"the CA certificates in ca_bundle {ca_bundle}" if ca_bundle else "the system's CA certificates"
    return ConfigError(
        f"{what}: the TLS certificate of {host} failed verification ({reason}) against {trusted}; "
        "set ca_bundle to the CA that signed it, or fix the server's certificate"
    )
