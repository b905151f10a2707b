from __future__ import annotations

import urllib.parse

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sf_fakes import INSTANCE, LOGIN, PASSWORD_ENV, SOAP, TOKEN, client, soap_ok, source_config

from connector.crm.salesforce.auth import SalesforceSecrets
from connector.crm.salesforce.settings import SalesforceSettings
from connector.errors import ConfigError


@responses.activate(assert_all_requests_are_fired=True)
def test_soap_password_login_escapes_xml_and_appends_token() -> None:
    responses.post(SOAP, body=soap_ok("00Dnew!x"), content_type="text/xml")
    c = client(source_config(auth="password"), PASSWORD_ENV)
    c.login()
    body = responses.calls[0].request.body
    body = body.decode() if isinstance(body, bytes) else body
    assert "<urn:username>ops@example.com</urn:username>" in body
    assert "<urn:password>pa&lt;ssTOK&#x27;1</urn:password>" in body
    assert responses.calls[0].request.headers["SOAPAction"] == "login"
    assert c.base_url == f"{INSTANCE}/services/data/v59.0/"


@responses.activate(assert_all_requests_are_fired=True)
def test_oauth_password_grant_when_client_id_given() -> None:
    responses.post(TOKEN, json={"access_token": "tok", "instance_url": INSTANCE})
    environ = {**PASSWORD_ENV, "SF_CLIENT_ID": "cid", "SF_CLIENT_SECRET": "csecret"}
    c = client(source_config(auth="password"), environ)
    c.login()
    form = urllib.parse.parse_qs(responses.calls[0].request.body)
    assert form["grant_type"] == ["password"]
    assert form["client_id"] == ["cid"] and form["client_secret"] == ["csecret"]
    assert form["password"] == ["pa<ssTOK'1"]


@responses.activate(assert_all_requests_are_fired=True)
def test_client_credentials_sends_basic_auth() -> None:
    responses.post(TOKEN, json={"access_token": "tok", "instance_url": INSTANCE})
    c = client(source_config(auth="client_credentials"), {"SF_CLIENT_ID": "cid", "SF_CLIENT_SECRET": "s"})
    c.login()
    request = responses.calls[0].request
    assert urllib.parse.parse_qs(request.body) == {"grant_type": ["client_credentials"]}
    assert request.headers["Authorization"] == "Basic Y2lkOnM="


@responses.activate(assert_all_requests_are_fired=True)
def test_jwt_bearer_assertion_signed_with_key_file(tmp_path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "k.pem").write_bytes(pem)
    responses.post(TOKEN, json={"access_token": "tok", "instance_url": INSTANCE})
    environ = {
        "SF_USERNAME": "ops@example.com",
        "SF_CLIENT_ID": "cid",
        "SF_PRIVATE_KEY_FILE": str(tmp_path / "k.pem"),
    }
    c = client(source_config(auth="jwt"), environ)
    c.login()
    form = urllib.parse.parse_qs(responses.calls[0].request.body)
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = jwt.decode(form["assertion"][0], key.public_key(), algorithms=["RS256"], audience=LOGIN)
    assert claims["iss"] == "cid" and claims["sub"] == "ops@example.com"


@responses.activate(assert_all_requests_are_fired=True)
def test_refused_login_is_config_error_without_secrets() -> None:
    fault = (
        '<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
        "<detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
        "<sf:exceptionMessage>Invalid username, password, security token</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    responses.post(SOAP, body=fault, status=500, content_type="text/xml")
    c = client(source_config(auth="password"), PASSWORD_ENV)
    with pytest.raises(ConfigError) as info:
        c.login()
    assert "INVALID_LOGIN" in str(info.value)
    assert "pa<ss" not in str(info.value) and "TOK" not in str(info.value)


def test_missing_secret_fails_before_network() -> None:
    c = client(source_config(auth="password"), {"SF_USERNAME": "u"})
    with responses.RequestsMock() as mock:  # no request registered: any call would fail differently
        with pytest.raises(ConfigError, match="SF_PASSWORD"):
            c.login()
        assert len(mock.calls) == 0


def test_domains_resolve_to_login_hosts() -> None:
    assert SalesforceSettings(domain="login").login_base() == "https://login.salesforce.com"
    assert SalesforceSettings(domain="test").login_base() == "https://test.salesforce.com"
    assert SalesforceSettings(domain="acme").login_base() == "https://acme.my.salesforce.com"
    assert SalesforceSettings(login_url="https://127.0.0.1:8443/x").login_base() == "https://127.0.0.1:8443"
    with pytest.raises(ValueError):
        SalesforceSettings(login_url="http://insecure.example")


def test_secrets_from_given_environ_only(monkeypatch) -> None:
    monkeypatch.setenv("X_USERNAME", "from-process")
    assert SalesforceSecrets.load("X_", {"X_PASSWORD": "p"}).username is None
    secrets = SalesforceSecrets.load("X_")
    assert secrets.username == "from-process"
    assert "p" not in repr(SalesforceSecrets.load("X_", {"X_PASSWORD": "p"}).password)


@responses.activate(assert_all_requests_are_fired=True)
def test_login_cut_off_mid_transfer_is_retried() -> None:
    import requests

    responses.post(SOAP, body=requests.exceptions.ChunkedEncodingError("connection broken"))
    responses.post(SOAP, body=soap_ok("00Dnew!x"), content_type="text/xml")
    c = client(source_config(auth="password"), PASSWORD_ENV)
    c.login()
    assert c.logins == 1 and len(responses.calls) == 2


@pytest.mark.parametrize(
    ("flow", "answer"),
    [
        ("soap", {"body": "<html>proxy error page</html>", "content_type": "text/html"}),
        ("soap", {"body": "", "content_type": "text/xml"}),
        ("soap", {"body": "<?xml version='1.0'?><nothing/>", "content_type": "text/xml"}),
        ("token", {"json": {}}),
        ("token", {"json": []}),
        ("token", {"json": {"access_token": "tok"}}),
        ("token", {"json": {"instance_url": INSTANCE}}),
        ("token", {"body": "<html>proxy</html>", "content_type": "text/html"}),
    ],
)
@responses.activate(assert_all_requests_are_fired=True)
def test_a_2xx_that_is_no_login_answer_is_retried_not_taken_for_refused_credentials(
    flow: str, answer: dict[str, object]
) -> None:
    environ = dict(PASSWORD_ENV)
    if flow == "soap":
        responses.post(SOAP, status=200, **answer)
        responses.post(SOAP, body=soap_ok("00Dnew!x"), content_type="text/xml")
    else:
        environ.update(SF_CLIENT_ID="cid", SF_CLIENT_SECRET="csecret")
        responses.post(TOKEN, status=200, **answer)
        responses.post(TOKEN, json={"access_token": "tok", "instance_url": INSTANCE})
    c = client(source_config(auth="password"), environ)
    c.login()
    assert len(responses.calls) == 2 and c.base_url == f"{INSTANCE}/services/data/v59.0/"
