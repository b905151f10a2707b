"""Fixtures for the vtiger sandbox tests: a started sandbox and a small raw webservice client."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import requests

from connector_sandboxes.vtiger import VtigerSandbox


class WsClient:
    """Speaks /webservice.php directly (no connector code), so the tests judge the sandbox alone."""

    def __init__(self, sandbox: VtigerSandbox) -> None:
        self.sandbox = sandbox
        self.http = requests.Session()
        self.session_name: str | None = None

    def raw(self, method: str, params: dict[str, Any]) -> requests.Response:
        if method == "GET":
            return self.http.get(self.sandbox.endpoint, params=params, timeout=10)
        return self.http.post(self.sandbox.endpoint, data=params, timeout=10)

    def call(self, method: str, operation: str, **params: Any) -> dict[str, Any]:
        if self.session_name is not None and "sessionName" not in params and operation != "getchallenge":
            params["sessionName"] = self.session_name
        for key in ("element", "fieldTypeList"):
            if key in params and not isinstance(params[key], str):
                params[key] = json.dumps(params[key])
        response = self.raw(method, {"operation": operation, **params})
        assert response.status_code == 200, (operation, response.status_code, response.text)
        return response.json()

    def ok(self, method: str, operation: str, **params: Any) -> Any:
        body = self.call(method, operation, **params)
        assert body["success"] is True, body
        return body["result"]

    def get(self, operation: str, **params: Any) -> Any:
        return self.ok("GET", operation, **params)

    def post(self, operation: str, **params: Any) -> Any:
        return self.ok("POST", operation, **params)

    def login(self) -> str:
        token = self.ok("GET", "getchallenge", username=self.sandbox.username)["token"]
        key = hashlib.md5((token + self.sandbox.access_key).encode()).hexdigest()
        self.session_name = self.ok("POST", "login", username=self.sandbox.username, accessKey=key)[
            "sessionName"
        ]
        return self.session_name

    def query(self, vtql: str) -> list[dict[str, str]]:
        return self.get("query", query=vtql)


@pytest.fixture
def vt_client(vt_sandbox: VtigerSandbox) -> WsClient:
    client = WsClient(vt_sandbox)
    client.login()
    return client
