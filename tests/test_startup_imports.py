"""Start-up loads only the plugins a config uses: `connector validate` of a files-only config imports no CRM
code (config models, settings, clients) and none of the heavy libraries only other paths need. The CPU this
saves is measured, not asserted (benchmarks/README.md); the module set is what a test can hold steady."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from waiting import HANG_GUARD

ROOT = Path(__file__).resolve().parent.parent
FILES_ONLY = ROOT / "config" / "connector.yaml"

# what a files-only `validate` never needs: the CRMs' own code (connector.crm.transport is shared: URL and
# certificate checks), their HTTP and auth libraries, the XLSX reader (the example reads CSV), the metrics
# writer, the e-mail validator (no record is mapped) and the report templates; nor the run itself (the
# pipeline, the state, erasure, the funnel report and the progress bars load with the commands that use them)
NOT_NEEDED = (
    "connector.pipeline",
    "connector.state",
    "connector.erasure",
    "connector.report",
    "tqdm",
    "connector.crm.salesforce",
    "connector.crm.vtiger",
    "connector.sources.salesforce",
    "connector.sources.vtiger",
    "connector.writers.salesforce",
    "connector.writers.vtiger",
    "simple_salesforce",
    "requests",
    "urllib3",
    "jwt",
    "openpyxl",
    "prometheus_client",
    "email_validator",
    "jinja2",
)


def modules_after(*args: str) -> set[str]:
    """The modules imported by the time `connector <args>` exits, in a fresh interpreter."""
    probe = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
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
    assert "ok (" in done.stdout, done.stdout
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_validate_of_a_files_only_config_loads_no_crm_code() -> None:
    assert "type: salesforce" not in FILES_ONLY.read_text(encoding="utf-8")  # still the files-only example
    modules = modules_after("validate", "-c", str(FILES_ONLY))
    loaded = sorted(m for m in modules if any(m == n or m.startswith(f"{n}.") for n in NOT_NEEDED))
    assert loaded == []
    # it did build and check the plugins the config names
    assert {"connector.sources.files.source", "connector.writers.segment_files.writer"} <= modules
