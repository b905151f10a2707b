"""The Salesforce source: the configured objects of one org, read incrementally, mapped with the org's meaning.

It composes the parts, each in its own module, over the connection the run hands it:
- `org`: describe checks of objects, fields and `where` before anything is read, the fields each read
  selects, and the LeadStatus / OpportunityStage meanings (with the describe cache);
- `streams`: one incremental SystemModstamp stream per configured object (inclusive lower bound, boundary
  de-duplication, deletions), its cursor in `cursor`;
- `read_path`: the one REST-or-Bulk decision every large read takes;
- `reconcile`: the periodic id re-read that sees purged records and records that left `where`;
- `contact_roles`: the opportunities' contacts, and the opportunities of roles changed since the role cursor.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import structlog

from ...context import PluginEnv, RunContext
from ...crm.salesforce.client import SalesforceClient
from ...crm.salesforce.connection import SalesforceConnection
from ...discovery import Discovery
from ...errors import ConfigError, RecordError
from ...findings import Findings
from ...mappers.fields import ObjectMapping
from ...mappers.salesforce import OrgMeanings
from ...plugin_config import SourceConfigBase
from ...schema import Fact
from ..base import Batch, Source, expect_config
from . import online
from .config import SalesforceSourceConfig
from .contact_roles import ContactRoles
from .cursor import Cursor
from .org import CONTACT_ROLE, OrgMetadata
from .read_path import ReadPaths
from .reconcile import Reconciler
from .streams import Enrich, IncrementalStream, floor_second

log = structlog.get_logger(__name__)


class SalesforceSource(Source):
    """Reads the configured objects of one org incrementally; `map` turns a raw record into a Fact."""

    def __init__(self, cfg: SalesforceSourceConfig, connection: SalesforceConnection) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.connection = connection
        self.client: SalesforceClient = connection.client
        self.unknown_values: Counter[tuple[str, str]] = Counter()
        self.org = OrgMetadata(cfg.name, cfg, self.client)
        overlap = dt.timedelta(seconds=cfg.overlap_seconds)
        paths = ReadPaths.of(self.client, cfg)

        def stream(obj: str, condition: str | None = None, enrich: Enrich | None = None) -> IncrementalStream:
            return IncrementalStream(
                cfg.name,
                obj,
                client=self.client,
                org=self.org,
                paths=paths,
                page_size=cfg.page_size,
                overlap=overlap,
                condition=condition,
                enrich=enrich,
                own_writes=connection.own_writes,
            )

        opportunity = cfg.objects.get("Opportunity")
        self.roles = ContactRoles(
            cfg.name,
            client=self.client,
            org=self.org,
            stream=stream(CONTACT_ROLE),
            opportunity_where=opportunity.where if opportunity is not None else None,
            overlap=overlap,
        )
        self.streams = {
            obj: stream(obj, mapping.where, enrich=self.roles.attach if obj == "Opportunity" else None)
            for obj, mapping in cfg.objects.items()
        }
        self.reconciler = Reconciler(
            cfg.name,
            client=self.client,
            org=self.org,
            paths=paths,
            every_hours=cfg.reconcile_every_hours,
            page_size=cfg.page_size,
            overlap=overlap,
            attach_roles=self.roles.attach,
        )

    @classmethod
    def connect(cls, cfg: SourceConfigBase, env: PluginEnv) -> SalesforceConnection:
        cfg = expect_config(cfg, SalesforceSourceConfig)
        return SalesforceConnection.open(
            cfg.name,
            cfg,
            environ=env.environ,
            policy=env.policy,
            state_dir=env.state_dir,
            describe_cache_hours=cfg.describe_cache_hours,
        )

    @classmethod
    def from_config(cls, cfg: SourceConfigBase, env: PluginEnv) -> SalesforceSource:
        cfg = expect_config(cfg, SalesforceSourceConfig)
        connection = env.connection(cfg.name, SalesforceConnection)
        if connection is None:  # the env knows this source by another config: a wiring mistake
            raise ConfigError(f"source {cfg.name}: no salesforce connection for it in this run")
        return cls(cfg, connection)

    @property
    def meanings(self) -> OrgMeanings:
        """The org's picklist meanings as last read (from the org or the describe cache)."""
        return self.org.meanings

    # -- Source protocol ----------------------------------------------------------------------------------
    def mapping_for(self, obj: str) -> ObjectMapping | None:
        return self.cfg.objects.get(obj)

    def map(self, obj: str, raw: dict[str, Any]) -> Fact:
        mapping = self.cfg.objects.get(obj)
        if mapping is None:
            raise RecordError(f"{self.name}: no mapping for object {obj}", code="NO_MAPPING")
        result = self.org.map_record(obj, raw, mapping)
        for field_name, value in result.unknown:
            key = (field_name, value)
            if key not in self.unknown_values:
                log.warning(
                    "salesforce.unknown_value", source=self.name, object=obj, field=field_name, value=value
                )
            self.unknown_values[key] += 1
        return result.fact

    def check_online(self, ctx: RunContext) -> Findings:
        return online.check(self, ctx)

    def discover(self, objects: Sequence[str], ctx: RunContext) -> Discovery:
        return online.discover(self, objects, ctx)

    def prepare(self) -> None:
        """Check the configured objects, fields and conditions against the org; load the picklist meanings."""
        self.org.prepare()

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        self.connection.bind(ctx, counted_as=self.name, budget_share=self.cfg.api_budget_share)
        self.org.prepare()
        roles_read_at: dt.datetime | None = None  # set when every opportunity is read with its current roles
        opportunity_ids: set[str] = set()
        for obj, stream in self.streams.items():
            cursor = Cursor.parse(cursors.get(obj))
            if cursor.newest is None:
                cursor.reconciled = ctx.started_at  # a full read leaves nothing stale to reconcile
                if obj == "Opportunity":
                    # roles are read with their opportunities from here on, by the org's clock (ours may run
                    # ahead)
                    roles_read_at = min(self.client.server_time or ctx.started_at, ctx.started_at)
                    self.roles.remember_from(floor_second(roles_read_at) - self.roles.overlap)
            with self.org.describes_checked(obj):
                for batch in self._read_and_reconcile(stream, cursor, ctx):
                    if obj == "Opportunity":
                        opportunity_ids.update(str(r["Id"]) for r in batch.records)
                    yield batch
        if "Opportunity" in self.streams:
            yield from self.roles.read(
                cursors.get(CONTACT_ROLE), ctx, full_read_at=roles_read_at, already=opportunity_ids
            )

    def _read_and_reconcile(
        self, stream: IncrementalStream, cursor: Cursor, ctx: RunContext
    ) -> Iterator[Batch]:
        yield from stream.read(cursor, ctx)
        if self.reconciler.due(cursor, ctx):
            yield from self.reconciler.reconcile(stream.obj, stream.condition, cursor, ctx)
