"""The vtiger writer: stage labels and segment memberships on the records of a configured vtiger source.

Labels: `{"id": …, "<label field>": "<label>"}` in a `revise` (a partial update; `update` would need every
mandatory field). The label field is a custom field named by its label in the YAML.

One `revise` per record and run: the run loop hands the writer its whole plan first (`begin_writes`), and a
record's label and its segments field (every segment's change on it) go out in one revise carrying only the
fields that change (record_edits.py). A record vtiger refuses fails its label and its memberships alike.

Segments (for admins): stock vtiger's webservice can *add* a relation (`add_related`) but has no operation
that removes one. So the exact membership of each segment lives in a multi-select custom field on Leads and
Contacts (e.g. "Segments"): a person entering a segment gets the segment's value added to that field, a person
leaving gets it removed, and the field of a person in two segments holds both. The value is the campaign's
`value`, else its `campaign` name, else the segment's own name. Only that value is ever added or removed: any
other value in the field (set by hand) stays. Whenever a segment changes, records that hold its value without
belonging to a member (typed by hand, or left from a lost state) have it removed, so the field stays exact
(with `strict: true` this check runs every run, not only when the segment changes, and also puts the value back
on a member's record where someone removed it by hand).
Filter lists and reports in vtiger on that field. People entering are also related to the segment's Campaign,
if the YAML names one (found by `campaignname`, created with its mandatory fields when it says `create: true`),
so the campaign's related lists work; leaving does not remove that relation, it stays as history.

If vtiger stops answering part way through a call (the retry policy gave up), records not yet started are
not tried; the call returns what it wrote as written, the rest as failed with code UNREACHABLE, and says why in
`WriteResult.unreachable`, so the run keeps those writes and still ends as unreachable (exit 4).

Multi-select values are written as one string joined by " |##| ". A JSON list is accepted by the server but
only its first value is stored, silently.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import structlog

from ...context import PluginEnv, RunContext
from ...crm.vtiger import vtql
from ...crm.vtiger.client import VtigerApiError, VtigerClient, read_error
from ...crm.vtiger.connection import VtigerConnection
from ...crm.vtiger.describe import ModuleInfo
from ...erasure_config import CrmAction
from ...errors import ConfigError, RecordError, RetriableError, UnreachableError
from ...findings import Findings
from ...plan import LabelChange, Member, SegmentChange
from ...plugin_config import WriterConfigBase
from ...schema import RecordRef
from ...tasks.config import TaskConfig
from ...tasks.model import NewTask, TaskResult
from ..base import ErasureRequest, ErasureResult, Writer, WriteResult, expect_config
from . import erasure, online, tasks
from .config import CampaignConfig, VtigerWriterConfig
from .record_edits import MULTI_SEPARATOR, RecordEdit, SegmentEdit

log = structlog.get_logger(__name__)
UNREACHABLE = "UNREACHABLE"  # the code of items not written because vtiger stopped answering
NOT_AN_OPTION = "NOT_A_PICKLIST_VALUE"  # a label a picklist label field does not offer (see `preflight`)
PICKLIST = "picklist"
MULTI_SELECT = "multipicklist"
_LABELS = (
    "labels",
    "",
)  # the key of the label result among the results of one write (segments: ("segment", name))


def split_multi(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list):
        return [str(v).strip() for v in raw if str(v).strip()]
    return [part.strip() for part in str(raw).split("|##|") if part.strip()]


def join_multi(values: Iterable[str]) -> str:
    return MULTI_SEPARATOR.join(values)


class VtigerWriter(Writer):
    takes_tasks = True

    def __init__(self, cfg: VtigerWriterConfig, connection: VtigerConnection, segments: int = 0) -> None:
        self.name = cfg.name
        self.source: str | None = cfg.source
        self.cfg = cfg
        self.connection = connection
        self.client: VtigerClient = connection.client
        self.label_objects = frozenset(cfg.label_field)
        # strict: the run loop hands over every segment each run, changed or not (see `sync_segment`)
        self.publishes_snapshots = cfg.strict and bool(cfg.segments_field)
        self.segments = segments  # how many configured segments go to this target (for the estimate)
        # their names: for `connector check`, and erasure clears every value connector manages
        self.segment_names: tuple[str, ...] = ()
        self._infos: dict[str, ModuleInfo] = {}
        self._label_fields: dict[str, str] = {}
        self._segment_fields: dict[str, str] = {}
        self._campaign_ids: dict[str, str] = {}
        self._values: dict[RecordRef, list[str]] = {}  # segment field values read or written this run
        self._lock = threading.Lock()
        self._run: dt.datetime | None = None
        # what `begin_writes` wrote, for the `write_labels` / `sync_segment` calls that follow it: key ->
        # (the changes handed over, their result)
        self._ready: dict[tuple[str, str], tuple[object, WriteResult]] = {}

    @classmethod
    def from_config(cls, cfg: WriterConfigBase, env: PluginEnv) -> VtigerWriter:
        cfg = expect_config(cfg, VtigerWriterConfig)
        connection = env.connection(cfg.source, VtigerConnection)
        if connection is None:  # the config's cross-checks say why; a writer built by hand may get here
            raise ConfigError(f"targets.{cfg.name}.source: '{cfg.source}' is not a configured vtiger source")
        connection.want_pool(cfg.concurrency + 2)  # its workers, plus the source's reads and lookups
        connection.want_sessions(cfg.concurrency)  # a session serves one request at a time: one per worker
        writer = cls(cfg, connection, len(env.segments_for(cfg.name)))
        writer.segment_names = tuple(env.segments_for(cfg.name))
        return writer

    def check_online(self, ctx: RunContext) -> Findings:
        return online.check(self, ctx)

    def check_tasks(self, tasks: Sequence[TaskConfig], ctx: RunContext) -> Findings:
        return online.check_tasks(self, tasks, ctx)

    def erase(self, request: ErasureRequest, action: CrmAction, ctx: RunContext) -> ErasureResult:
        return erasure.erase(self, request, action, ctx)

    # -- per run ------------------------------------------------------------------------------------------
    def _begin(self, ctx: RunContext) -> None:
        self.client.on_call = lambda _op: ctx.count_call(self.connection.name)
        if self._run != ctx.started_at:
            self._run = ctx.started_at
            self._values.clear()
            self._campaign_ids.clear()
            self._ready.clear()

    def _info(self, module: str) -> ModuleInfo:
        if module not in self._infos:
            try:
                self._infos[module] = ModuleInfo.from_describe(self.client.describe(module))
            except VtigerApiError as exc:
                raise ConfigError(f"targets.{self.name}: vtiger module {module}: {exc}") from None
        return self._infos[module]

    def label_field(self, module: str) -> str:
        if module not in self._label_fields:
            spec = self.cfg.label_field[module]
            try:
                self._label_fields[module] = self._info(module).resolve(spec)
            except ConfigError as exc:
                raise ConfigError(f"targets.{self.name}.label_field.{module}: {exc}") from None
        return self._label_fields[module]

    def segment_field(self, module: str) -> str:
        if module not in self._segment_fields:
            spec = self.cfg.segments_field[module]
            try:
                name = self._info(module).resolve(spec)
            except ConfigError as exc:
                raise ConfigError(f"targets.{self.name}.segments_field.{module}: {exc}") from None
            if self._info(module).fields[name].type != "multipicklist":
                log.warning(
                    "vtiger.segments_field.type",
                    module=module,
                    field=name,
                    type=self._info(module).fields[name].type,
                )
            self._segment_fields[module] = name
        return self._segment_fields[module]

    def segment_value(self, segment: str) -> str:
        campaign = self.cfg.campaigns.get(segment)
        if campaign is None:
            return segment
        return campaign.value or campaign.campaign

    # -- labels ---------------------------------------------------------------------------------------------
    def writable_field(self, key: str, module: str) -> str:
        """The `label_field` or `segments_field` (`key`) of `module`, resolved by describe; ConfigError when it
        is missing, not editable by the API user or (segments) not a multi-select. `preflight` (plan and
        run) and `connector check` ask through here, so they judge a field alike."""
        name = self.label_field(module) if key == "label_field" else self.segment_field(module)
        info = self._info(module).fields[name]
        if not info.editable:
            raise ConfigError(f"targets.{self.name}.{key}.{module}: {name} is not editable by the API user")
        if key == "segments_field" and info.type != MULTI_SELECT:
            raise ConfigError(
                f"targets.{self.name}.{key}.{module}: {name} is a {info.type} field: it must be a "
                "Multi-Select Combo Box (a segment value is added to and removed from the others there)"
            )
        return name

    def options_missing(self, module: str, value: str) -> bool:
        """Whether the segments field of `module` lacks `value` among its options. vtiger stores it anyway,
        but its edit form does not show it, so saving the record in the UI may drop it."""
        info = self._info(module).fields[self.segment_field(module)]
        return value not in info.picklist

    # -- follow-up tasks (tasks.py) -----------------------------------------------------------------------
    def task_record(self, refs: Sequence[RecordRef]) -> RecordRef | None:
        return tasks.task_record(self, refs)

    def find_tasks(self, keys: list[str], ctx: RunContext) -> dict[str, str]:
        return tasks.find_tasks(self, keys, ctx)

    def create_tasks(self, new: list[NewTask], ctx: RunContext) -> TaskResult:
        return tasks.create_tasks(self, new, ctx)

    # -- preflight ----------------------------------------------------------------------------------------
    def preflight(
        self, changes: list[LabelChange], segments: list[SegmentChange], ctx: RunContext
    ) -> dict[str, RecordError]:
        """The label field of every module with changes, and the segments field of every module when a
        segment changes, must resolve (by label, through describe) and be editable (segments: a
        multi-select), else ConfigError before anything is written; so must the campaign of every segment
        gaining members (or `create: true` makes it).

        vtiger 8.2 stores any value in a picklist field (see /work/shared/vtiger/WEBSERVICE.md: no validation
        of picklist values), but its edit form shows only the options, so the next save of the record in the
        UI would replace a label that is not one: a picklist label field is treated as restricted, and a
        label it does not offer is refused here (plan predicts it, run keeps it rejected, never sends it)."""
        self._begin(ctx)
        for module in sorted({c.ref.object for c in changes if c.ref.object in self.cfg.label_field}):
            self.writable_field("label_field", module)
        if segments and self.cfg.segments_field:
            for module in self.cfg.segments_field:
                self.writable_field("segments_field", module)
                for value in sorted({self.segment_value(s.segment) for s in segments}):
                    if self.options_missing(module, value):
                        log.warning(
                            "vtiger.segments_field.not_an_option",
                            target=self.name,
                            module=module,
                            field=self.segment_field(module),
                            value=value,
                            reason="vtiger stores it, but saving the record in its edit form may drop it",
                        )
        for seg in segments:
            campaign = self.cfg.campaigns.get(seg.segment)
            if campaign is not None and seg.adds and seg.segment not in self._campaign_ids:
                found = self._find_campaign(campaign)
                if found is not None:  # kept: the sync does not look it up again
                    self._campaign_ids[seg.segment] = found
                elif not campaign.create:
                    raise ConfigError(self._no_campaign(campaign))
        refused: dict[str, RecordError] = {}
        for module in sorted({c.ref.object for c in changes if c.ref.object in self.cfg.label_field}):
            name = self.label_field(module)
            info = self._info(module).fields[name]
            if info.type not in (PICKLIST, MULTI_SELECT):
                continue
            for change in changes:
                if change.ref.object == module and change.new not in info.picklist:
                    refused[str(change.ref)] = RecordError(
                        f"{change.ref}: {module}.{name} ({info.label}) is a picklist without the value "
                        f"'{change.new}' (add it as an option in vtiger)",
                        code=NOT_AN_OPTION,
                    )
        return refused

    # -- writing: one revise per record -------------------------------------------------------------------
    def begin_writes(self, labels: list[LabelChange], segments: list[SegmentChange], ctx: RunContext) -> None:
        """Write the run's label and segment changes for this target together: one revise per record with
        its label and its Segments value (see `_write_records`). `write_labels` and `sync_segment` then
        answer from what was done here, per label change and per segment member."""
        self._begin(ctx)
        self._ready = self._write_records(labels, segments, ctx)

    def write_labels(self, changes: list[LabelChange], ctx: RunContext) -> WriteResult:
        self._begin(ctx)
        ready = self._ready.pop(_LABELS, None)
        if ready is not None and ready[0] == changes:
            return ready[1]
        return self._write_records(changes, [], ctx)[_LABELS][1]

    def sync_segment(self, change: SegmentChange, ctx: RunContext) -> WriteResult:
        """Make the segments field hold this segment's value on exactly its members' records (see
        `_plan_segment`); answered from `begin_writes` when the run handed the segment over there."""
        self._begin(ctx)
        key = ("segment", change.segment)
        ready = self._ready.pop(key, None)
        if ready is not None and ready[0] == change:
            return ready[1]
        return self._write_records([], [change], ctx)[key][1]

    def _write_records(
        self, labels: list[LabelChange], segments: list[SegmentChange], ctx: RunContext
    ) -> dict[tuple[str, str], tuple[object, WriteResult]]:
        """Write `labels` and `segments` with one revise per record, carrying only the fields that change
        (plus a campaign relation per record entering a segment that has a campaign); every read comes
        first (the holders of each segment's value, the current values of the other records).

        Returns, keyed like `_ready`, each part's WriteResult: label failures by `str(ref)`, segment
        failures by person key. A record vtiger refuses fails its label and each of its memberships, with
        the same reason; a campaign relation vtiger refuses fails that segment's membership only. The calls
        are counted on the first result the run loop asks for and `unreachable` is set on the last (it
        records the results in that order and stops the target after the one that says unreachable)."""
        before = self.client.calls.total()
        results: dict[tuple[str, str], tuple[object, WriteResult]] = {}
        asked: list[WriteResult] = []  # in the order the run loop asks for them
        edits: dict[RecordRef, RecordEdit] = {}
        label_result = WriteResult()
        results[_LABELS] = (list(labels), label_result)
        if labels:
            asked.append(label_result)
            for label in labels:
                if label.ref.source != self.source or label.ref.object not in self.cfg.label_field:
                    label_result.failed[str(label.ref)] = RecordError(
                        f"{label.ref}: {self.name} has no label field for this record", code="NOT_LABELLED"
                    )
                    continue
                edit = edits.setdefault(label.ref, RecordEdit(label.ref))
                edit.label, edit.label_field = label, self.label_field(label.ref.object)
        restores: dict[str, set[RecordRef]] = {}
        for change in segments:
            seg_result = WriteResult()
            results[("segment", change.segment)] = (change, seg_result)
            if change.adds or change.removes or self.publishes_snapshots:  # the run loop's own rule
                asked.append(seg_result)
            if ctx.dry_run:
                continue
            planned = self._plan_segment(change, edits)
            if planned is not None:
                restores[change.segment] = planned
        if ctx.dry_run or not edits:
            if asked:
                asked[0].calls = self.client.calls.total() - before
            return results

        # holders came with their values; the rest are read by id (100 a query). A record gone from vtiger
        # fails its label and its adds, but has nothing left to remove or put back (the source sees it gone).
        missing = self._load_values([r for r, e in edits.items() if e.segments and r not in self._values])
        for ref in missing:
            edit = edits[ref]
            edit.segments = [s for s in edit.segments if s.add and not s.restore]
            if edit.label is None and not edit.segments:
                del edits[ref]
        for segment, put_back in restores.items():
            if put_back:
                value = self.segment_value(segment)
                log.info(
                    "vtiger.segment.restore",
                    target=self.name,
                    segment=segment,
                    records=len(put_back - missing),
                )
                results[("segment", segment)][1].notes.append(
                    f"{self.name}: strict: put '{value}' back on {len(put_back - missing)} member record(s)"
                )

        def one(edit: RecordEdit) -> RecordError | None:
            if edit.ref in missing:
                return RecordError(f"{edit.ref}: the record no longer exists in vtiger", code="GONE")
            current: list[str] | None = None
            if edit.segments:
                with self._lock:
                    current = list(self._values.get(edit.ref, []))
            element, values = edit.element(current)
            try:
                if len(element) > 1:
                    self.client.revise(element)
            except RecordError as exc:
                return RecordError(f"{edit.ref}: {exc}", code=exc.code)
            edit.fields_written = True
            if values is not None:
                with self._lock:
                    self._values[edit.ref] = values
            for part in edit.segments:
                if part.campaign is None:
                    continue
                try:
                    self.client.add_related(part.campaign, edit.ref.id, edit.ref.object)
                except RecordError as exc:
                    edit.related_errors[part.segment] = RecordError(f"{edit.ref}: {exc}", code=exc.code)
                    continue
                edit.related.add(part.segment)
            return None

        items = list(edits.values())
        errors, unreachable = self._parallel(one, items, lambda edit: edit.ref)
        failed = 0
        for edit, error in zip(items, errors, strict=True):
            failed += error is not None
            if edit.label is not None and (label_error := edit.label_error(error)) is not None:
                results[_LABELS][1].failed[str(edit.ref)] = label_error
            for part in edit.segments:
                part_error = edit.segment_error(part, error)
                if part_error is not None:
                    self._segment_failed(results[("segment", part.segment)][1], edit.ref, part, part_error)
        if asked:  # always: every edit comes from a label or a segment change the run loop asks for
            asked[0].calls = self.client.calls.total() - before
            asked[-1].unreachable = unreachable
        log.info(
            "vtiger.records.written",
            target=self.name,
            records=len(items),
            labels=sum(1 for e in items if e.label is not None),
            segments=len(asked) - (1 if labels else 0),
            failed=failed,
            calls=self.client.calls.total() - before,
            unreachable=bool(unreachable),
        )
        return results

    def _segment_failed(
        self, result: WriteResult, ref: RecordRef, part: SegmentEdit, error: RecordError
    ) -> None:
        log.warning(
            "vtiger.segment.failed", target=self.name, segment=part.segment, ref=str(ref), code=error.code
        )
        if part.owner is not None and not part.restore:
            result.failed.setdefault(part.owner.person_key, error)
        elif (
            part.owner is not None
        ):  # the state holds this membership already: the next strict run tries again
            result.notes.append(f"{self.name}: could not put '{part.value}' back on {ref}: {error}")
        else:  # a stray belongs to no one the state tracks: the next change of the segment tries again
            result.notes.append(f"{self.name}: could not clear '{part.value}' on {ref}: {error}")

    def _plan_segment(
        self, change: SegmentChange, edits: dict[RecordRef, RecordEdit]
    ) -> set[RecordRef] | None:
        """Add this segment's edits to `edits`: the value added on members entering, removed from members
        leaving; returns the member records it puts back (strict), or None when the segment needs nothing.

        Only this segment's value is ever added or removed; whatever else the field holds (other segments,
        values set by hand) stays. Records that hold the value but belong to no member (set by hand, or left
        over from a lost state) are found with one `like` query per module and cleared too: whenever the
        segment changes, or every run when the target is `strict` (then a segment without changes costs
        those queries and nothing else unless it finds such a record). Strict also puts the value back on
        members' records that lost it by hand; they are not related to the campaign again (leaving never
        took that relation away). Their current values are read by the caller (100 ids a query)."""
        value = self.segment_value(change.segment)
        wanted: dict[RecordRef, tuple[bool, Member | None]] = {}
        for member in change.removes:
            for ref in self._own_refs(member):
                wanted[ref] = (False, member)
        for member in change.adds:  # an add wins over a remove of the same record
            for ref in self._own_refs(member):
                wanted[ref] = (True, member)
        if not (wanted or self.publishes_snapshots):
            return None
        fields = {module: self.segment_field(module) for module in self.cfg.segments_field}
        campaign_id = self._campaign(change.segment) if any(add for add, _ in wanted.values()) else None

        holders = self._holders(value, fields)
        members = {ref for member in change.members for ref in self._own_refs(member)}
        strays = sorted(holders - members - set(wanted), key=str)
        for ref in strays:
            wanted[ref] = (False, None)
        if strays:
            log.info("vtiger.segment.strays", target=self.name, segment=change.segment, records=len(strays))
        # strict: a member's record without the value lost it by hand (the state still has the membership)
        restores: set[RecordRef] = set()
        if self.publishes_snapshots:
            owners = {ref: m for m in change.members for ref in self._own_refs(m)}
            restores = {ref for ref in owners if ref not in holders and ref not in wanted}
            wanted.update({ref: (True, owners[ref]) for ref in restores})
        for ref, (add, owner) in wanted.items():
            edit = edits.setdefault(ref, RecordEdit(ref))
            edit.segment_field = fields[ref.object]
            restore = ref in restores
            relate = campaign_id if add and not restore else None
            edit.segments.append(SegmentEdit(change.segment, value, add, owner, restore, relate))
        return restores

    def _holders(self, value: str, fields: dict[str, str]) -> set[RecordRef]:
        """Records whose segments field holds `value` (their field values go into the run cache)."""
        found: set[RecordRef] = set()
        for module, field in fields.items():
            after: str | None = None
            while True:
                # `like` narrows on the server (MySQL, case-insensitive); the exact test is ours
                where = [vtql.Cond(field, "like", vtql.like_contains(value))]
                if after is not None:
                    where.append(vtql.Cond("id", ">", after))
                known = set(self._info(module).fields)
                query = vtql.select(module, ["id", field], where=where, order_by="id", known=known)
                rows = self._query(module, query)
                with self._lock:
                    for row in rows:
                        values = split_multi(row.get(field))
                        if row.get("id") and value in values:
                            ref = RecordRef(str(self.source), module, str(row["id"]))
                            self._values[ref] = values
                            found.add(ref)
                ids = [str(r["id"]) for r in rows if r.get("id")]
                if len(rows) < vtql.PAGE_SIZE or not ids:
                    break
                after = max(ids, key=vtql.crmid)
        return found

    def _query(self, module: str, query: str) -> list[dict[str, Any]]:
        try:
            return self.client.query(query)
        except VtigerApiError as exc:
            raise read_error(exc, f"targets.{self.name}: query on {module}") from None

    def _own_refs(self, member: Member) -> list[RecordRef]:
        return [r for r in member.refs if r.source == self.source and r.object in self.cfg.segments_field]

    def _load_values(self, refs: list[RecordRef]) -> set[RecordRef]:
        """Read the segments field of `refs` (100 ids a query) into the run cache; return the refs not found."""
        missing: set[RecordRef] = set()
        by_module: dict[str, list[RecordRef]] = {}
        for ref in refs:
            by_module.setdefault(ref.object, []).append(ref)
        for module, mrefs in by_module.items():
            field = self.segment_field(module)
            for start in range(0, len(mrefs), vtql.PAGE_SIZE):
                chunk = mrefs[start : start + vtql.PAGE_SIZE]
                query = vtql.select(
                    module, ["id", field], where=[vtql.Cond("id", "in", [r.id for r in chunk])]
                )
                rows = {str(r.get("id")): r for r in self._query(module, query)}
                with self._lock:
                    for ref in chunk:
                        if ref.id in rows:
                            self._values[ref] = split_multi(rows[ref.id].get(field))
                        else:
                            missing.add(ref)
        return missing

    def _campaign(self, segment: str) -> str | None:
        campaign = self.cfg.campaigns.get(segment)
        if campaign is None:
            return None
        if segment in self._campaign_ids:
            return self._campaign_ids[segment]
        # one step under the policy, so a retried create first looks again instead of creating twice
        found = self.client.policy.call(self._find_or_create, campaign, what="vtiger campaign")
        self._campaign_ids[segment] = found
        return found

    def _find_campaign(self, campaign: CampaignConfig, *, retry: bool = True) -> str | None:
        """The id of the campaign named `campaign.campaign` (the first when vtiger holds several), or None. The
        one lookup `preflight`, the sync and `connector check` make."""
        query = vtql.select(
            "Campaigns",
            ["id", "campaignname"],
            where=[vtql.Cond("campaignname", "=", campaign.campaign)],
            order_by="id",
        )
        try:
            found = self.client.query(query, retry=retry)
        except VtigerApiError as exc:
            raise read_error(
                exc, f"targets.{self.name}.campaigns: looking up '{campaign.campaign}'"
            ) from None
        rows = [r for r in found if r.get("campaignname") == campaign.campaign]
        if len(rows) > 1:
            log.warning("vtiger.campaign.duplicate", campaign=campaign.campaign, ids=[r["id"] for r in rows])
        return str(rows[0]["id"]) if rows else None

    def _no_campaign(self, campaign: CampaignConfig) -> str:
        return (
            f"targets.{self.name}.campaigns: vtiger has no campaign named '{campaign.campaign}' "
            "(create it, or set create: true and closingdate)"
        )

    def _find_or_create(self, campaign: CampaignConfig) -> str:
        found = self._find_campaign(campaign, retry=False)
        if found is not None:
            return found
        if not campaign.create:
            raise ConfigError(self._no_campaign(campaign))
        assert campaign.closingdate is not None
        element: dict[str, Any] = {
            **campaign.fields,
            "campaignname": campaign.campaign,
            "closingdate": campaign.closingdate.isoformat(),
            "assigned_user_id": self._user_id(),
        }
        try:
            created = self.client.create("Campaigns", element, retry=False)
        except VtigerApiError as exc:
            raise ConfigError(
                f"targets.{self.name}.campaigns: cannot create '{campaign.campaign}': {exc}"
            ) from None
        log.info("vtiger.campaign.created", campaign=campaign.campaign, id=created.get("id"))
        return str(created["id"])

    def _user_id(self) -> str:
        if self.client.user_id is None:
            self.client.call("listtypes", retry=False)  # any call logs in and learns our user id
        if not self.client.user_id:
            raise RetriableError("vtiger login gave no userId", code="BAD_RESPONSE")
        return self.client.user_id

    # -- reading back (verification) ----------------------------------------------------------------------
    def field_members(self, segment: str, module: str) -> set[str]:
        """Ids of `module` records whose segments field holds this segment's value."""
        field = self.segment_field(module)
        value = self.segment_value(segment)
        ids: set[str] = set()
        last: str | None = None
        while True:
            where = [vtql.Cond(field, "like", vtql.like_contains(value))]
            if last:
                where.append(vtql.Cond("id", ">", last))
            rows = self._query(module, vtql.select(module, ["id", field], where=where, order_by="id"))
            ids.update(str(r["id"]) for r in rows if value in split_multi(r.get(field)))
            if len(rows) < vtql.PAGE_SIZE:
                return ids
            last = max((str(r["id"]) for r in rows), key=lambda i: int(i.partition("x")[2] or 0))

    def campaign_members(self, segment: str, module: str) -> set[str]:
        """Ids of `module` records related to the segment's campaign (`query_related`, paged past 100)."""
        campaign_id = self._campaign(segment)
        if campaign_id is None:
            return set()
        ids: set[str] = set()
        offset = 0
        while True:
            rows = self.client.query_related(
                campaign_id, module, vtql.select_related(module, ["id"], offset=offset)
            )
            ids.update(str(r["id"]) for r in rows if r.get("id"))
            if len(rows) < vtql.PAGE_SIZE:
                return ids
            offset += vtql.PAGE_SIZE

    # -- plumbing -----------------------------------------------------------------------------------------
    def _parallel(
        self, fn: Callable[[Any], RecordError | None], items: list[Any], ref_of: Callable[[Any], object]
    ) -> tuple[list[RecordError | None], str | None]:
        """`fn` over `items` on at most `concurrency` threads: each item's record error (None: written), and
        why vtiger became unreachable part way (None: it did not).

        Once one item finds vtiger unreachable (after the policy's retries), items not yet started are not
        tried (each would spend the full policy against a server that is down) and fail with code
        UNREACHABLE like that one, while the items written before it stay written: the caller returns them
        as a partial result. Anything else `fn` raises (a config error) is about the whole run and re-raised.
        """
        stop = threading.Event()
        reasons: list[str] = []

        def guarded(item: Any) -> RecordError | None:
            if stop.is_set():
                return RecordError(f"{ref_of(item)}: not written: {reasons[0]}", code=UNREACHABLE)
            try:
                return fn(item)
            except UnreachableError as exc:
                with self._lock:
                    reasons.append(str(exc))
                stop.set()
                return RecordError(f"{ref_of(item)}: {exc}", code=UNREACHABLE)
            except BaseException:
                stop.set()
                raise

        if self.cfg.concurrency <= 1 or len(items) <= 1:
            errors = [guarded(item) for item in items]
        else:
            pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="vtiger-write")
            try:
                futures = [pool.submit(guarded, item) for item in items]
                wait(futures)
            except BaseException:
                # a stop (SIGTERM, Ctrl-C) while waiting: items not started are dropped and the calls in
                # flight are not waited for (that would hold the stop as long as vtiger takes to answer);
                # what they write is not recorded, so the next run writes it again, which changes nothing
                stop.set()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
            errors = [f.result() for f in futures]  # re-raises the first other error, in order
        if reasons:
            log.error("vtiger.unreachable", target=self.name, error=reasons[0])
        return errors, (reasons[0] if reasons else None)

    def estimate_calls(self, labels: int, adds: int, removes: int) -> int:
        """From counts alone, which records share a revise is not known: this counts one revise per label
        and per segment change (an upper bound), plus what `_reads` counts and an add_related per add.
        `estimate_plan_calls` (what `plan` uses) counts one revise per record."""
        return labels + adds + removes + adds + self._reads(adds, removes)

    def estimate_plan_calls(self, labels: list[LabelChange], segments: list[SegmentChange]) -> int:
        """One revise per record that gets a label or a segment change (both go in the same revise, and
        so do a record's changes in several segments), an add_related per record entering a segment that
        has a campaign, and what `_reads` counts."""
        records = {
            c.ref for c in labels if c.ref.source == self.source and c.ref.object in self.cfg.label_field
        }
        relate = 0
        for change in segments:
            for member in [*change.adds, *change.removes]:
                records.update(self._own_refs(member))
            if change.segment in self.cfg.campaigns:
                relate += sum(len(self._own_refs(m)) for m in change.adds)
        adds = sum(len(c.adds) for c in segments)
        removes = sum(len(c.removes) for c in segments)
        return len(records) + relate + self._reads(adds, removes)

    def _reads(self, adds: int, removes: int) -> int:
        """The reads and lookups segment changes cost: the holders' `like` query and the current values of
        added records (100 a query) per module, a campaign lookup. Strict: the holders' query of every
        segment, per module, each run whether it changed or not. Not known before the run, so not counted:
        strays and (strict) values removed by hand from members, each a revise, their values read 100 a
        query."""
        changes = adds + removes
        modules = max(len(self.cfg.segments_field), 1)
        if self.publishes_snapshots:
            holders = self.segments * modules
        else:
            holders = -(-changes // vtql.PAGE_SIZE) * modules if changes else 0
        reads = holders + (-(-adds // vtql.PAGE_SIZE) * modules if changes else 0)
        campaign = 1 if adds and self.cfg.campaigns else 0
        return reads + campaign
