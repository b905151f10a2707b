"""A config that is easy to get right: relabel a preset's stage, segment names as people write them,
`${VAR}` for what differs between dev and prod, "did you mean", YAML mistakes explained, one round of errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner
from spine_helpers import AS_OF, Project

from connector.cli import cli
from connector.config import ConfigErrors, load_config, load_config_text

FILE = "connector.yaml"
BASE = Path("/srv/connector")
TARGETS = """\
targets:
  - {name: sf_out, type: segment_files, directory: a}
  - {name: files, type: segment_files, directory: b}
"""


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_config_text(text, FILE, base_dir=BASE, environ=environ or {})
    return [str(issue) for issue in info.value.issues]


@pytest.fixture(autouse=True)
def _reset_logging() -> object:
    yield
    structlog.reset_defaults()


# ---- relabel a stage without restating the preset ----------------------------------------------------


def test_one_label_changes_without_restating_the_preset() -> None:
    text = "stage_model:\n  preset: journey_004\n  labels: {customer: Klant}\n" + TARGETS
    model = load_config_text(text, FILE, base_dir=BASE, environ={}).stage_model
    assert model.stage("customer").label_for("sf_out") == "Klant"
    assert model.stage("customer").label_for("files") == "Klant"
    # everything else is the preset's
    assert model.path == ["suspect", "prospect", "lead", "customer"]
    assert model.stage("lead").label_for("sf_out") == "Lead"
    assert len(model.rules) == 7


def test_a_label_per_target_with_a_default_for_the_others() -> None:
    text = (
        "stage_model:\n  preset: journey_004\n  labels:\n"
        "    customer: {default: Klant, sf_out: Customer}\n    lead: {files: Aanvraag}\n" + TARGETS
    )
    model = load_config_text(text, FILE, base_dir=BASE, environ={}).stage_model
    assert model.stage("customer").label_for("sf_out") == "Customer"
    assert model.stage("customer").label_for("files") == "Klant"
    assert model.stage("lead").label_for("files") == "Aanvraag"
    assert model.stage("lead").label_for("sf_out") == "Lead"


def test_relabel_typos_are_found_with_their_lines_in_one_round() -> None:
    text = (
        "stage_model:\n"  # 1
        "  preset: journey_004\n"  # 2
        "  labels:\n"  # 3
        "    custmer: Klant\n"  # 4
        "    lead: {default: Aanvraag, sf_uot: Lead}\n"  # 5
        + TARGETS
        + "segments:\n  - {name: s, when: {field: stage, eq: leed}, targets: [files]}\n"  # 9, 10
    )
    assert problems(text) == [
        "connector.yaml:4 stage_model.labels.custmer: unknown stage 'custmer' (did you mean 'customer'?)",
        "connector.yaml:5 stage_model.labels.lead.sf_uot: no target named 'sf_uot' (did you mean 'sf_out'?)",
        "connector.yaml:10 segments[0].when: unknown stage 'leed' (did you mean 'lead'?)",
    ]


def test_stage_names_are_checked_even_when_the_stage_model_has_other_errors() -> None:
    text = (
        "stage_model:\n  preset: journey_004\n  forward_onyl: true\n"  # 3
        + TARGETS
        + "segments:\n  - {name: s, when: {field: stage, eq: custmer}, targets: [files]}\n"  # 8
    )
    assert problems(text) == [
        "connector.yaml:3 stage_model.forward_onyl: unknown key (did you mean 'forward_only'?)",
        "connector.yaml:8 segments[0].when: unknown stage 'custmer' (did you mean 'customer'?)",
    ]


# ---- "did you mean" -----------------------------------------------------------------------------------


def test_unknown_keys_fields_targets_and_sources_get_suggestions() -> None:
    text = """\
stage_model: {preset: default}
idenity: {}
sources:
  - name: crm
    type: file
    path: people.csv
    kind: person
    fields: {Email: emial, Status: lead_stauts}
