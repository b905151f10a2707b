"""A loopback vtiger CRM 8.2.0 webservice that answers like the recorded real server, quirks included."""

from __future__ import annotations

import contextlib
import threading

from connector_sandboxes.vtiger.clock import SandboxClock
from connector_sandboxes.vtiger.faults import Faults
from connector_sandboxes.vtiger.sandbox import VtigerSandbox
from connector_sandboxes.vtiger.store import VtigerStore

__all__ = ["Faults", "SandboxClock", "VtigerSandbox", "VtigerStore", "serve"]


# A vtiger source that reads exactly the variables printed below (connector substitutes ${VAR} in values).
SOURCE_SETTINGS = (
    "# export these, with a vtiger source in connector.yaml like this one:",
    "#   - name: vt_sandbox",
    "#     type: vtiger",
    "#     url: ${VTIGER_URL}",
    "#     env_prefix: VTIGER_",
)


def serve(host: str = "127.0.0.1", port: int = 0, seed_people: int = 0) -> None:
    """Run a sandbox in the foreground, print how to reach it, and block until Ctrl-C."""
    sandbox = VtigerSandbox(host=host, port=port, seed_people=seed_people).start()
    # from here on every way out (Ctrl-C even while the settings print) stops it
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a user stops the sandbox
            print(f"vtiger sandbox listening on {sandbox.endpoint}", flush=True)
            for line in SOURCE_SETTINGS:
                print(line, flush=True)
            for key, value in sandbox.env().items():
                print(f"{key}={value}", flush=True)
            _wait_for_interrupt()
    finally:
        sandbox.stop()


def _wait_for_interrupt() -> None:
    threading.Event().wait()
