"""The benchmark: every case in a process of its own, connector beside a naive baseline, docs/benchmarks.md.

Cases (benchmarks/README.md says what each does):
  * files source, 10k / 100k / 1M people (1M not with --quick): first run, nothing new, about 1 % changed
  * Salesforce: API calls per kind per run kind against the loopback org (collections of 200, Bulk above the
    threshold, query pages of 2,000), beside naive.py's one PATCH per changed record
  * vtiger: label writes at 50 ms a call, concurrency 1, 4 and 8, shared session and pool, beside naive.py's
    one revise per record on one session

    .venv/bin/python benchmarks/run.py --quick      # under two minutes (make bench)
    .venv/bin/python benchmarks/run.py              # everything, 1M included (make bench-full; most of an hour)
    .venv/bin/python benchmarks/run.py --sizes 10000 100000 --repeats 5 --out /tmp/b.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import bench_report
import files_cases
import sf_cases
import vtiger_cases
from measure import REPO, machine

AS_OF = dt.date(2026, 11, 23)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="10k people only, fewer Salesforce and vtiger records"
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="people in the files cases [10000 100000 1000000]"
    )
    parser.add_argument("--repeats", type=int, help="repeats per case, medians reported [3; --quick 1]")
    parser.add_argument(
        "--sf-people", type=int, nargs="*", help="people in the Salesforce org [2000 40000; --quick 2000]"
    )
    parser.add_argument("--vt-records", type=int, help="vtiger Leads written per case [400; --quick 80]")
    parser.add_argument("--latency", type=float, default=0.05, help="vtiger seconds per call [0.05]")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8], help="vtiger concurrencies")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    # tests/test_benchmarks_run.py: every case, tiny, no latency (its figures mean nothing)
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    full = not (args.quick or args.tiny)
    if args.sizes is None:
        args.sizes = [10_000, 100_000, 1_000_000] if full else [10_000]
    if args.tiny:
        args.sf_people = [60] if args.sf_people is None else args.sf_people
        args.vt_records = args.vt_records or 8
        args.latency = 0.0
    if args.sf_people is None:
        args.sf_people = [2000, 40_000] if full else [2000]
    if args.vt_records is None:
        args.vt_records = 400 if full else 80
    # --quick: one of each (three at 10k would not fit in two minutes on the busy 2-core machine)
    args.repeats = args.repeats or (3 if full else 1)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    started = time.perf_counter()
    command = shlex.join(["benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    files: list[files_cases.FilesRow] = []
    sf: list[sf_cases.SfRow] = []
    vt: list[vtiger_cases.VtRow] = []

    def write(status: str) -> str:
        # written after every case group too: a full run takes most of an hour, and what it measured before
        # an interruption is worth keeping
        text = bench_report.render(
            command=command,
            date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            machine=machine(),
            files=files,
            sf=sf,
            vt=vt,
            latency=args.latency,
            elapsed=time.perf_counter() - started,
            status=status,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        return text

    with tempfile.TemporaryDirectory(prefix="connector-bench-") as tmp:
        root = Path(tmp)
        # the CRM cases first: minutes, where 1M people in the files cases take most of an hour
        for people in args.sf_people:
            sf += sf_cases.run_size(people, args.repeats, AS_OF, _log)
            write(f"partial: measured up to the Salesforce cases at {people:,} people")
        vt += vtiger_cases.run(args.vt_records, args.latency, args.concurrency, args.repeats, root, _log)
        write("partial: measured the CRM cases")
        for people in sorted(args.sizes):
            files += files_cases.run_size(people, args.repeats, AS_OF, root, _log)
            write(f"partial: measured up to the files cases at {people:,} people")
    text = write("complete")
    print(text)
    _log(f"wrote {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()
