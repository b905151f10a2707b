"""benchmarks/run.py in a tiny mode: every case runs and docs/benchmarks.md gets a row with numbers for each.

Timings are never asserted (the machine is shared); what is asserted is that each case measured what it
says: rows present, figures parsed, the files cases' people actually decided, the CRM cases' writes counted.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"


def _measure_module():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))
    try:
        import measure
    finally:
        sys.path.remove(str(BENCH))
    return measure


def _table(text: str, heading: str) -> list[dict[str, str]]:
    """The rows of the first table under `heading`, as dicts keyed by the header cells."""
    lines = text.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append([c.strip() for c in line.strip("|").split("|")])
    header, rows = block[0], block[2:]
    return [dict(zip(header, row, strict=True)) for row in rows]


def _number(cell: str) -> float:
    return float(cell.replace(",", "").rstrip("x"))


@pytest.mark.e2e
def test_tiny_run_writes_every_case_row_with_figures(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run.py"),
            "--tiny",
            "--sizes",
            "200",
            "--repeats",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,  # a busy 2-core machine: about 25 s when quiet
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    text = out.read_text()
    for line in (
        "- command: `benchmarks/run.py --tiny --sizes 200",
        "; complete)",
        "- machine: ",
        "- Python: ",
    ):
        assert line in text
    assert re.search(r"- git commit: [0-9a-f]{7,}", text)

    targets = {row["case"]: row for row in _table(text, "## Targets")}
    assert len(targets) == 8
    state = targets["state per person (files source, largest size, after a first and a 1 % changed run)"]
    assert re.fullmatch(r"\d+ B \(200 people, (first run|1 % changed)\)", state["measured"])
    assert state["met?"] in ("yes", "no")
    assert (
        targets["100,000 people, nothing new: CPU s (files source)"]["measured"] == "not measured in this run"
    )
    steady = targets["Salesforce, nothing new (steady state): queries"]
    assert re.fullmatch(
        r"\d+ queries over \d+ objects, at most \d+ per object \(60 people\)", steady["measured"]
    )
    assert steady["met?"] in ("yes", "no")
    vt_target = targets["vtiger label writes, 4 sessions vs 1, per-session serialised sandbox at 50 ms"]
    assert re.fullmatch(r"\d+\.\d+x at 0 ms, not 50", vt_target["measured"])

    files = {row["run"]: row for row in _table(text, "## Files source")}
    assert set(files) == {"first run", "nothing new", "1 % changed"}
    for row in files.values():
        assert row["people"] == "200" and row["n"] == "1"
        for key in (
            "CPU s",
            "wall s",
            "peak RSS MiB",
            "naive CPU s",
            "naive wall s",
            "CPU ratio",
            "wall ratio",
            "state B/person",
        ):
            assert _number(row[key]) > 0, (key, row)
    # the people were decided, not rejected: every one enters a stage on the first run, none on a rerun
    assert int(files["first run"]["transitions"]) == 200
    assert int(files["nothing new"]["transitions"]) == 0
    assert int(files["1 % changed"]["transitions"]) > 0

    sf = {row["run"]: row for row in _table(text, "## Salesforce")}
    assert list(sf) == [
        "first run",
        "nothing new, 30 s after a writing run",
        "nothing new, steady state",
        "1 % changed",
    ]
    first = sf["first run"]
    assert int(first["labels"]) > 0 and int(first["collections"]) > 0
    assert int(first["naive PATCHes"]) > 0 and int(first["naive calls"]) > int(first["naive PATCHes"])
    for row in sf.values():
        assert row["people"] == "60"
        for key in ("queries", "fewest queries", "calls", "naive calls", "calls ratio", "wall s", "CPU s"):
            assert _number(row[key]) > 0, (key, row)
    assert int(sf["nothing new, steady state"]["labels"]) == 0
    assert int(sf["1 % changed"]["naive PATCHes"]) > 0

    vt = [(row["who"], row["concurrency"], row["sessions"]) for row in _table(text, "## vtiger")]
    assert vt == [
        ("naive", "1", "1"),
        ("connector", "1", "1"),
        ("connector", "4", "1 shared"),
        ("connector", "4", "4"),
        ("connector", "8", "1 shared"),
        ("connector", "8", "8"),
    ]
    for row in _table(text, "## vtiger"):
        assert row["records"] == "8"
        assert _number(row["write s"]) > 0 and _number(row["CPU s"]) > 0 and int(row["calls"]) >= 8
        # a shared session is one login; a pool logs in once per worker that got a record
        logins = int(row["logins"])
        assert logins == 1 if row["sessions"] in ("1", "1 shared") else 1 < logins <= int(row["concurrency"])


def test_peak_rss_is_the_child_s_own_not_the_harness_s() -> None:
    """Linux counts the forking parent's peak RSS into a child's ru_maxrss: a tiny child of a big harness
    must still report its own few MiB."""
    measure = _measure_module()
    ballast = bytearray(256 * 1024 * 1024)  # the harness holding data, as run.py does
    ballast[::4096] = b"x" * len(ballast[::4096])  # resident, page by page
    sample = measure.measure([sys.executable, "-c", "pass"])
    assert sample.rss_mib < 100, sample
    assert len(ballast) == 256 * 1024 * 1024


def test_a_case_that_ends_badly_stops_the_benchmark() -> None:
    measure = _measure_module()
    with pytest.raises(measure.CaseFailed, match="exit 3"):
        measure.measure([sys.executable, "-c", "import sys; print('partial', file=sys.stderr); sys.exit(3)"])
    assert measure.measure([sys.executable, "-c", "import sys; sys.exit(3)"], ok=(0, 3)).cpu >= 0
