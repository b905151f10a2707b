"""The Salesforce client over the sandbox's real TLS: `ca_bundle` is used for every call (logins through
simple-salesforce, REST, Bulk 2.0) even when REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE point elsewhere, and a
certificate that fails verification is a config error naming ca_bundle, not retries ending as unreachable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sf_fakes import Sleeps, policy

from connector.crm.salesforce import bulk
from connector.crm.salesforce.auth import SalesforceSecrets
from connector.crm.salesforce.client import SalesforceClient
from connector.errors import ConfigError
from connector.sources.salesforce.config import SalesforceSourceConfig
from connector_sandboxes.salesforce import SalesforceSandbox
from connector_sandboxes.tls import loopback_cert

pytestmark = [pytest.mark.e2e, pytest.mark.reliability("Transport and secrets")]


def sf_client(
    sb: SalesforceSandbox, sleeps: Sleeps, *, client_id: bool = False, **overrides: Any
) -> SalesforceClient:
    data: dict[str, Any] = {
        "name": "sf_prod",
        "type": "salesforce",
        "auth": "password",
        "login_url": sb.login_url,
        "ca_bundle": sb.ca_bundle,
        "objects": {"Lead": {"fields": {"Email": "email"}}},
    }
    data.update(overrides)
    cfg = SalesforceSourceConfig.model_validate(data)
    environ = {"SF_USERNAME": sb.username, "SF_PASSWORD": sb.password, "SF_SECURITY_TOKEN": sb.security_token}
    if client_id:  # the OAuth password grant instead of the SOAP login
        environ.update(SF_CLIENT_ID=sb.client_id, SF_CLIENT_SECRET=sb.client_secret)
    secrets = SalesforceSecrets.load(cfg.env_prefix, environ)
    return SalesforceClient(cfg, secrets, policy=policy(sleeps, attempts=3))


@pytest.fixture
def other_ca(tmp_path: Path) -> str:
    """A valid CA bundle that did not sign the sandbox's certificate."""
    return str(loopback_cert(tmp_path / "other-ca").cert)


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
@pytest.mark.parametrize("client_id", [False, True], ids=["soap-login", "oauth-login"])
def test_ca_bundle_wins_over_the_environment_for_login_rest_and_bulk(
    sf_sandbox: SalesforceSandbox,
    other_ca: str,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    client_id: bool,
) -> None:
    monkeypatch.setenv(variable, other_ca)
    sf_sandbox.store.insert("Lead", {"LastName": "T", "Company": "Acme", "Email": "t@x.nl"})
    client = sf_client(sf_sandbox, Sleeps(), client_id=client_id)
    assert [r["Email"] for r in client.query_all("SELECT Email FROM Lead")] == ["t@x.nl"]
    rows = next(bulk.query_pages(client, "SELECT Email FROM Lead", include_deleted=False, page_size=200))
    assert [r["Email"] for r in rows] == ["t@x.nl"]


def test_a_certificate_no_configured_ca_signed_is_a_config_error_without_retries(
    sf_sandbox: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    sleeps = Sleeps()
    client = sf_client(sf_sandbox, sleeps, ca_bundle=None)
    with pytest.raises(ConfigError) as bad:
        client.login()
    message = str(bad.value)
    assert "failed verification" in message and "ca_bundle" in message
    assert sleeps == []  # not retried: a certificate does not become valid by waiting
    assert sf_sandbox.call_counts()["login"] == 0


def test_a_certificate_for_another_host_is_a_config_error(
    other_ca: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the sandbox's certificate names 127.0.0.1 and localhost; served on 127.0.0.2 the names do not match
    with SalesforceSandbox(host="127.0.0.2") as sb:
        sleeps = Sleeps()
        client = sf_client(sb, sleeps)
        with pytest.raises(ConfigError) as bad:
            client.login()
    assert "failed verification" in str(bad.value) and "127.0.0.2" in str(bad.value)
    assert "ca_bundle" in str(bad.value)
    assert sleeps == []


def test_a_certificate_failure_on_a_rest_call_is_a_config_error_too(
    sf_sandbox: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    cfg = SalesforceSourceConfig.model_validate(
        {
            "name": "sf_prod",
            "type": "salesforce",
            "auth": "session",  # no login call: the first call is a REST query
            "login_url": sf_sandbox.login_url,
            "objects": {"Lead": {"fields": {"Email": "email"}}},
        }
    )
    environ = {"SF_SESSION_ID": sf_sandbox.login(), "SF_INSTANCE_URL": sf_sandbox.instance_url}
    sleeps = Sleeps()
    client = SalesforceClient(cfg, SalesforceSecrets.load("SF_", environ), policy=policy(sleeps, attempts=3))
    with pytest.raises(ConfigError, match=r"failed verification .*set ca_bundle"):
        client.query_all("SELECT Email FROM Lead")
    assert sleeps == []
