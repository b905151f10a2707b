"""The vtiger source: config, field discovery, incremental reads by `modifiedtime`, deletions.

Incremental reads (cursor per module, `modifiedtime` in whole UTC seconds, inclusive lower bound, never past
the run's start):
- `sync` where it works: `modifiedTime=<cursor - 1 s>` (so a second the last run only saw part of is read
  again), looping on `lastModifiedTime` while `more`; its `deleted` ids become `Batch.deleted`.
- `query` where it does not (stock 8.2 on PHP 8 answers `sync` with an empty HTTP 500): keyset paging
  `where modifiedtime >= '<t>' order by modifiedtime limit 0, 100`. A full page only hands over the rows older
  than its newest second (that second is read again as the next page's start), and a page that lies wholly
  inside one second is read by `id` instead (keyset `id > last`, so an edit during the scan cannot shift a
  record out of view), so boundary records are neither skipped nor repeated. Deletions then come from an id
  reconciliation (`live_ids`) every `reconcile_every` such runs (or sooner, once `reconcile_every_hours` have
  passed); a reconciliation that fails half way hands over nothing and leaves the cursor as it was.
`incremental: auto` probes `sync` once per run (one attempt, no retries) and remembers the answer for the run;
a `sync` that breaks after its first page goes on by `query` from where it got to, and the module then owes a
reconciliation (sync's `deleted` stopped half way).
The first read of a module (no cursor) is always a `query` full load: upstream `sync` fails on time 0.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ...context import PluginEnv, RunContext
from ...crm.vtiger import vtql
from ...crm.vtiger.client import VtigerApiError, VtigerClient, read_error
from ...crm.vtiger.connection import VtigerConnection
from ...crm.vtiger.describe import ModuleInfo
from ...discovery import Discovery
from ...errors import ConfigError, RetriableError, UnreachableError
from ...findings import Findings
from ...mappers.fields import ObjectMapping
from ...mappers.vtiger import (
    DEFAULT_ID_PREFIXES,
    DEFAULT_LINKS,
    PICKLIST_MEANINGS,
    VtigerModuleSpec,
    map_record,
)
from ...plugin_config import SourceConfigBase
from ...schema import Fact, FactKind
from ..base import Batch, Source, expect_config
from . import online
from .config import VtigerModuleConfig, VtigerSourceConfig

log = structlog.get_logger(__name__)
ONE_SECOND = dt.timedelta(seconds=1)


@dataclass
class CursorState:
    """What a module's cursor string holds (JSON): the time reached and the reconciliation bookkeeping."""

    modified: dt.datetime | None = None
    query_runs: int = 0  # runs read by `query` since the last id reconciliation
    reconciled_at: dt.datetime | None = None

    def encode(self) -> str:
        return json.dumps(
            {
                "modifiedtime": self.modified.isoformat() if self.modified else None,
                "query_runs": self.query_runs,
                "reconciled_at": self.reconciled_at.isoformat() if self.reconciled_at else None,
            },
            sort_keys=True,
        )

    @classmethod
    def decode(cls, text: str | None) -> CursorState:
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except ValueError:
            data = {"modifiedtime": text}  # a bare ISO time (hand-set) is accepted too
        if not isinstance(data, dict):
            return cls()

        def when(key: str) -> dt.datetime | None:
            raw = data.get(key)
            if not raw:
                return None
            parsed = dt.datetime.fromisoformat(str(raw))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)

        return cls(when("modifiedtime"), int(data.get("query_runs") or 0), when("reconciled_at"))

    def but(self, **changes: Any) -> CursorState:
        return CursorState(**{**self.__dict__, **changes})


