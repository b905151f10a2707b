"""Where and how to reach one vtiger CRM: the YAML settings of a vtiger source (pydantic, no transport).

A vtiger target writes through its source's connection (`connection.py`), so these are written once, on the
source. Validation here never touches the network.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from ...model import StrictModel
from ..transport import ca_bundle_path, https_unless_loopback


class VtigerSettings(StrictModel):
    # the CRM's base url (https://, or http:// to a loopback host); the webservice is <url>/webservice.php
    url: str
    env_prefix: str = "VTIGER_"  # <prefix>USERNAME and <prefix>ACCESS_KEY
    ca_bundle: str | None = None  # PEM file of the CAs to trust, relative to the config file
    timeout_seconds: float = Field(30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        return https_unless_loopback(value)

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: str | None, info: ValidationInfo) -> str | None:
        return ca_bundle_path(value, info)
