"""No decision from data never read: a source that has never been read to its end and is down holds the run.

Both CRM sandboxes over real HTTP. Salesforce answers every call 503 on the first run: without its facts,
people opted out there would land in the marketers' segment files and vtiger would get labels decided without
Salesforce's word. The run reads what it can and writes nothing anywhere; once Salesforce has a baseline, an
outage keeps its last known facts and the run goes on as before.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.outcome import EXIT_UNREACHABLE
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector.state import StateStore
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import seeded_world

pytestmark = pytest.mark.reliability("Outages and broken answers")

AS_OF = dt.date(2026, 11, 23)
VT_WRITE_OPS = {"create", "update", "revise", "delete", "add_related"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Any]:
    people = generate(240, AS_OF, seed=5)
    with seeded_world(tmp_path, people, AS_OF, seed=5) as seeded:
        config = load_config(seeded.config_path)
        seeded.runner = Runner(
            config, environ=seeded.environ, policy=RetryPolicy(attempts=3, sleep=lambda s: None)
        )
        seeded.root = tmp_path
        yield seeded


def _vt_writes(world: Any) -> int:
    return sum(n for op, n in world.vt.calls.items() if op in VT_WRITE_OPS)


def _segment_emails(root: Path) -> set[str]:
    out: set[str] = set()
    for path in (root / "segments").glob("*.csv"):
        if path.name.endswith(".changes.csv"):
            continue
        with path.open(encoding="utf-8-sig", newline="") as fh:
            out |= {row["email"].lower() for row in csv.DictReader(fh, delimiter=";") if row.get("email")}
    return out


def _sf_opted_out(world: Any) -> set[str]:
    return {
        r["Email"].lower()
        for obj in ("Lead", "Contact")
        for r in world.sf.store.all(obj)
        if r.get("HasOptedOutOfEmail") and r.get("Email")
    }


def test_a_source_without_baseline_that_is_down_holds_every_write(
    world: Any, record_property: Callable[[str, object], None]
) -> None:
    world.sf.faults.error_503_rate = 1.0
    world.sf.faults.retry_after = 0
    held = world.runner.execute("run", AS_OF)

    assert held.exit_code == EXIT_UNREACHABLE, held.errors
    assert held.outcome == "no_baseline"
    assert held.no_baseline == ["sf_prod"]
    assert any("sf_prod" in e and "no baseline" in e for e in held.errors)
    assert _vt_writes(world) == 0
    record_property(
        "observed",
        f"exit {held.exit_code} ({held.outcome}), {_vt_writes(world)} vtiger writes, no segment file",
    )
    assert not (world.root / "segments").exists() or not list((world.root / "segments").iterdir())
    store = StateStore(world.runner.config.state_path())
    try:
        # the reachable sources were read and kept; nothing was decided or written
        assert store.has_baseline("vt_main") and not store.has_baseline("sf_prod")
        assert store.count_facts().get("vt_main", 0) > 0
        assert store.people() == {}
        assert store.labels("vt_out") == {} and store.members("vt_out") == {}
        assert store.members("marketing_files") == {}
    finally:
        store.close()

    # Salesforce is back: one run decides on everything; nobody opted out in Salesforce is in a segment file
    world.sf.faults.reset()
    first = world.runner.execute("run", AS_OF)
    assert first.exit_code in (0, 3), first.errors
    opted_out = _sf_opted_out(world)
    in_files = _segment_emails(world.root)
    assert opted_out and in_files
    assert not opted_out & in_files


def test_plan_says_the_run_would_be_held(world: Any) -> None:
    world.sf.faults.error_503_rate = 1.0
    world.sf.faults.retry_after = 0
    summary = world.runner.execute("plan", AS_OF)
    assert summary.exit_code == EXIT_UNREACHABLE
    assert summary.no_baseline == ["sf_prod"]
    assert summary.labels == {} and summary.segments == {}


def test_once_every_source_has_a_baseline_an_outage_keeps_the_last_known_facts(world: Any) -> None:
    first = world.runner.execute("run", AS_OF)
    assert first.exit_code in (0, 3), first.errors
    lead = next(r for r in world.vt.store.all("Leads") if r.get("leadstatus") == "Contacted")
    world.vt.store.update(lead["id"], {"leadstatus": "Junk Lead"})
    world.sf.faults.error_503_rate = 1.0
    world.sf.faults.retry_after = 0
    world.vt.reset_calls()
    second = world.runner.execute("run", AS_OF)
    assert second.exit_code == EXIT_UNREACHABLE
    assert second.outcome == "unreachable" and second.no_baseline == []
    # people known only from Salesforce's last read still count, and vtiger's change is written
    assert second.people["sf_prod"] == first.people["sf_prod"]
    assert second.transitions == {"lead->qualified_out": 1}
    assert second.labels["vt_out"]["written"] >= 1 and _vt_writes(world) >= 1
