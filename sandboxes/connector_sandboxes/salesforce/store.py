"""The sandbox org's data: records per sObject, ids, timestamps, the recycle bin and the org's write rules.

Writes arriving over the API (`api=True`) get every rule a real org enforces on them (read-only fields,
converted leads, restricted picklists, required fields, duplicate campaign members). Direct calls from tests
and the seeder are trusted set-up: they may set read-only fields such as `IsConverted` or backdate
`SystemModstamp`, but still get type checks, derived fields and uniqueness.

Every datetime the org stamps (`CreatedDate`, `LastModifiedDate`, `SystemModstamp`, a Bulk job's dates) is
kept to the second, as Salesforce keeps it: many writes within one second share one `SystemModstamp`, and a
record changed twice within a second keeps the same stamp. Incremental cursors must cope with that, so the
sandbox must not hide it. Stamps never move backwards, even when a test sets the clock back.
"""

from __future__ import annotations

import calendar
import datetime as dt
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .objects import TASK_CLOSED_STATUSES, FieldDef, ObjectDef, build_objects
from .values import ValueError_, coerce, id_suffix, normalize_id, to_second

Record = dict[str, Any]
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class SObjectError(Exception):
    """One record refused by the org, with the status code, message and fields Salesforce would report."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = fields or []

    def as_error(self) -> dict[str, Any]:
        """The per-record error shape of composite and single-record responses."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


