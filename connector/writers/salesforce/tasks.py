"""Follow-up tasks in Salesforce: `Task` records through sObject Collections (200 a call, `allOrNone: false`).

WhoId is the person's Contact (else Lead); OwnerId the configured user, else the owner of that record (a Lead
owned by a queue gives no owner: a Task cannot belong to a queue, so Salesforce makes the API user its owner).
The idempotency key goes into a custom text field marked External ID and unique (`task_key_field`, default
`Connector_Key__c`): the lookup before a create finds a task by it, and should two runs ever race, the unique
field refuses the second (DUPLICATE_VALUE), which counts as already there.

The lookup uses queryAll: a task deleted by hand (in the recycle bin) or archived (older than a year, which a
plain query does not return) was dealt with by sales and is not created again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from ...context import RunContext
from ...crm.salesforce import soql
from ...crm.salesforce.client import COMPOSITE_MAX
from ...errors import RecordError, UnreachableError
from ...schema import RecordRef
from ...tasks.model import NewTask, TaskResult

if TYPE_CHECKING:
    from .writer import SalesforceWriter

log = structlog.get_logger(__name__)
WHO_OBJECTS = ("Contact", "Lead")  # a Contact when the person has one: a converted Lead cannot be a WhoId
DEFAULT_STATUS = "Not Started"  # the stock TaskStatus default
DEFAULT_PRIORITY = "Normal"  # the stock TaskPriority default
QUEUE_PREFIX = "00G"  # a Group (queue) id: no Task owner
ALREADY_THERE = {"DUPLICATE_VALUE"}  # the unique key field: another run created it


def task_record(writer: SalesforceWriter, refs: Sequence[RecordRef]) -> RecordRef | None:
    for obj in WHO_OBJECTS:
        own = sorted((r for r in refs if r.source == writer.source and r.object == obj), key=lambda r: r.id)
        if own:
            return own[0]
    return None


def find_tasks(writer: SalesforceWriter, keys: list[str], ctx: RunContext) -> dict[str, str]:
    field = writer.cfg.task_key_field
    if not keys or field is None:
        return {}
    writer._bind(ctx)
    found: dict[str, str] = {}
    for start in range(0, len(keys), COMPOSITE_MAX):
        chunk = keys[start : start + COMPOSITE_MAX]
        rows = writer.client.query_all(
            f"SELECT Id, {field} FROM Task WHERE {field} IN {soql.in_list(chunk)}", include_deleted=True
        )
        found.update({str(r[field]): str(r["Id"]) for r in rows if r.get(field)})
    return found


def _owners(writer: SalesforceWriter, tasks: list[NewTask]) -> dict[str, str]:
    """Record id -> its OwnerId, for the records of tasks owned by their record's owner (queues left out)."""
    wanted: dict[str, list[str]] = {}
    for t in tasks:
        if t.owner is None:
            wanted.setdefault(t.who.object, []).append(t.who.id)
    owners: dict[str, str] = {}
    for obj, ids in sorted(wanted.items()):
        unique = sorted(set(ids))
        for start in range(0, len(unique), COMPOSITE_MAX):
            rows = writer.client.query_all(
                f"SELECT Id, OwnerId FROM {soql.identifier(obj)} WHERE Id IN "
                f"{soql.in_list(unique[start : start + COMPOSITE_MAX])}"
            )
            for row in rows:
                owner = str(row.get("OwnerId") or "")
                if owner and not owner.startswith(QUEUE_PREFIX):
                    owners[str(row["Id"])] = owner
    return owners


def record(task: NewTask, owner: str | None, key_field: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "attributes": {"type": "Task"},
        "WhoId": task.who.id,
        "Subject": task.subject,
        "Description": task.description,
        "ActivityDate": task.due_date.isoformat(),
        "Status": task.status or DEFAULT_STATUS,
        "Priority": task.priority or DEFAULT_PRIORITY,
    }
    if owner:
        body["OwnerId"] = owner
    if key_field:
        body[key_field] = task.key
    return body


def create_tasks(writer: SalesforceWriter, tasks: list[NewTask], ctx: RunContext) -> TaskResult:
    writer._bind(ctx)
    start_calls = writer.client.calls
    result = TaskResult()
    answered: set[str] = set()
    by_key = {t.key: t for t in tasks}
    try:
        owners = _owners(writer, tasks)
        keys = list(by_key)
        for start in range(0, len(keys), COMPOSITE_MAX):
            chunk = keys[start : start + COMPOSITE_MAX]
            rows = {
                k: record(
                    by_key[k], by_key[k].owner or owners.get(by_key[k].who.id), writer.cfg.task_key_field
                )
                for k in chunk
            }

            def send(ks: list[str], rows: dict[str, dict[str, Any]] = rows) -> list[dict[str, Any]]:
                return writer.client.composite("POST", [rows[k] for k in ks], what="create tasks")

            made: dict[str, str] = {}
            for key, outcome in writer._collection(chunk, send, "create tasks", made).items():
                if outcome is None:
                    result.created[key] = made.get(key, "")
                elif outcome[0] in ALREADY_THERE:
                    result.created[key] = ""  # made by another run: the next lookup names its Id
                else:
                    result.failed[key] = RecordError(f"{by_key[key].who}: {outcome[1]}", code=outcome[0])
            answered.update(chunk)
    except UnreachableError as exc:
        if not answered:
            raise
        result.unreachable = str(exc)
        for key in by_key:
            if key not in answered:
                result.failed[key] = RecordError(f"task {key}: not created: {exc}", code="UNREACHABLE")
    result.calls = writer.client.calls - start_calls
    log.info(
        "salesforce.tasks.created", target=writer.name, created=len(result.created), failed=len(result.failed)
    )
    return result
