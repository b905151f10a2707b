"""Item 8: on a terminal, long phases show a progress bar; anywhere else (cron, Kubernetes, a pipe) the run's
stderr holds the usual JSON log lines and nothing else."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog
from click.testing import CliRunner
from spine_helpers import Project, days

from connector import logs
from connector.cli import cli
from connector.pipeline import Runner
from connector.progress import progress, shown


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    logs.configure("info", json_logs=True)


def test_without_a_terminal_the_run_prints_only_json_log_lines(project: Project) -> None:
    result = CliRunner().invoke(
        cli, ["--log-level", "info", "run", "-c", str(project.config_path), "--as-of", days(0).isoformat()]
    )
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert any(json.loads(line)["event"] == "writer.segment.done" for line in lines)
    for line in lines:
        assert json.loads(line)["event"]  # every line is a whole JSON log line: no bar, no carriage return
    assert "\r" not in result.stderr


def test_on_a_terminal_with_readable_logs_the_writes_draw_a_bar(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    logs.configure("warning", json_logs=False)
    summary = Runner(project.config()).execute("run", days(0))
    assert summary.exit_code == 0
    drawn = terminal.getvalue()
    # the bar names the phase and the members it will write (redraws after it are rate-limited by tqdm, so
    # only its first frame is certain), then clears itself for the log line that follows
    assert "files: segments:" in drawn and "member" in drawn
    assert "|" in drawn and "\r" in drawn


def test_json_logs_on_a_terminal_get_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    logs.configure("info", json_logs=True)
    assert not shown(terminal)
    with progress("bulk query job", unit="poll") as bar:
        bar.update(3)
    assert terminal.getvalue() == ""
