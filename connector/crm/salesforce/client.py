"""Transport to one Salesforce org: session, login, retries, error classification, paging, API budget.

Everything that goes over the wire passes through `SalesforceClient.request`, which
- sends with a timeout and the configured CA bundle (HTTPS only, as in production),
- classifies the answer once (`raise_for_status`): 429 / 5xx / connection errors / `UNABLE_TO_LOCK_ROW` are
  retriable, the daily `REQUEST_LIMIT_EXCEEDED` stops the run cleanly, 401/403 are config errors, any other
  4xx is never retried; a 2xx whose body is not JSON, or not of the shape the call needs (`null`, a query
  page without `records`), is a broken answer of the server or a proxy and retried like a 5xx,
- logs in again once on `401 INVALID_SESSION_ID` and repeats the call with the same headers and body
  (simple-salesforce drops extra headers on its own re-login, and its Bulk 2.0 handler does not re-login),
- reads `Sforce-Limit-Info` from every response into the API budget and checks the budget before each call,
- counts every call for the run report.
simple-salesforce supplies the login flows and the URL layout of the org (`Salesforce.base_url`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlparse

import requests
import structlog
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce

from ...errors import BudgetExceededError, ConfigError, RetriableError
from ...retry import RetryPolicy, parse_retry_after
from ..transport import certificate_error, certificate_failure
from .auth import TRANSIENT_ERRORS, SalesforceSecrets, Session, login
from .budget import ApiBudget
from .describe_cache import DescribeCache, trim_describe
from .settings import SalesforceSettings

log = structlog.get_logger(__name__)

RETRIABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT"})
COMPOSITE_MAX = 200


class SalesforceRequestError(ConfigError):
    """A 4xx Salesforce refused for a reason retrying cannot fix (bad query, unknown field, no access)."""

    def __init__(self, message: str, *, status: int, code: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class _OrgAdapter(HTTPAdapter):
    """Gives every request on the session a timeout and the configured CA bundle, also the login requests
    simple-salesforce sends. Set here because requests lets `REQUESTS_CA_BUNDLE` in the environment override
    `Session.verify`."""

    def __init__(self, timeout: float, ca_bundle: str | None) -> None:
        super().__init__()
        self.timeout = timeout
        self.ca_bundle = ca_bundle

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle
        return super().send(request, **kwargs)


def make_http_session(conn: SalesforceSettings) -> requests.Session:
    http = requests.Session()
    http.verify = conn.ca_bundle if conn.ca_bundle else True
    http.mount("https://", _OrgAdapter(conn.timeout_seconds, conn.ca_bundle))
    http.headers["User-Agent"] = "connector"
    return http


def error_list(resp: requests.Response) -> list[dict[str, Any]]:
    """Salesforce's `[{"message", "errorCode"}]` error body (or the OAuth/bulk variants) as a list."""
    try:
        body = resp.json()
    except ValueError:
        return [{"message": resp.text[:300], "errorCode": None}]
    if isinstance(body, dict):
        body = [body]
    out = []
    for item in body if isinstance(body, list) else []:
        if isinstance(item, dict):
            out.append(
                {
                    "message": item.get("message") or item.get("error_description") or "",
                    "errorCode": item.get("errorCode") or item.get("error"),
                }
            )
    return out or [{"message": "", "errorCode": None}]


def raise_for_status(resp: requests.Response, what: str) -> None:
    """Map an HTTP answer to connector's error types (the one place that does it)."""
    status = resp.status_code
    if status < 300:
        return
    first = error_list(resp)[0]
    code = first.get("errorCode")
    message = str(first.get("message") or "")[:500]
    text = f"{what}: HTTP {status} {code or ''} {message}".strip()
    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
    if code == "REQUEST_LIMIT_EXCEEDED":
        # The daily allocation is spent (403 "TotalRequests Limit exceeded"): stop cleanly instead of retrying
        # into a wall. The concurrent-request kind (403 "ConcurrentPerOrgLongTxn ..." or a 429) clears within
        # seconds and is retried.
        lowered = message.lower()
        if "totalrequests" in lowered or (status != 429 and "concurren" not in lowered):
            raise BudgetExceededError(text)
        raise RetriableError(text, retry_after=retry_after, code=code)
    if status == 429 or status >= 500 or code in RETRIABLE_CODES:
        raise RetriableError(text, retry_after=retry_after, code=code or str(status))
    if status in (401, 403):
        raise ConfigError(text)
    raise SalesforceRequestError(text, status=status, code=code)


