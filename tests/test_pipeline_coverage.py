"""Is the funnel full enough? `pipeline:` weighs the open opportunities per stage against the revenue target:
in the run summary (and so the state), the metrics file, a warning when short, and the HTML report's trend."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result
from spine_helpers import CONFIG_YAML, Project, days
from test_report_html import Page

from connector.cli import cli
from connector.config import load_config_text
from connector.coverage import pipeline_figures
from connector.coverage_config import PipelineConfig, period_of
from connector.errors import ConfigError
from connector.stage_model import StageModel, load_preset, merge_preset

# Ann (EXT-1) has a quote out for 40,000; Bob (EXT-2) an open deal of 10,000 still before the quote (so the
# `qualified` rule makes him a prospect); Carla's deal was won, so it is no open pipeline.
OPPS_CSV = """\
Klant;Bedrag;Fase
EXT-1;40000;Offerte
EXT-2;10000;Intake
EXT-3;99000;Gewonnen
"""
OPPS_SOURCE = """\
  - name: deals
    type: file
    path: data/opps.csv
    kind: opportunity
    join: external_id
    fields: {Klant: external_id, Bedrag: opportunity_amount, Fase: opportunity_stage}
    value_maps:
      opportunity_stage: {Offerte: proposal, Intake: open, Gewonnen: won}
