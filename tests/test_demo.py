"""`connector demo` ends with a config and a state the other commands can open, as its last line suggests, and
with the HTML report a marketer opens: a trend over three differing runs and the pipeline's coverage."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.run_history import run_history
from connector.state import StateStore
from connector.tasks import store as ledger
from connector_sandboxes.demo import run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("demo") / "demo"
    with pytest.MonkeyPatch.context() as mp:
        printed: list[str] = []
        mp.setattr("click.echo", lambda message="", **_: printed.append(str(message)))
        assert run_demo(workdir, people=120, as_of=dt.date(2026, 11, 23), seed=7) == 0
    return workdir, "\n".join(printed)


def test_the_demo_leaves_a_config_that_explain_and_report_can_use(demo: tuple[Path, str]) -> None:
    workdir, _ = demo
    config = str(workdir / "connector.yaml")
    runner = CliRunner()
    report = runner.invoke(cli, ["report", "-c", config, "--json"])
    assert report.exit_code == 0, report.output  # the sandboxes are gone; the config must still validate
    store = StateStore(workdir / "state.sqlite")
    someone = next(iter(store.person_keys()))
    store.close()
    explain = runner.invoke(cli, ["explain", "-c", config, someone])
    assert explain.exit_code == 0, explain.output
    assert someone in explain.output


def test_the_demo_writes_the_html_report_over_three_differing_runs(demo: tuple[Path, str]) -> None:
    workdir, output = demo
    page = workdir / "report.html"
    assert f"report for marketers (open it in a browser): {page}" in output
    store = StateStore(workdir / "state.sqlite")
    runs = [r for r in run_history(store) if r.mode == "run"]
    store.close()
    assert len(runs) >= 3
    first, second, third = runs[-3:]
    # the nothing-new run wrote nothing; the later one moved people and the open pipeline
    assert not any(s.get("written") for s in second.labels.values())
    assert second.stages == first.stages
    assert third.stages != second.stages
    assert third.as_of > second.as_of
    assert third.pipeline["coverage"] != second.pipeline["coverage"]
    html = page.read_text(encoding="utf-8")
    for heading in ("Funnel", "Stages over time", "Flows between stages", "Segments over time", "Pipeline"):
        assert f"<h2>{heading}" in html
    for run in (first, second, third):
        assert f"<td>#{run.id}</td><td>{run.as_of}</td>" in html


def test_the_demo_shows_follow_up_tasks_created_in_each_crm_once(demo: tuple[Path, str]) -> None:
    """Some demo people have a revisit date reached on the demo's as-of: its config's `tasks:` entry makes one
    task for each in every CRM holding them, listed per CRM; the nothing-new run creates none again."""
    workdir, output = demo
    runs = [line for line in output.splitlines() if line.startswith("  run: ")]
    created = re.search(r"tasks=\{'sf_out': (\d+), 'vt_out': (\d+)\}", runs[0])
    assert created is not None, runs[0]
    sf_made, vt_made = int(created[1]), int(created[2])
    assert sf_made >= 1 and vt_made >= 1
    assert "tasks={'sf_out': 0, 'vt_out': 0}" in runs[1]
    held = re.search(r"follow-up tasks \(.*\): salesforce Task (\d+), vtiger Calendar (\d+)", output)
    assert held is not None, output
    store = StateStore(workdir / "state.sqlite")
    try:
        rows = ledger.rows(store)
    finally:
        store.close()
    assert {r["status"] for r in rows} == {"done"}
    per_target = {t: sum(1 for r in rows if r["target"] == t) for t in ("sf_out", "vt_out")}
    assert per_target == {"sf_out": int(held[1]), "vt_out": int(held[2])}
    assert per_target["sf_out"] >= sf_made and per_target["vt_out"] >= vt_made