# -- what a 2xx answer must look like to be used (anything else is a broken answer, retried) ------------------
Shape = Callable[[Any], bool]


def anything(body: Any) -> bool:
    return True


def has(body: Any, **types: type) -> bool:
    """`body` is a JSON object whose `key`s hold values of the given types."""
    return isinstance(body, dict) and all(isinstance(body.get(k), t) for k, t in types.items())


def _objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def is_query_page(body: Any) -> bool:
    """A query page: its records, `done`, and where the next page is when it is not done."""
    return (
        has(body, records=list, done=bool)
        and _objects(body["records"])
        and (body["done"] or isinstance(body.get("nextRecordsUrl"), str))
    )


def is_count(body: Any) -> bool:
    return has(body, totalSize=int) and not isinstance(body["totalSize"], bool)


def is_describe(body: Any) -> bool:
    return has(body, fields=list) and all(has(f, name=str) for f in body["fields"])


def is_collection_answer(body: Any) -> bool:
    """sObject Collections: one result object per record, each with a list of error objects if any."""
    return _objects(body) and all(_objects(item.get("errors") or []) for item in body)


def _http_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.astimezone(dt.UTC) if when.tzinfo is not None else None


def strip_attributes(record: Mapping[str, Any]) -> dict[str, Any]:
    """A query record without the `attributes` bookkeeping, also on parent records."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        out[key] = strip_attributes(value) if isinstance(value, Mapping) and "attributes" in value else value
    return out


class SalesforceClient:
    """One logged-in connection to an org, shared by the readers and writers of one source or target."""

    def __init__(
        self,
        conn: SalesforceSettings,
        secrets: SalesforceSecrets,
        *,
        policy: RetryPolicy,
        budget: ApiBudget | None = None,
        system: str = "salesforce",
        http: requests.Session | None = None,
        describe_cache: DescribeCache | None = None,
    ) -> None:
        self.conn = conn
        self.secrets = secrets
        self.policy = policy
        self.budget = budget or ApiBudget()
        self.system = system
        self.http = http or make_http_session(conn)
        self.on_call: Callable[[], None] | None = None
        self.calls = 0
        self.logins = 0
        # Salesforce's clock (the `Date` of the latest response): cursors settle on it, never on ours
        self.server_time: dt.datetime | None = None
        # the org's clock no later than when the latest request reached it: its `Date` less the time the
        # call took (a query's own answer then vouches for the moment the query started, not after it ran)
        self.reached_at: dt.datetime | None = None
        self._session: Session | None = None
        self._sf: Salesforce | None = None
        self._describe: dict[str, dict[str, Any]] = {}
        self.describe_cache = describe_cache
        # objects whose describe in this client came from the cache file, not from the org
        self.cached_describes: set[str] = set()

    # -- session -----------------------------------------------------------------------------------------
    def _count(self) -> None:
        self.calls += 1
        if self.on_call is not None:
            self.on_call()

    def login(self) -> None:
        def attempt() -> Session:
            if self.conn.auth != "session":  # a given session id needs no call
                self._count()
            return login(self.conn, self.secrets, self.http)

        session = self.policy.call(attempt, what=f"{self.system} login")
        self.logins += 1
        self._session = session
        self._sf = Salesforce(
            session_id=session.session_id,
            instance_url=session.instance_url,
            version=self.conn.api_version,
            session=self.http,
        )
        log.info("salesforce.login", system=self.system, auth=self.conn.auth, instance=session.instance_url)

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self.login()
        assert self._sf is not None
        return self._sf

    @property
    def instance_url(self) -> str:
        return str(self.sf.base_url).split("/services/", 1)[0]

    @property
    def base_url(self) -> str:
        """`https://<instance>/services/data/vNN.0/`"""
        return str(self.sf.base_url)

    def _url(self, path: str) -> str:
        if path.startswith("https://"):
            if urlparse(path).netloc != urlparse(self.instance_url).netloc:
                raise ConfigError("refusing to send the session to a host other than the org's instance")
            return path
        if path.startswith("/"):
            return self.instance_url + path
        return self.base_url + path

    # -- the one way to talk to the org --------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        what: str | None = None,
    ) -> requests.Response:
        """Send one call (with retries and one re-login); return the successful response."""
        return self._send(method, path, params, json_body, data, headers, what, None)[0]

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        what: str | None = None,
        expect: Shape = anything,
    ) -> Any:
        """Like `request`, returning the decoded JSON answer (None when empty). A 2xx whose body does not
        decode (cut short, a proxy's HTML page), or decodes to something `expect` refuses (`null`, a page
        without its records), is a broken answer from the server or a proxy in between: retried like a 5xx."""
        return self._send(method, path, params, json_body, None, headers, what, expect)[1]

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        data: bytes | str | None,
        headers: Mapping[str, str] | None,
        what: str | None,
        expect: Shape | None,
    ) -> tuple[requests.Response, Any]:
        label = what or f"{method} {path.split('?', 1)[0]}"
        body: bytes | None
        extra = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            extra.setdefault("Content-Type", "application/json")
        elif isinstance(data, str):
            body = data.encode()
        else:
            body = data
        return self.policy.call(self._attempt, method, path, params, body, extra, label, expect, what=label)

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        extra: dict[str, str],
        label: str,
        expect: Shape | None,  # None: the answer is not JSON (CSV, or no body wanted)
    ) -> tuple[requests.Response, Any]:
        # A 401 straight after a fresh login means the credentials lack access: ConfigError, no second login.
        # (A later attempt of the retry policy may log in again: by then the fresh session had worked.)
        relogged = False
        while True:
            self.budget.check()
            if self._session is None:
                self.login()
            assert self._session is not None
            url = self._url(path)
            headers = {"Authorization": f"Bearer {self._session.session_id}", "Accept": "application/json"}
            headers.update(extra)
            self._count()
            try:
                resp = self.http.request(method, url, params=params, data=body, headers=headers)
            except TRANSIENT_ERRORS as exc:
                reason = certificate_failure(exc)
                if reason is not None:  # waiting does not make a certificate valid
                    raise certificate_error(label, url, reason, self.conn.ca_bundle) from None
                raise RetriableError(f"{label}: {type(exc).__name__}", code=type(exc).__name__) from None
            self.budget.update(resp.headers.get("Sforce-Limit-Info"))
            answered_at = _http_date(resp.headers.get("Date"))
            if answered_at is not None:
                self.server_time = answered_at
                self.reached_at = answered_at - (getattr(resp, "elapsed", None) or dt.timedelta(0))
            if resp.status_code == 401 and not relogged and self.conn.auth != "session":
                code = error_list(resp)[0].get("errorCode")
                if code == "INVALID_SESSION_ID":
                    log.info("salesforce.session.expired", system=self.system, call=label)
                    relogged = True
                    self.login()
                    continue
            raise_for_status(resp, label)
            if expect is None:
                return resp, None
            try:
                answer = resp.json() if resp.content else None
            except ValueError:
                raise RetriableError(f"{label}: answer is not JSON", code="BAD_RESPONSE") from None
            if not expect(answer):
                # the body is data of the org: its type is enough to tell what went wrong
                raise RetriableError(
                    f"{label}: answer has the wrong shape ({type(answer).__name__})", code="BAD_RESPONSE"
                )
            return resp, answer

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request_json("GET", path, **kwargs)

    # -- REST helpers ----------------------------------------------------------------------------------------
    def describe(self, obj: str) -> dict[str, Any]:
        """The describe of an sObject, trimmed to what connector reads (`describe_cache.trim_describe`): from
        memory, else the cache file while it is fresh, else the org. ConfigError when the org has no such
        object."""
        if obj not in self._describe:
            cached = self.describe_cache.get("describe", obj) if self.describe_cache else None
            if isinstance(cached, dict) and is_describe(cached):
                self._describe[obj] = cached
                self.cached_describes.add(obj)
            else:
                self._describe[obj] = self._describe_from_org(obj)
        return self._describe[obj]

    def refresh_describe(self, obj: str) -> bool:
        """Describe `obj` again from the org if this client's describe of it came from the cache file (once:
        the fresh one is not from the cache); whether it did."""
        if obj not in self.cached_describes:
            return False
        self.cached_describes.discard(obj)
        del self._describe[obj]
        self._describe[obj] = self._describe_from_org(obj)
        return True

    def forget_describe(self, obj: str) -> bool:
        """Drop a describe that came from the cache file, from memory and from the file, so it is asked of
        the org next time; whether there was one."""
        if obj not in self.cached_describes:
            return False
        self.cached_describes.discard(obj)
        self._describe.pop(obj, None)
        if self.describe_cache is not None:
            self.describe_cache.drop("describe", obj)
        return True

    def _describe_from_org(self, obj: str) -> dict[str, Any]:
        try:
            body = self.get_json(f"sobjects/{obj}/describe", what=f"describe {obj}", expect=is_describe)
        except SalesforceRequestError as exc:
            if exc.status == 404:
                if self.describe_cache is not None:
                    self.describe_cache.drop("describe", obj)
                raise ConfigError(f"Salesforce object '{obj}' does not exist in the org") from None
            raise
        described = trim_describe(body)
        if self.describe_cache is not None:
            self.describe_cache.put("describe", obj, described)
        return described

    def field_names(self, obj: str) -> dict[str, dict[str, Any]]:
        """Field describes by API name."""
        return {f["name"]: f for f in self.describe(obj).get("fields", [])}

    def query_pages(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        batch_size: int = 2000,
        on_total: Callable[[int], None] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the records of `soql` one page at a time, following `nextRecordsUrl`; `on_total` gets the
        first page's `totalSize` (the rows of the whole query) before that page is yielded."""
        endpoint = "queryAll/" if include_deleted else "query/"
        options = {"Sforce-Query-Options": f"batchSize={batch_size}"}
        page = self.get_json(
            endpoint, params={"q": soql}, headers=options, what="query", expect=is_query_page
        )
        total = page.get("totalSize")
        if on_total is not None and isinstance(total, int) and not isinstance(total, bool):
            on_total(total)
        number = 0
        while True:
            number += 1
            records = [strip_attributes(r) for r in page["records"]]
            log.debug("salesforce.query.page", system=self.system, page=number, records=len(records))
            yield records
            next_url = page.get("nextRecordsUrl")
            if page["done"]:
                return
            page = self.get_json(next_url, headers=options, what="query more", expect=is_query_page)

    def query_all(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """All records of a query known to be small (picklist values, one campaign's statuses)."""
        out: list[dict[str, Any]] = []
        for page in self.query_pages(soql, include_deleted=include_deleted):
            out.extend(page)
        return out

    def count(self, soql: str, *, include_deleted: bool = False) -> int:
        endpoint = "queryAll/" if include_deleted else "query/"
        result = self.get_json(endpoint, params={"q": soql}, what="count", expect=is_count)
        return int(result["totalSize"])

    def composite(
        self,
        method: str,
        records: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        headers: Mapping[str, str] | None = None,
        what: str = "composite",
    ) -> list[dict[str, Any]]:
        """One sObject Collections call (`allOrNone: false`); returns the per-record results in order."""
        if method == "DELETE":
            assert ids is not None and len(ids) <= COMPOSITE_MAX
            result = self.request_json(
                "DELETE",
                "composite/sobjects",
                params={"ids": ",".join(ids), "allOrNone": "false"},
                headers=headers,
                what=what,
                expect=is_collection_answer,
            )
        else:
            assert records is not None and len(records) <= COMPOSITE_MAX
            result = self.request_json(
                method,
                "composite/sobjects",
                json_body={"allOrNone": False, "records": records},
                headers=headers,
                what=what,
                expect=is_collection_answer,
            )
        return list(result)

    def close(self) -> None:
        self.http.close()
