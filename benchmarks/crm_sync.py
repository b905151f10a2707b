"""The whole job against both CRM sandboxes: wall time and API calls for a first run and a no-change run.

Optionally adds per-call latency to both sandboxes (a real CRM answers in tens of milliseconds, and vtiger has
no batch write, so its per-record calls dominate) and compares vtiger write concurrency settings.

    .venv/bin/python benchmarks/crm_sync.py [--people 1000 5000] [--latency 0 0.02] [--concurrency 1 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import tempfile
import time
from pathlib import Path

from connector import logs
from connector.config import load_config
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector_sandboxes.demo.config_template import DEMO_CONFIG
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import seeded_world

AS_OF = dt.date(2026, 11, 23)


def one(people: int, latency: float, concurrency: int) -> list[str]:
    population = generate(people, AS_OF, seed=5)
    rows = []
    config = re.sub(r"concurrency: \d+", f"concurrency: {concurrency}", DEMO_CONFIG)
    with (
        tempfile.TemporaryDirectory() as tmp,
        seeded_world(Path(tmp), population, AS_OF, seed=5, config_text=config) as world,
    ):
        sf, vt = world.sf, world.vt
        runner = Runner(
            load_config(world.config_path), environ=world.environ, policy=RetryPolicy(sleep=lambda s: None)
        )
        sf.faults.latency = latency
        vt.faults.latency = latency
        for label in ("first run", "no change"):
            sf.reset_calls()
            vt.reset_calls()
            start = time.perf_counter()
            summary = runner.execute("run", AS_OF)
            secs = time.perf_counter() - start
            sf_calls = sum(sf.call_counts().values())
            vt_calls = sum(vt.calls.values())
            labels = sum(s.get("written", 0) for s in summary.labels.values())
            rows.append(
                f"{people:>6} {latency * 1000:>6.0f}ms {concurrency:>4} {label:<10} {secs:>7.2f}s "
                f"{sf_calls:>8} {vt_calls:>8} {labels:>7}  exit={summary.exit_code}"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.02])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4])
    args = parser.parse_args()
    logs.configure("error")
    print(
        f"{'people':>6} {'latency':>8} {'conc':>4} {'run':<10} {'wall':>8} {'sf calls':>8} {'vt calls':>8} {'labels':>7}"
    )
    for people in args.people:
        for latency in args.latency:
            for concurrency in args.concurrency:
                for row in one(people, latency, concurrency):
                    print(row, flush=True)


if __name__ == "__main__":
    main()
