"""The one REST-or-Bulk decision of the Salesforce source, taken the same way by every read that can be large.

A read first asks `SELECT COUNT()` of what it will return (through `queryAll` when deleted rows are wanted, so
they count too). More rows than `bulk_threshold` go through a Bulk API 2.0 query job streamed by locator, in
pages of `bulk_page_size` (one call each); fewer go through REST `query`/`queryAll`, whose paging the caller
chooses (the incremental streams order by SystemModstamp and restart an expired query cursor; reconciliation
does not need either).

Reads that are bounded by construction (an IN list of at most `ID_CHUNK` ids, the picklist rows, the one-row
check of a `where`) and the contact-role changes (read in SystemModstamp order, which Bulk cannot give) stay
on REST and ask no COUNT().
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ...crm.salesforce import bulk
from ...crm.salesforce.client import SalesforceClient
from .config import SalesforceSourceConfig

Pages = Iterable[list[dict[str, Any]]]


def select(fields: str, obj: str, where: str | None) -> str:
    condition = f" WHERE {where}" if where else ""
    return f"SELECT {fields} FROM {obj}{condition}"


@dataclass(frozen=True)
class ReadPath:
    """How one read of `obj` goes: the rows its COUNT() found and whether they go through Bulk API 2.0."""

    obj: str
    where: str | None  # the whole condition, without WHERE; None: every row
    include_deleted: bool
    rows: int
    bulk: bool

    def soql(self, fields: str) -> str:
        return select(fields, self.obj, self.where)


class ReadPaths:
    """Counts a read's rows and routes its pages through REST or Bulk API 2.0."""

    def __init__(self, client: SalesforceClient, *, bulk_threshold: int, bulk_page_size: int) -> None:
        self.client = client
        self.bulk_threshold = bulk_threshold
        self.bulk_page_size = bulk_page_size

    @classmethod
    def of(cls, client: SalesforceClient, cfg: SalesforceSourceConfig) -> ReadPaths:
        return cls(client, bulk_threshold=cfg.bulk_threshold, bulk_page_size=cfg.bulk_page_size)

    def choose(self, obj: str, where: str | None, *, include_deleted: bool) -> ReadPath:
        """Count the rows of `obj` matching `where` (one API call) and decide."""
        rows = self.client.count(select("COUNT()", obj, where), include_deleted=include_deleted)
        return ReadPath(obj, where, include_deleted, rows, bulk=rows > self.bulk_threshold)

    def pages(self, path: ReadPath, fields: str, rest: Callable[[], Pages]) -> Pages:
        """The pages of `path` selecting `fields`: a Bulk job when `path.bulk`, else `rest()` (the caller's
        REST paging of the same rows)."""
        if not path.bulk:
            return rest()
        return bulk.query_pages(
            self.client,
            path.soql(fields),
            include_deleted=path.include_deleted,
            page_size=self.bulk_page_size,
        )
