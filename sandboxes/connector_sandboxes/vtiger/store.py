"""Records of every module, behind one lock, the way vtiger keeps them.

One crmid sequence is shared by all modules (ids are `<idPrefix>x<crmid>`), every value is a string, empty is
`""`, numbers carry the column's scale (`"0.00000000"`), `modifiedtime` has 1-second resolution and moves on
every write, and deletions are logged so `sync` can report them. Users live apart (the admin is `19x1`).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from connector_sandboxes.vtiger.clock import SandboxClock, format_wall
from connector_sandboxes.vtiger.describe import (
    MULTI_SEPARATOR,
    FieldSpec,
    ModuleMeta,
    build_modules,
    custom_field,
)
from connector_sandboxes.vtiger.wserrors import WebserviceError, access_denied

ADMIN_ID = "19x1"
ID_PATTERN = re.compile(r"^(\d+)x(\d+)$")
CAMPAIGN_PEERS = ("Leads", "Contacts", "Accounts", "Potentials")
# Written by vtiger itself; a client's value for these is ignored.
SYSTEM_FIELDS = frozenset({"id", "createdtime", "modifiedtime", "modifiedby", "source"})


@dataclass
class Record:
    module: str
    crmid: int
    values: dict[str, str]
    modified: datetime

    @property
    def id(self) -> str:
        return self.values["id"]


@dataclass(frozen=True)
class Deletion:
    module: str
    id: str
    when: datetime


class VtigerStore:
    def __init__(self, clock: SandboxClock | None = None, *, custom_fields: bool = True) -> None:
        self.clock = clock or SandboxClock()
        self.lock = threading.RLock()
        self.modules: dict[str, ModuleMeta] = build_modules(custom_fields)
        self._by_prefix = {meta.spec.id_prefix: name for name, meta in self.modules.items()}
        self._records: dict[int, Record] = {}
        self._deletions: list[Deletion] = []
        self._relations: set[tuple[int, int]] = set()
        self._next_crmid = 2
        self._numbers: dict[str, int] = {}
        self._users: dict[str, dict[str, str]] = {}
        self._add_admin()

    # ---- metadata -------------------------------------------------------------------------------------
    def meta(self, module: str) -> ModuleMeta:
        meta = self.modules.get(module)
        if meta is None:
            raise KeyError(module)
        return meta

    def describe(self, module: str) -> dict[str, Any]:
        with self.lock:
            return self.meta(module).describe_payload()

    def field_by_label(self, module: str, label: str) -> str:
        """The field name (e.g. "cf_861") of the field with this label; KeyError when absent."""
        with self.lock:
            for f in self.meta(module).fields:
                if f.label == label:
                    return f.name
        raise KeyError(f"{module} has no field labelled {label!r}")

    def add_custom_field(
        self, module: str, label: str, kind: str = "string", values: tuple[str, ...] = ()
    ) -> str:
        """Add a custom field like the Layout Editor does; returns its cf_NNN name."""
        with self.lock:
            meta = self.meta(module)
            if any(f.label == label for f in meta.fields):
                raise ValueError("Duplicate Field Exists")
            taken = [
                int(n[3:]) for m in self.modules.values() for n in m.field_names() if n.startswith("cf_")
            ]
            name = f"cf_{max([879, *taken]) + 2}"
            meta.add_custom(custom_field(name, label, kind, values))
            empty = meta.field(name)
            assert empty is not None
            for record in self._records.values():
                if record.module == module:
                    record.values = self._ordered(meta, {**record.values, name: empty.empty_value()})
            return name

    # ---- ids ------------------------------------------------------------------------------------------
    def module_of(self, record_id: str) -> str | None:
        match = ID_PATTERN.match(record_id or "")
        return self._by_prefix.get(match.group(1)) if match else None

    def _live(self, record_id: str) -> Record | None:
        match = ID_PATTERN.match(record_id or "")
        if not match:
            return None
        record = self._records.get(int(match.group(2)))
        if record is None or record.module != self._by_prefix.get(match.group(1)):
            return None
        return record

    # ---- reads ----------------------------------------------------------------------------------------
    def get(self, record_id: str) -> dict[str, str] | None:
        """A copy of the record (no `label` key), or None when missing or deleted."""
        with self.lock:
            if record_id in self._users:
                return dict(self._users[record_id])
            record = self._live(record_id)
            return dict(record.values) if record else None

    def all(self, module: str) -> list[dict[str, str]]:
        with self.lock:
            if module == "Users":
                return [dict(u) for u in self._users.values()]
            self.meta(module)
            return [dict(r.values) for r in self._records.values() if r.module == module]

    def records(self, module: str) -> list[Record]:
        """Live records of a module in crmid order (the store's own objects: hold the lock)."""
        if module == "Users":
            return [
                Record("Users", int(uid.split("x")[1]), values, self.clock.now())
                for uid, values in self._users.items()
            ]
        return [r for r in self._records.values() if r.module == module]

    def deletions(self, module: str | None = None) -> list[Deletion]:
        with self.lock:
            return [d for d in self._deletions if module is None or d.module == module]

    def label_of(self, module: str, values: dict[str, str]) -> str:
        parts = [values.get(name, "") for name in self.meta(module).spec.label_fields.split(",")]
        return " ".join(p for p in parts if p)

    # ---- writes ---------------------------------------------------------------------------------------
    def create(self, module: str, fields: dict[str, Any], *, check: bool = False) -> dict[str, str]:
        """Create a record; with check=True apply the webservice's rules (mandatory, unique accountname)."""
        with self.lock:
            meta = self.modules.get(module)
            if meta is None or module == "Users":
                raise KeyError(module)
            fields = dict(fields)
            if not check:
                fields.setdefault("assigned_user_id", ADMIN_ID)
            values = {f.name: f.empty_value() for f in meta.fields}
            if check:
                self._check_references(meta, fields)
            self._apply(meta, values, fields)
            if check:
                self._check_mandatory(meta, values)
                self._check_unique(meta, values, None)
            crmid = self._next_crmid
            self._next_crmid += 1
            now = self.clock.now().replace(microsecond=0)
            wall = format_wall(now)
            number_field = meta.spec.number_field
            if number_field:
                self._numbers[module] = self._numbers.get(module, 0) + 1
                values[number_field] = f"{meta.spec.number_prefix}{self._numbers[module]}"
            values.update(
                createdtime=wall,
                modifiedtime=wall,
                modifiedby=ADMIN_ID,
                source="WEBSERVICE",
                id=f"{meta.spec.id_prefix}x{crmid}",
            )
            self._derive(module, values)
            record = Record(module, crmid, self._ordered(meta, values), now)
            self._records[crmid] = record
            return dict(record.values)

    def update(self, record_id: str, fields: dict[str, Any], *, check: bool = False) -> dict[str, str]:
        """Full update: with check=True every mandatory field must be in `fields`; omitted ones are kept."""
        with self.lock:
            record = self._require(record_id)
            meta = self.meta(record.module)
            if check:
                self._check_mandatory(meta, {k: self._coerce(meta.field(k), v) for k, v in fields.items()})
            return self._write(record, fields, check=check)

    def revise(self, record_id: str, fields: dict[str, Any], *, check: bool = False) -> dict[str, str]:
        """Partial update."""
        with self.lock:
            return self._write(self._require(record_id), fields, check=check)

    def delete(self, record_id: str) -> None:
        with self.lock:
            record = self._require(record_id)
            del self._records[record.crmid]
            now = self.clock.now().replace(microsecond=0)
            self._deletions.append(Deletion(record.module, record.id, now))

    def set_modifiedtime(self, record_id: str, when: datetime) -> None:
        """Test hook: backdate or move a record's modifiedtime."""
        with self.lock:
            record = self._require(record_id)
            record.modified = when.replace(microsecond=0)
            record.values["modifiedtime"] = format_wall(record.modified)

    # ---- campaign relations ---------------------------------------------------------------------------
    def relate(self, campaign_id: str, record_id: str) -> None:
        """Relate a campaign and a Lead/Contact/Account/Potential (either order); relating twice is harmless."""
        with self.lock:
            a, b = self._require(campaign_id), self._require(record_id)
            if a.module != "Campaigns":
                a, b = b, a
            if a.module != "Campaigns" or b.module not in CAMPAIGN_PEERS:
                raise ValueError(f"cannot relate {campaign_id} and {record_id}")
            self._relations.add((a.crmid, b.crmid))

    def related(self, source_id: str, module: str) -> list[str]:
        """Ids of live `module` records related to `source_id` (a campaign, or a person for "Campaigns")."""
        with self.lock:
            source = self._require(source_id)
            if source.module == "Campaigns":
                crmids = {other for camp, other in self._relations if camp == source.crmid}
                if module == "Potentials":
                    crmids |= {
                        r.crmid
                        for r in self._records.values()
                        if r.module == "Potentials" and r.values.get("campaignid") == source.id
                    }
            else:
                crmids = {camp for camp, other in self._relations if other == source.crmid}
                if source.module == "Potentials" and source.values.get("campaignid"):
                    campaign = self._live(source.values["campaignid"])
                    if campaign:
                        crmids.add(campaign.crmid)
            found = [self._records[c] for c in sorted(crmids) if c in self._records]
            return [r.id for r in found if r.module == module]

    # ---- internals ------------------------------------------------------------------------------------
    def _add_admin(self) -> None:
        meta = self.modules["Users"]
        admin = {f.name: f.empty_value() for f in meta.fields}
        admin.update(
            user_name="admin",
            is_admin="on",
            email1="admin@example.com",
            status="Active",
            first_name="Local",
            last_name="Administrator",
            time_zone="UTC",
            date_format="yyyy-mm-dd",
            id=ADMIN_ID,
        )
        self._users[ADMIN_ID] = admin

    def _require(self, record_id: str) -> Record:
        record = self._live(record_id)
        if record is None:
            raise access_denied()
        return record

    def _write(self, record: Record, fields: dict[str, Any], *, check: bool) -> dict[str, str]:
        meta = self.meta(record.module)
        if check:
            self._check_references(meta, fields)
        values = dict(record.values)
        self._apply(meta, values, fields)
        if check:
            self._check_mandatory(meta, values)
            self._check_unique(meta, values, record.crmid)
        now = self.clock.now().replace(microsecond=0)
        values["modifiedtime"] = format_wall(now)
        values["modifiedby"] = ADMIN_ID
        self._derive(record.module, values)
        record.values = values
        record.modified = now
        return dict(values)

    def _apply(self, meta: ModuleMeta, values: dict[str, str], fields: dict[str, Any]) -> None:
        for name, raw in fields.items():
            spec = meta.field(name)
            # unknown fields and fields vtiger computes itself are ignored without an error
            if spec is None or not spec.editable or name in SYSTEM_FIELDS:
                continue
            values[name] = self._coerce(spec, raw)

    @staticmethod
    def _coerce(spec: FieldSpec | None, raw: Any) -> str:
        if isinstance(raw, list):
            # a JSON list is accepted, but only its first value is stored (recorded upstream behaviour)
            raw = raw[0] if raw else ""
        if raw is None:
            raw = ""
        if isinstance(raw, bool):
            raw = "1" if raw else "0"
        if isinstance(raw, dict):
            raw = json.dumps(raw)
        text = str(raw)
        if spec is None:
            return text
        if spec.type == "boolean":
            return "1" if text.strip().lower() in ("1", "true", "on", "yes") else "0"
        if spec.numeric:
            if text.strip() == "":
                return spec.empty_value()
            try:
                number = float(text)
            except ValueError:
                return spec.empty_value() or "0"
            if spec.type == "currency":
                return f"{number:.8f}"
            if spec.type == "integer":
                return str(int(number))
            if spec.double_format:
                return f"{number:.{spec.double_format[0]}f}"
            return text
        return text

    def _check_references(self, meta: ModuleMeta, fields: dict[str, Any]) -> None:
        """A reference must name a record of a module the field refers to (vtws_create checks the id's module
        prefix, not that the record exists). Checked for tasks only: the sandbox's other modules predate it."""
        if meta.name != "Calendar":
            return
        for name, raw in fields.items():
            spec = meta.field(name)
            if spec is None or spec.type != "reference" or not isinstance(raw, str) or not raw:
                continue
            if self.module_of(raw) not in spec.refers_to:
                raise WebserviceError("REFERENCE_INVALID", f"Invalid reference specified for {name}")

    @staticmethod
    def _check_mandatory(meta: ModuleMeta, values: dict[str, str]) -> None:
        for name in meta.mandatory():
            if not values.get(name, "").strip():
                raise WebserviceError("MANDATORY_FIELDS_MISSING", f"{name} does not have a value")

    def _check_unique(self, meta: ModuleMeta, values: dict[str, str], own: int | None) -> None:
        for spec in meta.fields:
            if not spec.isunique:
                continue
            key = values.get(spec.name, "").strip().casefold()
            for r in self._records.values():
                if (
                    r.module == meta.name
                    and r.crmid != own
                    and r.values.get(spec.name, "").strip().casefold() == key
                ):
                    # the integer code 0 is what the real server sends
                    raise WebserviceError(0, "Duplicate(s) detected!")

    def _derive(self, module: str, values: dict[str, str]) -> None:
        if module == "Calendar":
            values["activitytype"] = "Task"
        elif module == "ServiceContracts":
            start, due = _day(values.get("start_date", "")), _day(values.get("due_date", ""))
            values["planned_duration"] = str((due - start).days + 1) if start and due else ""
            if values.get("contract_status") == "Complete":
                end = _day(values.get("end_date", "")) or self.clock.now().date()
                values["end_date"] = end.isoformat()
                values["actual_duration"] = str((end - start).days + 1) if start else ""
            else:
                values["end_date"] = ""
                values["actual_duration"] = ""
        elif module == "Potentials":
            try:
                weighted = float(values.get("amount") or 0) * float(values.get("probability") or 0) / 100
            except ValueError:
                weighted = 0.0
            values["forecast_amount"] = f"{weighted:.8f}"

    @staticmethod
    def _ordered(meta: ModuleMeta, values: dict[str, str]) -> dict[str, str]:
        return {name: values.get(name, "") for name in meta.field_names()}


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def join_multi(values: list[str]) -> str:
    """How a multi-select value is written on the wire."""
    return MULTI_SEPARATOR.join(values)
