"""Spine throughput: files in, stages decided, segment files out, for growing numbers of people.

Prints, per size: first run (everything new), a second run with nothing new, and a run after 1% of people
changed, with wall time, CPU seconds of the run and people per second; then the process's peak RSS and the
state file's bytes per person. Files only, so it measures connector, not a CRM. One size per process gives a
peak RSS that belongs to that size alone.

    .venv/bin/python benchmarks/spine.py [--people 2000 20000 100000] [--full-recompute]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

from connector.config import load_config
from connector.pipeline import Runner

CONFIG = """
state: {path: state.sqlite}
stage_model: {preset: default}
sources:
  - name: crm
    type: file
    role: sales
    path: people.csv
    kind: person
    fields: {email: email, first: first_name, last: last_name, status: lead_status}
    value_maps: {lead_status: {New: new, Working: working, Qualified: qualified, Out: qualified_out, Later: nurture}}
  - name: contracts
    type: file
    path: contracts.csv
    kind: contract
    join: email
    fields: {email: email, provider: competitor, end: contract_end}
    date_formats: ["%d-%m-%Y"]
targets:
  - {name: files, type: segment_files, directory: segments}
segments:
  - {name: acquisition, when: {field: competitor_contract_end, within_days: {from: 0, to: 180}}, targets: [files]}
  - {name: leads, when: {field: stage, in: [lead, prospect]}, targets: [files]}
"""
STATUSES = ["New", "Working", "Qualified", "Out", "Later"]


def write_inputs(root: Path, n: int, as_of: dt.date, rng: random.Random, changed: float = 0.0) -> None:
    with (root / "people.csv").open("w", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["email", "first", "last", "status"])
        for i in range(n):
            status = STATUSES[i % len(STATUSES)]
            if changed and rng.random() < changed:
                status = rng.choice(STATUSES)
            w.writerow([f"person{i}@bench.example", f"First{i}", f"Last{i}", status])
    with (root / "contracts.csv").open("w", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["email", "provider", "end"])
        for i in range(0, n, 3):
            end = as_of + dt.timedelta(days=(i * 7) % 400)
            w.writerow([f"person{i}@bench.example", "TeleCorp", end.strftime("%d-%m-%Y")])


def timed(runner: Runner, as_of: dt.date) -> tuple[float, float, dict]:
    start, cpu = time.perf_counter(), time.process_time()
    summary = runner.execute("run", as_of)
    return time.perf_counter() - start, time.process_time() - cpu, summary.to_json()


def state_bytes(path: Path) -> tuple[int, int]:
    """The state file's size after a checkpoint (the WAL folded in) and the number of people it holds."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        people = db.execute("SELECT COUNT(*) FROM people").fetchone()[0]
    finally:
        db.close()
    return path.stat().st_size, people


def main() -> None:
    from connector import logs

    logs.configure("warning")
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, nargs="+", default=[2000, 20000, 100000])
    parser.add_argument("--full-recompute", action="store_true", help="every run decides everyone again")
    args = parser.parse_args()
    as_of = dt.date(2026, 11, 23)
    print(f"{'people':>8} {'run':<14} {'seconds':>8} {'cpu s':>8} {'people/s':>9}  changes")
    for n in args.people:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "connector.yaml").write_text(CONFIG)
            rng = random.Random(1)
            write_inputs(root, n, as_of, rng)
            runner = Runner(load_config(root / "connector.yaml"), **_runner_options(args))
            for label in ("first", "nothing new"):
                secs, cpu, s = timed(runner, as_of)
                adds = sum(v["adds"] for v in s["segments"]["files"].values())
                print(
                    f"{n:>8} {label:<14} {secs:>8.2f} {cpu:>8.2f} {n / secs:>9.0f}  transitions={sum(s['transitions'].values())} segment_adds={adds}"
                )
            write_inputs(root, n, as_of, rng, changed=0.01)
            secs, cpu, s = timed(runner, as_of)
            print(
                f"{n:>8} {'1% changed':<14} {secs:>8.2f} {cpu:>8.2f} {n / secs:>9.0f}  transitions={sum(s['transitions'].values())}"
            )
            size, people = state_bytes(root / "state.sqlite")
            print(f"{n:>8} state {size} bytes, {people} people, {size / max(people, 1):.0f} bytes/person")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak RSS {peak:.0f} MiB")


def _runner_options(args: argparse.Namespace) -> dict[str, bool]:
    """Runner options only where this connector has them (the script also measures older checkouts)."""
    if not args.full_recompute:
        return {}
    return {"full_recompute": True}


if __name__ == "__main__":
    main()
