"""The `tasks:` section: each task is a trigger (when a person's moment comes) and what to create in the CRMs.

    tasks:
      - name: nurture-revisit
        trigger: {nurture_until: reached}
        when: {field: opted_out, ne: true}       # optional, the rules' and segments' condition vocabulary
        create: {targets: all, subject: "Revisit {{ first_name }}", due_in_days: 3}

A trigger is exactly one of: `enters` (a stage transition, optionally `from`), `date` (a date field and how
many days before it the task is due), `nurture_until: reached`, or `renewal` (the own contract's end, for a
customer). Templates are checked here, so a misspelt field is a config error with its line.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ..conditions import Condition, field_type
from ..model import StrictModel, check_name
from ..schema import FieldType
from .templates import check_template

# the target types that can hold a task (their writers implement `create_tasks` / `find_tasks`)
TASK_TARGET_TYPES = ("salesforce", "vtiger")
SUBJECT_MAX = 255  # Salesforce Task.Subject and vtiger's subject are both 255 characters


class DateEvent(StrictModel):
    field: str  # a date field of the person (`competitor_contract_end`, `contract_end`, `extra.<name>`)
    days_before: int = Field(default=0, ge=0, le=3650)  # the task comes this many days before the date
    # how late a run may still create it after the date (a missed run); a date older than this makes no task,
    # so a first run over years of history does not flood sales with tasks for moments long gone
    days_after: int = Field(default=0, ge=0, le=3650)

    @field_validator("field")
    @classmethod
    def _date_field(cls, name: str) -> str:
        try:
            kind = field_type(name)
        except KeyError:
            raise ValueError(f"unknown field '{name}'") from None
        if kind is not FieldType.DATE and not name.startswith("extra."):
            raise ValueError(f"'{name}' is a {kind.value} field; a date trigger needs a date field")
        return name


class Renewal(StrictModel):
    # the preset's contract-renewal rule re-enters 90 days before the own contract ends
    days_before: int = Field(default=90, ge=0, le=3650)
    days_after: int = Field(default=0, ge=0, le=3650)


class Trigger(StrictModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enters: str | None = None  # a stage name: the person moved into it (not first seen in it)
    from_: list[str] | None = Field(default=None, alias="from")  # with enters: only from these stages
    date: DateEvent | None = None
    nurture_until: Literal["reached"] | None = None
    renewal: Renewal | None = None
    # enters and nurture_until: how many days after the moment a run may still create the task
    days_after: int | None = Field(default=None, ge=0, le=3650)

    @field_validator("from_", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _exactly_one(self) -> Trigger:
        kinds = [k for k in ("enters", "date", "nurture_until", "renewal") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of: enters, date, nurture_until, renewal")
        if self.from_ is not None and self.enters is None:
            raise ValueError("from: only with enters")
        if self.days_after is not None and self.kind not in ("enters", "nurture_until"):
            raise ValueError(f"days_after: set it inside {self.kind}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("enters", "date", "nurture_until", "renewal") if getattr(self, k) is not None)

    def window(self) -> tuple[int, int]:
        """(days before, days after) the moment in which a run creates the task."""
        if self.date is not None:
            return self.date.days_before, self.date.days_after
        if self.renewal is not None:
            return self.renewal.days_before, self.renewal.days_after
        # a transition is seen the run it happens; a revisit date passes while no run may be looking
        default_after = 7 if self.enters is not None else 30
        return 0, self.days_after if self.days_after is not None else default_after


def _per_target(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return value
    raise ValueError("give a text, or a mapping of target name (or default) to text")


class TaskCreate(StrictModel):
    # `all`: every salesforce / vtiger target whose source holds a Lead or Contact of the person
    targets: list[str] | Literal["all"] = "all"
    subject: str = Field(min_length=1)
    description: str = ""
    due_in_days: int = Field(default=0, ge=0, le=3650)
    # None: each CRM's stock default (Salesforce Priority Normal / Status Not Started; vtiger Medium / Not
    # Started); a text, or per target: `{default: Normal, vt_out: Medium}` (the picklists differ)
    priority: str | dict[str, str] | None = None
    status: str | dict[str, str] | None = None
    # `record`: the owner of the record the task is about (Salesforce OwnerId, vtiger assigned_user_id); or a
    # user id, for every target or per target
    owner: str | dict[str, str] = "record"

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) and value != "all" else value

    @field_validator("subject", "description")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)

    @field_validator("priority", "status", "owner", mode="before")
    @classmethod
    def _text_or_map(cls, value: Any) -> Any:
        return _per_target(value)

    def value_for(self, key: Literal["priority", "status", "owner"], target: str) -> str | None:
        value = getattr(self, key)
        if isinstance(value, dict):
            return value.get(target, value.get("default"))
        return value


class TaskConfig(StrictModel):
    name: str
    description: str = ""  # for people reading the config
    trigger: Trigger
    when: Condition | None = None  # must also hold on the run that creates the task (stage is known)
    create: TaskCreate

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)


def task_problems(
    raw: Any, task_targets: dict[str, str], all_targets: list[str], stage_names: list[str]
) -> list[tuple[tuple[Any, ...], str]]:
    """Cross-references of the raw `tasks:` list: unique names, targets that can hold a task, stage names.

    `task_targets`: target name -> type, of the targets whose type can take tasks."""
    from ..suggest import did_you_mean

    problems: list[tuple[tuple[Any, ...], str]] = []
    items = raw if isinstance(raw, list) else []
    names = [t.get("name") if isinstance(t, dict) else None for t in items]
    for i, task in enumerate(items):
        if not isinstance(task, dict):
            continue
        if isinstance(names[i], str) and names.index(names[i]) != i:
            problems.append(((i, "name"), f"task name '{names[i]}' is used twice"))
        create = task.get("create")
        targets = create.get("targets") if isinstance(create, dict) else None
        listed = [targets] if isinstance(targets, str) and targets != "all" else targets
        for j, target in enumerate(listed if isinstance(listed, list) else []):
            loc = (i, "create", "targets") if isinstance(targets, str) else (i, "create", "targets", j)
            if target in task_targets:
                continue
            if target in all_targets:
                problems.append(
                    (
                        loc,
                        f"target '{target}' cannot hold tasks (only {' and '.join(TASK_TARGET_TYPES)} targets)",
                    )
                )
            else:
                problems.append(
                    (loc, f"no target named '{target}'{did_you_mean(str(target), list(task_targets))}")
                )
        if targets == "all" or targets is None:
            if not task_targets:
                problems.append(((i, "create"), "no salesforce or vtiger target to create the task in"))
        for key in ("priority", "status", "owner"):
            value = create.get(key) if isinstance(create, dict) else None
            for target in value if isinstance(value, dict) else {}:
                if target != "default" and target not in task_targets:
                    hint = did_you_mean(str(target), list(task_targets))
                    problems.append(((i, "create", key, target), f"no task target named '{target}'{hint}"))
        trigger = task.get("trigger")
        if isinstance(trigger, dict) and stage_names:
            wanted = [trigger.get("enters")]
            frm = trigger.get("from")
            wanted += [frm] if isinstance(frm, str) else list(frm) if isinstance(frm, list) else []
            for name in wanted:
                if isinstance(name, str) and name not in stage_names:
                    hint = did_you_mean(name, stage_names) or f" (stages: {', '.join(stage_names)})"
                    key = "enters" if name == trigger.get("enters") else "from"
                    problems.append(((i, "trigger", key), f"unknown stage '{name}'{hint}"))
    return problems
