"""vtiger CRM over its webservice API: `client` (transport), `vtql` (queries), `describe` (fields), `source`."""

from __future__ import annotations

from .client import VtigerApiError, VtigerClient
from .source import VtigerSource, VtigerSourceConfig

__all__ = ["VtigerApiError", "VtigerClient", "VtigerSource", "VtigerSourceConfig"]
