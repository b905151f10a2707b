"""`connector demo` ends with a config and a state the other commands can open, as its last line suggests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from connector.cli import cli
from connector.state import StateStore
from connector_sandboxes.demo import run_demo


def test_the_demo_leaves_a_config_that_explain_and_report_can_use(tmp_path: Path) -> None:
    assert run_demo(tmp_path / "demo", people=120, as_of=dt.date(2026, 11, 23), seed=7) == 0
    config = str(tmp_path / "demo" / "connector.yaml")
    runner = CliRunner()
    report = runner.invoke(cli, ["report", "-c", config, "--json"])
    assert report.exit_code == 0, report.output  # the sandboxes are gone; the config must still validate
    store = StateStore(tmp_path / "demo" / "state.sqlite")
    someone = next(iter(store.person_keys()))
    store.close()
    explain = runner.invoke(cli, ["explain", "-c", config, someone])
    assert explain.exit_code == 0, explain.output
    assert someone in explain.output
