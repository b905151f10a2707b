"""Salesforce API calls per run kind, counted at the loopback org: queries (query, queryAll, queryMore),
sObject Collections calls and everything else, for a first run, runs with nothing new and a run after about
1 % of the people changed (half of them qualified out through their Lead, half won through an Opportunity,
so both Lead and Contact labels change).

The org's clock and the run's clock move on together between runs (15 minutes, or 30 s to stay inside the
60 s overlap window of a writing run's own label writes), as in tests/salesforce/test_sf_api_calls_e2e.py.

    .venv/bin/python benchmarks/sf_api_calls.py [--people 120 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
from pathlib import Path

from connector import logs
from connector.config import load_config
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import seeded_world

AS_OF = dt.date(2026, 11, 23)
START = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=dt.UTC)
QUERY_KINDS = ("query", "queryAll", "queryMore")


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def one(people: int) -> list[str]:
    clock = Clock(START)
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        seeded_world(Path(tmp), generate(people, AS_OF, seed=5), AS_OF, seed=5, sf_clock=clock) as world,
    ):
        sf = world.sf
        runner = Runner(
            load_config(world.config_path),
            environ=world.environ,
            policy=RetryPolicy(sleep=lambda s: None),
            clock=clock,
        )

        def run(label: str, seconds: int = 15 * 60) -> None:
            clock.at += dt.timedelta(seconds=seconds)
            sf.reset_calls()
            summary = runner.execute("run", AS_OF)
            counts = sf.call_counts()
            queries = sum(counts[k] for k in QUERY_KINDS)
            collections = counts["composite/sobjects"]
            other = sum(counts.values()) - queries - collections
            labels = summary.labels.get("sf_out", {}).get("written", 0)
            rows.append(
                f"| {people} | {label} | {labels} | {queries} | {collections} | {other} | {summary.exit_code} |"
            )

        run("first run")
        run("nothing new, 30 s after a writing run", seconds=30)
        run("nothing new, 15 min later")
        rng = random.Random(5)
        store = sf.store
        open_leads = [
            r for r in store.all("Lead") if not r["IsConverted"] and r["Status"] != "Closed - Not Converted"
        ]
        open_opps = [r for r in store.all("Opportunity") if not r["IsClosed"]]
        share = max(1, people // 200)  # half of 1 % each way
        for lead in rng.sample(open_leads, min(share, len(open_leads))):
            store.update("Lead", lead["Id"], {"Status": "Closed - Not Converted"})
        for opp in rng.sample(open_opps, min(share, len(open_opps))):
            store.update("Opportunity", opp["Id"], {"StageName": "Closed Won"})
        run("1 % changed")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, nargs="+", default=[120, 2000])
    args = parser.parse_args()
    logs.configure("error", False)
    print("| people | run | SF labels written | queries | collection calls | other calls | exit |")
    print("|---|---|---|---|---|---|---|")
    for people in args.people:
        for row in one(people):
            print(row, flush=True)


if __name__ == "__main__":
    main()
