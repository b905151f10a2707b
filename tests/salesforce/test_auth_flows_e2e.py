"""The JWT bearer and client-credentials flows end to end: a source logs in over HTTPS, reads, re-logs in."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from connector.context import PluginEnv, RunContext
from connector.crm.salesforce.settings import SalesforceSettings
from connector.errors import ConfigError
from connector.retry import RetryPolicy
from connector.sources.salesforce.config import SalesforceSourceConfig
from connector.sources.salesforce.source import SalesforceSource
from connector_sandboxes.salesforce import Credentials, SalesforceSandbox

pytestmark = pytest.mark.e2e
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, rsa.RSAPrivateKey]:
    """(private key file, the self-signed certificate PEM a connected app would hold, the key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connector")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("jwt") / "server.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path, cert.public_bytes(serialization.Encoding.PEM).decode(), key


@pytest.fixture
def jwt_org(key_pair: tuple[Path, str, Any]) -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(credentials=Credentials(jwt_public_key=key_pair[1])) as sandbox:
        yield sandbox


def make_source(sb: SalesforceSandbox, auth: str, environ: dict[str, str], **extra: Any) -> SalesforceSource:
    cfg = SalesforceSourceConfig.model_validate(
        {
            "name": "sf_prod",
            "type": "salesforce",
            "auth": auth,
            "login_url": sb.login_url,
            "ca_bundle": sb.ca_bundle,
            "objects": {"Lead": {"fields": {"Email": "email", "LastName": "last_name"}}},
            **extra,
        }
    )
    env = PluginEnv(
        sources=[cfg],
        policy=RetryPolicy(attempts=4, sleep=lambda s: None),
        environ=environ,
    )
    return SalesforceSource.from_config(cfg, env)


def read_emails(src: SalesforceSource, sb: SalesforceSandbox) -> list[str]:
    started = max(dt.datetime.now(dt.UTC), sb.store.now()) + dt.timedelta(seconds=1)
    ctx = RunContext(as_of=started.date(), started_at=started)
    return sorted(r["Email"] for b in src.read({}, ctx) for r in b.records)


def seed(sb: SalesforceSandbox, n: int = 3) -> list[str]:
    for i in range(n):
        sb.store.insert("Lead", {"LastName": f"L{i}", "Company": "Acme", "Email": f"l{i}@x.nl"})
    return [f"l{i}@x.nl" for i in range(n)]


def test_jwt_bearer_logs_in_reads_and_logs_in_again_when_the_session_expires(
    jwt_org: SalesforceSandbox, key_pair: tuple[Path, str, Any]
) -> None:
    emails = seed(jwt_org)
    environ = {
        "SF_USERNAME": jwt_org.username,
        "SF_CLIENT_ID": jwt_org.client_id,
        "SF_PRIVATE_KEY_FILE": str(key_pair[0]),
    }
    src = make_source(jwt_org, "jwt", environ)
    jwt_org.faults.expire_session_after = 2
    assert read_emails(src, jwt_org) == emails
    assert src.client.logins >= 2  # the JWT flow ran again mid-read
    assert jwt_org.call_counts()["login"] == src.client.logins


def test_jwt_signed_by_another_key_is_a_config_error(jwt_org: SalesforceSandbox, tmp_path: Path) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "other.key"
    path.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    environ = {
        "SF_USERNAME": jwt_org.username,
        "SF_CLIENT_ID": jwt_org.client_id,
        "SF_PRIVATE_KEY_FILE": str(path),
    }
    with pytest.raises(ConfigError, match="invalid_grant"):
        read_emails(make_source(jwt_org, "jwt", environ), jwt_org)


def test_sandbox_checks_jwt_signature_audience_and_expiry(
    jwt_org: SalesforceSandbox, key_pair: tuple[Path, str, Any]
) -> None:
    key = key_pair[2]

    def grant(**overrides: Any) -> requests.Response:
        claims = {
            "iss": jwt_org.client_id,
            "sub": jwt_org.username,
            "aud": "https://login.salesforce.com",
            "exp": int(time.time()) + 180,
            **overrides,
        }
        return jwt_org.http_session().post(
            f"{jwt_org.login_url}/services/oauth2/token",
            data={"grant_type": JWT_BEARER, "assertion": jwt.encode(claims, key, algorithm="RS256")},
            timeout=10,
        )

    assert grant().status_code == 200
    assert grant(aud="https://acme.my.salesforce.com").json()["error_description"] == "audience is invalid"
    assert grant(exp=int(time.time()) - 5).json()["error_description"] == "expired assertion"
    assert grant(iss="someone-else").json()["error"] == "invalid_client_id"
    unsigned = jwt.encode(
        {
            "iss": jwt_org.client_id,
            "sub": jwt_org.username,
            "aud": "https://login.salesforce.com",
            "exp": 2**40,
        },
        "a-shared-secret-of-thirty-two-bytes!",
        algorithm="HS256",
    )
    forged = jwt_org.http_session().post(
        f"{jwt_org.login_url}/services/oauth2/token",
        data={"grant_type": JWT_BEARER, "assertion": unsigned},
        timeout=10,
    )
    assert forged.status_code == 400


def test_client_credentials_flow_end_to_end(sf_sandbox: SalesforceSandbox) -> None:
    emails = seed(sf_sandbox)
    environ = {"SF_CLIENT_ID": sf_sandbox.client_id, "SF_CLIENT_SECRET": sf_sandbox.client_secret}
    src = make_source(sf_sandbox, "client_credentials", environ)
    sf_sandbox.faults.expire_session_after = 2
    assert read_emails(src, sf_sandbox) == emails
    assert src.client.logins >= 2
    wrong = make_source(sf_sandbox, "client_credentials", {**environ, "SF_CLIENT_SECRET": "nope"})
    with pytest.raises(ConfigError, match="invalid_client"):
        read_emails(wrong, sf_sandbox)


def test_session_id_flow_has_no_login_and_an_expired_session_is_a_config_error(
    sf_sandbox: SalesforceSandbox,
) -> None:
    emails = seed(sf_sandbox)
    environ = {"SF_SESSION_ID": sf_sandbox.login(), "SF_INSTANCE_URL": sf_sandbox.instance_url}
    src = make_source(sf_sandbox, "session", environ)
    assert read_emails(src, sf_sandbox) == emails
    assert sf_sandbox.call_counts()["login"] == 0
    sf_sandbox.sessions.revoke_all()
    with pytest.raises(ConfigError, match="INVALID_SESSION_ID"):
        read_emails(make_source(sf_sandbox, "session", environ), sf_sandbox)


@pytest.mark.parametrize(
    ("settings", "audience"),
    [
        ({}, "https://login.salesforce.com"),
        ({"domain": "test"}, "https://test.salesforce.com"),
        ({"login_url": "https://acme.my.salesforce.com"}, "https://login.salesforce.com"),
        ({"login_url": "https://acme--uat.sandbox.my.salesforce.com"}, "https://test.salesforce.com"),
        ({"domain": "acme--uat.sandbox"}, "https://test.salesforce.com"),
        ({"login_url": "https://127.0.0.1:8443"}, "https://127.0.0.1:8443"),
        (
            {
                "login_url": "https://acme.my.salesforce.com",
                "jwt_audience": "https://acme.force.com/customers",
            },
            "https://acme.force.com/customers",
        ),
    ],
)
def test_jwt_audience_is_never_a_my_domain_host(settings: dict[str, str], audience: str) -> None:
    assert SalesforceSettings(**settings).audience() == audience
