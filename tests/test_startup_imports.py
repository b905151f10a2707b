"""Start-up loads only the plugins a config uses: `connector validate` of a files-only config imports no CRM
code (config models, settings, clients) and none of the heavy libraries only other paths need. The CPU this
saves is measured, not asserted (benchmarks/README.md); the module set is what a test can hold steady."""

from __future__ import annotations

from process_probe import ROOT, at_exit

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
    modules, printed = at_exit("sorted(sys.modules)", *args)
    assert "ok (" in printed, printed
    return set(modules)


def test_validate_of_a_files_only_config_loads_no_crm_code() -> None:
    assert "type: salesforce" not in FILES_ONLY.read_text(encoding="utf-8")  # still the files-only example
    modules = modules_after("validate", "-c", str(FILES_ONLY))
    loaded = sorted(m for m in modules if any(m == n or m.startswith(f"{n}.") for n in NOT_NEEDED))
    assert loaded == []
    # it did build and check the plugins the config names
    assert {"connector.sources.files.source", "connector.writers.segment_files.writer"} <= modules