targets:
  - {name: files, type: segment_files, directory: out, delimter: ","}
  - {name: sf_out, type: salesfroce, source: crn}
segments:
  - {name: s, when: {field: web_vists, gte: 3}, targets: [filse]}
"""
    found = problems(text)
    expected = [
        "connector.yaml:2 idenity: unknown key (did you mean 'identity'?)",
        "connector.yaml:8 sources[0].fields: Email: 'emial' is not a person field (did you mean 'email'?); "
        "Status: 'lead_stauts' is not a person field (did you mean 'lead_status' or 'lead_status_raw'?)",
        "connector.yaml:10 targets[0].delimter: unknown key (did you mean 'delimiter'?)",
        "connector.yaml:11 targets[1]: Input tag 'salesfroce' found using 'type' does not match any of the "
        "expected tags: 'salesforce', 'vtiger', 'segment_files' (did you mean 'salesforce'?)",
        "connector.yaml:11 targets[1].source: no source named 'crn' (did you mean 'crm'?)",
        "connector.yaml:13 segments[0].when.field: unknown field 'web_vists' (did you mean 'web_visits'?)",
        "connector.yaml:13 segments[0].targets[0]: no target named 'filse' (did you mean 'files'?)",
    ]
    for piece in expected:
        assert any(piece in line for line in found), (piece, found)


# ---- segment names as people write them ---------------------------------------------------------------


def test_segment_names_may_hold_spaces_and_capitals(project: Project) -> None:
    text = project.config_path.read_text(encoding="utf-8").replace("- name: warm\n", "- name: Warm leads\n")
    project.write("connector.yaml", text)
    runner = CliRunner()
    args = ["--log-level", "warning", "run", "-c", str(project.config_path), "--as-of", AS_OF.isoformat()]
    first = runner.invoke(cli, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    files = project.segment_files()
    assert "Warm-leads.csv" in files and "Warm-leads.changes.csv" in files
    assert "ann@acme.example" in project.segment_rows("Warm-leads")
    # the state knows the segment by the name the admin wrote, so the next run changes nothing
    segments = {row[0] for row in project.query("SELECT DISTINCT segment FROM memberships")}
    assert segments == {"acquisition", "Warm leads"}
    second = runner.invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert second.exit_code == 0
    assert '"adds": 0' in second.output and '"adds": 1' not in second.output
    assert project.segment_files() == files


def test_segment_names_that_would_share_a_file_or_break_a_crm_are_config_errors() -> None:
    text = (
        "stage_model: {preset: default}\n" + TARGETS + "segments:\n"
        "  - {name: Warm leads, when: {field: stage, eq: lead}, targets: [files]}\n"  # 6
        "  - {name: warm-leads, when: {field: stage, eq: lead}, targets: [files]}\n"  # 7
        "  - {name: ' padded', when: {field: stage, eq: lead}, targets: [sf_out]}\n"  # 8
        "  - {name: 'a |##| b', when: {field: stage, eq: lead}, targets: [sf_out]}\n"  # 9
    )
    found = problems(text)
    assert found[0] == (
        "connector.yaml:7 segments[1].name: segments 'Warm leads' and 'warm-leads' would both be written to "
        "warm-leads.csv in target 'files': rename one"
    )
    assert found[1].startswith("connector.yaml:8 segments[2].name: segment name ' padded' starts or ends")
    assert found[2].startswith("connector.yaml:9 segments[3].name: segment name 'a |##| b' holds '|##|'")


# ---- ${VAR} ------------------------------------------------------------------------------------------


ENV_CONFIG = """\
stage_model: {preset: default}
state:
  path: ${STATE_DIR}/state.sqlite
