"""Task triggers, the planner and the ledger, with a writer double: exactly one task per person and occurrence."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from connector.config import AppConfigBase, load_config_text
from connector.context import RunContext
from connector.engine import Decision
from connector.errors import RecordError
from connector.outcome import Summary
from connector.schema import Person, RecordRef
from connector.state import StateStore
from connector.tasks import store as ledger
from connector.tasks.model import NewTask, TaskResult, idempotency_key
from connector.tasks.planner import plan_tasks
from connector.tasks.sync import sync_tasks

AS_OF = dt.date(2026, 11, 23)
CONFIG = """\
stage_model: {preset: default}
sources:
  - {name: crm, type: salesforce, auth: session, env_prefix: SF_, objects: {Lead: {fields: {Email: email}}}}
targets:
  - {name: crm_out, type: salesforce, source: crm}
tasks:
  - name: revisit
    trigger: {nurture_until: reached}
    create: {subject: "Revisit {{ first_name }}", description: "since {{ occurrence }}", due_in_days: 2}
  - name: win-back
    when: {field: competitor, eq: Acme}
    trigger: {date: {field: competitor_contract_end, days_before: 120}}
    create: {subject: "Acme ends {{ competitor_contract_end }}", priority: High}
  - name: opportunity
    trigger: {enters: opportunity, from: [prospect]}
    create: {subject: "New opportunity {{ last_name }}", owner: "005AAA"}
  - name: renewal
    trigger: {renewal: {days_before: 90}}
    create: {subject: "Renew {{ company }}"}
