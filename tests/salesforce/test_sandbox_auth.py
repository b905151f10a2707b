"""The sandbox's logins: OAuth grants, SOAP login, bearer checks, and API-usage accounting."""

from __future__ import annotations

import base64
import time

import jwt
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession
from simple_salesforce.login import SalesforceLogin

from connector_sandboxes.salesforce import SalesforceSandbox


def token(sb: SalesforceSandbox, **form: str) -> requests.Response:
    return sb.http_session().post(f"{sb.login_url}/services/oauth2/token", data=form, timeout=10)


def test_password_grant_returns_salesforce_token_shape(sf_sandbox: SalesforceSandbox) -> None:
    resp = token(
        sf_sandbox,
        grant_type="password",
        client_id=sf_sandbox.client_id,
        client_secret=sf_sandbox.client_secret,
        username=sf_sandbox.username,
        password=sf_sandbox.password + sf_sandbox.security_token,
    )
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}
    assert body["instance_url"] == sf_sandbox.instance_url
    assert body["token_type"] == "Bearer"
    assert sf_sandbox.calls == [("POST", "login")]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"password": "wrong"}, "invalid_grant"),
        ({"username": "nobody@example.org"}, "invalid_grant"),
        ({"client_secret": "nope"}, "invalid_client"),
        ({"client_id": "nope"}, "invalid_client_id"),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
    ],
)
def test_bad_password_grant_is_refused(
    sf_sandbox: SalesforceSandbox, change: dict[str, str], error: str
) -> None:
    form = {
        "grant_type": "password",
        "client_id": sf_sandbox.client_id,
        "client_secret": sf_sandbox.client_secret,
        "username": sf_sandbox.username,
        "password": sf_sandbox.password + sf_sandbox.security_token,
    }
    form.update(change)
    resp = token(sf_sandbox, **form)
    assert resp.status_code == 400
    assert resp.json()["error"] == error
    if error == "invalid_grant":
        assert resp.json()["error_description"] == "authentication failure"


def test_password_without_security_token_is_refused(sf_sandbox: SalesforceSandbox) -> None:
    resp = token(
        sf_sandbox,
        grant_type="password",
        client_id=sf_sandbox.client_id,
        client_secret=sf_sandbox.client_secret,
        username=sf_sandbox.username,
        password=sf_sandbox.password,
    )
    assert resp.status_code == 400


def test_client_credentials_in_form_or_basic_header(sf_sandbox: SalesforceSandbox) -> None:
    ok = token(
        sf_sandbox,
        grant_type="client_credentials",
        client_id=sf_sandbox.client_id,
        client_secret=sf_sandbox.client_secret,
    )
    assert ok.status_code == 200
    basic = base64.b64encode(f"{sf_sandbox.client_id}:{sf_sandbox.client_secret}".encode()).decode()
    via_header = sf_sandbox.http_session().post(
        f"{sf_sandbox.login_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert via_header.status_code == 200
    bad = token(
        sf_sandbox, grant_type="client_credentials", client_id=sf_sandbox.client_id, client_secret="x"
    )
    assert bad.status_code == 400


def test_jwt_bearer_checks_issuer_and_subject(sf_sandbox: SalesforceSandbox) -> None:
    def assertion(iss: str, sub: str) -> str:
        claims = {
            "iss": iss,
            "sub": sub,
            "aud": "https://login.salesforce.com",
            "exp": int(time.time()) + 180,
        }
        return jwt.encode(claims, "any-key-the-sandbox-does-not-verify", algorithm="HS256")

    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    ok = token(sf_sandbox, grant_type=grant, assertion=assertion(sf_sandbox.client_id, sf_sandbox.username))
    assert ok.status_code == 200
    assert ok.json()["access_token"]
    wrong_sub = token(sf_sandbox, grant_type=grant, assertion=assertion(sf_sandbox.client_id, "x@y.z"))
    assert wrong_sub.status_code == 400
    assert wrong_sub.json()["error"] == "invalid_grant"
    garbage = token(sf_sandbox, grant_type=grant, assertion="not-a-jwt")
    assert garbage.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}


def test_soap_login_through_simple_salesforce(sf_sandbox: SalesforceSandbox) -> None:
    http = sf_sandbox.http_session()
    session_id, instance = SalesforceLogin(
        username=sf_sandbox.username,
        password=sf_sandbox.password,
        security_token=sf_sandbox.security_token,
        sf_version="59.0",
        session=http,
        scratch_url=sf_sandbox.login_url,
    )
    assert instance == f"127.0.0.1:{sf_sandbox.port}"
    sf = Salesforce(instance_url=sf_sandbox.instance_url, session_id=session_id, version="59.0", session=http)
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0


def test_soap_login_bad_password_is_invalid_login_fault(sf_sandbox: SalesforceSandbox) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        SalesforceLogin(
            username=sf_sandbox.username,
            password="wrong",
            security_token=sf_sandbox.security_token,
            sf_version="59.0",
            session=sf_sandbox.http_session(),
            scratch_url=sf_sandbox.login_url,
        )
    assert failure.value.code == "INVALID_LOGIN"


def test_rest_calls_need_a_valid_bearer_token(sf_sandbox: SalesforceSandbox, sf_api: str) -> None:
    http = sf_sandbox.http_session()
    for headers in ({}, {"Authorization": "Bearer forged"}):
        resp = http.get(f"{sf_api}/limits", headers=headers, timeout=10)
        assert resp.status_code == 401
        assert resp.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert sf_sandbox.api_usage == 0


def test_simple_salesforce_sees_expired_session(sf_sandbox: SalesforceSandbox) -> None:
    sf = Salesforce(
        instance_url=sf_sandbox.instance_url,
        session_id="expired",
        version="59.0",
        session=sf_sandbox.http_session(),
    )
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Lead")


def test_versions_and_limits(sf_sandbox: SalesforceSandbox, sf_http: requests.Session, sf_api: str) -> None:
    versions = sf_http.get(f"{sf_sandbox.instance_url}/services/data/", timeout=10).json()
    assert {"label": "v59.0", "url": "/services/data/v59.0", "version": "59.0"} in versions
    assert sf_http.get(f"{sf_sandbox.instance_url}/services/data/v99.0/limits", timeout=10).status_code == 404
    sf_sandbox.reset_calls()
    limits = sf_http.get(f"{sf_api}/limits/", timeout=10)
    assert limits.json()["DailyApiRequests"] == {"Max": 15000, "Remaining": 14999}


def test_limit_info_header_counts_every_api_call(
    sf_client: Salesforce, sf_sandbox: SalesforceSandbox
) -> None:
    sf_sandbox.reset_calls()
    for _ in range(3):
        sf_client.query("SELECT Id FROM Lead")
    assert sf_sandbox.api_usage == 3
    assert sf_client.api_usage["api-usage"].used == 3
    assert sf_client.api_usage["api-usage"].total == 15000
    assert sf_sandbox.call_counts()["query"] == 3


def test_daily_limit_exhaustion_answers_403(
    sf_sandbox: SalesforceSandbox, sf_http: requests.Session, sf_api: str
) -> None:
    sf_sandbox.daily_limit = 2
    sf_sandbox.reset_calls()
    statuses = [sf_http.get(f"{sf_api}/limits", timeout=10).status_code for _ in range(3)]
    assert statuses == [200, 200, 403]
    over = sf_http.get(f"{sf_api}/limits", timeout=10)
    assert over.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert over.headers["Sforce-Limit-Info"] == "api-usage=2/2"
