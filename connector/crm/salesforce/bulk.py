"""Bulk API 2.0: query jobs streamed by locator, and update ingest jobs with their per-record results.

Both go through `SalesforceClient.request`, so a Bulk call gets the same retries, budget accounting and
re-login (with its `Content-Type: text/csv` and body intact) as any REST call.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from ...errors import UnreachableError
from ...progress import progress
from .client import SalesforceClient, has

log = structlog.get_logger(__name__)

POLL_FIRST = 0.2
POLL_MAX = 5.0
POLL_LIMIT = 720  # polls before giving up on a job (about an hour at the longest interval)
_CODE = re.compile(r"^([A-Z][A-Z0-9_]+):\s*(.*)$", re.S)


def parse_csv(text: str) -> list[dict[str, Any]]:
    """Rows of a Bulk CSV page; empty cells become None (Bulk writes null as an empty cell)."""
    reader = csv.DictReader(io.StringIO(text))
    return [{k: (v if v != "" else None) for k, v in row.items() if k is not None} for row in reader]


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return buf.getvalue()


def split_error(text: str | None) -> tuple[str | None, str]:
    """(`UNABLE_TO_LOCK_ROW`, message) from a Bulk `sf__Error` cell."""
    if not text:
        return None, ""
    match = _CODE.match(text.strip())
    if not match:
        return None, text.strip()
    return match.group(1), match.group(2).rstrip(":- ")


def _is_job(body: Any) -> bool:
    return has(body, id=str, state=str)


def _wait(client: SalesforceClient, kind: str, job_id: str) -> dict[str, Any]:
    interval = POLL_FIRST
    with progress(f"bulk {kind} job", unit="poll") as bar:
        for _ in range(POLL_LIMIT):
            info: dict[str, Any] = client.get_json(
                f"jobs/{kind}/{job_id}", what=f"bulk {kind} status", expect=_is_job
            )
            state = info.get("state")
            if state == "JobComplete":
                return info
            if state in ("Failed", "Aborted"):
                if kind == "ingest":
                    return info
                raise UnreachableError(f"bulk {kind} job {job_id} {state}: {info.get('errorMessage', '')}")
            bar.set_postfix_str(str(state))
            bar.update(1)
            client.policy.sleep(interval)
            interval = min(interval * 1.5, POLL_MAX)
    raise UnreachableError(f"bulk {kind} job {job_id} did not finish")


def query_pages(
    client: SalesforceClient,
    soql: str,
    *,
    include_deleted: bool,
    page_size: int,
    on_created: Callable[[], None] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Run a Bulk 2.0 query job and yield its result one locator page (at most `page_size` rows) at a time;
    `on_created` is called once the org has the job (its query runs after that moment)."""
    job = client.request_json(
        "POST",
        "jobs/query",
        json_body={
            "operation": "queryAll" if include_deleted else "query",
            "query": soql,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        },
        what="bulk query create",
        expect=_is_job,
    )
    job_id = str(job["id"])
    if on_created is not None:
        on_created()
    info = _wait(client, "query", job_id)
    log.info("salesforce.bulk.query.done", job=job_id, records=info.get("numberRecordsProcessed"))
    locator: str | None = None
    while True:
        params: dict[str, Any] = {"maxRecords": page_size}
        if locator:
            params["locator"] = locator
        resp = client.request(
            "GET",
            f"jobs/query/{job_id}/results",
            params=params,
            headers={"Accept": "text/csv"},
            what="bulk query results",
        )
        yield parse_csv(resp.text)
        locator = resp.headers.get("Sforce-Locator")
        if not locator or locator == "null":
            return


@dataclass
class IngestResult:
    job_id: str
    calls: int = 0
    failed: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # id -> (code, message)
    unprocessed: list[str] = field(default_factory=list)


def ingest_update(
    client: SalesforceClient,
    obj: str,
    rows: list[dict[str, Any]],
    columns: list[str],
    headers: dict[str, str] | None = None,
) -> IngestResult:
    """Update `rows` (each with `Id`) through one Bulk 2.0 ingest job; report failed and unprocessed ids."""
    start = client.calls
    extra = dict(headers or {})
    job = client.request_json(
        "POST",
        "jobs/ingest",
        json_body={
            "object": obj,
            "operation": "update",
            "contentType": "CSV",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        },
        headers=extra,
        what="bulk ingest create",
        expect=_is_job,
    )
    job_id = str(job["id"])
    client.request(
        "PUT",
        f"jobs/ingest/{job_id}/batches",
        data=to_csv(rows, columns),
        headers={**extra, "Content-Type": "text/csv"},
        what="bulk ingest upload",
    )
    client.request(
        "PATCH",
        f"jobs/ingest/{job_id}",
        json_body={"state": "UploadComplete"},
        headers=extra,
        what="bulk ingest close",
    )
    info = _wait(client, "ingest", job_id)
    result = IngestResult(job_id=job_id)
    failed = client.request(
        "GET",
        f"jobs/ingest/{job_id}/failedResults/",
        headers={"Accept": "text/csv"},
        what="bulk ingest failed results",
    )
    for row in parse_csv(failed.text):
        rid = row.get("sf__Id") or row.get("Id")
        if rid:
            result.failed[str(rid)] = split_error(row.get("sf__Error"))
    if info.get("state") != "JobComplete":
        unprocessed = client.request(
            "GET",
            f"jobs/ingest/{job_id}/unprocessedrecords/",
            headers={"Accept": "text/csv"},
            what="bulk ingest unprocessed",
        )
        result.unprocessed = [str(r["Id"]) for r in parse_csv(unprocessed.text) if r.get("Id")]
    result.calls = client.calls - start
    log.info(
        "salesforce.bulk.ingest.done",
        job=job_id,
        object=obj,
        state=info.get("state"),
        rows=len(rows),
        failed=len(result.failed),
        unprocessed=len(result.unprocessed),
    )
    return result
