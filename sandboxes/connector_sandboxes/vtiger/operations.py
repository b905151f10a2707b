"""The webservice operations: request parameters in, a JSON envelope (or an empty 500) out.

Transport-free, so the HTTP handler stays a thin shell. Every quirk reproduced here was observed on a real
8.2.0 instance (see the shared WEBSERVICE.md and the recorded request/response pairs).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from connector_sandboxes.vtiger import vtql
from connector_sandboxes.vtiger.describe import listtypes_payload, relatedtypes_payload
from connector_sandboxes.vtiger.faults import Faults
from connector_sandboxes.vtiger.sessions import Sessions
from connector_sandboxes.vtiger.store import CAMPAIGN_PEERS, ID_PATTERN, Record, VtigerStore
from connector_sandboxes.vtiger.wserrors import (
    EmptyServerError,
    WebserviceError,
    access_denied,
    no_such_module,
    wrong_relation,
)

API_VERSION = "0.22"
VTIGER_VERSION = "8.2.0"
SYNC_PAGE = 100
RELATED_CAP = 100

Params = dict[str, str]
Handler = Callable[[Params], Any]


class Operations:
    def __init__(self, store: VtigerStore, sessions: Sessions, faults: Faults) -> None:
        self.store = store
        self.sessions = sessions
        self.faults = faults
        self.calls: Counter[str] = Counter()
        # VTQL queries (query, query_related) per module in their FROM: what was read
        self.queried: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        # operation -> (HTTP method, needs a session, handler)
        self.table: dict[str, tuple[str, bool, Handler]] = {
            "getchallenge": ("GET", False, self.getchallenge),
            "login": ("POST", False, self.login),
            "logout": ("POST", True, self.logout),
            "listtypes": ("GET", True, self.listtypes),
            "describe": ("GET", True, self.describe),
            "create": ("POST", True, self.create),
            "retrieve": ("GET", True, self.retrieve),
            "update": ("POST", True, self.update),
            "revise": ("POST", True, self.revise),
            "delete": ("POST", True, self.delete),
            "query": ("GET", True, self.query),
            "sync": ("GET", True, self.sync),
            "relatedtypes": ("GET", True, self.relatedtypes),
            "add_related": ("POST", True, self.add_related),
            "retrieve_related": ("GET", True, self.retrieve_related),
            "query_related": ("GET", True, self.query_related),
            "convertlead": ("POST", True, self.convertlead),
        }

    def handle(self, method: str, params: Params) -> tuple[int, dict[str, Any] | None]:
        """Answer one request: (HTTP status, JSON body or None for an empty body)."""
        operation = params.get("operation", "")
        entry = self.table.get(operation)
        if entry is None:
            return 500, None
        # the session's lock covers the whole request, the configured latency (vtiger's own work) included
        with self.sessions.serving(params.get("sessionName")):
            return self._handle(operation, entry, method, params)

    def _handle(
        self, operation: str, entry: tuple[str, bool, Handler], method: str, params: Params
    ) -> tuple[int, dict[str, Any] | None]:
        if self.faults.latency > 0:
            time.sleep(self.faults.latency)
        self.faults.hold(operation)
        if self.faults.should_fail(operation):
            return 500, None
        with self._calls_lock:
            self.calls[operation] += 1
        wanted, needs_session, handler = entry
        try:
            if method != wanted:
                if operation == "login":
                    # the login code reads POST data only, so a GET never carries a valid token
                    raise WebserviceError("INVALID_AUTH_TOKEN", "Specified token is invalid or expired")
                raise access_denied("" if wanted == "POST" else f" for {operation}")
            if needs_session:
                self.sessions.check(params.get("sessionName"), self.faults.expire_sessions_after)
            with self.store.lock:
                result = handler(params)
        except WebserviceError as error:
            return 200, error.envelope()
        except EmptyServerError:
            return 500, None
        return 200, {"success": True, "result": result}

    # ---- auth -----------------------------------------------------------------------------------------
    def getchallenge(self, params: Params) -> Any:
        return self.sessions.challenge(params.get("username"))

    def login(self, params: Params) -> Any:
        username = params.get("username", "")
        if username not in self.sessions.users:
            raise WebserviceError("INVALID_USER_CREDENTIALS", "Invalid username or password")
        name = self.sessions.login(username, params.get("accessKey", ""))
        return {
            "username": username,
            "first_name": "Local",
            "last_name": "Administrator",
            "email": "admin@example.com",
            "time_zone": "UTC",
            "hour_format": "12",
            "date_format": "yyyy-mm-dd",
            "is_admin": "on",
            "call_duration": "5",
            "other_event_duration": "5",
            "sessionName": name,
            "userId": "19x1",
            "version": API_VERSION,
            "vtigerVersion": VTIGER_VERSION,
        }

    def logout(self, params: Params) -> Any:
        if self.faults.logout_broken:
            raise EmptyServerError
        self.sessions.logout(params.get("sessionName", ""))
        return {"message": "successfull"}  # sic

    # ---- metadata -------------------------------------------------------------------------------------
    def listtypes(self, params: Params) -> Any:
        raw = params.get("fieldTypeList")
        types: list[str] | None = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = [raw]
            types = [str(t) for t in (parsed if isinstance(parsed, list) else [parsed])]
        return listtypes_payload(self.store.modules, types)

    def describe(self, params: Params) -> Any:
        return self.store.describe(self._module(params.get("elementType", "")))

    def relatedtypes(self, params: Params) -> Any:
        return relatedtypes_payload(self._module(params.get("elementType", "")))

    def _module(self, name: str) -> str:
        if name not in self.store.modules:
            raise no_such_module(name)
        return name

    # ---- records --------------------------------------------------------------------------------------
    def create(self, params: Params) -> Any:
        module = params.get("elementType", "")
        if module not in self.store.modules or module == "Users":
            raise no_such_module(module)
        element = self._element(params, "")
        record = self.store.create(module, element, check=True)
        return self._with_label(module, record)

    def retrieve(self, params: Params) -> Any:
        record_id = params.get("id", "")
        self._check_id(record_id)
        record = self.store.get(record_id)
        if record is None:
            raise access_denied()
        module = self.store.module_of(record_id) or "Users"
        return self._with_label(module, record)

    def update(self, params: Params) -> Any:
        element = self._element(params, " for id")
        record_id = str(element.get("id", ""))
        if not record_id:
            raise access_denied(" for id")
        self._check_id(record_id)
        record = self.store.update(record_id, element, check=True)
        return self._with_label(self.store.module_of(record_id) or "", record)

    def revise(self, params: Params) -> Any:
        element = self._element(params, " for id")
        record_id = str(element.get("id", ""))
        if not record_id:
            raise access_denied(" for id")
        self._check_id(record_id)
        record = self.store.revise(record_id, element, check=True)
        return self._with_label(self.store.module_of(record_id) or "", record)

    def delete(self, params: Params) -> Any:
        record_id = params.get("id", "")
        self._check_id(record_id)
        self.store.delete(record_id)
        return {"status": "successful"}

    def _element(self, params: Params, denied_suffix: str) -> dict[str, Any]:
        try:
            element = json.loads(params.get("element", ""))
        except ValueError:
            element = None
        if not isinstance(element, dict):
            raise access_denied(denied_suffix)
        return element

    def _check_id(self, record_id: str) -> None:
        if not ID_PATTERN.match(record_id or ""):
            raise WebserviceError("INVALID_ID_ATTRIBUTE", "Id specified is incorrect")

    def _with_label(self, module: str, record: dict[str, str]) -> dict[str, str]:
        # create/retrieve/update/revise answers carry `label`; query, sync and retrieve_related rows do not
        record["label"] = self.store.label_of(module, record)
        return record

    # ---- query and sync -------------------------------------------------------------------------------
    def query(self, params: Params) -> Any:
        parsed = vtql.parse(params.get("query", ""))
        with self._calls_lock:
            self.queried[parsed.module] += 1
        return vtql.execute(parsed, self.store)

    def sync(self, params: Params) -> Any:
        module = params.get("elementType")
        if self.faults.sync_broken or not module:
            raise EmptyServerError
        raw = params.get("modifiedTime", "0")
        try:
            since = int(float(raw))
        except ValueError:
            since = 0
        if since == 0 and self.faults.sync_zero_fails:
            raise EmptyServerError
        if module not in self.store.modules:
            raise no_such_module(module)
        events: list[tuple[int, int, Record | str]] = []
        for record in self.store.records(module):
            stamp = int(record.modified.timestamp())
            if stamp > since:
                events.append((stamp, record.crmid, record))
        for deletion in self.store.deletions(module):
            stamp = int(deletion.when.timestamp())
            if stamp > since:
                events.append((stamp, int(deletion.id.split("x")[1]), deletion.id))
        events.sort(key=lambda e: (e[0], e[1]))
        more = False
        if len(events) > SYNC_PAGE:
            # every change in the boundary second goes into this page, so a page may exceed 100
            boundary = events[SYNC_PAGE - 1][0]
            page = [e for e in events if e[0] <= boundary]
            more = len(page) < len(events)
            events = page
        last = max((e[0] for e in events), default=since)
        ordered = sorted(events, key=lambda e: e[1])
        return {
            "updated": [dict(e[2].values) for e in ordered if isinstance(e[2], Record)],
            "deleted": [e[2] for e in ordered if isinstance(e[2], str)],
            "more": more,
            "lastModifiedTime": last,
        }

    # ---- campaign relations ---------------------------------------------------------------------------
    def relatedtypes_allowed(self, source_module: str, label: str) -> str | None:
        """The related module for (source module, relation label), or None when vtiger has no such relation."""
        if source_module == "Campaigns" and label in CAMPAIGN_PEERS:
            return label
        if source_module in CAMPAIGN_PEERS and label == "Campaigns":
            return "Campaigns"
        return None

    def add_related(self, params: Params) -> Any:
        source_id, related_id = params.get("sourceRecordId", ""), params.get("relatedRecordId", "")
        source_module, related_module = self.store.module_of(source_id), self.store.module_of(related_id)
        if self.store.get(source_id) is None or self.store.get(related_id) is None:
            raise access_denied()
        label = params.get("relationIdLabel") or related_module or ""
        if related_module != self.relatedtypes_allowed(source_module or "", label):
            raise wrong_relation()
        self.store.relate(source_id, related_id)
        return {"message": "successfull"}  # sic

    def _related_source(self, params: Params, label: str) -> tuple[str, str]:
        source_id = params.get("id", "")
        self._check_id(source_id)
        if self.store.get(source_id) is None:
            raise access_denied()
        related = self.relatedtypes_allowed(self.store.module_of(source_id) or "", label)
        if related is None:
            raise wrong_relation()
        return source_id, related

    def retrieve_related(self, params: Params) -> Any:
        source_id, related = self._related_source(params, params.get("relatedLabel", ""))
        if params.get("relatedType", related) != related:
            raise wrong_relation()
        ids = self.store.related(source_id, related)[:RELATED_CAP]
        return [self.store.get(i) for i in ids]

    def query_related(self, params: Params) -> Any:
        source_id, related = self._related_source(params, params.get("relatedLabel", ""))
        text = params.get("query", "")
        # Upstream splits the query on the literal, case-sensitive "WHERE", inserts its own id filter and
        # appends ";". Anything that does not survive that rewrite is reported as a wrong relation.
        head, found, tail = text.partition("WHERE")
        try:
            bare = vtql.parse(head + ";")
            if bare.where is not None or bare.order or bare.limit is not None or bare.offset:
                raise wrong_relation()
            if ";" in tail:
                raise wrong_relation()
            parsed = vtql.parse(f"{head}WHERE{tail};") if found else bare
        except vtql.QuerySyntaxError as error:
            raise wrong_relation() from error
        if parsed.module != related:
            raise wrong_relation()
        ids = set(self.store.related(source_id, related))
        if not ids:
            return []
        with self._calls_lock:
            self.queried[parsed.module] += 1
        return vtql.execute(parsed, self.store, only_ids=ids)

    # ---- lead conversion ------------------------------------------------------------------------------
    def convertlead(self, params: Params) -> Any:
        if self.faults.convertlead_broken:
            raise EmptyServerError
        element = self._element(params, "")
        lead_id = str(element.get("leadId", ""))
        lead = self.store.get(lead_id) if self.store.module_of(lead_id) == "Leads" else None
        if lead is None:
            raise access_denied()
        owner = str(element.get("assignedTo") or "19x1")
        entities = element.get("entities") or {}
        if not isinstance(entities, dict) or not entities:
            raise WebserviceError("MANDATORY_FIELDS_MISSING", "entities does not have a value")
        carried = {
            k: lead.get(k, "") for k in ("firstname", "lastname", "email", "phone", "mobile", "leadsource")
        }
        result: dict[str, str] = {}
        for module in ("Accounts", "Contacts", "Potentials"):
            spec = entities.get(module)
            if not isinstance(spec, dict) or not spec.get("create"):
                continue
            fields: dict[str, Any] = {k: v for k, v in spec.items() if k not in ("create", "name")}
            fields.setdefault("assigned_user_id", owner)
            if module == "Contacts":
                fields = {**carried, **fields}
                if "Accounts" in result:
                    fields.setdefault("account_id", result["Accounts"])
            if module == "Potentials":
                if "Accounts" in result:
                    fields.setdefault("related_to", result["Accounts"])
                if "Contacts" in result:
                    fields.setdefault("contact_id", result["Contacts"])
            created = self.store.create(module, fields, check=True)
            result[module] = created["id"]
        for campaign_id in self.store.related(lead_id, "Campaigns"):
            for peer in ("Contacts", "Accounts"):
                if peer in result:
                    self.store.relate(campaign_id, result[peer])
        # a converted lead leaves every Leads answer, like a deleted one
        self.store.delete(lead_id)
        return result
