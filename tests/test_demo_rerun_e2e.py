"""After `connector demo`: its summary explains the exit 3 of its runs, and the config it leaves beside the
demo's (connector.sandbox.yaml) runs the same job against `connector sandbox salesforce|vtiger`, reached
through nothing but the variables they print, over real HTTP."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner
from test_sandbox_settings_e2e import CONNECTOR, Printed
from waiting import HANG_GUARD

from connector.cli import cli
from connector.config import load_config

AS_OF = dt.date(2026, 11, 23)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """`connector demo` once for the module: its folder and what it printed, as a user reads it."""
    workdir = tmp_path_factory.mktemp("demo") / "demo"
    args = ["demo", "--dir", str(workdir), "--people", "120", "--as-of", AS_OF.isoformat()]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    structlog.reset_defaults()  # the demo pointed logging at CliRunner's stream, closed now
    assert result.exit_code == 0, result.output
    yield workdir, result.output


def test_the_demo_explains_its_exit_3(demo: tuple[Path, str]) -> None:
    _, output = demo
    assert "exit=3" in output, "the demo's files no longer hold malformed rows: this test checks nothing"
    assert "exit 3 (partial) is expected here: the demo's files hold deliberately malformed rows" in output
    assert "exit 3 above comes from the demo's deliberately malformed file rows" in output


def test_the_demo_says_how_to_rerun_against_connector_sandbox(demo: tuple[Path, str]) -> None:
    workdir, output = demo
    rerun = workdir / "connector.sandbox.yaml"
    assert f"connector run -c {rerun}" in output
    assert "connector sandbox salesforce" in output and "connector sandbox vtiger" in output
    assert ".venv/bin/connector" in output


def test_the_rerun_config_runs_against_the_printed_sandbox_settings(demo: tuple[Path, str]) -> None:
    workdir, _ = demo
    rerun = workdir / "connector.sandbox.yaml"
    sf = Printed("salesforce", "SF_API_VERSION")
    try:
        vt = Printed("vtiger", "VTIGER_ACCESS_KEY")
        try:
            # nothing but what the sandboxes printed (and a PATH): no demo credentials leak in
            env = {"PATH": os.environ.get("PATH", ""), **sf.env, **vt.env}
            assert (
                load_config(rerun, environ=env).state_path()
                != load_config(workdir / "connector.yaml").state_path()
            )
            result = subprocess.run(
                [CONNECTOR, "run", "-c", str(rerun), "--as-of", AS_OF.isoformat(), "--json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=HANG_GUARD * 5,
            )
        finally:
            vt.close()
    finally:
        sf.close()
    assert result.returncode in (0, 3), result.stderr[-3000:]
    assert '"api_calls"' in result.stdout
    assert (workdir / "sandbox-state.sqlite").exists()
    assert any((workdir / "sandbox-segments").glob("*.csv"))


def test_the_readme_says_how_to_run_connector_after_make_demo() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Two commands") : readme.index("## Using it")]
    assert ".venv/bin/connector" in section and ". .venv/bin/activate" in section
    assert "connector run -c .demo/connector.sandbox.yaml" in section
    assert "exit 3" in section and "malformed rows" in section
