"""`connector sandbox salesforce|vtiger` print exactly what connector reads: run connector with nothing but the
printed variables and a config built from the printed source, over real HTTP to the running sandboxes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import HANG_GUARD, LineWatcher, stop

from connector.crm.salesforce.auth import SECRET_NAMES

CONNECTOR = str(Path(sys.executable).parent / "connector")
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Printed:
    """A running `connector sandbox <system>` and what it printed before it waits for Ctrl-C."""

    def __init__(self, system: str, last_variable: str) -> None:
        self.proc = subprocess.Popen(
            [CONNECTOR, "sandbox", system, "--port", "0", "--seed-people", "8"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        watcher = LineWatcher(self.proc.stdout)
        watcher.wait_for(lambda line: line.startswith(f"{last_variable}="))
        self.lines = [line.rstrip("\n") for line in watcher.lines]
        self.env = dict(line.partition("=")[::2] for line in self.lines if "=" in line and line[0] != "#")
        # the commented source block, uncommented
        self.source = "\n".join(line[2:] for line in self.lines if line.startswith("#   "))

    def references(self) -> set[str]:
        return set(REFERENCE.findall(self.source))

    def close(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # Ctrl-C is how a user stops it
        try:
            assert self.proc.wait(timeout=HANG_GUARD) == 0
        finally:
            stop(self.proc)


@pytest.fixture
def sandboxes() -> Iterator[tuple[Printed, Printed]]:
    sf = Printed("salesforce", "SF_API_VERSION")
    try:
        vt = Printed("vtiger", "VTIGER_ACCESS_KEY")
        try:
            yield sf, vt
        finally:
            vt.close()
    finally:
        sf.close()


def test_the_printed_settings_are_exactly_what_connector_reads(
    sandboxes: tuple[Printed, Printed], tmp_path: Path
) -> None:
    sf, vt = sandboxes
    # every printed variable is read: a credential connector reads itself, or one the printed source names
    assert set(sf.env) - sf.references() <= {f"SF_{n.upper()}" for n in SECRET_NAMES}
    assert set(vt.env) == {"VTIGER_USERNAME", "VTIGER_ACCESS_KEY"} | vt.references()
    assert "REQUESTS_CA_BUNDLE" not in sf.env  # connector ignores it; it would only mislead other programs
    # ... and every variable the printed sources name is printed
    assert sf.references() <= set(sf.env) and vt.references() <= set(vt.env)

    config = tmp_path / "connector.yaml"
    config.write_text(
        "stage_model: {preset: default}\nstate: {path: state.sqlite}\nsources:\n"
        + _indented(sf.source, "    objects: {Lead: {fields: {Email: email, Status: lead_status}}}")
        + _indented(vt.source, "    modules: {Leads: {fields: {email: email, leadstatus: lead_status}}}"),
        encoding="utf-8",
    )
    # nothing but the printed variables (and what a shell always has): the run finds everything it needs there
    environ = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    result = subprocess.run(
        [CONNECTOR, "--log-level", "warning", "plan", "-c", str(config), "--as-of", "2026-11-23", "--json"],
        env={**environ, **sf.env, **vt.env},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"people":' in result.stdout


def _indented(source: str, extra: str) -> str:
    return f"{source}\n{extra}\n"
