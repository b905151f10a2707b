"""`connector check` with `tasks:` configured, over real HTTP to both sandboxes: what creating the follow-up
tasks needs (the Task object and Calendar module, where each CRM keeps the idempotency key, the configured
status and priority among the CRM's values) is confirmed before a run, reading no record and writing nothing.
The demo config holds a `tasks:` entry for every CRM target."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_check_discover_e2e import assert_read_only, edit_config, findings, invoke

from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import World, seeded_world

AS_OF = dt.date(2026, 11, 23)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with seeded_world(tmp_path, generate(20, AS_OF, seed=5), AS_OF, seed=5) as seeded:
        for key, value in seeded.environ.items():
            monkeypatch.setenv(key, value)
        seeded.sf.reset_calls()
        seeded.vt.reset_calls()
        yield seeded


def test_check_confirms_what_creating_the_tasks_needs(world: World) -> None:
    result = invoke("check", "-c", str(world.config_path), "--json")
    assert result.exit_code == 0, result.output
    found = findings(result)
    assert found[("sf_out", "task object Task")]["status"] == "ok"
    assert found[("sf_out", "task key field Task.Connector_Key__c")]["detail"] == "External ID, unique"
    assert found[("vt_out", "task module Calendar")]["status"] == "ok"
    assert "description's last line" in found[("vt_out", "task key field")]["detail"]
    assert ("marketing_files", "task object Task") not in found  # a file target takes no tasks
    assert_read_only(world)


def test_check_names_a_missing_key_field_and_a_priority_the_crm_lacks_and_exits_2(world: World) -> None:
    edit_config(
        world,
        ("    source: sf_prod\n", "    source: sf_prod\n    task_key_field: Connector_Kee__c\n"),
        ("    concurrency: 4\n", '    concurrency: 4\n    task_key_field: "label:Connector key"\n'),
        (
            "      due_in_days: 3\n",
            "      due_in_days: 3\n      priority: {default: Medium, vt_out: Urgent}\n",
        ),
    )
    result = invoke("check", "-c", str(world.config_path), "--json")
    assert result.exit_code == 2, result.output
    found = findings(result)
    failed = {key for key, f in found.items() if f["status"] == "fail"}
    assert failed == {
        ("sf_out", "task key field Task.Connector_Kee__c"),
        ("sf_out", "task nurture-revisit priority"),  # Salesforce refuses every such task
        ("vt_out", "task key field label:Connector key"),
    }, failed
    assert "'Medium' is not a Task Priority value (High, Normal, Low)" in str(
        found[("sf_out", "task nurture-revisit priority")]["detail"]
    )
    # vtiger stores a value its picklist lacks: worth knowing, nothing a run would fail on
    assert found[("vt_out", "task nurture-revisit priority")]["status"] == "info"
    assert_read_only(world)