"""


def config() -> AppConfigBase:
    return load_config_text(CONFIG, "c.yaml", base_dir=Path("/srv"))


class FakeCrm:
    """A task-holding target: remembers what it holds by key, may refuse or crash."""

    def __init__(self, name: str = "crm_out", source: str = "crm") -> None:
        self.name = name
        self.source = source
        self.takes_tasks = True
        self.held: dict[str, NewTask] = {}
        self.created_calls = 0
        self.lookups: list[list[str]] = []
        self.refuse: dict[str, str] = {}
        self.crash_after_create = False

    def task_record(self, refs: Sequence[RecordRef]) -> RecordRef | None:
        return next((r for r in refs if r.source == self.source), None)

    def find_tasks(self, keys: list[str], ctx: RunContext) -> dict[str, str]:
        self.lookups.append(list(keys))
        return {k: f"T-{k[:6]}" for k in keys if k in self.held}

    def create_tasks(self, tasks: list[NewTask], ctx: RunContext) -> TaskResult:
        result = TaskResult()
        for t in tasks:
            if t.task in self.refuse:
                result.failed[t.key] = RecordError(
                    self.refuse[t.task], code="FIELD_CUSTOM_VALIDATION_EXCEPTION"
                )
                continue
            self.created_calls += 1
            self.held[t.key] = t
            result.created[t.key] = f"T-{t.key[:6]}"
        if self.crash_after_create:
            raise KeyboardInterrupt("killed between the CRM create and the state commit")
        return result


def person(key: str, **values: object) -> Person:
    return Person(key=key, refs=[RecordRef("crm", "Lead", key.lower())], values=dict(values))


def decide(stage: str) -> Decision:
    return Decision(stage=stage, path_stage=None, rule=None, proposed=stage)


PEOPLE = {
    "P1": person("P1", first_name="Ann", nurture_until=AS_OF - dt.timedelta(days=3)),
    "P2": person("P2", first_name="Bob", nurture_until=AS_OF + dt.timedelta(days=1)),  # not yet
    "P3": person("P3", first_name="Cy", nurture_until=AS_OF - dt.timedelta(days=31)),  # too long ago
    "P4": person("P4", competitor="ACME", competitor_contract_end=AS_OF + dt.timedelta(days=120)),
    "P5": person("P5", competitor="Other", competitor_contract_end=AS_OF + dt.timedelta(days=10)),
    "P6": person("P6", opportunity_won=True, contract_end=AS_OF + dt.timedelta(days=80), company="Co"),
    "P7": person("P7", opportunity_won=False, contract_end=AS_OF + dt.timedelta(days=80)),
    "P8": person("P8", last_name="Eight"),
    "P9": person("P9", last_name="Nine"),
}
DECISIONS = {k: decide("nurture") for k in PEOPLE} | {
    "P8": decide("opportunity"),
    "P9": decide("opportunity"),
}
LATEST = {
    "P8": (41, "prospect", "opportunity", AS_OF - dt.timedelta(days=1)),
    "P9": (42, None, "opportunity", AS_OF),  # first seen in the stage: no transition anyone saw
}


def test_each_trigger_kind_fires_only_inside_its_window() -> None:
    plan = plan_tasks(config().tasks, config().stage_model, [FakeCrm()], PEOPLE, DECISIONS, LATEST, AS_OF)
    due = {(t.task, t.person_key): t for t in plan.due["crm_out"]}
    assert sorted(due) == [("opportunity", "P8"), ("renewal", "P6"), ("revisit", "P1"), ("win-back", "P4")]
    revisit = due[("revisit", "P1")]
    assert revisit.subject == "Revisit Ann"
    assert revisit.description == f"since {AS_OF - dt.timedelta(days=3)}"
    assert revisit.due_date == AS_OF + dt.timedelta(days=2)
    assert revisit.occurrence == f"nurture_until={AS_OF - dt.timedelta(days=3)}"
    assert revisit.key == idempotency_key("revisit", "P1", revisit.occurrence)
    assert revisit.owner is None and revisit.priority is None
    assert due[("win-back", "P4")].priority == "High"
    assert due[("opportunity", "P8")].occurrence == "transition=41"
    assert due[("opportunity", "P8")].owner == "005AAA"
    assert due[("renewal", "P6")].subject == "Renew Co"


def test_a_person_the_target_holds_no_record_of_gets_no_task_there() -> None:
    plan = plan_tasks(
        config().tasks, config().stage_model, [FakeCrm(source="elsewhere")], PEOPLE, DECISIONS, LATEST, AS_OF
    )
    assert plan.count() == 0


def sync(
    store: StateStore,
    crm: FakeCrm,
    as_of: dt.date = AS_OF,
    dry_run: bool = False,
    people: dict[str, Person] = PEOPLE,
) -> Summary:
    summary = Summary(mode="plan" if dry_run else "run", as_of=as_of.isoformat())
    run_id = 0 if dry_run else store.begin_run("run", as_of, dt.datetime.now(dt.UTC))
    ctx = RunContext(as_of=as_of, started_at=dt.datetime.now(dt.UTC), dry_run=dry_run)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ledger, "latest_transitions", lambda _store: LATEST)
        decisions = {k: DECISIONS.get(k, decide("nurture")) for k in people}
        sync_tasks(config(), store, [crm], people, decisions, ctx, summary, run_id, Counter(), set())  # type: ignore[list-item]
    return summary


def test_repeated_runs_create_each_task_once_and_ask_the_crm_only_when_the_state_cannot_vouch(
    tmp_path: Path,
) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    crm = FakeCrm()
    first = sync(store, crm)
    assert first.tasks["targets"]["crm_out"]["created"] == {
        "opportunity": 1,
        "renewal": 1,
        "revisit": 1,
        "win-back": 1,
    }
    assert crm.created_calls == 4 and len(crm.lookups) == 1 and len(crm.lookups[0]) == 4
    for _ in range(3):
        again = sync(store, crm)
        assert again.tasks["targets"]["crm_out"]["already_done"] == 4
        assert again.tasks["targets"]["crm_out"]["created"] == {}
    assert crm.created_calls == 4
    assert len(crm.lookups) == 1  # done rows need no lookup
    assert {r["status"] for r in ledger.rows(store)} == {"done"}


def test_a_crash_between_the_crm_create_and_the_state_commit_creates_no_duplicate(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    crm = FakeCrm()
    crm.crash_after_create = True
    with pytest.raises(KeyboardInterrupt):
        sync(store, crm)
    assert {r["status"] for r in ledger.rows(store)} == {"pending"}  # written before the call
    crm.crash_after_create = False
    summary = sync(store, crm)
    assert summary.tasks["targets"]["crm_out"]["found"] == 4
    assert crm.created_calls == 4  # found in the CRM by key, not created again
    assert {r["status"] for r in ledger.rows(store)} == {"done"}


def test_a_lost_state_asks_the_crm_first(tmp_path: Path) -> None:
    crm = FakeCrm()
    sync(StateStore(tmp_path / "a.sqlite"), crm)
    fresh = StateStore(tmp_path / "b.sqlite")  # as after `connector state rebuild`
    summary = sync(fresh, crm)
    assert summary.tasks["targets"]["crm_out"]["found"] == 4
    assert crm.created_calls == 4


def test_a_refused_task_is_kept_with_its_reason_and_retried_after_its_window(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    crm = FakeCrm()
    crm.refuse["revisit"] = "Subject: too long for a validation rule"
    first = sync(store, crm)
    assert first.tasks["targets"]["crm_out"]["failed"] == 1
    rejected = store.rejected("write", "crm_out")
    assert len(rejected) == 1 and rejected[0]["code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert rejected[0]["item"].startswith("P1/revisit/")
    crm.refuse.clear()
    later = AS_OF + dt.timedelta(days=60)  # the revisit trigger no longer holds: the refusal is still retried
    second = sync(store, crm, as_of=later)
    assert second.tasks["targets"]["crm_out"]["created"].get("revisit") == 1
    assert store.rejected("write", "crm_out") == []
    assert crm.created_calls == 4  # three the first run, the refused one now


def test_plan_lists_what_it_would_create_and_writes_nothing(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    crm = FakeCrm()
    with store.dry_run():
        summary = sync(store, crm, dry_run=True)
    assert summary.tasks["targets"]["crm_out"]["would_create"] == {
        "opportunity": 1,
        "renewal": 1,
        "revisit": 1,
        "win-back": 1,
    }
    assert {(c["task"], c["person"]) for c in summary.task_changes} >= {("revisit", "P1")}
    assert "task_changes" not in summary.to_json() and summary.to_json(detail=True)["task_changes"]
    assert crm.created_calls == 0 and crm.lookups == []
    assert ledger.rows(store) == []


def merged(keep: str, retired: str) -> dict[str, Person]:
    """PEOPLE after a merge: `retired`'s records (and values) now belong to the person `keep`."""
    gone = PEOPLE[retired]
    survivor = Person(key=keep, refs=[*gone.refs], values=dict(gone.values))
    return {k: p for k, p in PEOPLE.items() if k != retired} | {keep: survivor}


