"""What the run loop calls after labels and segments: plan the due tasks, and (in a run) create each exactly once.

Per target, for the tasks due now and those a former run left pending or refused:

1. skip what the state records as done;
2. ask the CRM for the keys the state has no confirmed record of (no row: a rebuilt state, a task added to the
   config; `pending`: a run stopped between the CRM's create and the state's commit), and record those found as
   done without creating them;
3. write the rest as `pending` (committed before the CRM call), create them, then mark each created one `done`
   and each refused one `rejected` (kept with its reason, tried again by the next run).

A failure here never undoes or holds up the labels and segments written before; the caller turns a system
that stopped answering into exit 4, like any writer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import structlog

from ..config import AppConfigBase
from ..context import RunContext
from ..engine import Decision
from ..errors import BudgetExceededError, ConfigError, RecordError, UnreachableError
from ..outcome import Summary, record_failure
from ..reading import reject_reason
from ..schema import Person
from ..state import StateStore
from ..writers.base import Writer
from . import store as ledger
from .model import NewTask
from .planner import TaskPlan, plan_tasks

log = structlog.get_logger(__name__)
LOOKUP_BATCH = 200


def sync_tasks(
    config: AppConfigBase,
    store: StateStore,
    writers: Sequence[Writer],
    people: Mapping[str, Person] | KnownPeople,
    decisions: Mapping[str, Decision],
    ctx: RunContext,
    summary: Summary,
    run_id: int,
    rejected_now: Counter[str],
    stopped: set[str],
    planned: TaskPlan | None = None,
) -> set[str]:
    """Plan (and in a run, create) the due tasks; returns the kinds of failure met ("unreachable", "budget",
    "config"), for the run's outcome. `stopped`: targets that already failed this run (left alone).

    `planned`: the due tasks, planned already a part at a time (full_plan.py); `people` then only answers who
    this run resolved and what their values are, without holding them."""
    if not config.tasks:
        return set()
    plan = planned
    if plan is None:
        assert isinstance(people, Mapping)
        latest = ledger.latest_transitions(store)
        plan = plan_tasks(config.tasks, config.stage_model, writers, people, decisions, latest, ctx.as_of)
    report: dict[str, Any] = {}
    for target, task, person_key, reason in plan.unrenderable:
        log.warning("tasks.template.failed", target=target, task=task, person=person_key, reason=reason)
        rejected_now[f"{target}: TASK_TEMPLATE"] += 1
    kinds: set[str] = set()
    by_name = {w.name: w for w in writers}
    for target in sorted(set(plan.due) | {w.name for w in writers if w.takes_tasks}):
        writer = by_name[target]
        listed = plan.due.get(target, [])
        kept = ledger.keys_by_occurrence(store, target, listed)  # made before a merge, under the old key
        due = {kept.get(t.key, t.key): replace(t, key=kept.get(t.key, t.key)) for t in listed}
        done = {k for k, s in ledger.statuses(store, target, due).items() if s == ledger.DONE}
        todo = {k: t for k, t in due.items() if k not in done}
        for old in ledger.unfinished(store, target):  # kept from an earlier run, due or not
            if old.person_key in people:
                todo.setdefault(old.key, old)
        stats = report.setdefault(target, _new_stats())
        stats["already_done"] = len(done)
        if ctx.dry_run:
            stats["would_create"] = dict(Counter(t.task for t in todo.values()))
            summary.task_changes.extend(_listing(target, t, people) for t in todo.values())
            continue
        if not todo or target in stopped:
            continue
        try:
            _create(store, writer, list(todo.values()), ctx, stats, run_id, rejected_now)
        except (ConfigError, BudgetExceededError, UnreachableError, OSError) as exc:
            kinds.add(record_failure(summary, "writer", f"{target} (tasks)", exc))
    summary.tasks = {"targets": report, "unrenderable": len(plan.unrenderable)}
    return kinds


def _new_stats() -> dict[str, Any]:
    return {"created": {}, "found": 0, "failed": 0, "already_done": 0}


class KnownPeople(Protocol):
    """The people a run resolved, kept out of memory (full_plan.RunPeople)."""

    def __contains__(self, key: object) -> bool: ...

    def values_of(self, key: str) -> Mapping[str, Any]: ...


def _listing(target: str, task: NewTask, people: Mapping[str, Person] | KnownPeople) -> dict[str, Any]:
    if isinstance(people, Mapping):
        person = people.get(task.person_key)
        values: Mapping[str, Any] = person.values if person is not None else {}
    else:
        values = people.values_of(task.person_key)
    name = " ".join(str(values[k]) for k in ("first_name", "last_name") if values.get(k)) or None
    return {
        "target": target,
        "task": task.task,
        "person": task.person_key,
        "name": name,
        "email": values.get("email"),
        "record": str(task.who),
        "due_date": task.due_date.isoformat(),
        "subject": task.subject,
    }


def _create(
    store: StateStore,
    writer: Writer,
    todo: list[NewTask],
    ctx: RunContext,
    stats: dict[str, Any],
    run_id: int,
    rejected_now: Counter[str],
) -> None:
    target = writer.name
    # ask the CRM first for every task the state cannot vouch for: no row, or pending (a crash after the create)
    known = ledger.statuses(store, target, [t.key for t in todo])
    unsure = [t.key for t in todo if known.get(t.key) in (None, ledger.PENDING)]
    found: dict[str, str] = {}
    for start in range(0, len(unsure), LOOKUP_BATCH):
        found.update(writer.find_tasks(unsure[start : start + LOOKUP_BATCH], ctx))
    if found:
        with store.transaction():
            ledger.mark(
                store, target, [t for t in todo if t.key in found], ledger.DONE, run_id, record_ids=found
            )
            store.clear_rejected("write", target, [_item(t) for t in todo if t.key in found])
        log.info("tasks.found", target=target, tasks=len(found))
    stats["found"] = len(found)
    to_send = [t for t in todo if t.key not in found]
    if not to_send:
        return
    store.check_writable(len(to_send))
    with store.transaction():  # before the CRM call: a crash after it leaves a row that says "ask first"
        ledger.mark(store, target, to_send, ledger.PENDING, run_id)
    result = writer.create_tasks(to_send, ctx)
    made = [t for t in to_send if t.key in result.created]
    refused = {t.key: t for t in to_send if t.key in result.failed}
    with store.transaction():
        ledger.mark(store, target, made, ledger.DONE, run_id, record_ids=result.created)
        store.clear_rejected("write", target, [_item(t) for t in made])
        reasons = {k: reject_reason(e) for k, e in result.failed.items()}
        # an item not answered because the system went away stays pending: the next run asks before creating
        lost = {k for k, e in result.failed.items() if e.code == "UNREACHABLE"}
        ledger.mark(
            store,
            target,
            [t for k, t in refused.items() if k not in lost],
            ledger.REJECTED,
            run_id,
            reasons=reasons,
        )
        for key, task in refused.items():
            if key in lost:
                continue
            error: RecordError = result.failed[key]
            store.reject(
                "write", target, _item(task), reject_reason(error), run_id, obj="task", code=error.code
            )
            rejected_now[f"{target}: {error.code or 'rejected'}"] += 1
    stats["created"] = dict(Counter(t.task for t in made))
    stats["failed"] = len(refused)
    log.info("tasks.created", target=target, created=len(made), failed=len(refused), calls=result.calls)
    if result.unreachable:
        raise UnreachableError(result.unreachable)


def _item(task: NewTask) -> str:
    """The rejected row's item: starts with the person key (erasure finds it), then the task and its key."""
    return f"{task.person_key}/{task.task}/{task.key}"