sources:
  - name: vt
    type: vtiger
    url: ${VT_URL:-http://127.0.0.1:8088}
    modules: {Leads: {fields: {email: email}}}
targets:
  - {name: files, type: segment_files, directory: "${OUT_DIR:-out}/segments"}
segments:
  - {name: "costs $${not a variable}", when: {field: stage, eq: lead}, targets: [files]}
"""


def test_env_variables_fill_in_values_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "connector.yaml"
    path.write_text(ENV_CONFIG, encoding="utf-8")
    prod = load_config(path, environ={"STATE_DIR": "/var/lib/connector", "VT_URL": "https://crm.example.com"})
    assert prod.state.path == "/var/lib/connector/state.sqlite"
    assert prod.sources[0].url == "https://crm.example.com"  # type: ignore[attr-defined]
    assert prod.targets[0].directory == "out/segments"  # type: ignore[attr-defined]
    assert prod.segments[0].name == "costs ${not a variable}"
    dev = load_config(path, environ={"STATE_DIR": "/tmp/c", "VT_URL": "", "OUT_DIR": "/tmp/o"})
    assert dev.sources[0].url == "http://127.0.0.1:8088"  # type: ignore[attr-defined]
    assert dev.targets[0].directory == "/tmp/o/segments"  # type: ignore[attr-defined]


def test_an_unset_variable_is_a_config_error_with_its_line_and_the_others_too() -> None:
    text = (
        ENV_CONFIG.replace("url: ${VT_URL:-http://127.0.0.1:8088}", "url: ${VT_URL}")
        + "guard: {min_cnt: 3}\n"
    )
    assert problems(text) == [
        "connector.yaml:3 state.path: environment variable STATE_DIR is not set (or write ${STATE_DIR:-default})",
        "connector.yaml:7 sources[0].url: environment variable VT_URL is not set (or write ${VT_URL:-default})",
        "connector.yaml:13 guard.min_cnt: unknown key (did you mean 'min_count'?)",
    ]


@pytest.mark.parametrize("variable", ["SF_PASSWORD", "VTIGER_ACCESS_KEY", "SF_CLIENT_SECRET", "API_TOKEN"])
def test_a_secret_is_never_substituted_into_the_config(variable: str) -> None:
    secret = "hunter2-do-not-show"
    text = f"stage_model: {{preset: default}}\nstate: {{path: '${{{variable}}}'}}\n"
    found = problems(text, environ={variable: secret})
    assert found == [
        f"connector.yaml:2 state.path: '${{{variable}}}' looks like a secret: secrets are not placed in the "
        "config, connector reads them from the environment itself (see env_prefix)"
    ]
    assert secret not in "".join(found)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${OPEN", "'${OPEN' is not closed with '}'"),
        ("${1BAD}", "'${1BAD}' is not ${VAR} or ${VAR:-default}"),
        ("${}", "'${}' is not ${VAR} or ${VAR:-default}"),
    ],
)
def test_a_malformed_reference_is_named(value: str, message: str) -> None:
    found = problems(f"stage_model: {{preset: default}}\nstate: {{path: '{value}'}}\n")
    assert len(found) == 1 and found[0].startswith(f"connector.yaml:2 state.path: {message}")


# ---- YAML mistakes explained -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "meaning"),
    [
        ("state:\n\tpath: x\n", 2, "a tab character: YAML indents with spaces only"),
        ("state:\n  path: x\n   foo: 1\n", 3, "indented deeper than the key above it"),
        ("sources:\n  - name: a\n    type: file\n   path: x\n", 4, "does not line up with the lines above"),
        ("a: 1\nfields: {a: b\nc: 1\n", 2, "a {...} mapping is not closed"),
        ("a:\n  b: 1\n  c\n  d: 2\n", 3, "a line inside a mapping without 'key: value'"),
    ],
)
def test_yaml_syntax_errors_are_explained_at_their_line(text: str, line: int, meaning: str) -> None:
    (found,) = problems(text)
    assert found.startswith(f"connector.yaml:{line}: YAML: ")
    assert meaning in found
