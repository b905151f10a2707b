"""`connector report --html` and `connector runs`: what a marketer and an operator see, from three real runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result
from spine_helpers import CONFIG_YAML, PEOPLE_CSV, Project, days

from connector.cli import cli
from connector.stage_model import load_preset

DUTCH = {
    "suspect": "Onbekend",
    "lead": "Geïnteresseerd",
    "prospect": "Gekwalificeerd",
    "opportunity": "Offerte",
    "customer": "Klant",
    "ambassador": "Ambassadeur",
    "nurture": "Later opvolgen",
    "qualified_out": "Afgewezen",
    "lost": "Verloren",
}
AS_OFS = [days(-22), days(-13), days(0)]


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--log-level", "error", *args], catch_exceptions=False)


def labelled_config(labels: dict[str, str]) -> str:
    stages = [dict(s, label=labels.get(s["name"], s.get("label"))) for s in load_preset("default")["stages"]]
    return CONFIG_YAML.replace(
        "stage_model:\n  preset: default\n",
        f"stage_model:\n  preset: default\n  stages: {json.dumps(stages)}\n",
    )


def three_runs(project: Project, labels: dict[str, str]) -> None:
    """Three runs on three dates: Ann qualifies (-> prospect), then goes to nurture; Bob leaves `warm`
    (qualified out); Gina arrives."""
    project.write("connector.yaml", labelled_config(labels))
    assert invoke("run", "-c", str(project.config_path), "--as-of", AS_OFS[0].isoformat()).exit_code == 0
    project.write("data/people.csv", PEOPLE_CSV.replace("Working;nee;EXT-1", "Qualified;nee;EXT-1"))
    assert invoke("run", "-c", str(project.config_path), "--as-of", AS_OFS[1].isoformat()).exit_code == 0
    people = PEOPLE_CSV.replace("Working;nee;EXT-1", "Nurture;nee;EXT-1").replace(
        "Globex;Qualified", "Globex;Disqualified"
    )
    project.write("data/people.csv", people + "gina@hooli.example;Gina;Kok;Hooli;Working;nee;EXT-9\n")
    assert invoke("run", "-c", str(project.config_path), "--as-of", AS_OFS[2].isoformat()).exit_code == 0


class Page(HTMLParser):
    """Every tag with its attributes, the text, and the rows of every table."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())

    def table_with(self, header: str) -> list[list[str]]:
        return next(t for t in self.tables if t and header in t[0])


@pytest.fixture
def page(project: Project, tmp_path: Path) -> Page:
    three_runs(project, DUTCH)
    out = tmp_path / "report.html"
    result = invoke("report", "-c", str(project.config_path), "--html", str(out))
    assert result.exit_code == 0, result.output
    assert f"funnel report: {out}" in result.output
    return Page(out.read_text(encoding="utf-8"))


def test_the_page_names_its_date_config_and_what_reached_means(page: Page) -> None:
    text = page.all_text
    assert f"As of {AS_OFS[2].isoformat()} (run #3, ok) · config connector.yaml · 7 people" in text
    assert (
        "“Reached” counts everyone who was ever at a stage or further along Onbekend → Geïnteresseerd" in text
    )
    assert "left for Later opvolgen / Afgewezen / Verloren" in text


def test_the_funnel_narrows_with_conversions_and_says_what_is_inferred(page: Page) -> None:
    text = page.all_text
    # only Frank is ever seen as a suspect; four people arrive as leads, Bob as a prospect, Carla qualified
    # out (she reached no path stage): reached only narrows
    assert "Onbekend 6 reached · 1 there now" in text
    assert "Geïnteresseerd 5 reached · 3 there now" in text
    assert (
        "Gekwalificeerd 2 reached · 0 there now → left for Later opvolgen 1, Afgewezen 1" in text
    )  # Ann, Bob
    assert "Left before reaching the path: Afgewezen 1" in text  # Carla
    assert "↓ 83%* went on to Geïnteresseerd" in text
    conversions = page.table_with("Went on")
    assert conversions[1] == ["Onbekend", "Geïnteresseerd", "83%", "6", "5", "0%"]
    assert conversions[2] == ["Geïnteresseerd", "Gekwalificeerd", "40%", "5", "1", "25%"]
    assert (
        "Onbekend → Geïnteresseerd: 5 of the 6 people counted at Onbekend entered the funnel further along"
        in text
    )
    assert (
        "so 83% is inferred: it assumes they passed Onbekend. Of the people actually seen at Onbekend, 0%"
        in text
    )


def test_the_trend_has_a_row_and_a_point_per_run(page: Page) -> None:
    trend = page.table_with("As of")
    assert trend[0][:4] == ["Run", "As of", "Onbekend", "Geïnteresseerd"]
    assert [row[1] for row in trend[1:]] == [d.isoformat() for d in AS_OFS]
    assert [row[2:5] for row in trend[1:]] == [["1", "3", "1"], ["1", "2", "2"], ["1", "3", "0"]]
    lines = [attrs for tag, attrs in page.tags if tag == "polyline"]
    points = [len((attrs["points"] or "").split()) for attrs in lines]
    assert points[: len(DUTCH)] == [3] * len(DUTCH)  # one line per stage, one point per run


