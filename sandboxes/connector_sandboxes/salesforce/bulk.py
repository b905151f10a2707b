"""Bulk API 2.0: query jobs with CSV result pages, and ingest jobs with per-record result CSVs.

Jobs run synchronously when they are created (query) or closed (ingest); their state only *reports*
InProgress for the first `polls_in_progress` status checks, so clients exercise their polling loop.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
import itertools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import soql
from .auth import USER_ID
from .store import SObjectError
from .values import format_datetime, id_suffix, normalize_id, to_csv
from .wire import ApiError, Request, Response, not_found

if TYPE_CHECKING:
    from .sandbox import SalesforceSandbox

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
FINAL_STATES = ("JobComplete", "Failed", "Aborted")


@dataclass
class Job:
    id: str
    kind: str  # query or ingest
    operation: str
    object: str
    created: dt.datetime
    api_version: str
    delimiter: str = "COMMA"
    line_ending: str = "LF"
    external_id: str | None = None
    state: str = "Open"
    polls: int = 0
    error: str | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)  # query results, or uploaded ingest rows
    upload: list[str] = field(default_factory=list)
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": USER_ID,
            "createdDate": format_datetime(self.created),
            "systemModstamp": format_datetime(self.created),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter,
        }
        if self.kind == "ingest":
            body["contentUrl"] = f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"
            if self.external_id:
                body["externalIdFieldName"] = self.external_id
        return body


class Jobs:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        with self._lock:
            n = next(self._ids)
        id15 = f"7505g0000{n:06d}"
        return id15 + id_suffix(id15)

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job

    def get(self, job_id: str, kind: str) -> Job:
        with self._lock:
            job = self._jobs.get(normalize_id(job_id) or "")
        if job is None or job.kind != kind:
            raise not_found()
        return job

    def list(self, kind: str) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.kind == kind]

    def count(self, kind: str) -> int:
        return len(self.list(kind))

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)


def _reported_state(sb: SalesforceSandbox, job: Job) -> str:
    """Count a status poll; a finished job reports InProgress for its first `polls_in_progress` polls."""
    if job.state in ("UploadComplete", "InProgress"):
        job.polls += 1
        finished = "Failed" if job.error else "JobComplete"
        job.state = "InProgress" if job.polls <= sb.bulk_polls_in_progress else finished
    return job.state


def _job_body(req: Request) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict):
        raise ApiError(400, "INVALIDJOB", "InvalidJob : request body must be a JSON object")
    return body


def _format(body: dict[str, Any]) -> tuple[str, str]:
    delimiter = str(body.get("columnDelimiter") or "COMMA")
    line_ending = str(body.get("lineEnding") or "LF")
    if delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
        raise ApiError(400, "INVALIDJOB", "InvalidJob : unsupported columnDelimiter or lineEnding")
    return delimiter, line_ending


def _write_csv(job: Job, header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=DELIMITERS[job.delimiter],
        lineterminator=LINE_ENDINGS[job.line_ending],
        quoting=csv.QUOTE_ALL,
    )
    writer.writerow(header)
    writer.writerows([[to_csv(v) for v in row] for row in rows])
    return out.getvalue()


# ----- query jobs ---------------------------------------------------------------------------------------------
def create_query_job(sb: SalesforceSandbox, req: Request) -> Response:
    body = _job_body(req)
    operation = body.get("operation")
    if operation not in ("query", "queryAll"):
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
    delimiter, line_ending = _format(body)
    try:
        parsed = soql.parse(str(body.get("query") or ""), sb.store, today=sb.store.now().date())
    except soql.SoqlError as exc:
        raise ApiError(400, exc.code, exc.message) from None
    if parsed.count:
        raise ApiError(400, "INVALIDJOB", "InvalidJob : Aggregate queries are not supported by Bulk API 2.0")
    if parsed.offset:
        raise ApiError(400, "INVALIDJOB", "InvalidJob : OFFSET is not supported by Bulk API 2.0")
    sb.note_query(parsed.obj.name)
    with sb.store.lock:
        rows = parsed.select_rows(sb.store, include_deleted=operation == "queryAll")
        flat = [parsed.flat_record(r, sb.store) for r in rows]
    job = Job(
        id=sb.jobs.new_id(),
        kind="query",
        operation=operation,
        object=parsed.obj.name,
        created=sb.store.now(),
        api_version=req.version,
        delimiter=delimiter,
        line_ending=line_ending,
        state="UploadComplete",
        columns=parsed.columns(),
        rows=flat,
    )
    sb.jobs.add(job)
    return Response.json(job.info())


def get_query_job(sb: SalesforceSandbox, req: Request, job_id: str) -> Response:
    job = sb.jobs.get(job_id, "query")
    _reported_state(sb, job)
    body = job.info()
    body.update(
        jobType="V2Query",
        numberRecordsProcessed=len(job.rows) if job.state == "JobComplete" else 0,
        retries=0,
        totalProcessingTime=0,
        isPkChunkingSupported=True,  # in the documented answer; every object this org serves has an Id index
    )
    return Response.json(body)


def query_results(sb: SalesforceSandbox, req: Request, job_id: str) -> Response:
    job = sb.jobs.get(job_id, "query")
    if job.state != "JobComplete":
        raise ApiError(400, "INVALIDJOBSTATE", f"Job is not in a valid state for this operation: {job.state}")
    offset = 0
    locator = req.params.get("locator", "")
    if locator and locator != "null":
        try:
            offset = int(base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)).decode())
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None
    max_records = req.params.get("maxRecords", "")
    size = int(max_records) if max_records.isdigit() and int(max_records) > 0 else len(job.rows)
    page = job.rows[offset : offset + size]
    end = offset + len(page)
    next_locator = (
        base64.urlsafe_b64encode(str(end).encode()).decode().rstrip("=") if end < len(job.rows) else "null"
    )
    return Response.csv(
        _write_csv(job, job.columns, page),
        headers={"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(len(page))},
    )


# ----- ingest jobs --------------------------------------------------------------------------------------------
def create_ingest_job(sb: SalesforceSandbox, req: Request) -> Response:
    body = _job_body(req)
    operation = body.get("operation")
    if operation not in INGEST_OPERATIONS:
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
    obj = sb.store.object_def(str(body.get("object") or ""))
    if obj is None:
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid object: {body.get('object')}")
    if str(body.get("contentType") or "CSV") != "CSV":
        raise ApiError(400, "INVALIDJOB", "InvalidJob : contentType must be CSV")
    external_id = body.get("externalIdFieldName")
    if operation == "upsert":
        fd = obj.field(str(external_id or ""))
        if fd is None or not (fd.external_id or fd.name == "Id"):
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid external id field: {external_id}")
        external_id = fd.name
    delimiter, line_ending = _format(body)
    job = Job(
        id=sb.jobs.new_id(),
        kind="ingest",
        operation=str(operation),
        object=obj.name,
        created=sb.store.now(),
        api_version=req.version,
        delimiter=delimiter,
        line_ending=line_ending,
        external_id=external_id if operation == "upsert" else None,
    )
    sb.jobs.add(job)
    return Response.json(job.info())


def upload_batch(sb: SalesforceSandbox, req: Request, job_id: str) -> Response:
    job = sb.jobs.get(job_id, "ingest")
    if job.state != "Open":
        raise ApiError(409, "INVALIDJOBSTATE", f"Job is not in a valid state for this operation: {job.state}")
    job.upload.append(req.body.decode("utf-8-sig", "replace"))
    return Response.empty(201)


def patch_job(sb: SalesforceSandbox, req: Request, job_id: str, kind: str) -> Response:
    job = sb.jobs.get(job_id, kind)
    state = _job_body(req).get("state")
    if state == "Aborted":
        if job.state in FINAL_STATES:
            raise ApiError(
                409, "INVALIDJOBSTATE", f"Job is not in a valid state for this operation: {job.state}"
            )
        job.state = "Aborted"
    elif state == "UploadComplete" and kind == "ingest":
        if job.state != "Open":
            raise ApiError(
                409, "INVALIDJOBSTATE", f"Job is not in a valid state for this operation: {job.state}"
            )
        _run_ingest(sb, job)
        job.state = "UploadComplete"
    else:
        raise ApiError(400, "INVALIDJOBSTATE", f"Invalid state: {state}")
    return Response.json(job.info())


def get_ingest_job(sb: SalesforceSandbox, req: Request, job_id: str) -> Response:
    job = sb.jobs.get(job_id, "ingest")
    _reported_state(sb, job)
    done = job.state in FINAL_STATES
    body = job.info()
    body.update(
        jobType="V2Ingest",
        numberRecordsProcessed=len(job.successes) + len(job.failures) if done else 0,
        numberRecordsFailed=len(job.failures) if done else 0,
        retries=0,
        totalProcessingTime=0,
        apiActiveProcessingTime=0,
        apexProcessingTime=0,
    )
    if job.state == "Failed" and job.error:
        body["errorMessage"] = job.error
    return Response.json(body)


def ingest_results(sb: SalesforceSandbox, req: Request, job_id: str, which: str) -> Response:
    job = sb.jobs.get(job_id, "ingest")
    if job.state not in FINAL_STATES:
        raise ApiError(400, "INVALIDJOBSTATE", f"Job is not in a valid state for this operation: {job.state}")
    if which == "successfulResults":
        return Response.csv(_write_csv(job, ["sf__Id", "sf__Created", *job.columns], job.successes))
    if which == "failedResults":
        return Response.csv(_write_csv(job, ["sf__Id", "sf__Error", *job.columns], job.failures))
    return Response.csv(_write_csv(job, job.columns, []))


def delete_job(sb: SalesforceSandbox, req: Request, job_id: str, kind: str) -> Response:
    job = sb.jobs.get(job_id, kind)
    sb.jobs.remove(job.id)
    return Response.empty()


def list_jobs(sb: SalesforceSandbox, req: Request, kind: str) -> Response:
    return Response.json(
        {"done": True, "records": [j.info() for j in sb.jobs.list(kind)], "nextRecordsUrl": None}
    )


def _run_ingest(sb: SalesforceSandbox, job: Job) -> None:
    header: list[str] | None = None
    rows: list[list[str]] = []
    for chunk in job.upload:
        reader = csv.reader(io.StringIO(chunk, newline=""), delimiter=DELIMITERS[job.delimiter])
        chunk_rows = [r for r in reader if r]
        if not chunk_rows:
            continue
        if header is None:
            header = chunk_rows[0]
        elif chunk_rows[0] != header:
            job.error = "InvalidBatch : all uploads of a job must have the same header"
            return
        rows.extend(chunk_rows[1:])
    if header is None:
        job.error = "InvalidBatch : no data uploaded"
        return
    job.columns = header
    obj = sb.store.object_def(job.object)
    assert obj is not None
    unknown = [c for c in header if obj.field(c) is None]
    if unknown:
        job.error = f"InvalidBatch : Field name not found : {unknown[0]}"
        return
    if job.operation in ("delete", "hardDelete") and [c.lower() for c in header] != ["id"]:
        job.error = "InvalidBatch : The 'delete' batch must contain only 'Id'"
        return
    with sb.store.lock:
        for row in rows:
            record_id = ""
            try:
                values = dict(zip(header, row, strict=False))
                record_id, created = _ingest_one(sb, job, values)
                job.successes.append([record_id, "true" if created else "false", *row])
            except SObjectError as exc:
                job.failures.append(
                    [
                        record_id or _row_id(header, row),
                        f"{exc.code}:{exc.message}:{','.join(exc.fields)} --",
                        *row,
                    ]
                )


def _row_id(header: list[str], row: list[str]) -> str:
    lowered = [h.lower() for h in header]
    if "id" in lowered and lowered.index("id") < len(row):
        return normalize_id(row[lowered.index("id")]) or ""
    return ""


def _ingest_one(sb: SalesforceSandbox, job: Job, values: dict[str, str]) -> tuple[str, bool]:
    store = sb.store
    given_id = next((v for k, v in values.items() if k.lower() == "id"), "")
    # Bulk semantics: an empty cell leaves the field alone, #N/A sets it to null.
    fields: dict[str, Any] = {
        k: (None if v == "#N/A" else v) for k, v in values.items() if v != "" and k.lower() != "id"
    }
    if job.operation == "insert":
        if sb.faults.row_locked(None):
            raise SObjectError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
        return store.insert(job.object, fields, api=True, from_csv=True), True
    if job.operation == "upsert" and job.external_id != "Id":
        key = values.get(job.external_id or "", "")
        match = store.find(job.object, job.external_id or "", key) if key else None
        if match is None:
            if sb.faults.row_locked(None):
                raise SObjectError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
            return store.insert(job.object, fields, api=True, from_csv=True), True
        given_id = match["Id"]
        fields.pop(job.external_id or "", None)
    elif job.operation == "upsert" and not given_id:
        return store.insert(job.object, fields, api=True, from_csv=True), True
    norm = normalize_id(given_id)
    if not given_id:
        raise SObjectError("MISSING_ARGUMENT", f"Id not specified in an {job.operation} call", [])
    if norm is None:
        raise SObjectError("MALFORMED_ID", f"malformed id {given_id}", ["Id"])
    if sb.faults.row_locked(norm):
        raise SObjectError(
            "UNABLE_TO_LOCK_ROW", f"unable to obtain exclusive access to this record or 1 records: {norm}"
        )
    if job.operation == "delete":
        store.delete(job.object, norm, api=True)
    elif job.operation == "hardDelete":
        store.delete(job.object, norm, api=True)
        store.purge(job.object, norm)  # skips the recycle bin: queryAll never sees it again
    else:
        store.update(job.object, norm, fields, api=True, from_csv=True)
    return norm, False
