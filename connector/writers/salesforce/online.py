"""What `connector check` asks of the org for a salesforce target: each label field exists and the API user
may update it (describe, the describe cache where fresh), and each campaign exists with the configured member
status (the Campaign and its CampaignMemberStatus rows). No person is read and nothing is written: a campaign
`create: true` would make is reported, not made."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...context import RunContext
from ...crm.salesforce.client import is_describe
from ...findings import Findings
from .config import CampaignTarget

if TYPE_CHECKING:
    from ...tasks.config import TaskConfig
    from .writer import SalesforceWriter

# what a task is created with (salesforce/tasks.py `record`); OwnerId only when configured or the record's owner
TASK_FIELDS = ("WhoId", "Subject", "Description", "ActivityDate", "Status", "Priority", "OwnerId")


def check(writer: SalesforceWriter, ctx: RunContext) -> Findings:
    found = Findings(writer.name)
    writer.connection.bind(ctx, counted_as=writer.name, budget_share=None)
    client = writer.client
    for obj, name in writer.cfg.label_field.items():
        what = f"label field {obj}.{name}"
        fields = found.attempt(what, functools.partial(client.field_names, obj))
        if fields is None:
            continue
        field = fields.get(name)
        if field is None:
            found.fail(what, f"no such field on {obj}, or the API user may not see it")
        elif not field.get("updateable"):
            found.fail(what, "the API user may not update it")
        else:
            found.ok(what, f"writable ({field.get('type')})")
    for segment, target in writer.cfg.campaigns.items():
        what = f"campaign {target.campaign}"
        found.attempt(what, functools.partial(_campaign, writer, found, segment, target))
    return found


def _campaign(writer: SalesforceWriter, found: Findings, segment: str, target: CampaignTarget) -> None:
    """The same lookups a run makes (the writer's own), as findings: a ConfigError they raise becomes a fail row
    through `Findings.attempt`."""
    what = f"campaign {target.campaign}"
    campaign_id = writer._find_campaign(segment, target)
    if campaign_id is None:
        found.ok(what, f"not there yet: created on the first add to segment {segment} (create: true)")
        return
    status = writer._member_status(campaign_id, target)
    found.ok(what, f"{campaign_id}, member status '{status}' exists (segment {segment})")


def check_tasks(writer: SalesforceWriter, tasks: Sequence[TaskConfig], ctx: RunContext) -> Findings:
    """The Task object as a run creates tasks in it: its fields settable by the API user, the key field (an
    External ID, so a lookup finds a task by it; unique, so a racing second create is refused), and each
    configured Status and Priority a value of those restricted picklists (else every task is refused)."""
    found = Findings(writer.name)
    writer.connection.bind(ctx, counted_as=writer.name, budget_share=None)
    fields = found.attempt("task object Task", functools.partial(_task_fields, writer))
    if fields is None:
        return found
    closed = [name for name in TASK_FIELDS if not (fields.get(name) or {}).get("createable")]
    if closed:
        found.fail("task object Task", f"the API user may not set {', '.join(closed)} on a Task")
    else:
        found.ok("task object Task", f"creatable with {', '.join(TASK_FIELDS)}")
    key = writer.cfg.task_key_field
    if key is None:
        found.info(
            "task key field",
            "none (task_key_field: null): only the state knows which tasks exist; after a state rebuild a task "
            "may be created again",
        )
    else:
        _key_field(found, f"task key field Task.{key}", fields.get(key))
    for kind, stock in (("status", "Status"), ("priority", "Priority")):
        allowed = _picklist(fields.get(stock))
        for task in tasks:
            value = task.create.value_for(kind, writer.name)  # type: ignore[arg-type]
            if value is None or not allowed:
                continue
            what = f"task {task.name} {kind}"
            if value in allowed:
                found.ok(what, f"'{value}' is a Task {stock} value")
            else:
                found.fail(what, f"'{value}' is not a Task {stock} value ({', '.join(allowed)})")
    return found


def _task_fields(writer: SalesforceWriter) -> dict[str, dict[str, Any]]:
    """Task's fields as the org describes them now, in full: whether the API user may create each, External
    ID and unique, the picklist values (a run's describe is trimmed to what writing labels needs, and cached)."""
    body = writer.client.get_json("sobjects/Task/describe", what="describe Task", expect=is_describe)
    return {str(f["name"]): f for f in body.get("fields") or [] if isinstance(f, dict) and f.get("name")}


def _key_field(found: Findings, what: str, field: dict[str, Any] | None) -> None:
    if field is None:
        found.fail(
            what, "no such field on Task, or the API user may not see it (a text field, External ID, unique)"
        )
    elif not field.get("createable"):
        found.fail(what, "the API user may not set it")
    elif not field.get("externalId"):
        found.fail(what, "not marked External ID: a lookup by it before a create would scan every Task")
    elif not field.get("unique"):
        found.info(what, "External ID, not unique: two runs racing could both create a task")
    else:
        found.ok(what, "External ID, unique")


def _picklist(field: dict[str, Any] | None) -> list[str]:
    return [str(v["value"]) for v in (field or {}).get("picklistValues") or [] if v.get("active", True)]
