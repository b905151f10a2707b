"""One incremental stream per object: what changed on SystemModstamp since the object's cursor.

A read is a REST `queryAll` of what changed, paged by `nextRecordsUrl` (ordered by SystemModstamp, Id, a
cursor after every page); when its first page announces more rows than the threshold (`totalSize`, deleted
rows included), `read_path` turns it into a Bulk API 2.0 `queryAll` job streamed by locator instead (Bulk cannot
ORDER BY, so its cursor comes with the last page). When the cursor already counts more records in its overlap
window than the threshold (they come back whatever changed), or the targets wrote more records of the object
since the cursor's read (their stamps moved: see `crm.salesforce.own_writes`), the read goes to Bulk without
the REST page. A run with nothing new thus costs one query per object, right after a writing run too.
Deleted rows (`IsDeleted = true`) go to `Batch.deleted`.

The window is `SystemModstamp <= run start` (whole seconds) and, after the first read, the cursor's lower
bound: inclusive at `newest - overlap` or strict after `settled` (see `cursor`). Records on the boundary that
were read before are skipped (`Cursor.already_read`), so the overlap costs a re-read, never a duplicate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import structlog

from ...context import RunContext
from ...crm.salesforce import soql
from ...crm.salesforce.client import SalesforceClient, SalesforceRequestError
from ...crm.salesforce.own_writes import OwnWrites
from ...mappers.salesforce import parse_sf_datetime, truthy
from ..base import Batch
from .cursor import Cursor
from .org import OrgMetadata
from .read_path import Pages, ReadPaths

log = structlog.get_logger(__name__)

# completes the raw records of a page before they are handed out (the opportunities' contact roles)
Enrich = Callable[[list[dict[str, Any]]], None]

MAX_QUERY_RESTARTS = 3  # fresh queries after an expired query cursor, per object and run


def floor_second(value: dt.datetime) -> dt.datetime:
    """SOQL datetime literals have whole seconds."""
    return value.astimezone(dt.UTC).replace(microsecond=0)


class IncrementalStream:
    """The incremental read of one object of source `name`; `enrich` completes each page's records (the
    opportunities' contact roles) before they are handed out."""

    def __init__(
        self,
        name: str,
        obj: str,
        *,
        client: SalesforceClient,
        org: OrgMetadata,
        paths: ReadPaths,
        page_size: int,
        overlap: dt.timedelta,
        condition: str | None = None,
        enrich: Enrich | None = None,
        own_writes: OwnWrites | None = None,
    ) -> None:
        self.name = name
        self.obj = obj
        self.client = client
        self.org = org
        self.paths = paths
        self.page_size = page_size
        self.overlap = overlap
        self.condition = condition  # the YAML `where`, ANDed to every read
        self.enrich = enrich
        self.own_writes = own_writes  # what connector's targets wrote to the org, by run

    def where(self, cursor: Cursor, ctx: RunContext) -> str:
        upper = floor_second(ctx.started_at)
        parts = [f"SystemModstamp <= {soql.datetime_literal(upper)}"]
        lower = cursor.lower_bound(self.overlap)
        if lower is not None:
            # SOQL datetimes have whole seconds: a strict bound floors too (the rest of that second comes
            # back and is skipped as already read)
            op = ">" if lower.strict else ">="
            parts.insert(0, f"SystemModstamp {op} {soql.datetime_literal(floor_second(lower.at))}")
        if self.condition:
            parts.append(f"({self.condition})")
        return " AND ".join(parts)

    def read(self, cursor: Cursor, ctx: RunContext) -> Iterator[Batch]:
        """What changed since `cursor` (moved along as pages are handed out), one batch per page."""
        fields = self.org.fields(self.obj)
        answered_before = self.client.server_time  # a response received before the query was sent
        opened = self.paths.open(
            self.obj,
            self.where(cursor, ctx),
            fields,
            lambda on_total: self.rest_pages(fields, cursor, ctx, on_total),
            include_deleted=True,
            estimate=self.estimate(cursor),
        )
        cursor.read_in = ctx.started_at
        path, pages = opened.path, opened.pages
        log.info(
            "salesforce.read.start", source=self.name, object=self.obj, changed=path.rows, bulk=path.bulk
        )
        if path.rows == 0:
            return

        def server_time() -> dt.datetime | None:
            # the org's clock no later than the moment the query ran: the latest of a response received before
            # it was sent and the query's own answer less the call's time (the first call of a run has only
            # that; a Bulk job's creation is known once its first page is in)
            return max((t for t in (answered_before, opened.queried_at) if t is not None), default=None)

        total = 0
        previous: Batch | None = None
        # One page is held back so the last one carries the cursor of the whole read. Bulk pages are unordered:
        # only that last cursor is safe. REST pages are ordered by SystemModstamp: each carries its own cursor.
        for page in pages:
            batch = self.changes(page, cursor, ctx)
            if self.enrich is not None:
                self.enrich(batch.records)
            total += len(batch.records) + len(batch.deleted)
            if not path.bulk:
                cursor.settle(server_time(), self.overlap, complete=False)
                batch.cursor = cursor.dump(self.overlap)
            if previous is not None:
                yield previous
            previous = batch
        if previous is not None:
            cursor.settle(server_time(), self.overlap, complete=True)
            previous.cursor = cursor.dump(self.overlap)
            yield previous
        log.info("salesforce.read.done", source=self.name, object=self.obj, records=total)

    def estimate(self, cursor: Cursor) -> int:
        """Records this read returns at least, known before asking: those the last read left in the overlap
        window, and those connector's own targets wrote since that read (a record both read near the window's
        end and then written counts twice). An estimate too high costs one Bulk job for a read a REST page
        would have held; too low, the REST page whose `totalSize` then sends the read to Bulk anyway: the read
        returns the same records either way."""
        written = self.own_writes.since(self.obj, cursor.read_in) if self.own_writes is not None else 0
        return cursor.rereads + written

    def rest_pages(
        self, fields: str, cursor: Cursor, ctx: RunContext, on_total: Callable[[int], None] | None = None
    ) -> Pages:
        """REST pages of what changed, ordered by SystemModstamp. Salesforce drops a query cursor after 15
        idle minutes or when the user opens more than ten (other integrations sharing the user): the read then
        goes on with a fresh query from the cursor as it stands after the pages already handed out."""
        restarts = 0
        while True:
            where = self.where(cursor, ctx)
            try:
                yield from self.client.query_pages(
                    f"SELECT {fields} FROM {self.obj} WHERE {where} ORDER BY SystemModstamp, Id",
                    include_deleted=True,
                    batch_size=self.page_size,
                    on_total=on_total if restarts == 0 else None,
                )
                return
            except SalesforceRequestError as exc:
                if exc.code != "INVALID_QUERY_LOCATOR" or restarts >= MAX_QUERY_RESTARTS:
                    raise
                restarts += 1
                log.warning("salesforce.query.restart", source=self.name, object=self.obj, restart=restarts)

    def changes(self, page: list[dict[str, Any]], cursor: Cursor, ctx: RunContext) -> Batch:
        """The records of `page` not read before (boundary de-duplication), noted on `cursor`; deleted rows
        as `deleted`."""
        batch = Batch(object=self.obj)
        for raw in page:
            rid = raw.get("Id")
            if not rid:
                continue
            try:
                stamp = parse_sf_datetime(raw.get("SystemModstamp"))
            except ValueError:
                batch.records.append(raw)  # map() reports it as a RecordError
                continue
            if cursor.already_read(str(rid), stamp):
                continue
            cursor.note(str(rid), stamp, ctx.started_at)
            if truthy(raw.get("IsDeleted")):
                batch.deleted.append(str(rid))
            else:
                batch.records.append(raw)
        return batch
