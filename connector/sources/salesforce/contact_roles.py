"""Opportunities carry the contacts of their OpportunityContactRoles (looked up per page of opportunities).

A role added or removed later does not touch the opportunity's SystemModstamp, so roles have their own
incremental stream and cursor: the opportunities of changed roles are read again, whole, with their current
roles. After a full read of the opportunities every role is current, so the role cursor simply starts there,
knowing the roles that read saw inside its overlap window (their ids and stamps, as a stream's cursor knows
the records it read): the next run's role read skips them rather than reading their opportunities again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from ...context import RunContext
from ...crm.salesforce import soql
from ...crm.salesforce.client import SalesforceClient
from ...mappers.salesforce import CONTACT_ROLES_KEY, parse_sf_datetime
from ..base import Batch
from .cursor import Cursor
from .org import CONTACT_ROLE, OrgMetadata
from .streams import IncrementalStream, floor_second

ID_CHUNK = 400  # ids per IN list: keeps a GET query URL well under Salesforce's URI limit


class ContactRoles:
    """The contact roles of one source's opportunities; `opportunity_where` is the YAML `where` of
    Opportunity, which every opportunity read again must still meet."""

    def __init__(
        self,
        name: str,
        *,
        client: SalesforceClient,
        org: OrgMetadata,
        stream: IncrementalStream,
        opportunity_where: str | None,
        overlap: dt.timedelta,
    ) -> None:
        self.name = name
        self.client = client
        self.org = org
        self.stream = stream  # the roles' own SystemModstamp stream (REST only: its pages must be ordered)
        self.opportunity_where = opportunity_where
        self.overlap = overlap
        # while every opportunity is read whole: roles stamped from this moment on are remembered (id -> stamp)
        self._remember_from: dt.datetime | None = None
        self._remembered: dict[str, dt.datetime] = {}

    def remember_from(self, at: dt.datetime) -> None:
        """Every opportunity is read whole next: remember the roles `attach` sees stamped at or after `at`
        (the role cursor's overlap window), for the role cursor that starts after that read."""
        self._remember_from = at
        self._remembered = {}

    def attach(self, records: list[dict[str, Any]]) -> None:
        """Put each opportunity's contact ids (from OpportunityContactRole) on the raw record."""
        by_id = {str(r["Id"]): r for r in records}
        for r in records:
            r[CONTACT_ROLES_KEY] = []
        ids = list(by_id)
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            rows = self.client.query_all(
                f"SELECT Id, SystemModstamp, OpportunityId, ContactId FROM {CONTACT_ROLE} "
                f"WHERE OpportunityId IN {soql.in_list(chunk)}"
            )
            self._remember(rows)
            for row in rows:
                opp = by_id.get(str(row.get("OpportunityId")))
                if opp is not None and row.get("ContactId"):
                    opp[CONTACT_ROLES_KEY].append(str(row["ContactId"]))

    def _remember(self, rows: list[dict[str, Any]]) -> None:
        """Note the roles of `rows` in the overlap window, but not those whose second was still going when the
        query reached the org (one changed again within it keeps its stamp: the next read takes it again)."""
        reached = self.client.reached_at
        if self._remember_from is None or reached is None:
            return
        going = floor_second(reached)
        for row in rows:
            try:
                stamp = parse_sf_datetime(row.get("SystemModstamp"))
            except ValueError:
                continue
            if row.get("Id") and self._remember_from <= stamp < going:
                self._remembered[str(row["Id"])] = stamp

    def read(
        self,
        cursor_text: str | None,
        ctx: RunContext,
        *,
        full_read_at: dt.datetime | None,
        already: set[str],
    ) -> Iterator[Batch]:
        """After the opportunities were read: the role cursor. `full_read_at`: every opportunity was just read
        with the roles current at that moment (by the org's clock), so only later role changes can be pending;
        else the opportunities of roles changed since the cursor, but those in `already` (read this run)."""
        if full_read_at is not None:
            cursor = Cursor(newest=floor_second(full_read_at), seen=self._remembered)
            self._remember_from, self._remembered = None, {}
            yield Batch(object=CONTACT_ROLE, cursor=cursor.dump(self.overlap))
            return
        with self.org.describes_checked(CONTACT_ROLE, "Opportunity"):
            yield from self._changes(Cursor.parse(cursor_text), already, ctx)

    def _changes(self, cursor: Cursor, already: set[str], ctx: RunContext) -> Iterator[Batch]:
        fields = self.org.fields(CONTACT_ROLE)
        server_time = self.client.server_time
        # the opportunity reads between role pages let the role query cursor idle: it may expire like any other
        for page in self.stream.rest_pages(fields, cursor, ctx):
            changed = self.stream.changes(page, cursor, ctx)
            gone = set(changed.deleted)
            rows = changed.records + [r for r in page if str(r.get("Id")) in gone]
            opp_ids = sorted({str(r["OpportunityId"]) for r in rows if r.get("OpportunityId")} - already)
            for start in range(0, len(opp_ids), ID_CHUNK):
                chunk = opp_ids[start : start + ID_CHUNK]
                condition = f"Id IN {soql.in_list(chunk)}"
                if self.opportunity_where:
                    condition += f" AND ({self.opportunity_where})"
                opps = self.client.query_all(
                    f"SELECT {self.org.fields('Opportunity')} FROM Opportunity WHERE {condition}"
                )
                self.attach(opps)
                already.update(chunk)
                if opps:
                    yield Batch(object="Opportunity", records=opps)
            cursor.settle(server_time, self.overlap, complete=False)
            yield Batch(object=CONTACT_ROLE, cursor=cursor.dump(self.overlap))
        cursor.settle(server_time, self.overlap, complete=True)
        yield Batch(object=CONTACT_ROLE, cursor=cursor.dump(self.overlap))
