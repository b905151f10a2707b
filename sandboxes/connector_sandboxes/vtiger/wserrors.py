"""The two ways the webservice fails: a JSON error envelope, or an HTTP 500 with an empty body."""

from __future__ import annotations

from typing import Any

DENIED = "Permission to perform the operation is denied"


class WebserviceError(Exception):
    """Answered as `{"success": false, "error": {"message": ..., "code": ...}}` with HTTP 200.

    `code` is normally a string; the duplicate-account error really carries the integer 0.
    """

    def __init__(self, code: str | int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def envelope(self) -> dict[str, Any]:
        return {"success": False, "error": {"message": self.message, "code": self.code}}


class EmptyServerError(Exception):
    """Answered as HTTP 500 with an empty body (PHP fatal errors upstream)."""


def access_denied(suffix: str = "") -> WebserviceError:
    return WebserviceError("ACCESS_DENIED", DENIED + suffix)


def no_such_module(name: str) -> WebserviceError:
    return access_denied(f" for name : {name}")


def wrong_relation() -> WebserviceError:
    # spelled this way upstream
    return WebserviceError("UNKOWN_ENTITY", "Relation specified is incorrect")
