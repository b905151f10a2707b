"""Follow-up tasks end to end over real HTTP: a nurture person whose revisit date arrives gets exactly one task
in each CRM (a Salesforce Task, a vtiger Calendar task), across repeated runs, runs crashed between a CRM's create
and the state's commit, and a state rebuild."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.identity import mint_key
from connector.outcome import EXIT_MASS_CHANGE
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector.state import StateStore
from connector.state_rebuild import rebuild
from connector.tasks import store as ledger
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import seeded_world
from connector_sandboxes.salesforce import SalesforceSandbox
from connector_sandboxes.vtiger import VtigerSandbox

AS_OF = dt.date(2026, 11, 23)
REVISIT = dt.date(2026, 12, 1)
EMAIL = "nora.nurture@acme.example"
CONFIG = """\
state: {{path: state.sqlite}}
stage_model: {{preset: default}}
sources:
  - name: sf_prod
    type: salesforce
    auth: password
    login_url: {sf_login_url}
    env_prefix: SF_
    ca_bundle: {sf_ca_bundle}
    objects:
      Lead: {{fields: {{Email: email, FirstName: first_name, LastName: last_name, Company: company}}}}
  - name: vt_main
    type: vtiger
    url: {vt_url}
    env_prefix: VTIGER_
    modules:
      Leads: {{fields: {{email: email, firstname: first_name, lastname: last_name}}}}
  - name: revisits              # sales' revisit dates, kept outside the CRMs
    type: file
    path: revisits.csv
    kind: enrichment
    join: email
    role: sales
    fields: {{E-mail: email, Revisit: nurture_until}}
targets:
  - {{name: sf_out, type: salesforce, source: sf_prod}}
  - {{name: vt_out, type: vtiger, source: vt_main}}
tasks:
  - name: nurture-revisit
    trigger: {{nurture_until: reached}}
    create:
      subject: "Revisit {{{{ first_name }}}} {{{{ last_name }}}}"
      description: "Sales parked {{{{ first_name }}}} until {{{{ occurrence }}}}."
      due_in_days: 3
      priority: High
