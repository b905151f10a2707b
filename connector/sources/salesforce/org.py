"""What the org says about the configured objects, asked before anything is read: which of them and of their
mapped fields exist (describe), whether the org accepts each YAML `where`, which fields each read selects, and
what the org's LeadStatus / OpportunityStage picklist values mean (converted, closed, won).

Describes and the picklist rows are kept between runs for `describe_cache_hours` (the client's describe
cache): a run with nothing new then makes no metadata call. The org overrules the cache: a mapped field the
cached describe lacks is described again once before it is a config error, a read the org refuses with
INVALID_FIELD / INVALID_TYPE drops the cached describes it was built from (`describes_checked`), and a status
or stage value the cached rows do not know has them read again, once a run, before it is reported as unknown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import structlog

from ...crm.salesforce.client import SalesforceClient, SalesforceRequestError
from ...crm.salesforce.connection import STALE_DESCRIBE
from ...errors import ConfigError
from ...mappers.fields import ObjectMapping
from ...mappers.salesforce import MappedRecord, OrgMeanings, StageMeaning, get_field, map_record, truthy
from .config import SalesforceSourceConfig

log = structlog.get_logger(__name__)

# read with the opportunities (their contacts), never configured itself
CONTACT_ROLE = "OpportunityContactRole"
SYSTEM_FIELDS = ("Id", "SystemModstamp", "IsDeleted")
# Fields each object needs beyond the mapped ones, for identity and meaning (only those the org has).
LINK_FIELDS: dict[str, tuple[str, ...]] = {
    "Lead": ("Status", "IsConverted", "ConvertedContactId"),
    "Contact": ("AccountId",),
    "Opportunity": ("StageName", "AccountId"),
    "Contract": ("AccountId",),
    CONTACT_ROLE: ("OpportunityId", "ContactId"),
}
# the rows that say what a picklist value means, and the flags that say it
MEANING_FLAGS: dict[str, tuple[str, ...]] = {
    "LeadStatus": ("IsConverted",),
    "OpportunityStage": ("IsClosed", "IsWon"),
}
# how the org refuses a condition that is not one: bad syntax, an unknown field, an operator or value that does
# not fit the field's type
REFUSED_CONDITION = frozenset({"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_QUERY_FILTER_OPERATOR"})


class OrgMetadata:
    """The describe checks and picklist meanings of one source (`name`), over its connection's client."""

    def __init__(self, name: str, cfg: SalesforceSourceConfig, client: SalesforceClient) -> None:
        self.name = name
        self.cfg = cfg
        self.client = client
        self.meanings = OrgMeanings()
        self._select: dict[str, list[str]] = {}
        # the objects whose describes decided what is read of each object (its own, and those its mapped
        # relationship paths reach): dropped from the cache when the org refuses that read
        self._consulted: dict[str, set[str]] = {}
        self._meanings_cached = False  # some picklist rows came from the cache file
        self._meanings_refreshed = False  # ... and were read again this run for a value they did not know

    # -- before reading: identifiers against describe, each `where` against the org --------------------------
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

    def fields(self, obj: str) -> str:
        """The SELECT list of `obj` as `prepare` checked it: system and link fields the org has, then the
        mapped ones."""
        return ", ".join(self._select[obj])

    @contextlib.contextmanager
    def describes_checked(self, *objects: str) -> Iterator[None]:
        """Reads of `objects` inside: should the org refuse one for a field or object it does not have while
        what the query names came from cached describes, those may be stale (an admin deleted or renamed a
        field), so they are dropped from the cache and the next run describes again. This run still fails:
        the query was wrong."""
        with self._dropping_stale(set().union(*(self._consulted.get(obj, {obj}) for obj in objects))):
            yield

    @contextlib.contextmanager
    def _dropping_stale(self, objects: Collection[str]) -> Iterator[None]:
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
        select += [f for f in LINK_FIELDS.get(obj, ()) if f in fields]
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

    def has_field(self, obj: str, path: str) -> bool:
        """Whether `path` (a field, or a path through parent relationships) exists on `obj`, by describe."""
        return self._has_field(obj, path, set())

    def meaning_rows(self, obj: str, *, refresh: bool = False) -> list[dict[str, Any]]:
        """The org's LeadStatus or OpportunityStage rows with their flags (the describe cache's when fresh,
        unless `refresh`: then read from the org and cached again)."""
        return self._picklist_rows(obj, MEANING_FLAGS[obj], refresh=refresh)

    # -- picklist meaning: the org's LeadStatus and OpportunityStage rows --------------------------------------
    def map_record(self, obj: str, raw: Mapping[str, Any], mapping: ObjectMapping) -> MappedRecord:
        """Map `raw` with the org's meanings; a value the cached rows do not explain has them read again
        first (once a run): an admin may have added it since."""
        result = map_record(self.name, obj, raw, mapping, self.meanings)
        if self._meanings_outdated(result.unknown):
            self._meanings_refreshed = True
            log.info(
                "salesforce.picklist.refresh", source=self.name, reason="value not in cached picklist rows"
            )
            self.meanings = self._load_meanings(refresh=True)
            result = map_record(self.name, obj, raw, mapping, self.meanings)
        return result

    def load_meanings(self) -> OrgMeanings:
        """The org's picklist meanings from its LeadStatus / OpportunityStage rows alone (no describe check,
        no query of records): what `connector check` judges the picklist values with."""
        self.meanings = self._load_meanings()
        return self.meanings

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
        with self._dropping_stale({obj}):
            rows = self.client.query_all(f"SELECT {', '.join(names)} FROM {obj}")
        if cache is not None:
            cache.put("rows", obj, rows)
        return rows

    def _meanings_outdated(self, unknown: list[tuple[str, str]]) -> bool:
        """Whether a value the org explains was not in its picklist rows as cached."""
        if not self._meanings_cached or self._meanings_refreshed:
            return False
        known: dict[str, Collection[str]] = {
            "lead_status": self.meanings.lead_converted.keys(),
            "opportunity_stage": self.meanings.opportunity.keys(),
        }
        return any(name in known and value.strip().casefold() not in known[name] for name, value in unknown)


def _labels(row: Mapping[str, Any]) -> set[str]:
    return {
        str(v).strip().casefold() for v in (get_field(row, "ApiName"), get_field(row, "MasterLabel")) if v
    }
