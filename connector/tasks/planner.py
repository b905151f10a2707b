"""Which tasks are due this run: every configured task's trigger, for every person, in every target that can
hold it. Nothing here writes; `sync.py` hands the result to the writers (or lists it, for `plan`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..conditions import compile_condition
from ..engine import Decision
from ..schema import Person, RecordRef
from ..stage_model import StageModel
from ..state import StateStore
from .config import TaskConfig
from .model import NewTask, idempotency_key
from .templates import render
from .triggers import Occurrence, Transition, occurrence


class TaskTarget(Protocol):
    """What the planner knows of a target (every `writers.base.Writer` is one)."""

    name: str
    takes_tasks: bool

    def task_record(self, refs: Sequence[RecordRef]) -> RecordRef | None: ...


@dataclass
class TaskPlan:
    due: dict[str, list[NewTask]] = field(default_factory=dict)  # target -> tasks whose moment is now
    # (target, task, person key, reason): a template the person's values do not fit
    unrenderable: list[tuple[str, str, str, str]] = field(default_factory=list)

    def count(self) -> int:
        return sum(len(v) for v in self.due.values())


def plan_tasks(
    tasks: Sequence[TaskConfig],
    stage_model: StageModel,
    writers: Sequence[TaskTarget],
    people: Mapping[str, Person],
    decisions: Mapping[str, Decision],
    latest: Mapping[str, Transition],
    as_of: dt.date,
) -> TaskPlan:
    out = TaskPlan()
    holders = [w for w in writers if w.takes_tasks]
    for task in tasks:
        when = compile_condition(task.when) if task.when is not None else None
        chosen = (
            holders if task.create.targets == "all" else [w for w in holders if w.name in task.create.targets]
        )
        for key, person in people.items():
            decision = decisions.get(key)
            if decision is None:
                continue
            previous = latest.get(key)

            def get(
                name: str,
                person: Person = person,
                decision: Decision = decision,
                previous: Transition | None = previous,
            ) -> Any:
                if name == "stage":
                    return decision.stage
                if name == "previous_stage":
                    return previous[1] if previous is not None and previous[2] == decision.stage else None
                return person.get(name)

            found = occurrence(task, get, decision.stage, previous, as_of, when)
            if found is None:
                continue
            ikey = idempotency_key(task.name, key, found.name)
            for writer in chosen:
                who = writer.task_record(person.refs)
                if who is None:  # this CRM holds no record of the person: nothing to hang a task on
                    continue
                try:
                    item = _task(task, writer.name, stage_model, person, decision, found, ikey, who, as_of)
                except ValueError as exc:
                    out.unrenderable.append((writer.name, task.name, key, str(exc)))
                    continue
                out.due.setdefault(writer.name, []).append(item)
    return out


def latest_transitions_of(store: StateStore, keys: Sequence[str]) -> dict[str, Transition]:
    """`store.latest_transitions`, for these people only: the full path plans tasks a part at a time."""
    out: dict[str, Transition] = {}
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        marks = ",".join("?" * len(chunk))
        cur = store.db.execute(
            "SELECT t.person_key, t.id, t.from_stage, t.to_stage, t.at FROM transitions t JOIN (SELECT "
            f"person_key, MAX(id) AS id FROM transitions WHERE person_key IN ({marks}) GROUP BY person_key) m "
            "ON m.id = t.id",
            chunk,
        )
        for r in cur:
            out[str(r[0])] = (int(r[1]), r[2], str(r[3]), dt.date.fromisoformat(str(r[4])[:10]))
    return out


def _task(
    task: TaskConfig,
    target: str,
    stage_model: StageModel,
    person: Person,
    decision: Decision,
    found: Occurrence,
    key: str,
    who: RecordRef,
    as_of: dt.date,
) -> NewTask:
    due = as_of + dt.timedelta(days=task.create.due_in_days)
    values: dict[str, Any] = dict(person.values)
    values.update(
        extra=_Extra(person.extra),
        stage=decision.stage,
        label=stage_model.stage(decision.stage).label_for(target),
        task=task.name,
        due_date=due,
        occurrence=found.moment,
        as_of=as_of,
    )
    for name in _schema_names():
        values.setdefault(name, None)
    owner = task.create.value_for("owner", target)
    return NewTask(
        key=key,
        task=task.name,
        person_key=person.key,
        occurrence=found.name,
        who=who,
        subject=render(task.create.subject, values)[:255],
        description=render(task.create.description, values),
        due_date=due,
        priority=task.create.value_for("priority", target),
        status=task.create.value_for("status", target),
        owner=None if owner in (None, "record") else owner,
    )


class _Extra(dict[str, Any]):
    """`extra.<name>` in a template: a value the person lacks renders as nothing (extras vary per source)."""

    def __missing__(self, key: str) -> str:
        return ""


def _schema_names() -> tuple[str, ...]:
    from ..schema import PERSON_FIELDS

    return tuple(PERSON_FIELDS)
