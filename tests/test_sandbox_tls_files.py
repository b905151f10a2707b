"""The loopback sandboxes' TLS key folders (`connector-tls-*` in the temp directory) go away when a sandbox
stops: a normal stop, Ctrl-C on `connector sandbox ...`, and a test fixture's teardown. A private key must not
outlive the server it belongs to.

Each test points the temp directory at a folder of its own, so folders made by other processes on the machine
(other test workers, other checkouts) never enter the before/after comparison.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from connector_sandboxes.salesforce import SalesforceSandbox
from connector_sandboxes.vtiger import VtigerSandbox

pytestmark = pytest.mark.reliability("Transport and secrets")


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder


def tls_folders(where: Path) -> set[Path]:
    return set(where.glob("connector-tls-*"))


def test_a_stopped_salesforce_sandbox_leaves_no_key_folder(private_tmp: Path) -> None:
    before = tls_folders(private_tmp)
    sandbox = SalesforceSandbox().start()
    try:
        folder = Path(sandbox.ca_bundle).parent
        # the key lives in a folder of this sandbox's own, under the temp directory
        assert folder in tls_folders(private_tmp) - before
        assert any(p.name.endswith("key.pem") for p in folder.iterdir())
    finally:
        sandbox.stop()
    assert not folder.exists()
    assert tls_folders(private_tmp) == before


def test_two_sandboxes_each_remove_only_their_own_folder(private_tmp: Path) -> None:
    with SalesforceSandbox() as first:
        first_folder = Path(first.ca_bundle).parent
        with SalesforceSandbox() as second:
            second_folder = Path(second.ca_bundle).parent
            assert first_folder != second_folder
        assert not second_folder.exists()
        assert first_folder.exists()  # still serving: its certificate stays
    assert not first_folder.exists()


def test_a_sandbox_never_started_but_asked_for_its_bundle_cleans_up_on_stop(private_tmp: Path) -> None:
    sandbox = SalesforceSandbox()
    folder = Path(sandbox.ca_bundle).parent
    assert folder.exists()
    sandbox.stop()
    assert not folder.exists()


def test_ctrl_c_on_the_salesforce_sandbox_command_removes_its_key_folder(tmp_path: Path) -> None:
    folder_root = tmp_path / "tmp"
    folder_root.mkdir()
    env = {**os.environ, "TMPDIR": str(folder_root)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from connector_sandboxes.salesforce import serve; serve(port=0)"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        settings: dict[str, str] = {}
        while "SF_API_VERSION" not in settings:  # the last line: serve() is now waiting for Ctrl-C
            line = proc.stdout.readline()
            assert line, "serve() exited before printing its settings"
            name, _, value = line.strip().partition("=")
            settings[name] = value
        bundle = settings["SF_CA_BUNDLE"]
        assert Path(bundle).parent in tls_folders(folder_root)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    assert tls_folders(folder_root) == set()


def test_a_vtiger_sandbox_over_tls_serves_https_and_removes_its_key_folder(private_tmp: Path) -> None:
    before = tls_folders(private_tmp)
    with VtigerSandbox(tls=True) as sandbox:
        folder = Path(sandbox.ca_bundle).parent
        assert folder in tls_folders(private_tmp) - before
        assert sandbox.url.startswith("https://127.0.0.1:")
        http = requests.Session()
        http.trust_env = False
        answer = http.get(
            sandbox.endpoint,
            params={"operation": "getchallenge", "username": sandbox.username},
            verify=sandbox.ca_bundle,
            timeout=30,
        )
        assert answer.json()["success"] is True
    assert not folder.exists()
    assert tls_folders(private_tmp) == before
