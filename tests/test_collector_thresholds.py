"""The `connector` process raises the cyclic garbage collector's thresholds before it runs a command: a run
holds hundreds of thousands of live objects, and at Python's default (700 allocations) the collector walked
them over and over (a fifth of a first run's CPU). Cycles are still collected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from waiting import HANG_GUARD

from connector.entry import COLLECTOR_THRESHOLDS

ROOT = Path(__file__).resolve().parent.parent


def test_a_command_runs_with_the_raised_thresholds() -> None:
    probe = (
        "import atexit, gc, json, sys\n"
        "atexit.register(lambda: print(json.dumps([gc.get_threshold(), gc.isenabled()]), file=sys.stderr))\n"
        "sys.argv = ['connector', '--help']\n"
        "from connector.entry import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    thresholds, enabled = json.loads(done.stderr.strip().splitlines()[-1])
    assert tuple(thresholds) == COLLECTOR_THRESHOLDS
    assert thresholds[0] > 700  # above Python's default
    assert enabled  # raised, not switched off: reference cycles are still freed