def test_flows_in_the_period_and_days_in_stage(page: Page) -> None:
    assert f"Flows between stages, {days(-90).isoformat()} to {AS_OFS[2].isoformat()}" in page.all_text
    flows = page.table_with("From \\ to")
    assert flows[0] == [
        "From \\ to",
        "Onbekend",
        "Geïnteresseerd",
        "Gekwalificeerd",
        "Later opvolgen",
        "Afgewezen",
    ]
    assert flows[1:] == [
        ["new", "1", "4", "1", "0", "1"],
        ["Geïnteresseerd", "0", "0", "1", "0", "0"],  # Ann qualified
        ["Gekwalificeerd", "0", "0", "0", "1", "1"],  # Ann parked, Bob disqualified
    ]
    days_in = page.table_with("Average days in stage")
    assert ["Gekwalificeerd", "17.5", "0"] in days_in  # Ann 13 days, Bob 22


def test_each_segment_has_its_size_over_time_with_adds_and_removes(page: Page) -> None:
    text = page.all_text
    assert "warm (files) · 2 now" in text
    warm = [t for t in page.tables if t and t[0][:3] == ["Run", "As of", "Size"]][1]  # acquisition, then warm
    assert [row[:5] for row in warm[1:]] == [
        ["#1", AS_OFS[0].isoformat(), "3", "+3", "-0"],
        ["#2", AS_OFS[1].isoformat(), "3", "+0", "-0"],
        ["#3", AS_OFS[2].isoformat(), "2", "+1", "-2"],  # Gina in; Ann (nurture) and Bob (qualified out) out
    ]


def test_the_page_loads_nothing_from_anywhere(page: Page) -> None:
    assert not [tag for tag, _ in page.tags if tag in ("script", "iframe", "object", "embed", "img")]
    for tag, attrs in page.tags:
        for name in ("src", "href", "action", "srcset", "data"):
            value = attrs.get(name)
            assert value is None or value.startswith("data:"), (tag, name, value)
    style = "".join(page.text)
    assert "url(" not in style and "@import" not in style
    csp = next(a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert (csp["content"] or "").startswith("default-src 'none'")


def test_labels_from_the_config_are_escaped(project: Project, tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script> & <b>Co</b>'
    three_runs(project, {"lead": hostile})
    out, svg = tmp_path / "report.html", tmp_path / "funnel.svg"
    assert (
        invoke("report", "-c", str(project.config_path), "--html", str(out), "--svg", str(svg)).exit_code == 0
    )
    page = Page(out.read_text(encoding="utf-8"))
    assert not [tag for tag, _ in page.tags if tag in ("script", "b")]
    assert hostile in page.all_text  # shown as the words it is
    assert "<script>" not in svg.read_text(encoding="utf-8")


def test_runs_lists_every_run_with_its_figures(project: Project) -> None:
    three_runs(project, DUTCH)
    result = invoke("runs", "-c", str(project.config_path), "--json")
    assert result.exit_code == 0
    runs: list[dict[str, Any]] = json.loads(result.stdout)
    assert [(r["id"], r["as_of"], r["outcome"], r["exit_code"]) for r in runs] == [
        (1, AS_OFS[0].isoformat(), "ok", 0),
        (2, AS_OFS[1].isoformat(), "ok", 0),
        (3, AS_OFS[2].isoformat(), "ok", 0),
    ]
    assert runs[2]["people"] == 7
    assert runs[2]["stages"]["nurture"] == 1 and runs[2]["stages"]["qualified_out"] == 2
    warm = next(s for s in runs[2]["segments"] if s["segment"] == "warm")
    assert (warm["size"], warm["added"], warm["removed"]) == (2, 1, 2)
    assert runs[0]["rejected"] == 0

    text = invoke("runs", "-c", str(project.config_path), "--limit", "2").stdout
    assert text.startswith(f"run #3 as of {AS_OFS[2].isoformat()} (started ")
    assert "): ok (exit 0), 7 people\n" in text
    assert "  segment files/warm: 2 members, +1 -2\n" in text
    assert "run #1" not in text


def test_runs_shows_rejected_records(project: Project) -> None:
    project.write("data/contracts.csv", "E-mail;Provider;Einddatum\nbob@globex.example;TeleCorp;31-31-2027\n")
    assert invoke("run", "-c", str(project.config_path), "--as-of", AS_OFS[0].isoformat()).exit_code == 3
    (run,) = json.loads(invoke("runs", "-c", str(project.config_path), "--json").stdout)
    assert run["outcome"] == "partial" and run["exit_code"] == 3 and run["rejected"] == 1
    text = invoke("runs", "-c", str(project.config_path)).stdout
    assert "  rejected: 1 this run, 1 kept for retry\n" in text


def test_runs_before_any_run(project: Project) -> None:
    result = invoke("runs", "-c", str(project.config_path))
    assert result.exit_code == 9 and "no state" in result.output
