"""The seam where plugins plug in: sources and writers meet only through the plan, a target reaches its system
through its source's one connection, and a target's checks against its source are config errors with file,
line and key path, all at once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from connector.config import ConfigErrors, load_config_text
from connector.context import PluginEnv
from connector.crm.salesforce.connection import SalesforceConnection
from connector.crm.vtiger.connection import VtigerConnection
from connector.sources.salesforce.config import SalesforceSourceConfig
from connector.sources.salesforce.source import SalesforceSource
from connector.writers.salesforce.config import SalesforceWriterConfig
from connector.writers.salesforce.writer import SalesforceWriter

PACKAGE = Path(__file__).resolve().parent.parent / "connector"
SF_ENV = {"SF_SESSION_ID": "00Dsession!abc", "SF_INSTANCE_URL": "https://acme.my.salesforce.com"}


def imported_modules(path: Path) -> set[str]:
    """Absolute dotted names of what one module of the package imports (relative imports resolved)."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imports_under(folder: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(PACKAGE.parent)): imported_modules(path)
        for path in sorted((PACKAGE / folder).rglob("*.py"))
    }


def crossing(modules: dict[str, set[str]], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} -> {name}"
        for module, names in modules.items()
        for name in names
        if name.startswith(forbidden)
    )


def test_sources_and_writers_never_import_each_other() -> None:
    assert crossing(imports_under("writers"), ("connector.sources",)) == []
    assert crossing(imports_under("sources"), ("connector.writers",)) == []
    # the transport knows nothing of the funnel's plugins
    assert crossing(imports_under("crm"), ("connector.sources", "connector.writers")) == []


@pytest.mark.parametrize("module", ["engine", "diffing", "guard", "vetoes", "segments", "plan"])
def test_the_engine_and_the_diff_step_import_no_plugin(module: str) -> None:
    names = imported_modules(PACKAGE / f"{module}.py")
    assert crossing({module: names}, ("connector.sources", "connector.writers")) == []


def test_a_source_and_its_target_share_one_connection(tmp_path: Path) -> None:
    source_cfg = SalesforceSourceConfig.model_validate(
        {
            "name": "sf",
            "type": "salesforce",
            "auth": "session",
            "objects": {"Lead": {"fields": {"Email": "email"}}},
        }
    )
    target_cfg = SalesforceWriterConfig.model_validate(
        {"name": "sf_out", "type": "salesforce", "source": "sf", "label_field": {"Lead": "Stage__c"}}
    )
    env = PluginEnv(sources=[source_cfg], environ=SF_ENV, state_dir=tmp_path)
    source = SalesforceSource.from_config(source_cfg, env)
    writer = SalesforceWriter.from_config(target_cfg, env)
    connection = env.connection("sf", SalesforceConnection)
    assert connection is not None
    assert source.client is writer.client is connection.client  # one login, one pool, one budget
    assert env.connection("sf", VtigerConnection) is None  # asked for the wrong kind: none
    assert env.connection("nowhere", SalesforceConnection) is None
    env.close()
    assert env.connection("sf", SalesforceConnection) is not connection  # the next run opens its own


CONFIG = """\
stage_model: {preset: default}
sources:
  - name: files
    type: file
    path: people.csv
    fields: {E-mail: email}
  - name: vt
    type: vtiger
    url: http://127.0.0.1:9/
    modules:
      Leads: {fields: {email: email, "label:Funnel stage": extra.stage}}
targets:
  - name: vt_out
    type: vtiger
    source: files
  - name: sf_out
    type: salesforce
    source: vt
  - name: vt_labels
    type: vtiger
    source: vt
    label_field: {Leads: "label:Funnel stage"}
"""


def test_target_cross_checks_are_config_errors_with_file_line_and_key_path_all_at_once() -> None:
    with pytest.raises(ConfigErrors) as caught:
        load_config_text(CONFIG, "connector.yaml", base_dir=Path("/srv"))
    assert [str(issue) for issue in caught.value.issues] == [
        "connector.yaml:15 targets[0].source: 'files' is a file source; this target needs a vtiger source",
        "connector.yaml:18 targets[1].source: 'vt' is a vtiger source; this target needs a salesforce source",
        "connector.yaml:22 targets[2].label_field.Leads: 'label:Funnel stage' is written by this target and "
        "must not be mapped as a signal in sources.vt.modules.Leads.fields",
    ]
