"""A broken answer is an outage, not a config error: a 200 whose body is no webservice envelope (cut short, an
HTML page) is retried like a 5xx once the url has answered like vtiger; only a url that never gave an envelope
on first contact, every attempt, is a config error, with a hint about the url."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from requests import PreparedRequest

from connector.crm.vtiger.client import VtigerClient
from connector.errors import ConfigError, UnreachableError
from connector.retry import RetryPolicy

from .test_client_requests import ACCESS_KEY, ENDPOINT, URL, answer

pytestmark = pytest.mark.reliability("Outages and broken answers")

PAGE = "<!DOCTYPE html><html><body><h1>We'll be back soon</h1></body></html>"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def operation_is(operation: str) -> Callable[[PreparedRequest], tuple[bool, str]]:
    """A `responses` matcher on the webservice operation, in the query string (GET) or the form body (POST)."""

    def match(request: PreparedRequest) -> tuple[bool, str]:
        form = request.body if isinstance(request.body, str) else (request.body or b"").decode()
        params = dict(parse_qsl(urlsplit(request.url or "").query)) | dict(parse_qsl(form))
        found = params.get("operation")
        return found == operation, f"operation {found!r} is not {operation!r}"

    return match


def on(rsps: responses.RequestsMock, method: str, operation: str, status: int, body: str) -> None:
    """One answer to one call of `operation` (registered answers are served in order, once each)."""
    rsps.add(method, ENDPOINT, body=body, status=status, match=[operation_is(operation)])


def recorded(rsps: responses.RequestsMock, method: str, operation: str, label: str | None = None) -> None:
    status, body = answer(label or operation)
    on(rsps, method, operation, status, body)


def client(attempts: int = 3) -> VtigerClient:
    return VtigerClient(URL, "admin", ACCESS_KEY, policy=RetryPolicy(attempts=attempts, sleep=lambda s: None))


def test_a_truncated_answer_after_login_is_retried_and_the_good_one_used(
    rsps: responses.RequestsMock,
) -> None:
    recorded(rsps, "GET", "getchallenge")
    recorded(rsps, "POST", "login")
    status, good = answer("query Leads where/order/limit")
    on(rsps, "GET", "query", 200, good[: len(good) // 2])
    on(rsps, "GET", "query", status, good)
    assert client().query("select id from Leads;")[0]["id"] == "10x4"


def test_html_pages_after_login_end_as_unreachable_never_as_config(rsps: responses.RequestsMock) -> None:
    recorded(rsps, "GET", "getchallenge")
    recorded(rsps, "POST", "login")
    for _ in range(3):
        on(rsps, "GET", "listtypes", 200, PAGE)
    with pytest.raises(UnreachableError) as down:
        client(attempts=3).call("listtypes")
    assert not isinstance(down.value, ConfigError)
    assert "not a webservice envelope" in str(down.value)


def test_a_url_that_never_answers_with_an_envelope_is_a_config_error_with_a_hint(
    rsps: responses.RequestsMock,
) -> None:
    for _ in range(3):
        on(rsps, "GET", "getchallenge", 200, PAGE)
    with pytest.raises(ConfigError) as bad:
        client(attempts=3).call("listtypes")
    message = str(bad.value)
    assert f"{ENDPOINT} never answered with a webservice envelope" in message
    assert "is url the vtiger base URL?" in message
    assert ACCESS_KEY not in message


def test_a_broken_first_answer_that_heals_is_no_config_error(rsps: responses.RequestsMock) -> None:
    status, challenge = answer("getchallenge")
    on(rsps, "GET", "getchallenge", 200, challenge[:10])
    on(rsps, "GET", "getchallenge", status, challenge)
    recorded(rsps, "POST", "login")
    recorded(rsps, "GET", "listtypes")
    assert "types" in client().call("listtypes")


def test_an_outage_before_any_envelope_is_unreachable_not_config(rsps: responses.RequestsMock) -> None:
    # a first contact that met only 5xx (and some pages) says nothing about the url: the server is down
    on(rsps, "GET", "getchallenge", 502, "")
    on(rsps, "GET", "getchallenge", 200, PAGE)
    on(rsps, "GET", "getchallenge", 503, "")
    with pytest.raises(UnreachableError):
        client(attempts=3).call("listtypes")


def test_a_broken_answer_to_a_write_is_retried_like_a_5xx(rsps: responses.RequestsMock) -> None:
    recorded(rsps, "GET", "getchallenge")
    recorded(rsps, "POST", "login")
    status, revised = answer("revise")
    on(rsps, "POST", "revise", 200, revised[: len(revised) // 3])
    on(rsps, "POST", "revise", 200, PAGE)
    on(rsps, "POST", "revise", status, revised)
    assert client(attempts=3).revise({"id": "10x4", "description": "x"})["id"]