def test_a_merge_keeps_a_task_made_for_the_retired_person_key(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    crm = FakeCrm()
    sync(store, crm)
    assert crm.created_calls == 4
    with store.transaction():  # as the pipeline does with each alias the resolution reports
        store.rename_person("P1", "P0")
        ledger.rename_person(store, "P1", "P0")
    after = sync(store, crm, people=merged("P0", "P1"))
    assert after.tasks["targets"]["crm_out"]["created"] == {}
    assert after.tasks["targets"]["crm_out"]["already_done"] == 4
    assert crm.created_calls == 4
    [row] = [r for r in ledger.rows(store) if r["task"] == "revisit"]
    assert row["person_key"] == "P0" and row["key"] == idempotency_key(
        "revisit", "P1", row["occurrence"] or ""
    )


def test_a_refused_task_follows_its_person_through_a_merge_and_is_retried_once(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    crm = FakeCrm()
    crm.refuse["revisit"] = "Subject: too long for a validation rule"
    sync(store, crm)
    with store.transaction():
        store.rename_person("P1", "P0")
        ledger.rename_person(store, "P1", "P0")
    [kept] = store.rejected("write", "crm_out")
    assert kept["item"].startswith(
        "P0/revisit/"
    )  # `connector rejected` and incremental runs name the survivor
    crm.refuse.clear()
    after = sync(store, crm, people=merged("P0", "P1"))
    assert after.tasks["targets"]["crm_out"]["created"] == {"revisit": 1}
    assert crm.created_calls == 4
    assert store.rejected("write", "crm_out") == []
    assert [r["status"] for r in ledger.rows(store) if r["task"] == "revisit"] == ["done"]


def test_two_people_who_each_had_the_occurrence_merge_into_one_without_a_new_task(tmp_path: Path) -> None:
    """Both had the same revisit date: one got the task, the other's was refused. Merged, the refused one is
    not retried (the person has the task) and nothing new is created."""
    twin = person("P0", first_name="Ann", nurture_until=PEOPLE["P1"].get("nurture_until"))
    store = StateStore(tmp_path / "s.sqlite")
    crm = FakeCrm()
    sync(store, crm, people=PEOPLE | {"P0": twin})
    assert crm.created_calls == 5
    [refused] = [r for r in ledger.rows(store) if r["person_key"] == "P0"]
    with store.transaction():  # as if P0's create had been refused
        store.db.execute("UPDATE tasks SET status='rejected' WHERE key=?", (refused["key"],))
        crm.held.pop(str(refused["key"]))
    with store.transaction():
        store.rename_person("P1", "P0")
        ledger.rename_person(store, "P1", "P0")
    after = sync(store, crm, people=merged("P0", "P1"))
    assert after.tasks["targets"]["crm_out"]["created"] == {}
    assert crm.created_calls == 5
