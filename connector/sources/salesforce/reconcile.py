"""Periodic id reconciliation: what the SystemModstamp cursor can never report.

Every `reconcile_every_hours` an object's live ids are read (`SELECT Id`, with the YAML `where`) and handed
over as `Batch.live_ids`, so the run loop drops stored records of other ids: records purged from the recycle
bin (emptied, hard-deleted, or 15 days passed without a run) that `queryAll` no longer returns, and records
changed so that they left the `where` filter. It costs one call per 2,000 records (REST) or, when its first page
announces more rows than the threshold, that page and one bulk job (`read_path` decides), so it runs on a period rather than every run; the first read of an object counts as
one. Opportunities are reconciled by reading each one whole with its current contact roles (one call per
`page_size` records and one per 400 opportunities for their roles): a role purged from the recycle bin leaves
no trace the role cursor could see, and only a fresh read of its opportunity drops the contact it attached.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import structlog

from ...context import RunContext
from ...crm.salesforce.client import SalesforceClient
from ..base import Batch
from .cursor import Cursor
from .org import OrgMetadata
from .read_path import ReadPaths, select

log = structlog.get_logger(__name__)

ID_PAGE = 2000  # ids per REST page when only ids are read: the most Salesforce returns per page


class Reconciler:
    """The id reconciliation of one source (`name`); `attach_roles` completes opportunities read whole."""

    def __init__(
        self,
        name: str,
        *,
        client: SalesforceClient,
        org: OrgMetadata,
        paths: ReadPaths,
        every_hours: float | None,
        page_size: int,
        overlap: dt.timedelta,
        attach_roles: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        self.name = name
        self.client = client
        self.org = org
        self.paths = paths
        self.every_hours = every_hours
        self.page_size = page_size
        self.overlap = overlap
        self.attach_roles = attach_roles

    def due(self, cursor: Cursor, ctx: RunContext) -> bool:
        if self.every_hours is None or cursor.newest is None:
            return False
        return cursor.reconciled is None or ctx.started_at - cursor.reconciled >= dt.timedelta(
            hours=self.every_hours
        )

    def reconcile(self, obj: str, where: str | None, cursor: Cursor, ctx: RunContext) -> Iterator[Batch]:
        """Every id of `obj` that exists now (within `where`): stored records of other ids are gone.

        Opportunities are read whole, each with its contact roles as they are now, not just their ids: a
        role purged from the recycle bin never reaches the role cursor, and the opportunity's stamp does not
        move, so only a fresh read of the opportunity drops the contact the role attached."""
        whole = obj == "Opportunity"
        fields = self.org.fields(obj) if whole else "Id"
        condition = f"({where})" if where else None
        pages = self.paths.open(
            obj,
            condition,
            fields,
            lambda on_total: self.client.query_pages(
                select(fields, obj, condition),
                batch_size=self.page_size if whole else ID_PAGE,
                on_total=on_total,
            ),
            include_deleted=False,
        ).pages
        live: set[str] = set()  # ids only, never whole records
        for page in pages:
            records = [r for r in page if r.get("Id")]
            live.update(str(r["Id"]) for r in records)
            if whole and records:
                self.attach_roles(records)
                yield Batch(object=obj, records=records)
        cursor.reconciled = ctx.started_at
        log.info("salesforce.reconcile", source=self.name, object=obj, live=len(live), whole=whole)
        yield Batch(object=obj, live_ids=live, cursor=cursor.dump(self.overlap))
