"""The Salesforce target: stage labels on Lead/Contact records and segment membership as CampaignMembers.

Labels go out through sObject Collections (200 records a call, Leads and Contacts in the same calls,
`allOrNone: false`, `Sforce-Auto-Assign: FALSE` so a label write never re-runs assignment rules), or, for an
object with more changes than `bulk_threshold`, one Bulk API 2.0 update job. Records Salesforce rejects come back in `WriteResult.failed` with their error code; records
that lost a row lock are sent again (only those, through the retry policy) before they count as failed.

Campaign sync adds the members a segment gained (a `DUPLICATE_VALUE` means already a member: done) and, for
those it lost, deletes only the CampaignMember rows connector's own inserts created (their Ids are kept in
state): a member that was there before connector added the person, or added by hand at any time, is hand work
(a 'Responded' status is response history) and stays. A `strict` campaign is mirrored exactly instead: every
run its members are scanned, anyone not in the segment is deleted and a member deleted by hand is added back.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ...context import PluginEnv, RunContext
from ...crm.salesforce import bulk, soql
from ...crm.salesforce.client import (
    COMPOSITE_MAX,
    RETRIABLE_CODES,
    SalesforceClient,
    SalesforceRequestError,
    has,
)
from ...crm.salesforce.connection import STALE_DESCRIBE, SalesforceConnection
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
from .config import CampaignTarget, SalesforceWriterConfig

log = structlog.get_logger(__name__)

AUTO_ASSIGN_OFF = {"Sforce-Auto-Assign": "FALSE"}  # sent on every write, whatever it writes
BULK_JOB_CALLS = 6  # create, upload, close, >=1 status poll, failed results (+ unprocessed when it failed)
CAMPAIGN_LOOKUP_CALLS = 2  # the Campaign by name or id, then its CampaignMemberStatus values
ALREADY_MEMBER = {"DUPLICATE_VALUE"}  # adding: the person is in the campaign already
ALREADY_GONE = frozenset({"ENTITY_IS_DELETED"})  # removing: the member row is gone already
# deleting a row by the Id connector's own insert returned: the Id cannot be mistyped, so "no such record" (the
# row was purged, e.g. with its Lead) means gone as well
OWN_ROW_GONE = ALREADY_GONE | {"INVALID_CROSS_REFERENCE_KEY"}
PERSON_OBJECTS = ("Contact", "Lead")  # preference order for a campaign member
UNREACHABLE = "UNREACHABLE"  # the code of labels not written because the org stopped answering


class _Locked(RetriableError):
    """Some records of a collection call lost a row lock; only those are sent again."""


@dataclass
class _Campaign:
    id: str
    status: str


Outcome = tuple[str | None, str] | None  # None: done; else (errorCode, message)


class SalesforceWriter(Writer):
    takes_tasks = True

    def __init__(self, cfg: SalesforceWriterConfig, connection: SalesforceConnection) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.source: str | None = cfg.source
        self.label_objects = frozenset(cfg.label_field)
        self.connection = connection
        self.client: SalesforceClient = connection.client
        self._campaigns: dict[str, _Campaign] = {}
        # segments whose campaign preflight found missing (create: true): the sync creates it without asking again
        self._campaigns_absent: set[str] = set()
        self._checked_labels: set[str] = set()
        # Strict mirroring must also run when a segment did not change (someone may have added members by
        # hand since): the run loop then hands over every segment each run. Non-strict ones return at once.
        self.publishes_snapshots = any(t.strict for t in cfg.campaigns.values())

    @classmethod
    def from_config(cls, cfg: WriterConfigBase, env: PluginEnv) -> SalesforceWriter:
        cfg = expect_config(cfg, SalesforceWriterConfig)
        connection = env.connection(cfg.source, SalesforceConnection)
        if connection is None:  # the config's cross-checks say why; a writer built by hand may get here
            raise ConfigError(
                f"target {cfg.name}: source '{cfg.source}' is not a configured salesforce source"
            )
        return cls(cfg, connection)

    def check_online(self, ctx: RunContext) -> Findings:
        return online.check(self, ctx)

    def check_tasks(self, tasks: Sequence[TaskConfig], ctx: RunContext) -> Findings:
        return online.check_tasks(self, tasks, ctx)

    def erase(self, request: ErasureRequest, action: CrmAction, ctx: RunContext) -> ErasureResult:
        return erasure.erase(self, request, action, ctx)

    # -- planning -------------------------------------------------------------------------------------------
    def estimate_calls(self, labels: int, adds: int, removes: int) -> int:
        """The calls this target makes in a run with these changes, none of them retried.

        Counted, taking the label changes to fall on every label object: a describe per label object (each
        is checked once a run) unless the describe cache holds it, and the collection calls of 200 records they
        share, or one Bulk job. A campaign lookup
        (the Campaign, then its member statuses) for every strict campaign, synced each run whether or not
        its segment changed, and, when members change at all, for every other campaign too (which of them
        changed is not known here). Per 200 added members a call. Per 200 removed members a delete of the
        rows connector created (their Ids are in state: no query), and, when any campaign is strict, a query
        for their member rows first (strict removes whatever row the person has); which campaign lost members
        is not known here, so with strict and other campaigns this is an upper bound. The first page of
        every strict campaign's member scan.

        Not known before the run, so not counted: a strict campaign's further scan pages (one per 2,000
        members), the deletes of the members found there outside the segment (one per 200, e.g. added by
        hand) and the inserts of members it finds missing (one per 200, deleted by hand); a campaign created
        because `create: true` found none; a Bulk job's extra status polls; retries (503, 429, row locks,
        an expired session); the login.

        The source's reads, its periodic id reconciliation included, are not part of this estimate: `plan`
        reads for real, so the read calls it reports are the ones the run will make again."""
        calls = 0
        if labels:
            objects = min(labels, len(self.cfg.label_field))  # taken to have changes on every label object
            calls += min(objects, self._describes_to_make())
            if labels > self.cfg.bulk_threshold:
                calls += BULK_JOB_CALLS
            else:  # the label objects share collection calls
                calls += math.ceil(labels / COMPOSITE_MAX)
        strict = sum(1 for t in self.cfg.campaigns.values() if t.strict)
        looked_up = len(self.cfg.campaigns) if adds or removes else strict
        calls += CAMPAIGN_LOOKUP_CALLS * looked_up + strict  # + the first member page of each strict scan
        per_removal = 2 if strict else 1  # (a member-row query +) a delete
        calls += math.ceil(adds / COMPOSITE_MAX) + per_removal * math.ceil(removes / COMPOSITE_MAX)
        return calls

    def _describes_to_make(self) -> int:
        cache = self.client.describe_cache
        return sum(
            1
            for obj in self.cfg.label_field
            if obj not in self._checked_labels and (cache is None or cache.get("describe", obj) is None)
        )

    # -- follow-up tasks (tasks.py) -------------------------------------------------------------------------
    def task_record(self, refs: Sequence[RecordRef]) -> RecordRef | None:
        return tasks.task_record(self, refs)

    def find_tasks(self, keys: list[str], ctx: RunContext) -> dict[str, str]:
        return tasks.find_tasks(self, keys, ctx)

    def create_tasks(self, new: list[NewTask], ctx: RunContext) -> TaskResult:
        return tasks.create_tasks(self, new, ctx)

    # -- labels ---------------------------------------------------------------------------------------------
    def write_labels(self, changes: list[LabelChange], ctx: RunContext) -> WriteResult:
        self._bind(ctx)
        start = self.client.calls
        result = WriteResult()
        by_object: dict[str, list[LabelChange]] = defaultdict(list)
        for change in changes:
            if change.ref.source != self.source or change.ref.object not in self.cfg.label_field:
                result.failed[str(change.ref)] = RecordError(
                    f"target {self.name} does not label {change.ref.source}:{change.ref.object}",
                    code="NOT_LABELLED",
                )
                continue
            by_object[change.ref.object].append(change)
        answered: set[str] = set()  # changes whose write call Salesforce answered (written or refused)
        failed: dict[str, RecordError] = {}
        collected: list[tuple[str, LabelChange]] = []  # (label field, change) for the mixed collections
        in_flight: set[str] = set()  # the objects of the call under way
        try:
            for obj, items in by_object.items():
                in_flight = {obj}
                self._check_label_field(obj, self.cfg.label_field[obj])
                if len(items) > self.cfg.bulk_threshold:
                    failed.update(self._labels_bulk(obj, self.cfg.label_field[obj], items))
                    answered.update(str(c.ref) for c in items)
                else:
                    collected.extend((self.cfg.label_field[obj], c) for c in items)
            # Leads and Contacts share calls: Salesforce takes records of different types in one collection,
            # in chunks of one type each (at most 10 a call), so grouped by object a call of 200 is 1 or 2
            # chunks, and a change of 1 % costs ceil(changes / 200) calls, not one part-filled call per object
            for start_at in range(0, len(collected), COMPOSITE_MAX):
                chunk = collected[start_at : start_at + COMPOSITE_MAX]
                in_flight = {c.ref.object for _, c in chunk}
                failed.update(self._labels_composite(chunk))
                answered.update(str(c.ref) for _, c in chunk)
        except SalesforceRequestError as exc:
            if exc.code in STALE_DESCRIBE:
                for obj in sorted(in_flight):
                    self._forget_describe(obj, exc.code)
            raise
        except UnreachableError as exc:
            if not answered:
                raise  # nothing written in this call
            # the labels written before the org went away stay written: the run loop records them (and
            # stops this target as unreachable); the rest are written by the next run
            self._cut_short(result, [str(c.ref) for c in changes], answered, failed, exc)
            self._note_written(by_object, answered, failed, ctx)
            result.calls = self.client.calls - start
            return result
        object_of = {str(c.ref): c.ref.object for c in changes}
        for obj in sorted({object_of[k] for k, e in failed.items() if e.code in STALE_DESCRIBE}):
            stale = next(
                e.code for k, e in failed.items() if object_of[k] == obj and e.code in STALE_DESCRIBE
            )
            self._forget_describe(obj, stale)
        result.failed.update(failed)
        for obj, items in by_object.items():
            log.info(
                "salesforce.labels.written",
                target=self.name,
                object=obj,
                changed=len(items),
                failed=sum(1 for c in items if str(c.ref) in failed),
            )
        self._note_written(by_object, answered, failed, ctx)
        result.calls = self.client.calls - start
        return result

    def _note_written(
        self,
        by_object: dict[str, list[LabelChange]],
        answered: set[str],
        failed: dict[str, RecordError],
        ctx: RunContext,
    ) -> None:
        """Tell the source's next read how many records of each object this run wrote: their SystemModstamp
        moved, so that read returns them (see `own_writes`)."""
        if self.connection.own_writes is None:
            return
        for obj, items in by_object.items():
            written = sum(1 for c in items if str(c.ref) in answered and str(c.ref) not in failed)
            self.connection.own_writes.add(obj, written, ctx.started_at)

    def _cut_short(
        self,
        result: WriteResult,
        keys: list[str],
        answered: set[str],
        failed: dict[str, RecordError],
        exc: UnreachableError,
    ) -> None:
        """The org went away part way: every item of `keys` not answered fails as UNREACHABLE."""
        result.failed.update(failed)
        result.unreachable = str(exc)
        for key in keys:
            if key not in answered and key not in result.failed:
                result.failed[key] = RecordError(f"{key}: not written: {exc}", code=UNREACHABLE)
        log.error("salesforce.unreachable", target=self.name, written=len(answered), error=str(exc))

    def preflight(
        self, changes: list[LabelChange], segments: list[SegmentChange], ctx: RunContext
    ) -> dict[str, RecordError]:
        """Salesforce refuses, record by record, a value its restricted picklist does not hold
        (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST): the describe (cached, as the write uses it) says which.
        Each campaign a segment change needs exists (or `create: true` makes it) with the member status: the
        lookups the sync makes, read-only here (a campaign to create is neither made nor checked further)."""
        self._bind(ctx)
        for seg in segments:
            target = self.cfg.campaigns.get(seg.segment)
            if target is None or seg.segment in self._campaigns or seg.segment in self._campaigns_absent:
                continue
            if seg.adds or seg.removes or target.strict:
                campaign_id = self._find_campaign(seg.segment, target)
                if campaign_id is None:  # kept too: the run's sync does not look it up again
                    self._campaigns_absent.add(seg.segment)
                else:
                    status = self._member_status(campaign_id, target)
                    self._campaigns[seg.segment] = _Campaign(campaign_id, status)
        refused: dict[str, RecordError] = {}
        for obj in sorted({c.ref.object for c in changes if c.ref.object in self.cfg.label_field}):
            fld = self.cfg.label_field[obj]
            described = self._check_label_field(obj, fld)
            if described.get("type") == "picklist" and "restrictedPicklist" not in described:
                # a describe cached by an older connector did not keep this: ask the org once
                if self.client.refresh_describe(obj):
                    described = self.client.field_names(obj)[fld]
            if not described.get("restrictedPicklist"):
                continue
            allowed = {
                str(v.get("value")) for v in described.get("picklistValues") or [] if v.get("active", True)
            }
            for change in changes:
                if change.ref.object == obj and change.new not in allowed:
                    refused[str(change.ref)] = RecordError(
                        f"{change.ref}: {obj}.{fld} is a restricted picklist without the value '{change.new}'",
                        code="INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    )
        return refused

    def _check_label_field(self, obj: str, fld: str) -> dict[str, Any]:
        """The label field's describe; ConfigError when it is missing or read-only."""
        if obj in self._checked_labels:
            return self.client.field_names(obj)[fld]
        described = self.client.field_names(obj).get(fld)
        # the describe may come from the cache: an admin may just have added the field or opened it for
        # updates, so the org is asked once before this is called a config error
        if (described is None or not described.get("updateable", True)) and self.client.refresh_describe(obj):
            log.info(
                "salesforce.describe.refresh",
                target=self.name,
                objects=[obj],
                reason="label field missing or read-only in cached describe",
            )
            described = self.client.field_names(obj).get(fld)
        if described is None:
            raise ConfigError(f"target {self.name}: label_field.{obj}: {obj} has no field {fld}")
        if not described.get("updateable", True):
            raise ConfigError(f"target {self.name}: label_field.{obj}: {obj}.{fld} is not updateable")
        self._checked_labels.add(obj)
        return described

    def _forget_describe(self, obj: str, code: str | None) -> None:
        if self.client.forget_describe(obj):
            log.warning(
                "salesforce.describe.dropped",
                target=self.name,
                objects=[obj],
                code=code,
                reason="label write refused: cached describe dropped, the next run describes again",
            )

    def _labels_composite(self, items: list[tuple[str, LabelChange]]) -> dict[str, RecordError]:
        """One collection call of label changes, each with its label field, of one or more objects."""
        by_id = {c.ref.id: (fld, c) for fld, c in items}
        # one run per object: each run is one of Salesforce's chunks
        ids = sorted(by_id, key=lambda i: by_id[i][1].ref.object)
        what = "label " + "+".join(sorted({c.ref.object for _, c in items}))

        def send(chunk: list[str]) -> list[dict[str, Any]]:
            records = [
                {"attributes": {"type": by_id[i][1].ref.object}, "id": i, by_id[i][0]: by_id[i][1].new}
                for i in chunk
            ]
            return self.client.composite("PATCH", records, headers=AUTO_ASSIGN_OFF, what=what)

        outcomes = self._collection(ids, send, what)
        return {
            str(by_id[i][1].ref): RecordError(o[1], code=o[0]) for i, o in outcomes.items() if o is not None
        }

    def _labels_bulk(self, obj: str, fld: str, items: list[LabelChange]) -> dict[str, RecordError]:
        by_id = {c.ref.id: c for c in items}
        rows = [{"Id": c.ref.id, fld: c.new} for c in items]
        job = bulk.ingest_update(self.client, obj, rows, ["Id", fld], headers=AUTO_ASSIGN_OFF)
        failed: dict[str, RecordError] = {}
        again = list(job.unprocessed)
        for rid, (code, message) in job.failed.items():
            if rid not in by_id:
                continue
            if code in RETRIABLE_CODES:
                again.append(rid)
            else:
                failed[str(by_id[rid].ref)] = RecordError(message, code=code)
        # locked and unprocessed rows go through the collection path, which retries locks by itself
        retry = [(fld, by_id[r]) for r in dict.fromkeys(again) if r in by_id]
        for start_at in range(0, len(retry), COMPOSITE_MAX):
            failed.update(self._labels_composite(retry[start_at : start_at + COMPOSITE_MAX]))
        return failed

    # -- campaigns ------------------------------------------------------------------------------------------
    def sync_segment(self, change: SegmentChange, ctx: RunContext) -> WriteResult:
        self._bind(ctx)
        target = self.cfg.campaigns.get(change.segment)
        if target is None:
            raise ConfigError(
                f"target {self.name}: segment '{change.segment}' has no campaign under campaigns:"
            )
        start = self.client.calls
        result = WriteResult()
        if not (change.adds or change.removes or target.strict):
            return result
        campaign = self._campaign(change.segment, target)
        answered: set[str] = set()  # person keys whose member insert Salesforce answered
        try:
            self._add_members(campaign, change.adds, result, answered)
            if target.strict:
                self._remove_members(campaign, change.removes, result)
                self._mirror(campaign, change, result)
            else:
                self._remove_created(change, result)
        except UnreachableError as exc:
            if not answered:
                raise  # no member added in this call
            # the members added before the org went away stay added (the run records them); the removes are
            # all reported as not done (done again next run: a row already gone counts as removed)
            self._cut_short(
                result, [m.person_key for m in (*change.adds, *change.removes)], answered, {}, exc
            )
        result.calls = self.client.calls - start
        log.info(
            "salesforce.campaign.synced",
            target=self.name,
            segment=change.segment,
            campaign=campaign.id,
            adds=len(change.adds),
            removes=len(change.removes),
            failed=len(result.failed),
        )
        return result

    def _campaign(self, segment: str, target: CampaignTarget) -> _Campaign:
        if segment in self._campaigns:
            return self._campaigns[segment]
        absent = segment in self._campaigns_absent
        campaign_id = None if absent else self._find_campaign(segment, target)
        if campaign_id is None:  # not there, and `create: true`
            created = self.client.request_json(
                "POST",
                "sobjects/Campaign",
                json_body={"Name": target.campaign, "IsActive": True},
                headers=AUTO_ASSIGN_OFF,
                what="create campaign",
                expect=lambda body: has(body, id=str),
            )
            campaign_id = str(created["id"])
            log.info("salesforce.campaign.created", target=self.name, campaign=campaign_id, segment=segment)
        self._campaigns[segment] = _Campaign(campaign_id, self._member_status(campaign_id, target))
        return self._campaigns[segment]

    def _find_campaign(self, segment: str, target: CampaignTarget) -> str | None:
        """The campaign's Id; None when there is none and `create: true` will make it; else ConfigError."""
        if soql.looks_like_id(target.campaign, "701"):
            condition = f"Id = {soql.literal(target.campaign)}"
        else:
            condition = f"Name = {soql.literal(target.campaign)}"
        rows = self.client.query_all(f"SELECT Id, Name FROM Campaign WHERE {condition}")
        if len(rows) > 1:
            raise ConfigError(f"target {self.name}: {len(rows)} campaigns are named '{target.campaign}'")
        if rows:
            return str(rows[0]["Id"])
        if target.create:
            return None
        raise ConfigError(
            f"target {self.name}: campaign '{target.campaign}' for segment {segment} does not exist "
            "(set create: true to create it)"
        )

    def _member_status(self, campaign_id: str, target: CampaignTarget) -> str:
        """The configured member status as the campaign spells it; ConfigError when it has no such status."""
        labels = [
            str(r.get("Label"))
            for r in self.client.query_all(
                f"SELECT Label FROM CampaignMemberStatus WHERE CampaignId = {soql.literal(campaign_id)}"
            )
        ]
        status = next((s for s in labels if s == target.member_status), None) or next(
            (s for s in labels if s.casefold() == target.member_status.casefold()), None
        )
        if status is None:
            raise ConfigError(
                f"target {self.name}: member_status '{target.member_status}' is not a status of campaign "
                f"'{target.campaign}' (it has: {', '.join(labels) or 'none'})"
            )
        return status

    def _person_record(self, member: Member) -> tuple[str, str] | None:
        """(ContactId|LeadId, record id) for a member: the Contact when the person has one."""
        for obj in PERSON_OBJECTS:
            ids = sorted(r.id for r in member.refs if r.source == self.source and r.object == obj)
            if ids:
                return f"{obj}Id", ids[0]
        return None

    def _add_members(
        self,
        campaign: _Campaign,
        adds: Sequence[Member],
        result: WriteResult,
        answered: set[str] | None = None,
    ) -> None:
        """Insert a member row per person. The rows an insert created go into `result.created` (state keeps
        them: only those are ever deleted when not strict); a `DUPLICATE_VALUE` row is someone else's."""
        rows: dict[str, dict[str, Any]] = {}
        for member in adds:
            target = self._person_record(member)
            if target is None:
                result.failed[member.person_key] = RecordError(
                    f"no Lead or Contact in {self.source} for this person", code="NO_SALESFORCE_RECORD"
                )
                continue
            rows[member.person_key] = {
                "attributes": {"type": "CampaignMember"},
                "CampaignId": campaign.id,
                target[0]: target[1],
                "Status": campaign.status,
            }
        keys = list(rows)
        for start_at in range(0, len(keys), COMPOSITE_MAX):
            chunk = keys[start_at : start_at + COMPOSITE_MAX]

            def send(ks: list[str]) -> list[dict[str, Any]]:
                return self.client.composite(
                    "POST", [rows[k] for k in ks], headers=AUTO_ASSIGN_OFF, what="add campaign members"
                )

            made: dict[str, str] = {}
            for key, outcome in self._collection(chunk, send, "add campaign members", made).items():
                if outcome is not None and outcome[0] not in ALREADY_MEMBER:
                    result.failed[key] = RecordError(outcome[1], code=outcome[0])
            result.created.update({key: (row_id,) for key, row_id in made.items()})
            if answered is not None:  # the caller keeps what landed should the org go away in a later chunk
                answered.update(chunk)

    def _member_rows(self, campaign: _Campaign, record_ids: list[str]) -> Iterator[dict[str, Any]]:
        for start_at in range(0, len(record_ids), COMPOSITE_MAX):
            chunk = soql.in_list(record_ids[start_at : start_at + COMPOSITE_MAX])
            yield from self.client.query_all(
                f"SELECT Id, ContactId, LeadId FROM CampaignMember WHERE CampaignId = {soql.literal(campaign.id)} "
                f"AND (ContactId IN {chunk} OR LeadId IN {chunk})"
            )

    def _remove_members(self, campaign: _Campaign, removes: list[Member], result: WriteResult) -> None:
        owner: dict[str, str] = {}  # Contact/Lead id -> person key
        for member in removes:
            for ref in member.refs:
                if ref.source == self.source and ref.object in PERSON_OBJECTS:
                    owner[ref.id] = member.person_key
        if not owner:
            return
        row_owner: dict[str, str] = {}
        for row in self._member_rows(campaign, sorted(owner)):
            person = owner.get(str(row.get("ContactId"))) or owner.get(str(row.get("LeadId")))
            if person is not None:
                row_owner[str(row["Id"])] = person
        for row_id, outcome in self._delete_rows(list(row_owner)).items():
            if outcome is not None:
                result.failed[row_owner[row_id]] = RecordError(outcome[1], code=outcome[0])

    def _remove_created(self, change: SegmentChange, result: WriteResult) -> None:
        """Not strict: delete only the rows connector's inserts created for the people who left.

        A person without such a record keeps her row: it was there before connector added her (the insert
        answered DUPLICATE_VALUE) or, in a state from before these records were kept, nobody can say who made
        it. Leaving a stale member is the lesser harm there: deleting a hand-made one loses its status and
        response history for good, while a stale one stays visible and `strict: true` clears it. The
        membership leaves the state either way.
        """
        owner: dict[str, str] = {}  # CampaignMember Id -> person key
        kept = 0
        for member in change.removes:
            rows = change.created.get(member.person_key, ())
            kept += not rows
            owner.update(dict.fromkeys(rows, member.person_key))
        for row_id, outcome in self._delete_rows(list(owner), gone=OWN_ROW_GONE).items():
            if outcome is not None:
                result.failed[owner[row_id]] = RecordError(outcome[1], code=outcome[0])
        if kept:
            log.info(
                "salesforce.campaign.kept",
                target=self.name,
                segment=change.segment,
                members=kept,
                reason="member rows connector did not create are left alone (not strict)",
            )
            result.notes.append(
                f"{self.name}: kept {kept} member(s) of segment {change.segment} in the campaign: connector "
                "did not create their member rows (set strict: true to mirror the segment exactly)"
            )

    def _mirror(self, campaign: _Campaign, change: SegmentChange, result: WriteResult) -> None:
        """Strict: delete every member row of people outside the segment, add back members whose row is gone
        (deleted by hand). Costs the member scan, made every run; deletes and inserts only when the campaign
        drifted from the segment."""
        keep = {r.id for m in change.members for r in m.refs if r.source == self.source}
        present: set[str] = set()
        removed = failed = 0
        # page by page: a campaign can hold far more members than should sit in memory; deleting rows does
        # not disturb the query cursor (a snapshot)
        for page in self.client.query_pages(
            f"SELECT Id, ContactId, LeadId FROM CampaignMember WHERE CampaignId = {soql.literal(campaign.id)}"
        ):
            strangers = []
            for row in page:
                ids = {str(row.get("ContactId")), str(row.get("LeadId"))}
                if ids & keep:
                    present |= ids
                else:
                    strangers.append(str(row["Id"]))
            outcomes = self._delete_rows(strangers)
            bad = sum(1 for o in outcomes.values() if o is not None)
            removed += len(strangers) - bad
            failed += bad
        if removed:
            result.notes.append(f"strict: removed {removed} member(s) not in segment {change.segment}")
        if failed:
            result.notes.append(f"strict: {failed} campaign member(s) could not be removed")
        # this call's own adds are in the scan already; an add that failed is reported, and retried next run
        missing = [
            m
            for m in change.members
            if m.person_key not in result.failed
            and not any(r.id in present for r in m.refs if r.source == self.source)
            and self._person_record(m) is not None
        ]
        if missing:
            # the state holds these memberships already: a failure here is no rejected record (nothing
            # would clear it), but a note; the next run's scan tries again
            again = WriteResult()
            self._add_members(campaign, missing, again)
            result.created.update(again.created)
            back = len(missing) - len(again.failed)
            log.info("salesforce.campaign.restored", target=self.name, segment=change.segment, members=back)
            if back:
                result.notes.append(f"strict: added back {back} member(s) of segment {change.segment}")
            for key, error in again.failed.items():
                log.warning(
                    "salesforce.campaign.restore_failed",
                    target=self.name,
                    segment=change.segment,
                    person=key,
                    code=error.code,
                )
                result.notes.append(f"strict: could not add back {key} to segment {change.segment}: {error}")

    def _delete_rows(self, row_ids: list[str], gone: frozenset[str] = ALREADY_GONE) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        for start_at in range(0, len(row_ids), COMPOSITE_MAX):
            chunk = row_ids[start_at : start_at + COMPOSITE_MAX]

            def send(ids: list[str]) -> list[dict[str, Any]]:
                return self.client.composite(
                    "DELETE", ids=ids, headers=AUTO_ASSIGN_OFF, what="remove campaign members"
                )

            for rid, outcome in self._collection(chunk, send, "remove campaign members").items():
                outcomes[rid] = None if outcome is None or outcome[0] in gone else outcome
        return outcomes

    # -- one sObject Collections call, with row-lock retries of only the locked records ----------------------
    def _collection(
        self,
        keys: list[str],
        send: Callable[[list[str]], list[dict[str, Any]]],
        what: str,
        created: dict[str, str] | None = None,
    ) -> dict[str, Outcome]:
        """Each key's outcome; with `created`, also the Id each successful insert answered, by key."""
        outcomes: dict[str, Outcome] = {}
        pending = list(keys)

        def attempt() -> None:
            nonlocal pending
            answers = send(pending)
            if len(answers) != len(pending):
                raise RetriableError(
                    f"{what}: {len(answers)} results for {len(pending)} records", code="BAD_RESPONSE"
                )
            locked: list[str] = []
            for key, answer in zip(pending, answers, strict=True):
                if answer.get("success"):
                    outcomes[key] = None
                    if created is not None and answer.get("id"):
                        created[key] = str(answer["id"])
                    continue
                errors = answer.get("errors") or [{}]
                code = errors[0].get("statusCode") or errors[0].get("errorCode")
                message = str(errors[0].get("message") or code or "rejected")
                outcomes[key] = (code, message)
                if code in RETRIABLE_CODES:
                    locked.append(key)
            pending = locked
            if locked:
                raise _Locked(f"{what}: {len(locked)} record(s) locked", code="UNABLE_TO_LOCK_ROW")

        try:
            self.client.policy.call(attempt, what=what)
        except UnreachableError as exc:
            if not isinstance(exc.__cause__, _Locked):
                raise
            log.warning("salesforce.write.locked", target=self.name, what=what, records=len(pending))
        return outcomes

    def _bind(self, ctx: RunContext) -> None:
        self.connection.bind(ctx, counted_as=self.name, budget_share=self.cfg.api_budget_share)
