"""Salesforce as a source: `client` (transport), `bulk`, `auth`, `budget`, `soql`, `cursor`,
`describe_cache` (org metadata kept between runs), and `source`."""

from __future__ import annotations

from .source import SalesforceSource, SalesforceSourceConfig

__all__ = ["SalesforceSource", "SalesforceSourceConfig"]
