"""Follow-up tasks in vtiger: records of the webservice module `Calendar` (vtiger's tasks; `Events` are
meetings and calls), one `create` each, on the writer's worker sessions.

A task hangs on a Lead through `parent_id`, on a Contact through `contact_id` (a Contact first: a converted
Lead is read-only history). Its owner (`assigned_user_id`, mandatory) is the configured user, else the record's
own `assigned_user_id`. The idempotency key goes into a configured Calendar field (`task_key_field`, by label
like other custom fields: one `in` query per 100 keys finds them) or, by default, onto the description's last
line (`connector-key: <key>`), found with one `like` query per key: only asked for keys the state cannot
vouch for (a rebuilt state, a crash between the create and the state's commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from ...context import RunContext
from ...crm.vtiger import vtql
from ...errors import ConfigError, RecordError
from ...schema import RecordRef
from ...tasks.model import NewTask, TaskResult

if TYPE_CHECKING:
    from .writer import VtigerWriter

log = structlog.get_logger(__name__)
MODULE = "Calendar"
WHO_MODULES = {"Contacts": "contact_id", "Leads": "parent_id"}  # in order of preference
DEFAULT_STATUS = "Not Started"  # stock taskstatus
DEFAULT_PRIORITY = "Medium"  # stock taskpriority (vtiger has no "Normal")
KEY_MARK = "connector-key: "


def task_record(writer: VtigerWriter, refs: Sequence[RecordRef]) -> RecordRef | None:
    for module in WHO_MODULES:
        own = sorted(
            (r for r in refs if r.source == writer.source and r.object == module), key=lambda r: r.id
        )
        if own:
            return own[0]
    return None


def key_field(writer: VtigerWriter) -> str | None:
    spec = writer.cfg.task_key_field
    if spec is None:
        return None
    try:
        return writer._info(MODULE).resolve(spec)
    except ConfigError as exc:
        raise ConfigError(f"targets.{writer.name}.task_key_field: {exc}") from None


def find_tasks(writer: VtigerWriter, keys: list[str], ctx: RunContext) -> dict[str, str]:
    if not keys:
        return {}
    writer._begin(ctx)
    known = set(writer._info(MODULE).fields)
    field = key_field(writer)
    found: dict[str, str] = {}
    if field is not None:
        for start in range(0, len(keys), vtql.PAGE_SIZE):
            chunk = keys[start : start + vtql.PAGE_SIZE]
            query = vtql.select(MODULE, ["id", field], where=[vtql.Cond(field, "in", chunk)], known=known)
            found.update({str(r[field]): str(r["id"]) for r in writer._query(MODULE, query) if r.get(field)})
        return found
    for key in keys:
        where = [vtql.Cond("description", "like", vtql.like_contains(KEY_MARK + key))]
        query = vtql.select(MODULE, ["id", "description"], where=where, known=known)
        for row in writer._query(MODULE, query):
            if KEY_MARK + key in str(row.get("description") or ""):  # `like` narrows; the exact test is ours
                found[key] = str(row["id"])
                break
    return found


def _owners(writer: VtigerWriter, tasks: list[NewTask]) -> dict[str, str]:
    """Record id -> its assigned_user_id, for tasks owned by their record's owner."""
    wanted: dict[str, set[str]] = {}
    for t in tasks:
        if t.owner is None:
            wanted.setdefault(t.who.object, set()).add(t.who.id)
    owners: dict[str, str] = {}
    for module, ids in sorted(wanted.items()):
        ordered = sorted(ids)
        for start in range(0, len(ordered), vtql.PAGE_SIZE):
            chunk = ordered[start : start + vtql.PAGE_SIZE]
            query = vtql.select(module, ["id", "assigned_user_id"], where=[vtql.Cond("id", "in", chunk)])
            for row in writer._query(module, query):
                if row.get("assigned_user_id"):
                    owners[str(row["id"])] = str(row["assigned_user_id"])
    return owners


def element(task: NewTask, owner: str, start: str, field: str | None, time_start: str) -> dict[str, Any]:
    description = task.description
    if field is None:  # no key field: the key rides on the description's last line
        description = f"{description}\n\n{KEY_MARK}{task.key}" if description else f"{KEY_MARK}{task.key}"
    body: dict[str, Any] = {
        "subject": task.subject,
        "assigned_user_id": owner,
        "date_start": start,
        "time_start": time_start,
        "due_date": task.due_date.isoformat(),
        "taskstatus": task.status or DEFAULT_STATUS,
        "taskpriority": task.priority or DEFAULT_PRIORITY,
        "activitytype": "Task",
        "description": description,
        WHO_MODULES[task.who.object]: task.who.id,
    }
    if field is not None:
        body[field] = task.key
    return body


def create_tasks(writer: VtigerWriter, tasks: list[NewTask], ctx: RunContext) -> TaskResult:
    writer._begin(ctx)
    before = writer.client.calls.total()
    result = TaskResult()
    if not tasks:
        return result
    field = key_field(writer)
    owners = _owners(writer, tasks)
    start = min(ctx.as_of, min(t.due_date for t in tasks)).isoformat()
    time_start = ctx.started_at.strftime("%H:%M:%S")  # the API user's time zone is UTC (README)

    def one(task: NewTask) -> RecordError | None:
        owner = task.owner or owners.get(task.who.id)
        if owner is None:
            return RecordError(f"{task.who}: no such record, or it has no owner", code="NO_OWNER")
        try:
            created = writer.client.create(MODULE, element(task, owner, start, field, time_start))
        except RecordError as exc:
            return RecordError(f"{task.who}: {exc}", code=exc.code)
        with writer._lock:
            result.created[task.key] = str(created.get("id") or "")
        return None

    errors, result.unreachable = writer._parallel(one, tasks, lambda t: t.who)
    for task, error in zip(tasks, errors, strict=True):
        if error is not None:
            result.failed[task.key] = error
    result.calls = writer.client.calls.total() - before
    log.info(
        "vtiger.tasks.created", target=writer.name, created=len(result.created), failed=len(result.failed)
    )
    return result
