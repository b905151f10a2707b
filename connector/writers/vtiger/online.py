"""What `connector check` asks of vtiger for a vtiger target: each label and segments field resolves (by its
label) and is editable, the segments field is a multi-select offering each segment's value, and each campaign
exists. The same lookups `plan` and `run` make before writing (`VtigerWriter.writable_field`,
`_find_campaign`), so check and plan judge alike. No person is read and nothing is written: a campaign
`create: true` would make is reported, not made."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...context import RunContext
from ...findings import Findings
from .config import CampaignConfig

if TYPE_CHECKING:
    from ...tasks.config import TaskConfig
    from .writer import VtigerWriter

# what a task is created with (vtiger/tasks.py `element`)
TASK_FIELDS = (
    "subject",
    "assigned_user_id",
    "date_start",
    "due_date",
    "taskstatus",
    "parent_id",
    "contact_id",
)


def check(writer: VtigerWriter, ctx: RunContext) -> Findings:
    found = Findings(writer.name)
    writer.client.on_call = lambda _op: ctx.count_call(writer.connection.name)
    values = sorted({writer.segment_value(s) for s in writer.segment_names})
    for key, fields in (
        ("label_field", writer.cfg.label_field),
        ("segments_field", writer.cfg.segments_field),
    ):
        for module, spec in fields.items():
            what = f"{key.replace('_', ' ')} {module}.{spec}"
            name = found.attempt(what, functools.partial(writer.writable_field, key, module))
            if name is None:
                continue
            info = writer._info(module).fields[name]
            options = f", options: {', '.join(info.picklist)}" if info.picklist else ""
            found.ok(what, f"writable ({name}, {info.type}{options})")
            if key == "segments_field":
                missing = [v for v in values if writer.options_missing(module, v)]
                if missing:
                    found.info(
                        f"segment values {module}",
                        "not an option yet: " + ", ".join(f"'{v}'" for v in missing) + " (vtiger stores it, "
                        "but saving a record in its edit form may drop it: add it to the field's values)",
                    )
    for segment, campaign in writer.cfg.campaigns.items():
        what = f"campaign {campaign.campaign}"
        found.attempt(what, functools.partial(_campaign, writer, found, segment, campaign))
    return found


def _campaign(writer: VtigerWriter, found: Findings, segment: str, campaign: CampaignConfig) -> None:
    what = f"campaign {campaign.campaign}"
    campaign_id = writer._find_campaign(campaign)
    if campaign_id is not None:
        found.ok(what, f"{campaign_id} (segment {segment})")
    elif campaign.create:
        found.ok(what, f"not there yet: created on the first add to segment {segment} (create: true)")
    else:
        found.fail(what, writer._no_campaign(campaign).partition(": ")[2] + f" (segment {segment})")


def check_tasks(writer: VtigerWriter, tasks: Sequence[TaskConfig], ctx: RunContext) -> Findings:
    """The Calendar module (vtiger's tasks) as a run creates tasks in it: the fields a task is created with,
    where the idempotency key goes, and each configured status and priority among the picklist's options
    (vtiger stores any value, but its edit form shows only the options: an info, not a failure)."""
    from . import tasks as vt_tasks

    found = Findings(writer.name)
    writer.client.on_call = lambda _op: ctx.count_call(writer.connection.name)
    module = vt_tasks.MODULE
    info = found.attempt(f"task module {module}", functools.partial(writer._info, module))
    if info is None:
        return found
    closed = [name for name in TASK_FIELDS if name not in info.fields or not info.fields[name].editable]
    if closed:
        found.fail(f"task module {module}", f"no editable {', '.join(closed)} in {module}")
    else:
        found.ok(f"task module {module}", f"creatable with {', '.join(TASK_FIELDS)}")
    spec = writer.cfg.task_key_field
    if spec is None:
        found.ok(
            "task key field", f"none: the key goes on the description's last line ({vt_tasks.KEY_MARK}...)"
        )
    else:
        name = found.attempt(f"task key field {spec}", functools.partial(vt_tasks.key_field, writer))
        if name is not None:
            found.ok(f"task key field {spec}", f"{module}.{name}")
    for kind, field, stock in (
        ("status", "taskstatus", vt_tasks.DEFAULT_STATUS),
        ("priority", "taskpriority", vt_tasks.DEFAULT_PRIORITY),
    ):
        options = info.fields[field].picklist if field in info.fields else ()
        for task in tasks:
            value = task.create.value_for(kind, writer.name) or stock  # type: ignore[arg-type]
            what = f"task {task.name} {kind}"
            if not options or value in options:
                found.ok(what, f"'{value}' is a {field} option")
            else:
                found.info(
                    what,
                    f"'{value}' is not a {field} option ({', '.join(options)}): vtiger stores it, but its edit "
                    "form does not show it, so the next save in the UI replaces it",
                )
    return found
