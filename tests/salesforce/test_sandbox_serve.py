"""`serve()`: the foreground sandbox the CLI runs, reached with only what it prints."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest
import requests
from waiting import HANG_GUARD, LineWatcher, stop


def test_serve_prints_exportable_settings_and_serves_seeded_people() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from connector_sandboxes.salesforce import serve; serve(port=0, seed_people=12)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        stdout = LineWatcher(proc.stdout)
        # the settings are printed once the sandbox listens; waiting for the last one waits for all of them
        stdout.wait_for(lambda line: line.startswith("SF_API_VERSION="))
        settings = dict(
            line.strip().partition("=")[::2]
            for line in stdout.lines
            if "=" in line and not line.startswith("#")
        )
        http = requests.Session()
        http.trust_env = False
        http.verify = settings["SF_CA_BUNDLE"]
        # a child on a loaded machine may answer slowly: the time-outs only guard against a hang
        token = http.post(
            f"{settings['SF_LOGIN_URL']}/services/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": settings["SF_CLIENT_ID"],
                "client_secret": settings["SF_CLIENT_SECRET"],
                "username": settings["SF_USERNAME"],
                "password": settings["SF_PASSWORD"] + settings["SF_SECURITY_TOKEN"],
            },
            timeout=HANG_GUARD,
        ).json()["access_token"]
        base = f"{settings['SF_INSTANCE_URL']}/services/data/v{settings['SF_API_VERSION']}"
        headers = {"Authorization": f"Bearer {token}"}
        leads = http.get(
            f"{base}/query", params={"q": "SELECT COUNT() FROM Lead"}, headers=headers, timeout=HANG_GUARD
        )
        contacts = http.get(
            f"{base}/query", params={"q": "SELECT COUNT() FROM Contact"}, headers=headers, timeout=HANG_GUARD
        )
        assert leads.json()["totalSize"] + contacts.json()["totalSize"] >= 12
        proc.send_signal(signal.SIGINT)  # Ctrl-C is how a user stops it: a clean exit
        assert proc.wait(timeout=HANG_GUARD) == 0
    finally:
        stop(proc)


def test_ctrl_c_as_soon_as_the_settings_are_out_still_stops_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test above sends SIGINT once it has read the last setting; the child may not have gone any further.
    import connector_sandboxes.salesforce as sandbox_module

    printed: list[str] = []

    def print_then_ctrl_c(text: str, flush: bool = False) -> None:
        printed.append(text)
        if text.startswith("SF_API_VERSION="):
            raise KeyboardInterrupt

    monkeypatch.setattr(sandbox_module, "print", print_then_ctrl_c, raising=False)
    sandbox_module.serve(port=0)  # returns: Ctrl-C is a normal stop
    url = next(line.partition("=")[2] for line in printed if line.startswith("SF_INSTANCE_URL="))
    with pytest.raises(OSError):  # and the sandbox no longer listens
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=HANG_GUARD).close()
