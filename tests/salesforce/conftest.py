"""Fixtures for tests that talk to the loopback Salesforce sandbox over real HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from connector.crm.salesforce.client import SalesforceClient
from connector_sandboxes.salesforce import SalesforceSandbox

API = "59.0"


@pytest.fixture
def sf_sandbox() -> Iterator[SalesforceSandbox]:
    """A started, freshly seeded sandbox with every fault off (the certificate is minted once per process)."""
    with SalesforceSandbox(api_version=API) as sandbox:
        yield sandbox


def password_login(sb: SalesforceSandbox, http: requests.Session | None = None) -> dict[str, str]:
    """The OAuth password grant, as a client would send it."""
    http = http or sb.http_session()
    resp = http.post(
        f"{sb.login_url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": sb.client_id,
            "client_secret": sb.client_secret,
            "username": sb.username,
            "password": sb.password + sb.security_token,
        },
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, str] = resp.json()
    return body


@pytest.fixture
def sf_http(sf_sandbox: SalesforceSandbox) -> requests.Session:
    """A requests session logged in through the token endpoint, with `Authorization: Bearer` set."""
    http = sf_sandbox.http_session()
    http.headers["Authorization"] = f"Bearer {password_login(sf_sandbox, http)['access_token']}"
    return http


@pytest.fixture
def sf_api(sf_sandbox: SalesforceSandbox) -> str:
    """The versioned REST base URL: https://127.0.0.1:<port>/services/data/v59.0"""
    return f"{sf_sandbox.instance_url}/services/data/v{API}"


@pytest.fixture
def sf_client(sf_sandbox: SalesforceSandbox) -> Salesforce:
    """simple-salesforce built the way connector builds it: instance_url + session_id + injected session."""
    http = sf_sandbox.http_session()
    token = password_login(sf_sandbox, http)["access_token"]
    return Salesforce(instance_url=sf_sandbox.instance_url, session_id=token, version=API, session=http)


@pytest.fixture
def sf_login() -> object:
    """`sf_login(sandbox, http=None) -> token response`: the password grant, for tests that need a second one."""
    return password_login


@pytest.fixture
def described(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The objects described from the org, in order (the sandbox counts calls by kind only, not by object)."""
    seen: list[str] = []
    ask_org = SalesforceClient._describe_from_org

    def noting(self: SalesforceClient, obj: str) -> dict[str, Any]:
        seen.append(obj)
        return ask_org(self, obj)

    monkeypatch.setattr(SalesforceClient, "_describe_from_org", noting)
    return seen
