"""A pytest plugin that writes docs/reliability.md from the run of the tests that prove connector fails safe.

A test module (or test) marks itself `@pytest.mark.reliability("Area")`; a test may also say what it saw with
pytest's own `record_property("observed", "exit 4, 0 CRM writes")`. With `--reliability-doc PATH`, the session
writes one table per area: each case (the test's docstring line or its name), what the test observed, and whether
it held on this run. `scripts/reliability-doc` regenerates the file; nobody edits it by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

AREAS = (
    "Outages and broken answers",
    "Crashes and signals",
    "Hostile input",
    "State",
    "Guards against wrong writes",
    "Hand work in the CRMs",
    "Transport and secrets",
    "Busy machine",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--reliability-doc", default=None, help="Write the reliability cases run to this file.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability(area): a fail-safe case listed in docs/reliability.md")


# the controller's collection of reports (with xdist, reports from every worker arrive here)
_SESSION: dict[str, list[dict[str, Any]]] = {"cases": []}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("reliability")
    if marker is None or not marker.args:
        return
    area = str(marker.args[0])
    if area not in AREAS:
        raise pytest.UsageError(f"{item.nodeid}: unknown reliability area {area!r} (known: {AREAS})")
    function = getattr(item, "function", None)
    doc = (function.__doc__ or "").strip().splitlines() if function is not None else []
    name = getattr(item, "originalname", item.name).removeprefix("test_").replace("_", " ")
    case = doc[0].rstrip(".") if doc else name[0].upper() + name[1:]
    # travels to the xdist controller with the report
    report.user_properties.append(("reliability", json.dumps({"area": area, "case": case})))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    props = dict(report.user_properties)
    if "reliability" not in props:
        return
    if report.when != "call" and report.passed:
        return
    info = json.loads(props["reliability"])
    observed = "; ".join(str(v) for k, v in report.user_properties if k == "observed")
    _SESSION["cases"].append(
        {
            **info,
            "nodeid": report.nodeid,
            "outcome": report.outcome,
            "observed": observed,
        }
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = session.config.getoption("--reliability-doc")
    if not target or hasattr(session.config, "workerinput"):
        return
    cases: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for case in _SESSION["cases"]:
        # a failed setup or call outranks the passing phases of the same test
        kept = cases[case["area"]].get(case["nodeid"])
        if kept is None or case["outcome"] != "passed":
            cases[case["area"]][case["nodeid"]] = case
    Path(target).write_text(_render(cases), encoding="utf-8")


def _render(cases: dict[str, dict[str, dict[str, Any]]]) -> str:
    total = sum(len(v) for v in cases.values())
    held = sum(1 for v in cases.values() for c in v.values() if c["outcome"] == "passed")
    lines = [
        "# Reliability: how connector fails safe",
        "",
        "Written by the tests' own run (`scripts/reliability-doc`, which runs every test marked",
        "`reliability` with `--reliability-doc docs/reliability.md`); do not edit by hand. Each row is one test:",
        "the case it stages, what it observed (where the test records it), and whether the case held on this run.",
        "",
        f"Run: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}, Python {platform.python_version()}, "
        f"{held} of {total} cases held.",
        "",
    ]
    for area in AREAS:
        rows = sorted(cases.get(area, {}).values(), key=lambda c: c["nodeid"])
        if not rows:
            continue
        lines += [f"## {area}", "", "| case | observed | held | test |", "|---|---|---|---|"]
        for c in rows:
            mark = "yes" if c["outcome"] == "passed" else f"**{c['outcome'].upper()}**"
            param = c["nodeid"].split("[", 1)[1].rstrip("]") if "[" in c["nodeid"] else ""
            case = f"{c['case']} ({param})" if param else c["case"]
            test = c["nodeid"].replace("|", "\\|")
            lines.append(f"| {case} | {c['observed'].replace('|', '/') or '-'} | {mark} | `{test}` |")
        lines.append("")
    return "\n".join(lines)