class Transaction:
    """Undo log for an all-or-none request: `rollback()` restores every record it touched."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.entries: list[tuple[str, str, Record | None]] = []

    def rollback(self) -> None:
        for sobject, record_id, before in reversed(self.entries):
            table = self._store._tables[sobject]
            if before is None:
                table.pop(record_id, None)
                self._store._where.pop(record_id, None)
            else:
                table[record_id] = before
                self._store._where[record_id] = sobject  # a purged record comes back too
        self.entries.clear()
        self._store._rebuild_indexes()


class Store:
    """In-memory org data; every method is thread-safe (one re-entrant lock)."""

    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.objects: dict[str, ObjectDef] = build_objects()
        self._by_lower = {name.lower(): obj for name, obj in self.objects.items()}
        self._tables: dict[str, dict[str, Record]] = {name: {} for name in self.objects}
        self._where: dict[str, str] = {}
        self._counter = 0
        self._last_stamp: dt.datetime | None = None
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._members: dict[tuple[str, str], str] = {}
        self._txn: Transaction | None = None
        # the user every API session logs in as: the owner of records created without one (seed sets it)
        self.api_user_id: str | None = None
        self.lock = threading.RLock()

    # ----- schema -------------------------------------------------------------------------------------------
    def object_def(self, name: str) -> ObjectDef | None:
        return self._by_lower.get(name.lower())

    def picklist_values(self, sobject: str, fd: FieldDef) -> tuple[str, ...]:
        """Static values, or the org's LeadStatus / OpportunityStage labels for the fields they drive."""
        if sobject == "Lead" and fd.name == "Status":
            return tuple(r["ApiName"] for r in self._sorted_meta("LeadStatus"))
        if sobject == "Opportunity" and fd.name == "StageName":
            return tuple(r["ApiName"] for r in self._sorted_meta("OpportunityStage") if r["IsActive"])
        return fd.picklist

    def _sorted_meta(self, sobject: str) -> list[Record]:
        rows = [r for r in self._tables[sobject].values() if not r["IsDeleted"]]
        return sorted(rows, key=lambda r: r.get("SortOrder") or 0)

    # ----- clock and ids ------------------------------------------------------------------------------------
    def clock(self) -> dt.datetime:
        """The org's current time, as its HTTP `Date` header tells it (not a write stamp: no tick)."""
        return self._clock().astimezone(dt.UTC)

    def now(self) -> dt.datetime:
        """The next write time: the clock truncated to the second, never before the previous one."""
        with self.lock:
            stamp = to_second(self._clock())
            if self._last_stamp is not None and stamp < self._last_stamp:
                stamp = self._last_stamp
            self._last_stamp = stamp
            return stamp

    def _new_id(self, obj: ObjectDef) -> str:
        self._counter += 1
        n, digits = self._counter, []
        for _ in range(8):
            n, rem = divmod(n, 62)
            digits.append(_BASE62[rem])
        id15 = obj.key_prefix + "5g0A" + "".join(reversed(digits))
        return id15 + id_suffix(id15)

    def sobject_of(self, record_id: str) -> str | None:
        norm = normalize_id(record_id)
        return self._where.get(norm) if norm else None

    # ----- reads --------------------------------------------------------------------------------------------
    def get(self, sobject: str, record_id: str) -> Record | None:
        """A copy of the record (deleted ones too, with IsDeleted true), or None."""
        norm = normalize_id(record_id)
        with self.lock:
            row = self._tables[self._name(sobject)].get(norm or "")
            return dict(row) if row is not None else None

    def all(self, sobject: str, include_deleted: bool = False) -> list[Record]:
        """Copies of every record of `sobject` in creation order; the recycle bin only when asked."""
        with self.lock:
            return [
                dict(r)
                for r in self._tables[self._name(sobject)].values()
                if include_deleted or not r["IsDeleted"]
            ]

    def rows(self, sobject: str) -> list[Record]:
        """The live rows (no copies) for the query engine; call with `lock` held and do not mutate."""
        return list(self._tables[self._name(sobject)].values())

    def lookup(self, record_id: str) -> Record | None:
        """The live row for an id of any object (query engine: parent relationships)."""
        sobject = self._where.get(record_id)
        return self._tables[sobject].get(record_id) if sobject else None

    def find(self, sobject: str, field: str, value: Any) -> Record | None:
        """The first live (not deleted) row whose `field` equals `value` (external-id upserts)."""
        with self.lock:
            for row in self._tables[self._name(sobject)].values():
                if not row["IsDeleted"] and row.get(field) == value:
                    return dict(row)
        return None

    # ----- writes -------------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Hold the lock and journal every write, so an all-or-none request can roll back."""
        with self.lock:
            txn = Transaction(self)
            outer, self._txn = self._txn, txn
            try:
                yield txn
            finally:
                self._txn = outer

    def insert(
        self,
        sobject: str,
        fields: Mapping[str, Any],
        *,
        api: bool = False,
        from_csv: bool = False,
        record_id: str | None = None,
    ) -> str:
        """Create a record and return its 18-character id (raises `SObjectError`).

        `record_id` is for trusted set-up only (the API user keeps the id the login answers name)."""
        with self.lock:
            obj = self.objects[self._name(sobject)]
            values = self._clean(obj, fields, creating=True, api=api, from_csv=from_csv)
            stamp = self.now()
            row: Record = {f: None for f in obj.fields}
            for fd in obj.fields.values():
                if fd.type == "boolean":
                    row[fd.name] = False
            new_id = normalize_id(record_id) if record_id else self._new_id(obj)
            row.update(Id=new_id, CreatedDate=stamp, LastModifiedDate=stamp, SystemModstamp=stamp)
            row.update(values)
            self._defaults(obj, row)
            # A defaulted field is filled only when it was left out: sent as null it stays null and is refused
            # (REQUIRED_FIELD_MISSING). An empty Bulk CSV cell means "not set", as in Salesforce.
            sent = {name for name, value in values.items() if value is not None or not from_csv}
            for fd in obj.fields.values():
                if fd.default is not None and fd.name not in sent:
                    row[fd.name] = fd.default
            if "OwnerId" in obj.fields and "OwnerId" not in sent:
                row["OwnerId"] = self.api_user_id
            self._derive(obj, row, None)
            self._check(obj, row, None, api=api)
            self._journal(obj.name, row["Id"], None)
            self._tables[obj.name][row["Id"]] = row
            self._where[row["Id"]] = obj.name
            self._index(obj.name, row)
            self._after_insert(obj, row)
            return str(row["Id"])

    def update(
        self,
        sobject: str,
        record_id: str,
        fields: Mapping[str, Any],
        *,
        api: bool = False,
        from_csv: bool = False,
    ) -> None:
        """Change fields of a live record and move its SystemModstamp forward (raises `SObjectError`)."""
        with self.lock:
            obj = self.objects[self._name(sobject)]
            current = self._live(obj, record_id)
            values = self._clean(obj, fields, creating=False, api=api, from_csv=from_csv)
            if api and obj.name == "Lead" and current["IsConverted"]:
                raise SObjectError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [])
            row = dict(current)
            row.update(values)
            self._derive(obj, row, current)
            self._check(obj, row, current, api=api)
            if "SystemModstamp" not in values:
                stamp = self.now()
                row["SystemModstamp"] = stamp
                if "LastModifiedDate" not in values:
                    row["LastModifiedDate"] = stamp
            self._journal(obj.name, row["Id"], current)
            self._tables[obj.name][row["Id"]] = row

    def delete(self, sobject: str, record_id: str, *, api: bool = False) -> None:
        """Move a record to the recycle bin (IsDeleted true; queryAll still sees it)."""
        with self.lock:
            obj = self.objects[self._name(sobject)]
            current = self._live(obj, record_id)
            self._journal(obj.name, current["Id"], current)
            stamp = self.now()
            row = dict(current, IsDeleted=True, SystemModstamp=stamp, LastModifiedDate=stamp)
            self._tables[obj.name][row["Id"]] = row
            self._unindex(obj.name, row)
            self._cascade_delete(obj.name, row["Id"])

    def purge(self, sobject: str, record_id: str) -> None:
        """Remove a record for good, as emptying the recycle bin (or its 15 days running out) or a Bulk
        `hardDelete` does: after this not even `queryAll` returns it. A live record is deleted first."""
        with self.lock:
            name = self._name(sobject)
            norm = normalize_id(record_id) or ""
            current = self._tables[name].get(norm)
            if current is None:
                raise SObjectError("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {record_id}")
            if not current["IsDeleted"]:
                self.delete(name, norm)
            self._journal(name, norm, self._tables[name][norm])
            self._tables[name].pop(norm)
            self._where.pop(norm, None)

    def touch(self, sobject: str, record_id: str, at: dt.datetime | None = None) -> dt.datetime:
        """Set LastModifiedDate/SystemModstamp to `at` (aware; kept to the second, as every stamp) or to the
        clock's current second; returns the stamp."""
        with self.lock:
            name = self._name(sobject)
            norm = normalize_id(record_id) or ""
            current = self._tables[name].get(norm)
            if current is None:
                raise SObjectError("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {record_id}")
            if at is not None and at.tzinfo is None:
                raise ValueError("touch() needs a timezone-aware datetime")
            stamp = to_second(at) if at is not None else self.now()
            self._journal(name, norm, current)
            self._tables[name][norm] = dict(current, SystemModstamp=stamp, LastModifiedDate=stamp)
            return stamp

    def convert_lead(
        self,
        lead_id: str,
        *,
        account_id: str | None = None,
        contact_id: str | None = None,
        opportunity_name: str | None = None,
    ) -> dict[str, str | None]:
        """What Salesforce's convertLead does: mark the lead converted, creating Account/Contact as needed."""
        with self.lock:
            lead = self._live(self.objects["Lead"], lead_id)
            if lead["IsConverted"]:
                raise SObjectError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
            if account_id is None:
                account_id = self.insert("Account", {"Name": lead["Company"], "Website": lead["Website"]})
            if contact_id is None:
                contact_id = self.insert(
                    "Contact",
                    {
                        "AccountId": account_id,
                        "FirstName": lead["FirstName"],
                        "LastName": lead["LastName"],
                        "Email": lead["Email"],
                        "HasOptedOutOfEmail": lead["HasOptedOutOfEmail"],
                        "Funnel_Stage__c": lead["Funnel_Stage__c"],
                    },
                )
            opportunity_id = None
            if opportunity_name:
                first_stage = self.picklist_values(
                    "Opportunity", self.objects["Opportunity"].fields["StageName"]
                )
                opportunity_id = self.insert(
                    "Opportunity",
                    {
                        "Name": opportunity_name,
                        "AccountId": account_id,
                        "StageName": first_stage[0],
                        "CloseDate": (self._clock().date() + dt.timedelta(days=30)).isoformat(),
                    },
                )
            converted = next(r["ApiName"] for r in self._sorted_meta("LeadStatus") if r["IsConverted"])
            self.update(
                "Lead",
                lead["Id"],
                {
                    "IsConverted": True,
                    "Status": converted,
                    "ConvertedAccountId": account_id,
                    "ConvertedContactId": contact_id,
                    "ConvertedOpportunityId": opportunity_id,
                    "ConvertedDate": self._clock().date().isoformat(),
                },
            )
            return {"accountId": account_id, "contactId": contact_id, "opportunityId": opportunity_id}

    # ----- internals ----------------------------------------------------------------------------------------
    def _name(self, sobject: str) -> str:
        obj = self._by_lower.get(sobject.lower())
        if obj is None:
            raise SObjectError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        return obj.name

    def _live(self, obj: ObjectDef, record_id: str) -> Record:
        norm = normalize_id(record_id)
        if norm is None:
            raise SObjectError(
                "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {record_id}", ["Id"]
            )
        row = self._tables[obj.name].get(norm)
        if row is None:
            raise SObjectError(
                "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {record_id}", ["Id"]
            )
        if row["IsDeleted"]:
            raise SObjectError("ENTITY_IS_DELETED", "entity is deleted", [])
        return row

    def _journal(self, sobject: str, record_id: str, before: Record | None) -> None:
        if self._txn is not None:
            self._txn.entries.append((sobject, record_id, before))

    def _clean(
        self, obj: ObjectDef, fields: Mapping[str, Any], *, creating: bool, api: bool, from_csv: bool
    ) -> Record:
        unknown = [name for name in fields if obj.field(name) is None]
        if unknown:
            raise SObjectError(
                "INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {obj.name}", unknown
            )
        values: Record = {}
        locked: list[str] = []
        for name, raw in fields.items():
            fd = obj.field(name)
            assert fd is not None
            if fd.name == "Id":
                continue
            writable = fd.createable if creating else fd.updateable
            if api and not writable:
                locked.append(fd.name)
                continue
            if not api and fd.name == "Name" and not fd.createable:
                continue  # a person's Name is always derived from FirstName/LastName
            try:
                values[fd.name] = coerce(fd, raw, from_csv=from_csv)
            except ValueError_ as exc:
                raise SObjectError(exc.code, exc.message, [fd.name]) from None
        if locked:
            raise SObjectError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(locked)}. Please check the security settings of "
                "this field and verify that it is read/write for your profile or permission set.",
                locked,
            )
        return values

    def _defaults(self, obj: ObjectDef, row: Record) -> None:
        if obj.name == "Lead" and row["Status"] is None:
            default = [r["ApiName"] for r in self._sorted_meta("LeadStatus") if r["IsDefault"]]
            row["Status"] = default[0] if default else None
        elif obj.name == "Contract" and row["Status"] is None:
            row["Status"] = "Draft"
        elif obj.name == "Campaign" and row["Status"] is None:
            row["Status"] = "Planned"
        elif obj.name == "CampaignMember" and row["Status"] is None and row["CampaignId"]:
            statuses = self._member_statuses(row["CampaignId"])
            row["Status"] = next((s["Label"] for s in statuses if s["IsDefault"]), None)
        elif obj.name == "CampaignMemberStatus" and row["SortOrder"] is None and row["CampaignId"]:
            row["SortOrder"] = 1 + max(
                (s["SortOrder"] or 0 for s in self._member_statuses(row["CampaignId"])), default=0
            )

    def _derive(self, obj: ObjectDef, row: Record, before: Record | None) -> None:
        if obj.name in ("Lead", "Contact", "User"):
            row["Name"] = " ".join(p for p in (row["FirstName"], row["LastName"]) if p) or None
        elif obj.name == "Opportunity":
            stage = next(
                (s for s in self._tables["OpportunityStage"].values() if s["ApiName"] == row["StageName"]),
                None,
            )
            row["IsClosed"] = bool(stage and stage["IsClosed"])
            row["IsWon"] = bool(stage and stage["IsWon"])
        elif obj.name == "Contract" and row["StartDate"] is not None and row["ContractTerm"]:
            row["EndDate"] = _add_months(row["StartDate"], int(row["ContractTerm"])) - dt.timedelta(days=1)
        elif obj.name == "CampaignMember" and row["CampaignId"]:
            status = next(
                (s for s in self._member_statuses(row["CampaignId"]) if s["Label"] == row["Status"]), None
            )
            row["HasResponded"] = bool(status and status["HasResponded"])
        elif obj.name == "Task":
            row["IsClosed"] = row["Status"] in TASK_CLOSED_STATUSES
            row["IsHighPriority"] = row["Priority"] == "High"

    def _check(self, obj: ObjectDef, row: Record, before: Record | None, *, api: bool) -> None:
        missing = [
            fd.name
            for fd in obj.fields.values()
            if row.get(fd.name) in (None, "")
            and (fd.required or (fd.default is not None and not fd.nillable) or fd.name == "OwnerId")
        ]
        if missing:
            raise SObjectError(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )
        for fd in obj.fields.values():
            value = row.get(fd.name)
            if fd.type == "picklist" and fd.restricted:
                allowed = self.picklist_values(obj.name, fd)
                if value is None and fd.nillable:
                    continue
                if value not in allowed:
                    raise SObjectError(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{fd.label}: bad value for restricted picklist field: {value}",
                        [fd.name],
                    )
            if (
                fd.type == "reference"
                and value is not None
                and (before is None or before.get(fd.name) != value)
            ):
                target = self._where.get(value)
                if target is None or target not in fd.targets or self._tables[target][value]["IsDeleted"]:
                    raise SObjectError(
                        "INVALID_CROSS_REFERENCE_KEY", f"{fd.label} ID: invalid cross reference id", [fd.name]
                    )
                if api and target == "Lead" and self._tables[target][value]["IsConverted"]:
                    # a converted lead lives on as its contact: nothing new may point at the lead
                    raise SObjectError(
                        "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [fd.name]
                    )
            if fd.unique and value is not None:
                self._check_unique(obj, fd, row)
        if obj.name == "CampaignMember":
            self._check_member(row, before)
        if obj.name == "CampaignMemberStatus" and before is None:
            if any(s["Label"] == row["Label"] for s in self._member_statuses(row["CampaignId"])):
                raise SObjectError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: Label duplicates value {row['Label']}",
                    ["Label"],
                )

    def _check_unique(self, obj: ObjectDef, fd: FieldDef, row: Record) -> None:
        key = str(row[fd.name]).casefold()
        for other in self._tables[obj.name].values():
            if (
                other["Id"] != row["Id"]
                and not other["IsDeleted"]
                and str(other.get(fd.name)).casefold() == key
            ):
                raise SObjectError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {fd.name} duplicates value on record with id: {other['Id'][:15]}",
                    [],
                )

    def _check_member(self, row: Record, before: Record | None) -> None:
        person = row["ContactId"] or row["LeadId"]
        if person is None:
            raise SObjectError(
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [LeadId, ContactId]",
                ["LeadId", "ContactId"],
            )
        if before is None and (row["CampaignId"], person) in self._members:
            raise SObjectError("DUPLICATE_VALUE", "Already a campaign member.", [])
        labels = [s["Label"] for s in self._member_statuses(row["CampaignId"])]
        if row["Status"] not in labels:
            raise SObjectError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Status: bad value for restricted picklist field: {row['Status']}",
                ["Status"],
            )

    def _member_statuses(self, campaign_id: str) -> list[Record]:
        return [
            s
            for s in self._tables["CampaignMemberStatus"].values()
            if s["CampaignId"] == campaign_id and not s["IsDeleted"]
        ]

    def _after_insert(self, obj: ObjectDef, row: Record) -> None:
        if obj.name == "Campaign":
            # A new campaign comes with the two member statuses Salesforce creates by default.
            self.insert(
                "CampaignMemberStatus",
                {"CampaignId": row["Id"], "Label": "Sent", "IsDefault": True, "SortOrder": 1},
            )
            self.insert(
                "CampaignMemberStatus",
                {"CampaignId": row["Id"], "Label": "Responded", "HasResponded": True, "SortOrder": 2},
            )

    def _index(self, sobject: str, row: Record) -> None:
        if sobject == "CampaignMember" and not row["IsDeleted"]:
            self._members[(row["CampaignId"], row["ContactId"] or row["LeadId"])] = row["Id"]

    def _unindex(self, sobject: str, row: Record) -> None:
        if sobject == "CampaignMember":
            self._members.pop((row["CampaignId"], row["ContactId"] or row["LeadId"]), None)

    def _rebuild_indexes(self) -> None:
        self._members.clear()
        for row in self._tables["CampaignMember"].values():
            self._index("CampaignMember", row)

    def _cascade_delete(self, sobject: str, record_id: str) -> None:
        links = {"Lead": ("LeadId",), "Contact": ("ContactId",), "Campaign": ("CampaignId",)}.get(sobject, ())
        for link in links:
            for member in list(self._tables["CampaignMember"].values()):
                if member[link] == record_id and not member["IsDeleted"]:
                    self.delete("CampaignMember", member["Id"])


def _add_months(day: dt.date, months: int) -> dt.date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
