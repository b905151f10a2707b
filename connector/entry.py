"""The `connector` command's entry point: stop signals are handled before anything heavy is imported.

Importing the command line pulls in pydantic, requests, structlog and the plugins, which takes a noticeable
while on a busy host; a container stopped during that time must still end with exit 130, not die from an
unhandled SIGTERM. So this module imports nothing of connector's until the handler is in place.
"""

from __future__ import annotations

import gc
import os
import sys

# The cyclic garbage collector's thresholds for a command's process (Python's default is 700, 10, 10). A run
# holds hundreds of thousands of facts, people and decisions at once, nearly all freed by reference counting;
# at the default the collector walked them over and over: about a fifth of a first run's CPU at 100,000
# people (measured: 29.8 s -> 22.3 s user CPU). Cycles are still collected, after 20,000 allocations.
COLLECTOR_THRESHOLDS = (20_000, 20, 20)


def main() -> None:
    from . import interrupts

    gc.set_threshold(*COLLECTOR_THRESHOLDS)
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
