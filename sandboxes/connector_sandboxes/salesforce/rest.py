"""REST resources: versions, limits, query/queryAll with cursors, sObject CRUD and describe, sObject Collections."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import soql
from .objects import FieldDef, ObjectDef
from .store import SObjectError
from .values import normalize_id, to_json
from .wire import ApiError, Request, Response, not_found

if TYPE_CHECKING:
    from .sandbox import SalesforceSandbox

COLLECTION_LIMIT = 200
# Salesforce processes a collection of mixed types in chunks, a chunk being a run of consecutive records of one
# type ({a1, a2, c1, a3} is three), and takes at most 10 chunks a call (the sObject Collections docs). The
# documented text is Apex's; the error code of the REST answer is not documented, INVALID_BATCH_REQUEST is ours.
COLLECTION_CHUNKS = 10
MIN_BATCH, MAX_BATCH = 200, 2000
ROLLED_BACK = SObjectError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)
_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
}


@dataclass
class Cursor:
    records: list[dict[str, Any]]
    batch: int
    endpoint: str  # query or queryAll


class Cursors:
    """Open query cursors (snapshots taken at query time); the oldest are dropped past a cap, like expiry."""

    def __init__(self, cap: int = 64) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[str, Cursor] = OrderedDict()
        self._cap = cap

    def add(self, cursor: Cursor) -> str:
        locator = "01g5g0000" + secrets.token_hex(5).upper()[:9]
        with self._lock:
            self._open[locator] = cursor
            while len(self._open) > self._cap:
                self._open.popitem(last=False)
        return locator

    def get(self, locator: str) -> Cursor | None:
        with self._lock:
            return self._open.get(locator)


# ----- discovery ----------------------------------------------------------------------------------------------
def versions(sb: SalesforceSandbox) -> Response:
    return Response.json(
        [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in sb.versions]
    )


def resources(sb: SalesforceSandbox, req: Request) -> Response:
    base = f"/services/data/v{req.version}"
    names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs")
    return Response.json({name: f"{base}/{name}" for name in names})


def limits(sb: SalesforceSandbox, req: Request) -> Response:
    used = sb.api_usage
    return Response.json(
        {
            "DailyApiRequests": {"Max": sb.daily_limit, "Remaining": max(sb.daily_limit - used, 0)},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - sb.jobs.count("query")},
            "DailyBulkV2QueryFileStorageMB": {"Max": 1048576, "Remaining": 1048576},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000 - sb.jobs.count("ingest")},
        }
    )


# ----- query --------------------------------------------------------------------------------------------------
def query(sb: SalesforceSandbox, req: Request, *, include_deleted: bool) -> Response:
    text = req.params.get("q")
    if text is None:
        raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
    try:
        parsed = soql.parse(text, sb.store, today=sb.store.now().date())
    except soql.SoqlError as exc:
        raise ApiError(400, exc.code, exc.message) from None
    sb.note_query(parsed.obj.name)
    store = sb.store
    with store.lock:
        rows = parsed.select_rows(store, include_deleted=include_deleted)
        if parsed.count and parsed.count_field is not None:
            counted = sum(1 for r in rows if parsed.count_field.value(r, store) is not None)
            aggregate = {"attributes": {"type": "AggregateResult"}, parsed.count_alias: counted}
            return Response.json({"totalSize": 1, "done": True, "records": [aggregate]})
        if parsed.count:
            return Response.json({"totalSize": len(rows), "done": True, "records": []})
        records = [parsed.json_record(r, store, req.version) for r in rows]
    endpoint = "queryAll" if include_deleted else "query"
    cursor = Cursor(records=records, batch=_batch_size(sb, req), endpoint=endpoint)
    return _page(sb, req, cursor, None, 0)


def query_more(sb: SalesforceSandbox, req: Request, locator: str) -> Response:
    cursor_id, _, offset = locator.partition("-")
    cursor = sb.cursors.get(cursor_id)
    if cursor is None or not offset.isdigit() or int(offset) > len(cursor.records):
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return _page(sb, req, cursor, cursor_id, int(offset))


def _batch_size(sb: SalesforceSandbox, req: Request) -> int:
    batch = sb.batch_size
    for option in req.header("sforce-query-options").split(","):
        name, _, value = option.strip().partition("=")
        if name.strip().lower() == "batchsize" and value.strip().isdigit():
            batch = int(value)
    return min(max(batch, MIN_BATCH), MAX_BATCH)


def _page(
    sb: SalesforceSandbox, req: Request, cursor: Cursor, cursor_id: str | None, offset: int
) -> Response:
    end = offset + cursor.batch
    body: dict[str, Any] = {"totalSize": len(cursor.records), "done": end >= len(cursor.records)}
    if not body["done"]:
        cursor_id = cursor_id or sb.cursors.add(cursor)
        body["nextRecordsUrl"] = f"/services/data/v{req.version}/{cursor.endpoint}/{cursor_id}-{end}"
    body["records"] = cursor.records[offset:end]
    return Response.json(body)


# ----- single records -----------------------------------------------------------------------------------------
def object_or_404(sb: SalesforceSandbox, name: str) -> ObjectDef:
    obj = sb.store.object_def(name)
    if obj is None:
        raise not_found()
    return obj


def global_describe(sb: SalesforceSandbox, req: Request) -> Response:
    return Response.json(
        {
            "encoding": "UTF-8",
            "maxBatchSize": COLLECTION_LIMIT,
            "sobjects": [_object_summary(obj, req.version) for obj in sb.store.objects.values()],
        }
    )


def sobject_info(sb: SalesforceSandbox, req: Request, name: str) -> Response:
    obj = object_or_404(sb, name)
    return Response.json({"objectDescribe": _object_summary(obj, req.version), "recentItems": []})


def describe(sb: SalesforceSandbox, req: Request, name: str) -> Response:
    obj = object_or_404(sb, name)
    with sb.store.lock:
        fields = [_field_describe(sb, obj, fd) for fd in obj.fields.values()]
    body = _object_summary(obj, req.version)
    body.update(fields=fields, childRelationships=[], recordTypeInfos=[])
    return Response.json(body)


def _object_summary(obj: ObjectDef, version: str) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    writable = obj.name not in ("LeadStatus", "OpportunityStage", "User")
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "keyPrefix": obj.key_prefix,
        "custom": obj.custom,
        "queryable": True,
        "createable": writable,
        "updateable": writable,
        "deletable": writable,
        "retrieveable": True,
        "searchable": obj.name in ("Lead", "Contact", "Account", "Opportunity", "Campaign", "Contract"),
        "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
    }


def _field_describe(sb: SalesforceSandbox, obj: ObjectDef, fd: FieldDef) -> dict[str, Any]:
    values = sb.store.picklist_values(obj.name, fd) if fd.type in ("picklist", "combobox") else ()
    default = fd.default
    if obj.name == "Lead" and fd.name == "Status":
        default = next((r["ApiName"] for r in sb.store.all("LeadStatus") if r["IsDefault"]), None)
    return {
        "name": fd.name,
        "type": fd.type,
        "label": fd.label,
        "custom": fd.custom,
        "createable": fd.createable,
        "updateable": fd.updateable,
        "nillable": fd.nillable,
        "length": fd.length,
        "picklistValues": [
            {"active": True, "defaultValue": v == default, "label": v, "validFor": None, "value": v}
            for v in values
        ],
        "restrictedPicklist": fd.restricted,
        "referenceTo": list(fd.targets),
        "relationshipName": fd.relationship,
        "polymorphicForeignKey": len(fd.targets) > 1,
        "externalId": fd.external_id,
        "idLookup": fd.name == "Id" or fd.external_id,
        "unique": fd.unique,
        "caseSensitive": False,
        "calculated": not fd.createable and not fd.updateable and fd.name not in ("Id", "IsDeleted"),
        "defaultedOnCreate": fd.type == "boolean"
        or fd.default is not None
        or fd.name in ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "OwnerId"),
        "filterable": True,
        "sortable": True,
        "soapType": _SOAP_TYPES.get(fd.type, "xsd:string"),
    }


def _record_json(obj: ObjectDef, row: dict[str, Any], version: str, only: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attributes": {"type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{row['Id']}"}
    }
    for name in only or list(obj.fields):
        fd = obj.field(name)
        if fd is None:
            raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{obj.name}'.")
        out[fd.name] = to_json(row.get(fd.name))
    return out


def _record_error(exc: SObjectError) -> ApiError:
    status = 404 if exc.code in ("ENTITY_IS_DELETED",) else 400
    return ApiError(status, exc.code, exc.message, exc.fields)


def _fields_from_body(req: Request) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object for an sObject")
    return {k: v for k, v in body.items() if k != "attributes"}


def get_record(sb: SalesforceSandbox, req: Request, name: str, record_id: str) -> Response:
    obj = object_or_404(sb, name)
    row = sb.store.get(obj.name, record_id) if normalize_id(record_id) else None
    if row is None or row["IsDeleted"]:
        raise not_found()
    only = [f.strip() for f in req.params["fields"].split(",")] if req.params.get("fields") else None
    return Response.json(_record_json(obj, row, req.version, only))


def create_record(sb: SalesforceSandbox, req: Request, name: str) -> Response:
    obj = object_or_404(sb, name)
    fields = _fields_from_body(req)
    if sb.faults.row_locked(None):
        raise _lock_error(None)
    try:
        record_id = sb.store.insert(obj.name, fields, api=True)
    except SObjectError as exc:
        raise _record_error(exc) from None
    return Response.json({"id": record_id, "success": True, "errors": []}, status=201)


def update_record(sb: SalesforceSandbox, req: Request, name: str, record_id: str) -> Response:
    obj = object_or_404(sb, name)
    fields = _fields_from_body(req)
    _existing_or_404(sb, obj, record_id)
    if sb.faults.row_locked(normalize_id(record_id)):
        raise _lock_error(record_id)
    try:
        sb.store.update(obj.name, record_id, fields, api=True)
    except SObjectError as exc:
        raise _record_error(exc) from None
    return Response.empty()


def delete_record(sb: SalesforceSandbox, req: Request, name: str, record_id: str) -> Response:
    obj = object_or_404(sb, name)
    _existing_or_404(sb, obj, record_id)
    if sb.faults.row_locked(normalize_id(record_id)):
        raise _lock_error(record_id)
    try:
        sb.store.delete(obj.name, record_id, api=True)
    except SObjectError as exc:
        raise _record_error(exc) from None
    return Response.empty()


def upsert_record(sb: SalesforceSandbox, req: Request, name: str, field_name: str, value: str) -> Response:
    """`PATCH /sobjects/<Type>/<ExternalIdField>/<value>`: update the match or create one."""
    obj = object_or_404(sb, name)
    fd = obj.field(field_name)
    if fd is None or not (fd.external_id or fd.name == "Id"):
        raise not_found()
    fields = _fields_from_body(req)
    try:
        with sb.store.lock:
            match = sb.store.find(obj.name, fd.name, normalize_id(value) if fd.name == "Id" else value)
            if match is None:
                if fd.name != "Id":
                    fields[fd.name] = value
                record_id = sb.store.insert(obj.name, fields, api=True)
                return Response.json({"id": record_id, "success": True, "errors": [], "created": True}, 201)
            sb.store.update(obj.name, match["Id"], fields, api=True)
    except SObjectError as exc:
        raise _record_error(exc) from None
    return Response.json({"id": match["Id"], "success": True, "errors": [], "created": False})


def _existing_or_404(sb: SalesforceSandbox, obj: ObjectDef, record_id: str) -> None:
    row = sb.store.get(obj.name, record_id) if normalize_id(record_id) else None
    if row is None:
        raise not_found()
    if row["IsDeleted"]:
        raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])


def _lock_error(record_id: str | None) -> ApiError:
    exc = _lock_sobject_error(record_id)
    return ApiError(400, exc.code, exc.message, exc.fields)


def _lock_sobject_error(record_id: str | None) -> SObjectError:
    return SObjectError(
        "UNABLE_TO_LOCK_ROW",
        f"unable to obtain exclusive access to this record or 1 records: {record_id or ''}".rstrip(": "),
    )


# ----- sObject Collections ------------------------------------------------------------------------------------
def collection_write(sb: SalesforceSandbox, req: Request) -> Response:
    """`POST` (create) or `PATCH` (update) `/composite/sobjects` with up to 200 records."""
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", 'Expected {"allOrNone": bool, "records": [...]}')
    records: list[Any] = body["records"]
    if len(records) > COLLECTION_LIMIT:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    creating = req.method == "POST"
    prepared: list[tuple[ObjectDef, str | None, dict[str, Any]]] = []
    for record in records:
        if not isinstance(record, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
        type_name = (record.get("attributes") or {}).get("type")
        obj = sb.store.object_def(type_name) if isinstance(type_name, str) else None
        if obj is None:
            raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.", [])
        fields = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
        unknown = [k for k in fields if obj.field(k) is None]
        if unknown:
            raise ApiError(
                400, "INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {obj.name}", unknown
            )
        record_id = record.get("id", record.get("Id"))
        prepared.append((obj, record_id if isinstance(record_id, str) else None, fields))
    chunks = sum(1 for n, item in enumerate(prepared) if n == 0 or item[0].name != prepared[n - 1][0].name)
    if chunks > COLLECTION_CHUNKS:
        raise ApiError(
            400,
            "INVALID_BATCH_REQUEST",
            f"Cannot have more than {COLLECTION_CHUNKS} chunks in a single operation. Please rearrange the "
            "data to reduce chunking.",
        )
    all_or_none = bool(body.get("allOrNone", False))

    def write(obj: ObjectDef, record_id: str | None, fields: dict[str, Any]) -> str:
        if creating:
            if record_id is not None:
                raise SObjectError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            if sb.faults.row_locked(None):
                raise _lock_sobject_error(None)
            return sb.store.insert(obj.name, fields, api=True)
        if record_id is None:
            raise SObjectError("MISSING_ARGUMENT", "Id not specified in an update call", [])
        if sb.faults.row_locked(normalize_id(record_id)):
            raise _lock_sobject_error(record_id)
        sb.store.update(obj.name, record_id, fields, api=True)
        return normalize_id(record_id) or record_id

    return _run_collection(sb, prepared, all_or_none, lambda item: write(*item), report_id=not creating)


def collection_delete(sb: SalesforceSandbox, req: Request) -> Response:
    """`DELETE /composite/sobjects?ids=a,b&allOrNone=false`."""
    ids = [i for i in req.params.get("ids", "").split(",") if i]
    if not ids:
        raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
    if len(ids) > COLLECTION_LIMIT:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    all_or_none = req.params.get("allOrNone", "false").lower() == "true"

    def remove(record_id: str) -> str:
        norm = normalize_id(record_id)
        if norm is None:
            raise SObjectError("MALFORMED_ID", f"malformed id {record_id}", [])
        sobject = sb.store.sobject_of(norm)
        if sobject is None:
            raise SObjectError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        if sb.faults.row_locked(norm):
            raise _lock_sobject_error(norm)
        sb.store.delete(sobject, norm, api=True)
        return norm

    return _run_collection(sb, ids, all_or_none, remove, report_id=True)


def _run_collection(
    sb: SalesforceSandbox,
    items: list[Any],
    all_or_none: bool,
    apply: Callable[[Any], str],
    *,
    report_id: bool,
) -> Response:
    results: list[dict[str, Any]] = []
    failed = False
    with sb.store.transaction() as txn:
        for item in items:
            given = item if isinstance(item, str) else item[1]
            try:
                record_id = apply(item)
                results.append({"id": record_id, "success": True, "errors": []})
            except SObjectError as exc:
                failed = True
                result: dict[str, Any] = {"success": False, "errors": [exc.as_error()]}
                # A malformed id is no id: the documented examples answer MALFORMED_ID without one.
                if report_id and given is not None and normalize_id(given):
                    result = {"id": normalize_id(given), **result}
                results.append(result)
        if failed and all_or_none:
            txn.rollback()
            for n, result in enumerate(results):
                if result["success"]:
                    rolled: dict[str, Any] = {"success": False, "errors": [ROLLED_BACK.as_error()]}
                    given = items[n] if isinstance(items[n], str) else items[n][1]
                    if report_id and given is not None and normalize_id(given):
                        rolled = {"id": normalize_id(given), **rolled}
                    results[n] = rolled
    return Response.json(results)