"""


@dataclass
class World:
    sf: SalesforceSandbox
    vt: VtigerSandbox
    config_path: Path
    environ: dict[str, str]

    def runner(self) -> Runner:
        config = load_config(self.config_path)
        return Runner(config, environ=self.environ, policy=RetryPolicy(attempts=6, sleep=lambda s: None))

    def run(self, as_of: dt.date) -> Any:
        return self.runner().execute("run", as_of)

    def sf_tasks(self) -> list[dict[str, Any]]:
        lead = self.sf.store.find("Lead", "Email", EMAIL)
        assert lead is not None
        return [t for t in self.sf.store.all("Task") if t.get("WhoId") == lead["Id"]]

    def vt_tasks(self) -> list[dict[str, str]]:
        [lead] = [r for r in self.vt.store.all("Leads") if r.get("email") == EMAIL]
        return [t for t in self.vt.store.all("Calendar") if t.get("parent_id") == lead["id"]]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    people = generate(12, AS_OF, seed=5)
    with seeded_world(tmp_path, people, AS_OF, seed=5, config_text=CONFIG) as seeded:
        seeded.sf.store.insert(
            "Lead", {"FirstName": "Nora", "LastName": "Nurture", "Company": "Acme", "Email": EMAIL}
        )
        seeded.vt.store.create("Leads", {"firstname": "Nora", "lastname": "Nurture", "email": EMAIL})
        (tmp_path / "revisits.csv").write_text(
            f"E-mail,Revisit\n{EMAIL},{REVISIT.isoformat()}\n", encoding="utf-8"
        )
        yield World(seeded.sf, seeded.vt, seeded.config_path, seeded.environ)


def test_the_revisit_date_arriving_makes_one_task_in_each_crm_whatever_the_number_of_runs(
    world: World,
) -> None:
    before = world.run(AS_OF)
    assert before.exit_code == 0, before.errors
    assert world.sf_tasks() == [] and world.vt_tasks() == []  # parked: the date has not come

    first = world.run(REVISIT)
    assert first.exit_code == 0, first.errors
    assert first.tasks["targets"]["sf_out"]["created"] == {"nurture-revisit": 1}
    assert first.tasks["targets"]["vt_out"]["created"] == {"nurture-revisit": 1}
    [sf_task] = world.sf_tasks()
    assert sf_task["Subject"] == "Revisit Nora Nurture"
    assert sf_task["Description"] == f"Sales parked Nora until {REVISIT.isoformat()}."
    assert str(sf_task["ActivityDate"]) == (REVISIT + dt.timedelta(days=3)).isoformat()
    assert (sf_task["Status"], sf_task["Priority"]) == ("Not Started", "High")
    assert sf_task["Connector_Key__c"]
    assert sf_task["OwnerId"] == world.sf.store.find("Lead", "Email", EMAIL)["OwnerId"]
    [vt_task] = world.vt_tasks()
    assert vt_task["subject"] == "Revisit Nora Nurture"
    assert vt_task["due_date"] == (REVISIT + dt.timedelta(days=3)).isoformat()
    assert (vt_task["taskstatus"], vt_task["taskpriority"]) == ("Not Started", "High")
    assert vt_task["description"].endswith(f"connector-key: {sf_task['Connector_Key__c']}")

    for day in (REVISIT, REVISIT, REVISIT + dt.timedelta(days=1), REVISIT + dt.timedelta(days=20)):
        again = world.run(day)
        assert again.exit_code == 0, again.errors
        assert again.tasks["targets"]["sf_out"]["created"] == {}
        assert again.tasks["targets"]["vt_out"]["created"] == {}
    assert len(world.sf_tasks()) == 1 and len(world.vt_tasks()) == 1


def test_runs_crashed_between_the_crm_create_and_the_state_commit_leave_one_task_each(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert world.run(AS_OF).exit_code == 0
    real_mark = ledger.mark

    def crash_on(target: str) -> None:
        def mark(store: Any, tgt: str, items: Any, status: str, run_id: int, **kw: Any) -> None:
            if tgt == target and status == ledger.DONE and kw.get("record_ids") and list(items):
                raise KeyboardInterrupt(f"killed after {target} created its tasks")
            real_mark(store, tgt, items, status, run_id, **kw)

        monkeypatch.setattr(ledger, "mark", mark)

    crash_on("sf_out")
    with pytest.raises(KeyboardInterrupt):
        world.run(REVISIT)
    assert len(world.sf_tasks()) == 1 and world.vt_tasks() == []
    crash_on("vt_out")  # the next run finds the Salesforce task by its key, then dies after vtiger's create
    with pytest.raises(KeyboardInterrupt):
        world.run(REVISIT)
    assert len(world.sf_tasks()) == 1 and len(world.vt_tasks()) == 1
    monkeypatch.setattr(ledger, "mark", real_mark)
    last = world.run(REVISIT)
    assert last.exit_code == 0, last.errors
    assert last.tasks["targets"]["vt_out"]["found"] == 1
    assert len(world.sf_tasks()) == 1 and len(world.vt_tasks()) == 1
    assert world.run(REVISIT).tasks["targets"]["vt_out"]["found"] == 0  # the state vouches now: no lookup


def test_after_a_state_rebuild_the_tasks_are_found_not_created_again(world: World) -> None:
    world.run(AS_OF)
    world.run(REVISIT)
    assert len(world.sf_tasks()) == 1 and len(world.vt_tasks()) == 1
    rebuild(load_config(world.config_path).state_path(), force=True)
    after = world.run(REVISIT + dt.timedelta(days=2))
    assert after.exit_code == 0, after.errors
    assert after.tasks["targets"]["sf_out"]["found"] == 1
    assert after.tasks["targets"]["vt_out"]["found"] == 1
    assert len(world.sf_tasks()) == 1 and len(world.vt_tasks()) == 1


def test_plan_lists_the_tasks_it_would_create_and_creates_none(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from connector.cli import cli

    world.run(AS_OF)
    for name, value in world.environ.items():
        monkeypatch.setenv(name, value)
    args = ["--log-level", "warning", "plan", "-c", str(world.config_path), "--as-of", REVISIT.isoformat()]
    shown = CliRunner().invoke(cli, [*args, "--full"], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "tasks sf_out: would create {'nurture-revisit': 1}" in shown.output
    assert "tasks vt_out: would create {'nurture-revisit': 1}" in shown.output
    assert f"nurture-revisit Nora Nurture <{EMAIL}>  due 2026-12-04: Revisit Nora Nurture" in shown.output
    as_json = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    report = json.loads(as_json.stdout)
    assert report["tasks"]["targets"]["vt_out"]["would_create"] == {"nurture-revisit": 1}
    assert world.sf_tasks() == [] and world.vt_tasks() == []


def test_a_task_window_that_opens_days_before_its_date_is_seen_by_an_incremental_run(tmp_path: Path) -> None:
    """A run with nothing new decides only people whose facts changed or whose date windows open (incremental.py);
    a task whose window opens days before its date must count as such a window, or the moment passes unseen."""
    early = CONFIG + (
        "  - name: revisit-prep\n"
        "    trigger: {{date: {{field: nurture_until, days_before: 5}}}}\n"
        "    create: {{subject: 'Prepare the revisit of {{{{ first_name }}}}', due_in_days: 1}}\n"
    )
    people = generate(12, AS_OF, seed=5)
    with seeded_world(tmp_path, people, AS_OF, seed=5, config_text=early) as seeded:
        seeded.sf.store.insert(
            "Lead", {"FirstName": "Nora", "LastName": "Nurture", "Company": "Acme", "Email": EMAIL}
        )
        seeded.vt.store.create("Leads", {"firstname": "Nora", "lastname": "Nurture", "email": EMAIL})
        (tmp_path / "revisits.csv").write_text(
            f"E-mail,Revisit\n{EMAIL},{REVISIT.isoformat()}\n", encoding="utf-8"
        )
        world = World(seeded.sf, seeded.vt, seeded.config_path, seeded.environ)
        assert world.run(AS_OF).exit_code == 0
        assert (
            world.run(AS_OF + dt.timedelta(days=1)).exit_code == 0
        )  # nothing new: the next run is incremental
        opens = world.run(REVISIT - dt.timedelta(days=5))
        assert opens.exit_code == 0, opens.errors
        assert opens.tasks["targets"]["sf_out"]["created"] == {"revisit-prep": 1}
        assert opens.tasks["targets"]["vt_out"]["created"] == {"revisit-prep": 1}
        assert [t["Subject"] for t in world.sf_tasks()] == ["Prepare the revisit of Nora"]


def test_a_run_held_by_the_mass_change_guard_creates_no_task_and_the_next_allowed_run_does(
    world: World,
) -> None:
    """The guard holds the whole run, tasks included: sales must not be handed work from a run whose data
    looked wrong. The moment is not lost: the run let through afterwards (a day later) creates the task."""
    segment = (
        "  - {name: marketing_files, type: segment_files, directory: out}\n"
        "segments:\n"
        "  - {name: Everyone, when: {field: email, present: true}, targets: [marketing_files]}\n"
        "guard: {min_count: 2}\n"
        "tasks:\n"
    )
    config = world.config_path.read_text(encoding="utf-8")
    world.config_path.write_text(config.replace("tasks:\n", segment, 1), encoding="utf-8")
    first = world.run(AS_OF)
    assert first.exit_code == 0, first.errors
    assert first.segments["marketing_files"]["Everyone"]["added"] >= 5
    # a changed condition would empty the segment on the day Nora's revisit date arrives
    emptied = world.config_path.read_text(encoding="utf-8").replace(
        "{field: email, present: true}", "{field: email, eq: nobody@nowhere.example}"
    )
    world.config_path.write_text(emptied, encoding="utf-8")
    held = world.run(REVISIT)
    assert held.exit_code == EXIT_MASS_CHANGE, held.errors
    assert [b["what"] for b in held.guard["breaches"]] == ["segment_removals"]
    assert world.sf_tasks() == [] and world.vt_tasks() == []
    store = StateStore(load_config(world.config_path).state_path())
    try:
        assert ledger.rows(store) == []  # not even written pending: the CRMs were never asked
    finally:
        store.close()

    through = Runner(
        load_config(world.config_path),
        environ=world.environ,
        policy=RetryPolicy(attempts=6, sleep=lambda s: None),
        allow_mass_change=True,
    ).execute("run", REVISIT + dt.timedelta(days=1))
    assert through.exit_code == 0, through.errors
    assert through.tasks["targets"]["sf_out"]["created"] == {"nurture-revisit": 1}
    assert through.tasks["targets"]["vt_out"]["created"] == {"nurture-revisit": 1}
    assert len(world.sf_tasks()) == 1 and len(world.vt_tasks()) == 1


def test_a_person_merge_keeps_the_task_made_before_it_and_creates_none_again(world: World) -> None:
    """The idempotency key hashes the person key, and a merge retires one of the two keys: the task made for
    the retired key must still count for the surviving one (its ledger row follows the person)."""
    [vt_lead] = [r for r in world.vt.store.all("Leads") if r.get("email") == EMAIL]
    # a private address on the vtiger lead: two people until sales corrects it; pick one whose person key
    # sorts first, so that it is the vtiger person's key that survives the merge, not the task holder's
    private = next(
        f"nora.{n}@home.example"
        for n in range(100)
        if mint_key(f"email:nora.{n}@home.example", set()) < mint_key(f"email:{EMAIL}", set())
    )
    world.vt.store.update(vt_lead["id"], {"email": private})
    assert world.run(AS_OF).exit_code == 0
    made = world.run(REVISIT)
    assert made.exit_code == 0, made.errors
    assert made.tasks["targets"]["sf_out"]["created"] == {"nurture-revisit": 1}
    assert made.tasks["targets"]["vt_out"]["created"] == {}  # the revisit date is on the Salesforce person
    [sf_task] = world.sf_tasks()
    keys_before = _person_keys(world)
    assert len(keys_before) == 2
    holder = sf_task_person(world, sf_task)

    world.vt.store.update(vt_lead["id"], {"email": EMAIL})  # one person now: the vtiger key survives
    merged = world.run(REVISIT + dt.timedelta(days=1))
    assert merged.exit_code == 0, merged.errors
    [survivor] = _person_keys(world)
    assert survivor == min(keys_before) and survivor != holder
    assert merged.tasks["targets"]["sf_out"]["created"] == {}
    assert [t["Id"] for t in world.sf_tasks()] == [sf_task["Id"]]
    # the merged person now has a vtiger record too: one task there, the first in that CRM
    assert merged.tasks["targets"]["vt_out"]["created"] == {"nurture-revisit": 1}
    assert len(world.vt_tasks()) == 1
    again = world.run(REVISIT + dt.timedelta(days=2))
    assert again.exit_code == 0, again.errors
    assert len(world.sf_tasks()) == 1 and len(world.vt_tasks()) == 1


def _person_keys(world: World) -> list[str]:
    """The keys of the people holding Nora's records."""
    store = StateStore(load_config(world.config_path).state_path())
    try:
        return sorted(
            {
                r["person_key"]
                for r in store.db.execute(
                    "SELECT person_key FROM identity WHERE merge_key LIKE 'email:nora%'"
                )
            }
        )
    finally:
        store.close()


def sf_task_person(world: World, sf_task: dict[str, Any]) -> str:
    """The person key the task's ledger row was written for (before the merge: the Salesforce person)."""
    store = StateStore(load_config(world.config_path).state_path())
    try:
        [row] = [r for r in ledger.rows(store) if r["record_id"] == sf_task["Id"]]
        return str(row["person_key"])
    finally:
        store.close()
