"""The one REST-or-Bulk decision of the Salesforce source, taken the same way by every read that can be large.

A read starts as a REST `query`/`queryAll` (the caller's paging: the incremental streams order by
SystemModstamp and restart an expired query cursor; reconciliation needs neither). Its first page says how many
rows the whole query returns (`totalSize`, deleted rows included through `queryAll`), so no separate
`SELECT COUNT()` is asked: a read of fewer than `bulk_threshold` rows goes on over REST from that page, a larger
one leaves the REST cursor and goes through a Bulk API 2.0 query job streamed by locator, in pages of
`bulk_page_size` (one call each). The first page then costs the call the COUNT() used to.

When the caller already knows the read holds more than `bulk_threshold` rows (`estimate`: the incremental
cursor counts the records its last read left in the overlap window, which the next read returns again, and
the records connector's own targets wrote since), no REST page is asked: the read goes to Bulk at once, one
query for the object rather than a page and a job.

Reads that are bounded by construction (an IN list of at most `ID_CHUNK` ids, the picklist rows, the one-row
check of a `where`) and the contact-role changes (read in SystemModstamp order, which Bulk cannot give) stay
on REST.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from ...crm.salesforce import bulk
from ...crm.salesforce.client import SalesforceClient
from .config import SalesforceSourceConfig

Pages = Iterable[list[dict[str, Any]]]
# the caller's REST paging of a read; it hands the first page's `totalSize` to the callback it is given
RestPages = Callable[[Callable[[int], None]], Pages]


def select(fields: str, obj: str, where: str | None) -> str:
    condition = f" WHERE {where}" if where else ""
    return f"SELECT {fields} FROM {obj}{condition}"


@dataclass(frozen=True)
class ReadPath:
    """How one read of `obj` goes: the rows its first REST page announced (going to Bulk at once: the
    caller's estimate) and whether they go through Bulk."""

    obj: str
    where: str | None  # the whole condition, without WHERE; None: every row
    include_deleted: bool
    rows: int
    bulk: bool

    def soql(self, fields: str) -> str:
        return select(fields, self.obj, self.where)


@dataclass
class OpenRead:
    """A read under way: its path and its pages (the REST pages from the first one, or the Bulk job's)."""

    path: ReadPath
    pages: Pages
    # the org's clock no later than the moment the query ran (cursors settle on it): the first REST page's
    # arrival at the org, or the Bulk job's creation, which is known only once its pages are asked for
    queried_at: dt.datetime | None = field(default=None)


class ReadPaths:
    """Starts each read over REST and routes it through Bulk API 2.0 when its first page announces many rows."""

    def __init__(self, client: SalesforceClient, *, bulk_threshold: int, bulk_page_size: int) -> None:
        self.client = client
        self.bulk_threshold = bulk_threshold
        self.bulk_page_size = bulk_page_size

    @classmethod
    def of(cls, client: SalesforceClient, cfg: SalesforceSourceConfig) -> ReadPaths:
        return cls(client, bulk_threshold=cfg.bulk_threshold, bulk_page_size=cfg.bulk_page_size)

    def open(
        self,
        obj: str,
        where: str | None,
        fields: str,
        rest: RestPages,
        *,
        include_deleted: bool,
        estimate: int = 0,
    ) -> OpenRead:
        """Ask for the first REST page of the read of `fields` of `obj` matching `where` (one API call) and
        decide by its `totalSize`; or, when `estimate` (rows the read returns at least) is over the threshold,
        go to Bulk without asking."""
        if estimate > self.bulk_threshold:
            return self._bulk(ReadPath(obj, where, include_deleted, estimate, bulk=True), fields, None)
        totals: list[int] = []
        rest_pages = iter(rest(totals.append))
        first = next(rest_pages, None)
        first_reached = self.client.reached_at
        rows = totals[0] if totals else len(first or [])
        path = ReadPath(obj, where, include_deleted, rows, bulk=rows > self.bulk_threshold)
        if not path.bulk:
            pages = chain([first], rest_pages) if first is not None else []
            return OpenRead(path, pages, queried_at=first_reached)
        close = getattr(rest_pages, "close", None)
        if close is not None:
            close()  # the REST cursor is left to expire; nothing more is asked of it
        return self._bulk(path, fields, first_reached)

    def _bulk(self, path: ReadPath, fields: str, queried_at: dt.datetime | None) -> OpenRead:
        """The Bulk read of `path`; `queried_at`: the org's clock before the job (the REST page's), if known."""
        opened = OpenRead(path, [], queried_at=queried_at)

        def created() -> None:
            if opened.queried_at is None:
                opened.queried_at = self.client.reached_at

        opened.pages = bulk.query_pages(
            self.client,
            path.soql(fields),
            include_deleted=path.include_deleted,
            page_size=self.bulk_page_size,
            on_created=created,
        )
        return opened
