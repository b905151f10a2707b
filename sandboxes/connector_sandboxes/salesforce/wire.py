"""Request and response values shared by the sandbox's resource handlers, apart from the HTTP plumbing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    path: str  # without the query string
    params: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    version: str = ""  # API version from /services/data/vXX.X/, when present
    token: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}") from None

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status=status, body=json.dumps(payload).encode(), headers=dict(headers or {}))

    @classmethod
    def csv(cls, text: str, headers: dict[str, str] | None = None) -> Response:
        return cls(body=text.encode(), content_type="text/csv", headers=dict(headers or {}))

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status=status, content_type="")


class ApiError(Exception):
    """A refused call in Salesforce's error shape: `[{"message", "errorCode", "fields"}]`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def response(self) -> Response:
        error: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            error["fields"] = self.fields
        return Response.json([error], status=self.status, headers=self.headers)


def not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")
