"""`serve()`: the foreground sandbox the CLI runs, reached with only what it prints."""

from __future__ import annotations

import signal
import subprocess
import sys

import requests


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
        settings: dict[str, str] = {}
        while "SF_API_VERSION" not in settings:
            line = proc.stdout.readline()
            assert line, "serve() exited before printing its settings"
            if "=" in line and not line.startswith("#"):
                name, _, value = line.strip().partition("=")
                settings[name] = value
        http = requests.Session()
        http.trust_env = False
        http.verify = settings["SF_CA_BUNDLE"]
        token = http.post(
            f"{settings['SF_LOGIN_URL']}/services/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": settings["SF_CLIENT_ID"],
                "client_secret": settings["SF_CLIENT_SECRET"],
                "username": settings["SF_USERNAME"],
                "password": settings["SF_PASSWORD"] + settings["SF_SECURITY_TOKEN"],
            },
            timeout=10,
        ).json()["access_token"]
        base = f"{settings['SF_INSTANCE_URL']}/services/data/v{settings['SF_API_VERSION']}"
        headers = {"Authorization": f"Bearer {token}"}
        leads = http.get(
            f"{base}/query", params={"q": "SELECT COUNT() FROM Lead"}, headers=headers, timeout=10
        )
        contacts = http.get(
            f"{base}/query", params={"q": "SELECT COUNT() FROM Contact"}, headers=headers, timeout=10
        )
        assert leads.json()["totalSize"] + contacts.json()["totalSize"] >= 12
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
