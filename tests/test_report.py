"""Funnel reports from the state: counts, reached, conversion, time in stage, text and SVG."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from spine_helpers import AS_OF, days, preset_model

from connector.report import funnel_report, funnel_svg, funnel_text
from connector.stage_model import StageModel
from connector.state import StateStore

# person -> [(days from as-of, stage)], oldest first
HISTORY = {
    "PA": [(0, "suspect"), (10, "lead"), (30, "prospect")],
    "PB": [(0, "suspect"), (20, "lead")],
    "PC": [(0, "qualified_out")],
    "PD": [(0, "lead"), (5, "nurture")],
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "s.sqlite")
    run_id = 1
    with s.transaction():
        for key, moves in HISTORY.items():
            previous = None
            for offset, stage in moves:
                s.add_transition(key, previous, stage, days(offset), run_id, None, "test")
                previous = stage
            s.save_person(key, previous or "suspect", None, days(moves[-1][0]), {}, {}, run_id)
    yield s
    s.close()


def test_funnel_report(store: StateStore) -> None:
    model = preset_model("default")
    data = funnel_report(store, model)
    assert data["people"] == 4
    assert data["stages"] == {
        "suspect": 0,
        "lead": 1,
        "prospect": 1,
        "opportunity": 0,
        "customer": 0,
        "ambassador": 0,
        "nurture": 1,
        "qualified_out": 1,
        "lost": 0,
    }
    # reached: at or past a path stage at some point (a detour alone reaches nothing)
    assert data["reached"] == {
        "suspect": 3,
        "lead": 3,
        "prospect": 1,
        "opportunity": 0,
        "customer": 0,
        "ambassador": 0,
    }
    assert data["conversion"] == {
        "suspect->lead": 1.0,
        "lead->prospect": 0.333,
        "prospect->opportunity": 0.0,
        "opportunity->customer": None,
        "customer->ambassador": None,
    }
    assert data["avg_days_in_stage"] == {"suspect": 15.0, "lead": 12.5}
    assert data["transitions"] == {
        "(new)->suspect": 2,
        "suspect->lead": 2,
        "lead->prospect": 1,
        "(new)->qualified_out": 1,
        "(new)->lead": 1,
        "lead->nurture": 1,
    }


def test_an_empty_state(tmp_path: Path) -> None:
    s = StateStore(tmp_path / "empty.sqlite")
    try:
        data = funnel_report(s, preset_model("journey_004"))
    finally:
        s.close()
    assert data["people"] == 0
    assert set(data["stages"].values()) == {0}
    assert set(data["conversion"].values()) == {None}
    assert "Suspect" in funnel_text(data, preset_model("journey_004"))


def test_runs_are_listed_newest_first(store: StateStore) -> None:
    for n in range(3):
        run_id = store.begin_run("run", days(n), dt.datetime(2026, 11, 23, tzinfo=dt.UTC))
        store.finish_run(run_id, "ok", 0, {})
    runs = funnel_report(store, preset_model("default"))["runs"]
    assert [r["as_of"] for r in runs] == [days(2).isoformat(), days(1).isoformat(), AS_OF.isoformat()]


def test_funnel_text_marks_detours(store: StateStore) -> None:
    model = preset_model("default")
    lines = funnel_text(funnel_report(store, model), model, width=10).splitlines()
    assert len(lines) == len(model.ordered())
    assert lines[1].split() == ["Lead", "1", "##########"]
    assert lines[6].endswith("(detour)") and lines[6].split()[0] == "Nurture"


def _model_with_odd_labels() -> StageModel:
    return StageModel.model_validate(
        {
            "stages": [{"name": "a", "label": "R&D <new>"}, {"name": "b"}, {"name": "out"}],
            "path": ["a", "b"],
            "detours": ["out"],
            "default": "a",
        }
    )


def test_funnel_svg_is_well_formed_and_escapes_labels() -> None:
    model = _model_with_odd_labels()
    report = {"stages": {"a": 10, "b": 5, "out": 2}, "reached": {"a": 15, "b": 5}}
    svg = funnel_svg(report, model, title="Q4 & more")
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter() if t.tag.endswith("text")]
    assert texts[0] == "Q4 & more"
    assert "R&D <new>" in texts
    assert [t for t in texts if t and " now" in t] == ["15 reached · 10 there now", "5 reached · 5 there now"]
    assert "Now in a detour: Out 2" in texts
    widths = [float(r.get("width", "0")) for r in root.iter() if r.tag.endswith("rect")]
    assert widths[0] == pytest.approx(
        3 * widths[1], abs=0.5
    )  # bars scale with the people who reached the stage, not who is there now


def test_the_funnel_says_what_it_inferred_and_which_detours_people_took(store: StateStore) -> None:
    data = funnel_report(store, preset_model("default"), since=days(5), until=days(20))
    # PD was first seen as a lead: counted as having passed suspect, and said so
    assert data["reached"]["suspect"] == 3
    assert data["entered_past"] == {s: 0 for s in data["reached"]} | {"suspect": 1}
    # among people actually seen as suspects (PA, PB) both went on; among leads (PA, PB, PD) one did
    assert data["conversion_observed"]["suspect->lead"] == 1.0
    assert data["conversion_observed"]["lead->prospect"] == 0.333
    assert data["detours"] == {"(before the path)": {"qualified_out": 1}, "lead": {"nurture": 1}}
    # flows in the period only: PA's and PB's move to lead (days 10, 20) and PD's to nurture (day 5)
    assert data["flows"] == {
        "since": days(5).isoformat(),
        "until": days(20).isoformat(),
        "moves": [
            {"from": "suspect", "to": "lead", "count": 2},
            {"from": "lead", "to": "nurture", "count": 1},
        ],
    }
