"""One connector run in a process of its own, at a given clock, for benchmarks/run.py to measure.

`connector run` reads the wall clock; the Salesforce cases need the run's clock and the org's to move on
together (15 minutes between runs, or 30 s to stay inside a writing run's own overlap window) without waiting
for them, as tests/salesforce/test_sf_api_calls_e2e.py does. Everything else is what `connector run` does:
the same Runner, the environment as credentials. Prints the run's summary as one JSON line.

    run_once.py CONFIG --as-of 2026-11-23 --clock 2026-11-23T09:15:00+00:00
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys

from connector import logs
from connector.config import load_config
from connector.pipeline import Runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--clock", type=dt.datetime.fromisoformat, required=True)
    args = parser.parse_args()
    if args.clock.tzinfo is None:
        parser.error("--clock needs a UTC offset")
    logs.configure("error", False)
    at = args.clock.astimezone(dt.UTC)
    summary = Runner(load_config(args.config), environ=dict(os.environ), clock=lambda: at).execute(
        "run", args.as_of
    )
    json.dump(summary.to_json(), sys.stdout, default=str)
    print()
    sys.exit(summary.exit_code)


if __name__ == "__main__":
    main()
