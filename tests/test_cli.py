"""The `connector` command line: validate, plan, run, explain, report; JSON output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result
from spine_helpers import AS_OF, CONTRACTS_CSV, Project
from waiting import HANG_GUARD

from connector.cli import cli
from connector.outcome import EXIT_NOT_FOUND
from connector.state import StateStore

SUMMARY_KEYS = {"people", "labels", "segments", "rejected", "api_calls"}


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    # the CLI points structlog at the stderr CliRunner swaps in; later tests must not log into a closed stream
    yield
    structlog.reset_defaults()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--log-level", "warning", *args], catch_exceptions=False)


def cfg(project: Project) -> list[str]:
    return ["-c", str(project.config_path)]


def as_json(result: Result) -> dict[str, Any]:
    data = json.loads(result.stdout)  # exactly one JSON document on stdout, logs go elsewhere
    assert isinstance(data, dict)
    return data


# ---- validate --------------------------------------------------------------------------------------------


def test_validate_ok(project: Project) -> None:
    result = invoke("validate", *cfg(project))
    assert result.exit_code == 0
    assert result.stdout.strip().endswith("ok (3 sources, 1 targets, 2 segments, 12 stage rules)")


def test_validate_reports_every_error_with_its_line(project: Project) -> None:
    text = project.config_path.read_text(encoding="utf-8")
    text = text.replace("    kind: contract\n", "    kind: contrakt\n").replace(
        "    directory: out\n", "    directory: out\n    colour: red\n"
    )
    project.write("connector.yaml", text)
    lines = text.splitlines()
    kind_line, colour_line = lines.index("    kind: contrakt") + 1, lines.index("    colour: red") + 1
    result = invoke("validate", *cfg(project))
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    shown = str(project.config_path)
    assert errors == [
        f"error: {shown}:{kind_line} sources[1].kind: Input should be 'person', 'opportunity', 'contract' or "
        "'enrichment'",
        f"error: {shown}:{colour_line} targets[0].colour: unknown key (did you mean 'columns'?)",
    ]
    assert (kind_line, colour_line) == (24, 38)
    assert "2 config error(s)" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["plan", "run"])
def test_plan_and_run_stop_at_a_config_error(project: Project, command: str) -> None:
    project.write("connector.yaml", "stage_model:\n  preset: nope\n")
    result = invoke(command, *cfg(project), "--json")
    assert result.exit_code == 2
    assert "unknown preset 'nope'" in result.stderr
    assert result.stdout == ""


# ---- plan and run ----------------------------------------------------------------------------------------


def test_plan_json_is_one_object_and_writes_nothing(project: Project) -> None:
    result = invoke("plan", *cfg(project), "--as-of", AS_OF.isoformat(), "--json")
    assert result.exit_code == 0
    data = as_json(result)
    assert set(data) >= SUMMARY_KEYS
    assert data["mode"] == "plan"
    assert data["people"]["total"] == 6
    assert data["segments"]["files"]["warm"]["adds"] == 3
    # the plan lists every change, person by person
    assert sorted(c["email"] for c in data["segment_changes"] if c["segment"] == "acquisition") == [
        "bob@globex.example",
        "frank@newco.example",
    ]
    assert not project.out.exists()
    assert project.query("SELECT COUNT(*) FROM runs") in ([], [(0,)])


def test_run_json_then_a_second_run_reports_zero_changes(project: Project) -> None:
    first = invoke("run", *cfg(project), "--as-of", AS_OF.isoformat(), "--json")
    assert first.exit_code == 0
    data = as_json(first)
    assert set(data) >= SUMMARY_KEYS
    assert (data["mode"], data["outcome"], data["run_id"]) == ("run", "ok", 1)
    assert data["rejected"] == {"count": 0, "pending": 0, "reasons": {}}
    assert data["api_calls"] == {}
    assert (project.out / "warm.csv").exists()

    second = as_json(invoke("run", *cfg(project), "--as-of", AS_OF.isoformat(), "--json"))
    assert second["transitions"] == {}
    assert all((s["adds"], s["removes"]) == (0, 0) for s in second["segments"]["files"].values())
    assert all(v["changes"] == 0 for v in second["labels"].values())


def test_run_text_output(project: Project) -> None:
    result = invoke("run", *cfg(project), "--as-of", AS_OF.isoformat())
    assert result.exit_code == 0
    assert result.stdout.startswith("run #1 as of 2026-11-23: ok (exit 0)")
    assert "stages: suspect=1, lead=3, prospect=1" in result.stdout
    assert "segment files/warm:" in result.stdout


def test_exit_3_with_rejected_records(project: Project) -> None:
    project.write("data/contracts.csv", CONTRACTS_CSV + "gert@bad.example;TeleCorp;31-31-2027\n")
    result = invoke("run", *cfg(project), "--as-of", AS_OF.isoformat(), "--json")
    assert result.exit_code == 3
    data = as_json(result)
    assert data["outcome"] == "partial"
    assert data["rejected"]["count"] == 1
    assert data["rejected"]["reasons"] == {"contracts: BAD_VALUE": 1}


def test_exit_5_when_another_run_holds_the_lock(project: Project) -> None:
    holder = StateStore(project.state_path)
    holder.lock()
    try:
        result = invoke("run", *cfg(project), "--as-of", AS_OF.isoformat(), "--json")
    finally:
        holder.close()
    assert result.exit_code == 5
    assert as_json(result)["outcome"] == "locked"


def test_a_bad_as_of_date_is_a_usage_error(project: Project) -> None:
    result = CliRunner().invoke(cli, ["run", *cfg(project), "--as-of", "23-11-2026"])
    assert result.exit_code == 2
    assert "is not a date" in result.output


# ---- explain and report ----------------------------------------------------------------------------------


def test_explain_by_e_mail(project: Project) -> None:
    invoke("run", *cfg(project), "--as-of", AS_OF.isoformat())
    result = invoke("explain", *cfg(project), "  Bob@Globex.EXAMPLE ")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()  # the wording itself: tests/test_explain.py
    assert lines[0].startswith("Bob Jansen <bob@globex.example>")
    assert lines[1] == "Stage: Prospect (prospect), since 2026-11-23."
    assert any(line.startswith("  competitor: TeleCorp") for line in lines)
    assert "Segments:\n  files: acquisition, warm\n" in result.stdout


def test_explain_json_by_key_and_by_external_id(project: Project) -> None:
    invoke("run", *cfg(project), "--as-of", AS_OF.isoformat())
    by_ext = as_json(invoke("explain", *cfg(project), "EXT-1", "--json"))
    assert by_ext["stage"] == "lead"
    assert by_ext["decision"]["rule"] == "interest"
    assert by_ext["history"][0]["to_stage"] == "lead"
    by_key = as_json(invoke("explain", *cfg(project), by_ext["person"], "--json"))
    assert by_key == by_ext


def test_explain_an_unknown_person(project: Project) -> None:
    invoke("run", *cfg(project), "--as-of", AS_OF.isoformat())
    result = invoke("explain", *cfg(project), "nobody@nowhere.example")
    assert result.exit_code == EXIT_NOT_FOUND == 9  # 1 means a bug
    assert "no person known as 'nobody@nowhere.example'" in result.stderr


def test_report_json_and_svg(project: Project, tmp_path: Path) -> None:
    invoke("run", *cfg(project), "--as-of", AS_OF.isoformat())
    svg = tmp_path / "funnel.svg"
    result = invoke("report", *cfg(project), "--json", "--svg", str(svg))
    assert result.exit_code == 0
    data = as_json(result)
    assert data["people"] == 6
    assert data["stages"]["lead"] == 3
    assert data["transitions"]["(new)->lead"] == 3
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    assert root.tag.endswith("svg")
    texts = [t.text for t in root.iter() if t.tag.endswith("text")]
    assert "Lead" in texts and "4 reached · 3 there now" in texts  # the funnel the HTML report shows
    assert "Now in a detour: Nurture 0, Qualified Out 1, Lost 0" in texts


def test_report_text(project: Project) -> None:
    invoke("run", *cfg(project), "--as-of", AS_OF.isoformat())
    result = invoke("report", *cfg(project))
    assert result.exit_code == 0
    assert result.stdout.startswith("6 people\n")
    assert "conversion: suspect->lead" in result.stdout


# ---- end to end: the installed console script ------------------------------------------------------------


def test_connector_run_end_to_end(project: Project) -> None:
    script = Path(sys.executable).parent / "connector"
    assert script.exists(), script
    command = [str(script), "--log-json", "run", *cfg(project), "--as-of", AS_OF.isoformat(), "--json"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD, check=False)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["people"]["total"] == 6
    assert data["segments"]["files"]["acquisition"]["added"] == 2
    # logs are JSON lines on stderr, with dotted event names
    events = [json.loads(line)["event"] for line in first.stderr.splitlines() if line.startswith("{")]
    assert "source.read.done" in events
    assert project.segment_rows("acquisition") == ["bob@globex.example", "frank@newco.example"]

    second = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD, check=False)
    assert second.returncode == 0
    again = json.loads(second.stdout)
    assert again["transitions"] == {}
    assert sum(s["adds"] + s["removes"] for s in again["segments"]["files"].values()) == 0


def test_validate_notices_a_missing_input_file(project: Project) -> None:
    (project.root / "data" / "people.csv").unlink()
    result = invoke("validate", *cfg(project))
    assert result.exit_code == 2
    assert "people.csv" in result.output and "not found" in result.output


@pytest.mark.parametrize("command", ["explain", "report", "rejected"])
def test_explain_and_report_before_any_run_say_so_and_create_nothing(project: Project, command: str) -> None:
    args = [command, *cfg(project)] + (["someone@example.test"] if command == "explain" else [])
    result = invoke(*args)
    assert result.exit_code == EXIT_NOT_FOUND  # 1 would mean a bug
    assert "no state" in result.output
    assert not project.state_path.exists()


def test_rejected_lists_kept_records_with_reasons_until_fixed(project: Project) -> None:
    project.write("data/contracts.csv", CONTRACTS_CSV + "gert@bad.example;TeleCorp;31-31-2027\n")
    invoke("run", *cfg(project), "--as-of", AS_OF.isoformat())
    result = invoke("rejected", *cfg(project), "--json")
    assert result.exit_code == 0
    (row,) = json.loads(result.output)
    assert row["phase"] == "read" and row["system"] == "contracts" and row["code"] == "BAD_VALUE"
    assert "31-31-2027" in row["reason"] and "contracts.csv:" in row["reason"]
    text = invoke("rejected", *cfg(project)).output
    assert "gert@bad.example" in text and "1 rejected record(s)" in text

    project.write("data/contracts.csv", CONTRACTS_CSV + "gert@bad.example;TeleCorp;31-12-2027\n")
    invoke("run", *cfg(project), "--as-of", AS_OF.isoformat())
    assert invoke("rejected", *cfg(project)).output.strip() == "no rejected records"


def test_run_writes_prometheus_metrics_when_asked(project: Project) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    metrics = project.root / "metrics" / "connector.prom"
    result = invoke("run", *cfg(project), "--as-of", AS_OF.isoformat(), "--metrics-file", str(metrics))
    assert result.exit_code == 0, result.output
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.read_text())
        for s in family.samples
    }
    assert samples[("connector_run_exit_code", ())] == 0
    assert samples[("connector_run_outcome", (("mode", "run"), ("outcome", "ok")))] == 1
    assert samples[("connector_people", ())] > 0
    stage_total = sum(v for (name, _), v in samples.items() if name == "connector_stage_people")
    assert stage_total == samples[("connector_people", ())]
    assert any(name == "connector_segment_members" for name, _ in samples)