"""
# default preset: opportunity 0.5, prospect 0.2 -> weighted 40,000 * 0.5 + 10,000 * 0.2 = 22,000
WEIGHTED = 40000 * 0.5 + 10000 * 0.2


def pipeline_yaml(target: float, warn_below: float = 1.0) -> str:
    return f"pipeline:\n  target: {target}\n  period: quarter\n  warn_below: {warn_below}\n"


def configured(project: Project, pipeline: str) -> None:
    text = CONFIG_YAML.replace("targets:\n", OPPS_SOURCE + "targets:\n", 1) + pipeline
    project.write("connector.yaml", text)
    project.write("data/opps.csv", OPPS_CSV)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--log-level", "warning", *args], catch_exceptions=False)


def run(project: Project, as_of: dt.date, *extra: str) -> Result:
    result = invoke("run", "-c", str(project.config_path), "--as-of", as_of.isoformat(), *extra)
    assert result.exit_code == 0, result.output
    return result


def summaries(project: Project) -> list[dict[str, Any]]:
    return [json.loads(s) for (s,) in project.query("SELECT summary FROM runs ORDER BY id")]


def test_every_run_keeps_open_value_per_stage_weighted_and_coverage_in_the_state(project: Project) -> None:
    configured(project, pipeline_yaml(44000, warn_below=0.5))
    run(project, days(0))
    figures = summaries(project)[-1]["pipeline"]
    assert figures["stages"]["opportunity"] == {
        "open": 1,
        "value": 40000,
        "probability": 0.5,
        "weighted": 20000,
    }
    assert figures["stages"]["prospect"] == {"open": 1, "value": 10000, "probability": 0.2, "weighted": 2000}
    assert all(
        s["value"] == 0 for name, s in figures["stages"].items() if name not in ("opportunity", "prospect")
    )
    assert figures["value"] == 50000
    assert figures["weighted"] == WEIGHTED
    assert figures["coverage"] == pytest.approx(WEIGHTED / 44000, abs=1e-4)
    assert figures["period"] == period_of("quarter", days(0))
    assert figures["below"] is False


def test_run_warns_when_coverage_falls_below_the_threshold(project: Project) -> None:
    configured(project, pipeline_yaml(44000, warn_below=0.5))  # 22,000 / 44,000 = 50%: just enough
    quiet = run(project, days(0))
    assert "pipeline.coverage_low" not in quiet.stderr
    configured(project, pipeline_yaml(44000, warn_below=0.6))  # 22,000 / 44,000 = 50% < 60%
    warned = run(project, days(0))
    line = next(x for x in warned.stderr.splitlines() if "pipeline.coverage_low" in x)
    assert "warning" in line.lower()
    assert "0.5" in line and "account managers" in line


def test_the_metrics_file_carries_the_coverage(project: Project) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    configured(project, pipeline_yaml(88000))
    metrics = project.root / "metrics" / "connector.prom"
    run(project, days(0), "--metrics-file", str(metrics))
    samples = {
        s.name: s.value for f in text_string_to_metric_families(metrics.read_text()) for s in f.samples
    }
    assert samples["connector_pipeline_coverage_ratio"] == pytest.approx(WEIGHTED / 88000, abs=1e-4)


def test_no_pipeline_configured_means_no_figures_and_no_metric(project: Project) -> None:
    metrics = project.root / "metrics" / "connector.prom"
    run(project, days(0), "--metrics-file", str(metrics))
    assert "pipeline" not in metrics.read_text()
    assert summaries(project)[-1]["pipeline"] == {}


def test_the_html_report_shows_the_pipeline_and_how_coverage_moved_per_run(
    project: Project, tmp_path: Path
) -> None:
    configured(project, pipeline_yaml(44000))
    run(project, days(-10))
    project.write("data/opps.csv", OPPS_CSV.replace("EXT-2;10000;Intake", "EXT-2;10000;Offerte"))
    run(project, days(0))  # Bob's quote went out: 10,000 now weighs 0.5 -> 25,000
    out = tmp_path / "report.html"
    assert invoke("report", "-c", str(project.config_path), "--html", str(out)).exit_code == 0
    page = Page(out.read_text(encoding="utf-8"))
    assert "Pipeline" in page.all_text
    per_stage = page.table_with("Chance won")
    assert ["Opportunity", "2", "50,000", "50%", "25,000"] in per_stage
    trend = page.table_with("Coverage")
    assert [row[0] for row in trend[1:]] == ["#2", "#1"]
    assert trend[1][6:] == [f"{25000 / 44000:.0%}", f"{25000 / 44000 - WEIGHTED / 44000:+.0%}"]
    assert trend[2][6] == f"{WEIGHTED / 44000:.0%}"


def test_the_report_without_pipeline_has_no_pipeline_section(project: Project, tmp_path: Path) -> None:
    run(project, days(0))
    out = tmp_path / "report.html"
    assert invoke("report", "-c", str(project.config_path), "--html", str(out)).exit_code == 0
    assert "<h2>Pipeline</h2>" not in out.read_text(encoding="utf-8")


# ---- config -------------------------------------------------------------------------------------------


def load(project: Project, pipeline: str) -> Any:
    return load_config_text(CONFIG_YAML + pipeline, "connector.yaml", base_dir=project.root)


def errors(project: Project, pipeline: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load(project, pipeline)
    return str(exc.value)


def test_probabilities_default_to_the_presets_and_the_config_overrides_them(project: Project) -> None:
    config = load(project, pipeline_yaml(1000) + "  probabilities: {opportunity: 0.9}\n")
    assert config.pipeline.probabilities == {"opportunity": 0.9}
    for preset in ("default", "journey_004", "journey_002"):
        model = StageModel.model_validate(merge_preset({"preset": preset}))
        assert model.probabilities, f"preset {preset} ships no probabilities"
        assert set(model.probabilities) <= set(model.ordered())
    default = StageModel.model_validate(load_preset("default"))
    figures = pipeline_figures(
        PipelineConfig(target=1000, probabilities={"opportunity": 0.9}),
        default,
        [("opportunity", {"opportunity_open": True, "opportunity_open_amount": 100.0})],
        days(0),
    )
    assert figures["stages"]["opportunity"]["weighted"] == 90
    assert figures["stages"]["prospect"]["probability"] == default.probabilities["prospect"]


def test_a_target_for_a_named_period_wins_over_the_plain_one(project: Project) -> None:
    config = PipelineConfig(target=1000, period="quarter", targets={"2027-Q1": 2000})
    model = StageModel.model_validate(load_preset("default"))
    deal = [("opportunity", {"opportunity_open": True, "opportunity_open_amount": 1000.0})]
    assert pipeline_figures(config, model, deal, dt.date(2027, 2, 1))["target"] == 2000
    assert pipeline_figures(config, model, deal, dt.date(2026, 12, 31))["target"] == 1000
    assert period_of("month", dt.date(2027, 2, 1)) == "2027-02"
    assert period_of("year", dt.date(2027, 2, 1)) == "2027"


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        ("pipeline:\n  target: 1000\n  tagret: 5\n", "connector.yaml:47 pipeline.tagret: unknown key"),
        ("pipeline:\n  target: 0\n", "connector.yaml:46 pipeline.target:"),
        (
            "pipeline:\n  target: 10\n  probabilities: {oportunity: 0.5}\n",
            "pipeline.probabilities.oportunity: unknown stage 'oportunity' (did you mean 'opportunity'?)",
        ),
        ("pipeline:\n  target: 10\n  probabilities: {lead: 1.5}\n", "pipeline.probabilities:"),
        (
            "pipeline:\n  target: 10\n  targets: {2027-05: 5}\n",
            "pipeline.targets.2027-05: '2027-05' is not a quarter (write it like 2027-Q1)",
        ),
    ],
)
def test_config_errors_name_file_line_and_key(project: Project, pipeline: str, expected: str) -> None:
    assert expected in errors(project, pipeline)


def test_a_stage_model_probability_for_an_unknown_stage_is_an_error(project: Project) -> None:
    text = CONFIG_YAML.replace("  preset: default\n", "  preset: default\n  probabilities: {leed: 0.1}\n")
    with pytest.raises(ConfigError) as exc:
        load_config_text(text, "connector.yaml", base_dir=project.root)
    assert "stage_model.probabilities.leed: unknown stage 'leed'" in str(exc.value)
