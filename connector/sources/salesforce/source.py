"""The Salesforce source: which objects and fields to read, incremental cursors, deletions, picklist meaning.

Reading one object is: COUNT() of what changed (queryAll, so deleted rows count), then either REST `queryAll`
paged by `nextRecordsUrl` (ordered by SystemModstamp, Id, a cursor after every page) or, above
`bulk_threshold`, a Bulk API 2.0 `queryAll` job streamed by locator (Bulk cannot ORDER BY, so its cursor comes
with the last page). Deleted rows (`IsDeleted = true`) go to `Batch.deleted`.

Every `reconcile_every_hours` an object's live ids are read (`SELECT Id`, with the YAML `where`) and handed
over as `Batch.live_ids`, so the run loop drops stored records the cursor can never report: records purged from
the recycle bin (emptied, hard-deleted, or 15 days passed without a run) that `queryAll` no longer returns, and
records changed so that they left the `where` filter. It costs one call per 2,000 records (REST) or one bulk
job, so it runs on a period rather than every run; the first read of an object counts as one. Opportunities
are reconciled by reading each one whole with its current contact roles (one call per `page_size` records and
one per 400 opportunities for their roles): a role purged from the recycle bin leaves no trace the role cursor
could see, and only a fresh read of its opportunity drops the contact it attached.

Describes and the LeadStatus / OpportunityStage rows are kept between runs for `describe_cache_hours`
(`describe_cache`): a run with nothing new then makes no metadata call. The org overrules the cache: a mapped
field the cached describe lacks is described again once before it is a config error, a read the org refuses
with INVALID_FIELD / INVALID_TYPE drops the cached describes it was built from, and a status or stage value the
cached rows do not know has them read again, once a run, before it is reported as unknown.

Opportunities carry the contacts of their OpportunityContactRoles (looked up per page). A role added or removed
later does not touch the opportunity's SystemModstamp, so roles have their own cursor: the opportunities of
changed roles are read again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

import structlog

from ...context import PluginEnv, RunContext
from ...crm.salesforce import bulk, soql
from ...crm.salesforce.client import SalesforceClient, SalesforceRequestError
from ...crm.salesforce.connection import STALE_DESCRIBE, SalesforceConnection
from ...errors import ConfigError, RecordError
from ...mappers.fields import ObjectMapping
from ...mappers.salesforce import (
    CONTACT_ROLES_KEY,
    OrgMeanings,
    StageMeaning,
    get_field,
    map_record,
    parse_sf_datetime,
    truthy,
)
from ...plugin_config import SourceConfigBase
from ...schema import Fact
from ..base import Batch, Source, expect_config
from .config import SalesforceSourceConfig
from .cursor import Cursor

log = structlog.get_logger(__name__)

CONTACT_ROLE = "OpportunityContactRole"
SYSTEM_FIELDS = ("Id", "SystemModstamp", "IsDeleted")
# Fields each object needs beyond the mapped ones, for identity and meaning (only those the org has).
LINK_FIELDS: dict[str, tuple[str, ...]] = {
    "Lead": ("Status", "IsConverted", "ConvertedContactId"),
    "Contact": ("AccountId",),
    "Opportunity": ("StageName", "AccountId"),
    "Contract": ("AccountId",),
}
MAX_QUERY_RESTARTS = 3  # fresh queries after an expired query cursor, per object and run
ID_CHUNK = 400  # ids per IN list: keeps a GET query URL well under Salesforce's URI limit
# how the org refuses a condition that is not one: bad syntax, an unknown field, an operator or value that does
# not fit the field's type
REFUSED_CONDITION = frozenset({"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_QUERY_FILTER_OPERATOR"})


class SalesforceSource(Source):
    """Reads the configured objects of one org incrementally; `map` turns a raw record into a Fact."""

    def __init__(self, cfg: SalesforceSourceConfig, connection: SalesforceConnection) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.connection = connection
        self.client: SalesforceClient = connection.client
        self.meanings = OrgMeanings()
        self.unknown_values: Counter[tuple[str, str]] = Counter()
        self._overlap = dt.timedelta(seconds=cfg.overlap_seconds)
        self._select: dict[str, list[str]] = {}
        # the objects whose describes decided what is read of each object (its own, and those its mapped
        # relationship paths reach): dropped from the cache when the org refuses that read
        self._consulted: dict[str, set[str]] = {}
        self._meanings_cached = False  # some picklist rows came from the cache file
        self._meanings_refreshed = False  # ... and were read again this run for a value they did not know

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

    # -- Source protocol ----------------------------------------------------------------------------------
    def mapping_for(self, obj: str) -> ObjectMapping | None:
        return self.cfg.objects.get(obj)

    def map(self, obj: str, raw: dict[str, Any]) -> Fact:
        mapping = self.cfg.objects.get(obj)
        if mapping is None:
            raise RecordError(f"{self.name}: no mapping for object {obj}", code="NO_MAPPING")
        result = map_record(self.name, obj, raw, mapping, self.meanings)
        if self._meanings_outdated(result.unknown):
            self._refresh_meanings()
            result = map_record(self.name, obj, raw, mapping, self.meanings)
        for field_name, value in result.unknown:
            key = (field_name, value)
            if key not in self.unknown_values:
                log.warning(
                    "salesforce.unknown_value", source=self.name, object=obj, field=field_name, value=value
                )
            self.unknown_values[key] += 1
        return result.fact

    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        self.connection.bind(ctx, counted_as=self.name, budget_share=self.cfg.api_budget_share)
        self.prepare()
        full_opportunity_read = False
        roles_current_at = ctx.started_at
        opportunity_ids: set[str] = set()
        for obj in self.cfg.objects:
            cursor = Cursor.parse(cursors.get(obj))
            if obj == "Opportunity":
                full_opportunity_read = cursor.newest is None
                # roles are read with their opportunities from here on, by the org's clock (ours may run ahead)
                roles_current_at = min(self.client.server_time or ctx.started_at, ctx.started_at)
            if cursor.newest is None:
                cursor.reconciled = ctx.started_at  # a full read leaves nothing stale to reconcile
            with self._describes_checked(self._consulted.get(obj, {obj})):
                for batch in self._read_and_reconcile(obj, cursor, ctx):
                    if obj == "Opportunity":
                        opportunity_ids.update(str(r["Id"]) for r in batch.records)
                    yield batch
        if "Opportunity" in self.cfg.objects:
            if full_opportunity_read:
                # every opportunity was just read with its current roles: only later role changes can be pending
                yield Batch(
                    object=CONTACT_ROLE,
                    cursor=Cursor(newest=_floor_second(roles_current_at)).dump(self._overlap),
                )
            else:
                consulted = self._consulted.get(CONTACT_ROLE, set()) | self._consulted.get(
                    "Opportunity", set()
                )
                with self._describes_checked(consulted):
                    yield from self._read_role_changes(
                        Cursor.parse(cursors.get(CONTACT_ROLE)), opportunity_ids, ctx
                    )

    # -- preparation: identifiers against describe, picklist meanings from the org ---------------------------
    def prepare(self) -> None:
        """Check every object and field against describe and each `where` against the org, all problems
        together, once per source; load the picklist meanings."""
        if not self._select:
            problems: list[str] = []
            for obj, mapping in self.cfg.objects.items():
                # a condition on an object that does not exist, or lacks a mapped field, fails on that already
                problems.extend(self._check_object(obj, mapping) or self._check_where(obj, mapping.where))
            if "Opportunity" in self.cfg.objects:
                problems.extend(self._check_object(CONTACT_ROLE, ObjectMapping(fields={})))
            if problems:
                raise ConfigError(f"source {self.name}: " + "; ".join(problems))
            cached = sorted(self.client.cached_describes)
            if cached:
                log.info("salesforce.describe.cached", source=self.name, objects=cached)
        self.meanings = self._load_meanings()

    def _check_object(self, obj: str, mapping: ObjectMapping) -> list[str]:
        consulted = {obj}
        problems = self._object_problems(obj, mapping, consulted)
        # a field the cached describe lacks may be one an admin just added in the org: ask the org once
        # before calling it a config error
        if problems and self._refresh_describes(consulted, reason="mapped field not in cached describe"):
            consulted = {obj}
            problems = self._object_problems(obj, mapping, consulted)
        self._consulted[obj] = consulted
        return problems

    def _refresh_describes(self, objects: Collection[str], *, reason: str) -> bool:
        """Describe again those of `objects` whose describe came from the cache file; whether any did."""
        refreshed = []
        for obj in sorted(objects):
            try:
                if self.client.refresh_describe(obj):
                    refreshed.append(obj)
            except ConfigError:
                refreshed.append(obj)  # gone from the org: checking again says so
        if refreshed:
            log.info("salesforce.describe.refresh", source=self.name, objects=refreshed, reason=reason)
        return bool(refreshed)

    @contextlib.contextmanager
    def _describes_checked(self, objects: Collection[str]) -> Iterator[None]:
        """The org refusing a query for a field or object it does not have, while what the query names came
        from cached describes: those may be stale (an admin deleted or renamed a field), so they are dropped
        from the cache and the next run describes again. This run still fails: the query was wrong."""
        try:
            yield
        except SalesforceRequestError as exc:
            if exc.code in STALE_DESCRIBE:
                dropped = [obj for obj in sorted(objects) if self.client.forget_describe(obj)]
                if dropped:
                    log.warning(
                        "salesforce.describe.dropped",
                        source=self.name,
                        objects=dropped,
                        code=exc.code,
                        reason="query refused: cached describe dropped, the next run describes again",
                    )
            raise

    def _object_problems(self, obj: str, mapping: ObjectMapping, consulted: set[str]) -> list[str]:
        try:
            fields = self.client.field_names(obj)
        except ConfigError as exc:
            return [str(exc)]
        problems = [
            f"objects.{obj}.fields.{name}: no such field on {obj}"
            for name in mapping.fields
            if not self._has_field(obj, name, consulted)
        ]
        select = [f for f in SYSTEM_FIELDS if f in fields]
        missing = [f for f in ("Id", "SystemModstamp") if f not in fields]
        if missing:
            problems.append(f"{obj} lacks {', '.join(missing)}: it cannot be read incrementally")
        extra = ("OpportunityId", "ContactId") if obj == CONTACT_ROLE else LINK_FIELDS.get(obj, ())
        select += [f for f in extra if f in fields]
        select += list(mapping.fields)
        self._select[obj] = list(dict.fromkeys(select))
        return problems

    def _check_where(self, obj: str, where: str | None) -> list[str]:
        """Let the org judge the admin's condition (its fields, operators and value types) with one cheap
        query before anything is read, so a typo fails the run up front, naming the object and the clause,
        instead of half way through the objects as a bare query error. `LIMIT 1` rather than COUNT(): the
        org can stop at the first match instead of counting a large object."""
        if not where:
            return []
        try:
            self.client.query_all(f"SELECT Id FROM {obj} WHERE ({where}) LIMIT 1")
        except SalesforceRequestError as exc:
            if exc.code not in REFUSED_CONDITION:
                raise
            return [f"objects.{obj}.where: Salesforce refuses the condition ({where}) on {obj}: {exc}"]
        return []

    def _has_field(self, obj: str, path: str, consulted: set[str]) -> bool:
        """Whether `path` (`Email`, or `Account.Owner.Email` through parent relationships) exists on `obj`;
        the objects described on the way go into `consulted`. Names compare exactly: the org answers with its
        own spelling, which is the key the mapper reads."""
        consulted.add(obj)
        fields = self.client.field_names(obj)
        head, _, rest = path.partition(".")
        if not rest:
            return head in fields
        parents = [f for f in fields.values() if f.get("relationshipName") == head]
        if not parents:
            return False
        targets = [t for f in parents for t in (f.get("referenceTo") or [])]
        if not targets:
            return True  # the org does not say what the relationship points to: nothing more to check
        for target in targets:  # polymorphic (Owner: User or Group): any one that has it will do
            try:
                if self._has_field(target, rest, consulted):
                    return True
            except ConfigError:
                continue
        return False

    def _load_meanings(self, *, refresh: bool = False) -> OrgMeanings:
        meanings = OrgMeanings()
        if "Lead" in self.cfg.objects:
            for row in self._picklist_rows("LeadStatus", ("IsConverted",), refresh=refresh):
                for key in _labels(row):
                    meanings.lead_converted[key] = truthy(row.get("IsConverted"))
        if "Opportunity" in self.cfg.objects:
            for row in self._picklist_rows("OpportunityStage", ("IsClosed", "IsWon"), refresh=refresh):
                meaning = StageMeaning(closed=truthy(row.get("IsClosed")), won=truthy(row.get("IsWon")))
                for key in _labels(row):
                    meanings.opportunity[key] = meaning
        return meanings

    def _picklist_rows(self, obj: str, flags: tuple[str, ...], *, refresh: bool) -> list[dict[str, Any]]:
        cache = self.client.describe_cache
        if cache is not None and not refresh:
            cached = cache.get("rows", obj)
            if isinstance(cached, list) and all(isinstance(row, dict) for row in cached):
                self._meanings_cached = True
                return cached
        try:
            fields = self.client.field_names(obj)
        except ConfigError:
            log.warning("salesforce.picklist.unavailable", source=self.name, object=obj)
            return []
        names = [f for f in ("ApiName", "MasterLabel", *flags) if f in fields]
        with self._describes_checked({obj}):
            rows = self.client.query_all(f"SELECT {', '.join(names)} FROM {obj}")
        if cache is not None:
            cache.put("rows", obj, rows)
        return rows

    def _meanings_outdated(self, unknown: list[tuple[str, str]]) -> bool:
        """Whether a value the org explains was not in its picklist rows as cached: an admin may have added
        it since, so the rows are read again (once a run) before the value is reported as unknown."""
        if not self._meanings_cached or self._meanings_refreshed:
            return False
        known: dict[str, Collection[str]] = {
            "lead_status": self.meanings.lead_converted.keys(),
            "opportunity_stage": self.meanings.opportunity.keys(),
        }
        return any(name in known and value.strip().casefold() not in known[name] for name, value in unknown)

    def _refresh_meanings(self) -> None:
        self._meanings_refreshed = True
        log.info("salesforce.picklist.refresh", source=self.name, reason="value not in cached picklist rows")
        self.meanings = self._load_meanings(refresh=True)

    # -- reading --------------------------------------------------------------------------------------------
    def _where(self, obj: str, cursor: Cursor, ctx: RunContext, extra: str | None = None) -> str:
        upper = _floor_second(ctx.started_at)
        parts = [f"SystemModstamp <= {soql.datetime_literal(upper)}"]
        lower = cursor.lower_bound(self._overlap)
        if lower is not None:
            # SOQL datetimes have whole seconds: a strict bound floors too (the rest of that second comes
            # back and is skipped as already read)
            op = ">" if lower.strict else ">="
            parts.insert(0, f"SystemModstamp {op} {soql.datetime_literal(_floor_second(lower.at))}")
        mapping = self.cfg.objects.get(obj)
        where = getattr(mapping, "where", None)
        if where:
            parts.append(f"({where})")
        if extra:
            parts.append(extra)
        return " AND ".join(parts)

    def _reconcile_due(self, cursor: Cursor, ctx: RunContext) -> bool:
        every = self.cfg.reconcile_every_hours
        if every is None or cursor.newest is None:
            return False
        return cursor.reconciled is None or ctx.started_at - cursor.reconciled >= dt.timedelta(hours=every)

    def _read_and_reconcile(self, obj: str, cursor: Cursor, ctx: RunContext) -> Iterator[Batch]:
        yield from self._read_object(obj, cursor, ctx)
        if self._reconcile_due(cursor, ctx):
            yield from self._reconcile(obj, cursor, ctx)

    def _reconcile(self, obj: str, cursor: Cursor, ctx: RunContext) -> Iterator[Batch]:
        """Every id of `obj` that exists now (within `where`): stored records of other ids are gone.

        Opportunities are read whole, each with its contact roles as they are now, not just their ids: a
        role purged from the recycle bin never reaches the role cursor, and the opportunity's stamp does not
        move, so only a fresh read of the opportunity drops the contact the role attached."""
        where = getattr(self.cfg.objects.get(obj), "where", None)
        condition = f" WHERE ({where})" if where else ""
        whole = obj == "Opportunity"
        fields = ", ".join(self._select[obj]) if whole else "Id"
        total = self.client.count(f"SELECT COUNT() FROM {obj}{condition}")
        pages: Iterable[list[dict[str, Any]]]
        if total > self.cfg.bulk_threshold:
            pages = bulk.query_pages(
                self.client,
                f"SELECT {fields} FROM {obj}{condition}",
                include_deleted=False,
                page_size=self.cfg.bulk_page_size,
            )
        else:
            pages = self.client.query_pages(
                f"SELECT {fields} FROM {obj}{condition}", batch_size=self.cfg.page_size if whole else 2000
            )
        live: set[str] = set()  # ids only, never whole records
        for page in pages:
            records = [r for r in page if r.get("Id")]
            live.update(str(r["Id"]) for r in records)
            if whole and records:
                self._attach_roles(records)
                yield Batch(object=obj, records=records)
        cursor.reconciled = ctx.started_at
        log.info("salesforce.reconcile", source=self.name, object=obj, live=len(live), whole=whole)
        yield Batch(object=obj, live_ids=live, cursor=cursor.dump(self._overlap))

    def _read_object(self, obj: str, cursor: Cursor, ctx: RunContext) -> Iterator[Batch]:
        fields = ", ".join(self._select[obj])
        where = self._where(obj, cursor, ctx)
        changed = self.client.count(f"SELECT COUNT() FROM {obj} WHERE {where}", include_deleted=True)
        use_bulk = changed > self.cfg.bulk_threshold
        log.info("salesforce.read.start", source=self.name, object=obj, changed=changed, bulk=use_bulk)
        if changed == 0:
            return
        server_time = self.client.server_time  # answered before the query below ran
        pages: Iterable[list[dict[str, Any]]]
        if use_bulk:
            pages = bulk.query_pages(
                self.client,
                f"SELECT {fields} FROM {obj} WHERE {where}",
                include_deleted=True,
                page_size=self.cfg.bulk_page_size,
            )
        else:
            pages = self._rest_pages(obj, fields, cursor, ctx)
        total = 0
        previous: Batch | None = None
        # One page is held back so the last one carries the cursor of the whole read. Bulk pages are unordered:
        # only that last cursor is safe. REST pages are ordered by SystemModstamp: each carries its own cursor.
        for page in pages:
            batch = self._batch(obj, page, cursor, ctx)
            if obj == "Opportunity":
                self._attach_roles(batch.records)
            total += len(batch.records) + len(batch.deleted)
            if not use_bulk:
                cursor.settle(server_time, self._overlap, complete=False)
                batch.cursor = cursor.dump(self._overlap)
            if previous is not None:
                yield previous
            previous = batch
        if previous is not None:
            cursor.settle(server_time, self._overlap, complete=True)
            previous.cursor = cursor.dump(self._overlap)
            yield previous
        log.info("salesforce.read.done", source=self.name, object=obj, records=total)

    def _rest_pages(
        self, obj: str, fields: str, cursor: Cursor, ctx: RunContext
    ) -> Iterator[list[dict[str, Any]]]:
        """REST pages of what changed, ordered by SystemModstamp. Salesforce drops a query cursor after 15
        idle minutes or when the user opens more than ten (other integrations sharing the user): the read then
        goes on with a fresh query from the cursor as it stands after the pages already handed out."""
        restarts = 0
        while True:
            where = self._where(obj, cursor, ctx)
            try:
                yield from self.client.query_pages(
                    f"SELECT {fields} FROM {obj} WHERE {where} ORDER BY SystemModstamp, Id",
                    include_deleted=True,
                    batch_size=self.cfg.page_size,
                )
                return
            except SalesforceRequestError as exc:
                if exc.code != "INVALID_QUERY_LOCATOR" or restarts >= MAX_QUERY_RESTARTS:
                    raise
                restarts += 1
                log.warning("salesforce.query.restart", source=self.name, object=obj, restart=restarts)

    def _batch(self, obj: str, page: list[dict[str, Any]], cursor: Cursor, ctx: RunContext) -> Batch:
        batch = Batch(object=obj)
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

    def _attach_roles(self, records: list[dict[str, Any]]) -> None:
        """Put each opportunity's contact ids (from OpportunityContactRole) on the raw record."""
        by_id = {str(r["Id"]): r for r in records}
        for r in records:
            r[CONTACT_ROLES_KEY] = []
        ids = list(by_id)
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            rows = self.client.query_all(
                f"SELECT OpportunityId, ContactId FROM {CONTACT_ROLE} WHERE OpportunityId IN {soql.in_list(chunk)}"
            )
            for row in rows:
                opp = by_id.get(str(row.get("OpportunityId")))
                if opp is not None and row.get("ContactId"):
                    opp[CONTACT_ROLES_KEY].append(str(row["ContactId"]))

    def _read_role_changes(self, cursor: Cursor, already: set[str], ctx: RunContext) -> Iterator[Batch]:
        fields = ", ".join(self._select[CONTACT_ROLE])
        server_time = self.client.server_time
        # the opportunity reads between role pages let the role query cursor idle: it may expire like any other
        for page in self._rest_pages(CONTACT_ROLE, fields, cursor, ctx):
            changed = self._batch(CONTACT_ROLE, page, cursor, ctx)
            gone = set(changed.deleted)
            rows = changed.records + [r for r in page if str(r.get("Id")) in gone]
            opp_ids = sorted({str(r["OpportunityId"]) for r in rows if r.get("OpportunityId")} - already)
            for start in range(0, len(opp_ids), ID_CHUNK):
                chunk = opp_ids[start : start + ID_CHUNK]
                condition = f"Id IN {soql.in_list(chunk)}"
                where_opp = self.cfg.objects["Opportunity"].where
                if where_opp:
                    condition += f" AND ({where_opp})"
                opps = self.client.query_all(
                    f"SELECT {', '.join(self._select['Opportunity'])} FROM Opportunity WHERE {condition}"
                )
                self._attach_roles(opps)
                already.update(chunk)
                if opps:
                    yield Batch(object="Opportunity", records=opps)
            cursor.settle(server_time, self._overlap, complete=False)
            yield Batch(object=CONTACT_ROLE, cursor=cursor.dump(self._overlap))
        cursor.settle(server_time, self._overlap, complete=True)
        yield Batch(object=CONTACT_ROLE, cursor=cursor.dump(self._overlap))


def _labels(row: Mapping[str, Any]) -> set[str]:
    return {
        str(v).strip().casefold() for v in (get_field(row, "ApiName"), get_field(row, "MasterLabel")) if v
    }


def _floor_second(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(microsecond=0)