class VtigerSource(Source):
    """Reads the configured vtiger modules; `map` turns their records into facts."""

    def __init__(self, cfg: VtigerSourceConfig, client: VtigerClient) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.client = client
        # ("<module>.<field>", raw value): the (field, value) pairs the run summary reports, as every source
        self.unknown_values: Counter[tuple[str, str]] = Counter()
        self.modules: dict[str, ModuleInfo] = {}
        self.specs: dict[str, VtigerModuleSpec] = {}
        self.columns: dict[str, list[str]] = {}
        self.sync_works: bool | None = None  # learnt once per run in `auto` mode

    @classmethod
    def connect(cls, cfg: SourceConfigBase, env: PluginEnv) -> VtigerConnection:
        cfg = expect_config(cfg, VtigerSourceConfig)
        return VtigerConnection.open(cfg.name, cfg, environ=env.environ, policy=env.policy)

    @classmethod
    def from_config(cls, cfg: SourceConfigBase, env: PluginEnv) -> VtigerSource:
        cfg = expect_config(cfg, VtigerSourceConfig)
        connection = env.connection(cfg.name, VtigerConnection)
        if connection is None:  # the env knows this source by another config: a wiring mistake
            raise ConfigError(f"source {cfg.name}: no vtiger connection for it in this run")
        return cls(cfg, connection.client)

    # -- discovery ----------------------------------------------------------------------------------------
    def check_online(self, ctx: RunContext) -> Findings:
        return online.check(self, ctx)

    def discover(self, objects: Sequence[str], ctx: RunContext) -> Discovery:
        return online.discover(self, objects, ctx)

    def module_info(self, module: str) -> ModuleInfo:
        if module not in self.modules:
            try:
                described = self.client.describe(module)
            except VtigerApiError as exc:
                if exc.code == "ACCESS_DENIED":
                    raise ConfigError(
                        f"sources.{self.name}.modules.{module}: vtiger does not know this module "
                        "(or the user may not read it)"
                    ) from None
                raise read_error(exc, f"sources.{self.name}: describe {module}") from None
            self.modules[module] = ModuleInfo.from_describe(described)
        return self.modules[module]

    def prepare(self) -> None:
        """Describe every configured module and resolve `label:` fields; all config errors at once."""
        if self.specs:
            return
        errors: list[str] = []
        prefixes = dict(DEFAULT_ID_PREFIXES)
        infos: dict[str, ModuleInfo] = {}
        for module in self.cfg.modules:
            try:
                infos[module] = self.module_info(module)
            except ConfigError as exc:
                errors.append(str(exc))
                continue
            if infos[module].id_prefix:
                prefixes[str(infos[module].id_prefix)] = module
        for module, mcfg in self.cfg.modules.items():
            if module not in infos:
                continue
            try:
                self.specs[module], self.columns[module] = self._spec(module, mcfg, infos[module], prefixes)
            except ConfigError as exc:
                errors.append(str(exc))
        if errors:
            self.specs.clear()
            raise ConfigError(f"sources.{self.name}: " + "; ".join(errors))

    def _spec(
        self, module: str, mcfg: VtigerModuleConfig, info: ModuleInfo, prefixes: dict[str, str]
    ) -> tuple[VtigerModuleSpec, list[str]]:
        problems: list[str] = []
        fields: dict[str, str] = {}
        picklists: dict[str, dict[str, Any]] = {}
        for spec_name, target in mcfg.fields.items():
            try:
                name = info.resolve(spec_name)
            except ConfigError as exc:
                problems.append(f"modules.{module}.fields: {exc}")
                continue
            for meaning, (raw_target, defaults) in PICKLIST_MEANINGS.items():
                if target in (meaning, raw_target) and raw_target in _kind_fields(mcfg):
                    # keep the value as written; the mapper translates it (YAML entries over stock defaults)
                    picklists[meaning] = {**defaults, **(mcfg.value_maps.get(meaning) or {})}
                    target = raw_target
            fields[name] = target
        links = tuple(mcfg.links if mcfg.links is not None else DEFAULT_LINKS.get(module, ()))
        for link in links:
            if link not in info.fields:
                problems.append(f"modules.{module}.links: no field '{link}'")
        if mcfg.kind in (FactKind.OPPORTUNITY, FactKind.CONTRACT) and not links:
            problems.append(f"modules.{module}.links: name the reference fields a {mcfg.kind.value} hangs on")
        if problems:
            raise ConfigError("; ".join(problems))
        value_maps = {k: v for k, v in mcfg.value_maps.items() if k not in picklists}
        mapping = ObjectMapping(
            kind=mcfg.kind,
            fields=fields,
            value_maps=value_maps,
            constants=mcfg.constants,
            date_formats=mcfg.date_formats,
        )
        is_contact = module == "Contacts" and mcfg.kind is FactKind.PERSON
        account_field = "account_id" if is_contact and "account_id" in info.fields else None
        spec = VtigerModuleSpec(
            source=self.name,
            module=module,
            mapping=mapping,
            picklists=picklists,
            links=links,
            account_field=account_field,
            is_contact=is_contact,
            id_prefixes=prefixes,
        )
        wanted = ["id", "modifiedtime", *fields, *links, *([account_field] if account_field else [])]
        columns = list(dict.fromkeys(c for c in wanted if c == "id" or c in info.fields))
        return spec, columns

    # -- reading ------------------------------------------------------------------------------------------
    def read(self, cursors: Mapping[str, str], ctx: RunContext) -> Iterator[Batch]:
        self.client.on_call = lambda _op: ctx.count_call(self.name)
        self.sync_works = None if self.cfg.incremental == "auto" else self.cfg.incremental == "sync"
        self.prepare()
        started = ctx.started_at.astimezone(dt.UTC).replace(microsecond=0)
        for module in self.cfg.modules:
            state = CursorState.decode(cursors.get(module))
            yield from self._read_module(module, state, started)

    def _read_module(self, module: str, state: CursorState, started: dt.datetime) -> Iterator[Batch]:
        probe: dict[str, Any] | None = None
        if state.modified is not None and self.sync_works is not False:
            since = int(state.modified.timestamp()) - 1
            try:
                probe = self.client.sync(module, since, retry=self.sync_works is True)
                self.sync_works = True
            except (RetriableError, UnreachableError, VtigerApiError) as exc:
                if self.cfg.incremental == "sync":
                    if isinstance(exc, VtigerApiError):
                        raise read_error(exc, f"sources.{self.name}: sync {module}") from None
                    raise
                self.sync_works = False
                log.warning("vtiger.sync.unavailable", source=self.name, module=module, error=str(exc))
        if probe is not None:
            if state.query_runs:
                # deletions that happened while only `query` worked are not in any `sync` answer
                state = yield from self._reconcile(module, state, started)
            yield from self._read_sync(module, state, started, probe)
            return
        if state.modified is not None and self._reconcile_due(state, started):
            state = yield from self._reconcile(module, state, started)
        elif state.modified is not None:
            state = state.but(query_runs=state.query_runs + 1)
        yield from self._read_query(module, state, started)

    def _reconcile_due(self, state: CursorState, started: dt.datetime) -> bool:
        if state.query_runs + 1 >= self.cfg.reconcile_every:
            return True
        hours = self.cfg.reconcile_every_hours
        if hours is not None:
            return state.reconciled_at is None or started - state.reconciled_at >= dt.timedelta(hours=hours)
        return False

    def _reconcile(
        self, module: str, state: CursorState, started: dt.datetime
    ) -> Generator[Batch, None, CursorState]:
        ids: set[str] = set()
        last: str | None = None
        while True:
            # keyset on id, not offsets: a deletion during the scan would shift offsets and hide a live id
            where = [vtql.Cond("id", ">", last)] if last else []
            rows = self._query(module, vtql.select(module, ["id"], where=where, order_by="id"))
            page = [str(r["id"]) for r in rows if r.get("id")]
            ids.update(page)
            if len(rows) < vtql.PAGE_SIZE or not page:
                break
            last = max(page, key=_crmid)
        new_state = state.but(query_runs=0, reconciled_at=started)
        log.info("vtiger.reconcile", source=self.name, module=module, live=len(ids))
        yield Batch(object=module, live_ids=ids, cursor=new_state.encode())
        return new_state

    def _read_sync(
        self, module: str, state: CursorState, started: dt.datetime, first: dict[str, Any]
    ) -> Iterator[Batch]:
        result = first
        since = int(state.modified.timestamp()) - 1 if state.modified else 0
        pages = records = 0
        while True:
            updated = [r for r in result.get("updated") or [] if isinstance(r, dict)]
            deleted = [str(i) for i in result.get("deleted") or []]
            last = int(result.get("lastModifiedTime") or since)
            reached = min(dt.datetime.fromtimestamp(last, dt.UTC), started)
            if state.modified is None or reached > state.modified:
                state = state.but(modified=reached)
            pages += 1
            records += len(updated)
            yield Batch(object=module, records=updated, deleted=deleted, cursor=state.encode())
            if not result.get("more"):
                break
            try:
                if last <= since:
                    raise RetriableError(f"vtiger sync {module}: 'more' without progress", code="SYNC_STUCK")
                since = last
                result = self.client.sync(module, since)
            except (RetriableError, UnreachableError) as exc:
                if self.cfg.incremental == "sync":
                    raise UnreachableError(f"sources.{self.name}: {exc}") from None
                # sync broke half way: go on by query from where it got to. Its `deleted` covered only up
                # to here, so the module counts a query run (an id reconciliation follows in due course)
                self.sync_works = False
                log.warning("vtiger.sync.fallback", source=self.name, module=module, error=str(exc))
                yield from self._read_query(module, state.but(query_runs=state.query_runs + 1), started)
                return
        log.info("vtiger.read.sync", source=self.name, module=module, pages=pages, records=records)

    def _read_query(self, module: str, state: CursorState, started: dt.datetime) -> Iterator[Batch]:
        columns = self.columns[module]
        known = set(self.modules[module].fields)
        lower = state.modified
        pages = records = 0

        def cap(when: dt.datetime) -> CursorState:
            return state.but(modified=min(when, started))

        while True:
            where = [vtql.Cond("modifiedtime", ">=", vtql.format_time(lower))] if lower else []
            query = vtql.select(module, columns, where=where, order_by="modifiedtime", known=known)
            rows = self._query(module, query)
            pages += 1
            times = [_time_of(r, lower) for r in rows]
            if len(rows) < vtql.PAGE_SIZE:
                top = max([t for t in times if t is not None], default=lower)
                records += len(rows)
                yield Batch(object=module, records=rows, cursor=(cap(top) if top else state).encode())
                break
            top = max((t for t in times if t is not None), default=None)
            if top is None:  # no row carries a readable modifiedtime: hand them over, keep the cursor
                records += len(rows)
                yield Batch(object=module, records=rows)
                break
            if lower is None or top > lower:
                head = [r for r, t in zip(rows, times, strict=True) if t is not None and t < top]
                lower = top
                records += len(head)
                yield Batch(object=module, records=head, cursor=cap(lower).encode())
                continue
            # A full page inside one second: read that second by id, then go on after it. Keyset on id, not
            # offsets: a record of that second modified meanwhile leaves it, and with offsets would shift
            # the next page past a record never read (and the cursor then moves past that second).
            after: str | None = None
            while True:
                same = [vtql.Cond("modifiedtime", "=", vtql.format_time(lower))]
                if after is not None:
                    same.append(vtql.Cond("id", ">", after))
                query = vtql.select(module, columns, where=same, order_by="id", known=known)
                page = self._query(module, query)
                pages += 1
                records += len(page)
                ids = [str(r["id"]) for r in page if r.get("id")]
                if len(page) < vtql.PAGE_SIZE or not ids:
                    lower = lower + ONE_SECOND
                    yield Batch(object=module, records=page, cursor=cap(lower).encode())
                    break
                yield Batch(object=module, records=page)
                after = max(ids, key=_crmid)
        log.info("vtiger.read.query", source=self.name, module=module, pages=pages, records=records)

    def _query(self, module: str, query: str) -> list[dict[str, Any]]:
        try:
            return self.client.query(query)
        except VtigerApiError as exc:
            raise read_error(exc, f"sources.{self.name}: query on {module}") from None

    # -- mapping ------------------------------------------------------------------------------------------
    def map(self, obj: str, raw: dict[str, Any]) -> Fact:
        self.prepare()
        spec = self.specs.get(obj)
        if spec is None:
            raise ConfigError(f"sources.{self.name}: module {obj} is not configured")
        mapped = map_record(raw, spec)
        for field, value in mapped.unknown:
            key = (f"{obj}.{field}", value)
            if key not in self.unknown_values:  # once per value, not once per record carrying it
                log.warning(
                    "vtiger.unknown_value",
                    source=self.name,
                    module=obj,
                    field=field,
                    value=value,
                    id=raw.get("id"),
                )
            self.unknown_values[key] += 1
        return mapped.fact

    def mapping_for(self, obj: str) -> ObjectMapping | None:
        return self.cfg.modules.get(obj)


def _kind_fields(mcfg: ObjectMapping) -> set[str]:
    from ...mappers.fields import fields_for_kind

    return set(fields_for_kind(mcfg.kind))


def _crmid(record_id: str) -> int:
    try:
        return int(record_id.partition("x")[2])
    except ValueError:
        return -1


def _time_of(row: Mapping[str, Any], default: dt.datetime | None) -> dt.datetime | None:
    try:
        return vtql.parse_time(str(row.get("modifiedtime") or ""))
    except ValueError:
        return default
