"""`connector <args>` in a fresh interpreter, with a look at the process as it exits: what start-up imported,
how the process is set up. A test names the expression to read; it is printed as JSON at exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from waiting import HANG_GUARD

ROOT = Path(__file__).resolve().parent.parent


def at_exit(expression: str, *args: str, imports: str = "") -> tuple[Any, str]:
    """The JSON value of `expression` as `connector <args>` exits (exit 0 asserted), and what it printed.
    `imports`: modules the expression needs, comma-separated."""
    probe = (
        f"import atexit, json, sys{', ' + imports if imports else ''}\n"
        f"atexit.register(lambda: print(json.dumps({expression}), file=sys.stderr))\n"
        f"sys.argv = ['connector', *{list(args)!r}]\n"
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
    return json.loads(done.stderr.strip().splitlines()[-1]), done.stdout
