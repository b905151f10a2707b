"""The `connector` command's entry point: stop signals are handled before anything heavy is imported.

Importing the command line pulls in pydantic, requests, structlog and the plugins, which takes a noticeable
while on a busy host; a container stopped during that time must still end with exit 130, not die from an
unhandled SIGTERM. So this module imports nothing of connector's until the handler is in place.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from . import interrupts

    try:
        interrupts.install()  # a stop that arrived while Python started is raised from here
        from .cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        print("interrupted: committed work is kept; the next run carries on", file=sys.stderr)
        # By now the run loop has rolled back, recorded the run and released the lock. Leave without the
        # interpreter's exit-time join of worker threads: one still waiting on a CRM answer would hold the stop
        # until its time-out, past a container's grace period, and its result is no longer wanted.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
