"""SIGTERM at any moment ends `connector` with exit 130, and a started run's history row says 130 too.

The child is a real `connector` process. It is stopped at exact points, never after a guessed sleep: before its
own code runs (the signal is sent while it is blocked, as it is while Python starts), and while it waits on a
vtiger sandbox call that the test holds open (reading, writing).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from spine_helpers import AS_OF, VTIGER_LABEL_CONFIG

from connector.outcome import EXIT_INTERRUPTED
from connector.state import StateStore
from connector_sandboxes.vtiger import VtigerSandbox

pytestmark = pytest.mark.reliability("Crashes and signals")

EXE = str(Path(sys.executable).with_name("connector"))


@pytest.fixture
def vt(tmp_path: Path, vt_sandbox: VtigerSandbox) -> VtigerSandbox:
    for i in range(5):
        vt_sandbox.store.create("Leads", {"lastname": f"L{i}", "email": f"l{i}@x.nl", "leadstatus": "Hot"})
    (tmp_path / "connector.yaml").write_text(VTIGER_LABEL_CONFIG.format(url=vt_sandbox.url), encoding="utf-8")
    return vt_sandbox


def _start(tmp_path: Path, vt: VtigerSandbox, *, block_stop: bool = False) -> subprocess.Popen[bytes]:
    def block() -> None:  # runs in the child between fork and exec: the mask survives exec
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})

    return subprocess.Popen(
        [EXE, "--log-json", "run", "-c", str(tmp_path / "connector.yaml"), "--as-of", AS_OF.isoformat()],
        env={**os.environ, **vt.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=block if block_stop else None,
    )


def _runs(tmp_path: Path) -> list[tuple[str, int]]:
    store = StateStore(tmp_path / "state.sqlite")
    try:
        return [(r["outcome"], r["exit_code"]) for r in store.runs()]
    finally:
        store.close()


def test_sigterm_while_python_starts(tmp_path: Path, vt: VtigerSandbox) -> None:
    proc = _start(tmp_path, vt, block_stop=True)
    proc.send_signal(signal.SIGTERM)  # pending from before connector's first line of code
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err.decode()[-2000:]
    assert b"Traceback" not in err
    assert not (tmp_path / "state.sqlite").exists() or _runs(tmp_path) == []
    assert vt.calls["login"] == 0


@pytest.mark.parametrize("operation", ["query", "revise"], ids=["reading", "writing"])
def test_sigterm_mid_run_is_130_in_the_exit_and_in_the_run_row(
    tmp_path: Path, vt: VtigerSandbox, operation: str, record_property: Callable[[str, object], None]
) -> None:
    vt.faults.hold_ops = {operation}
    proc = _start(tmp_path, vt)
    try:
        assert vt.faults.arrived.wait(timeout=120), "the run never reached the held call"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        vt.faults.hold_ops = set()
        vt.faults.release.set()
    assert proc.returncode == EXIT_INTERRUPTED, err.decode()[-2000:]
    assert b"Traceback" not in err
    assert _runs(tmp_path) == [("interrupted", EXIT_INTERRUPTED)]
    record_property("observed", f"exit {proc.returncode}, run row {_runs(tmp_path)[0]}")

    # the lock was released and the next run carries on
    again = subprocess.run(
        [EXE, "run", "-c", str(tmp_path / "connector.yaml"), "--as-of", AS_OF.isoformat()],
        env={**os.environ, **vt.env()},
        capture_output=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert _runs(tmp_path)[0] == ("ok", 0)
