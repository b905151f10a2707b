"""vtiger label writes: one shared session against a pool of sessions, at several concurrencies.

vtiger serves one request at a time per webservice session (its PHP session file stays locked for the whole
request); the sandbox does the same. This writes the stage label of N Leads through the vtiger writer at a
per-call latency (default 50 ms, about what a real 8.2 takes for a `revise`) against the sandbox in a
process of its own with `concurrency` 1, 4 and 8,
each once with every worker on one shared session and once with a pool (one session per worker), and prints
the wall seconds (median of the repeats; logins included, as in a run) and the speed-up over concurrency 1.

    .venv/bin/python benchmarks/vtiger_sessions.py [--records 400] [--latency 0.05] [--concurrency 1 4 8]
                                                   [--repeats 3]

benchmarks/run.py runs the sandbox itself and each write in a process of its own, through `--url`: one label
write of the records in `--ids-file` at one `--concurrency` (`--shared`: every worker on one session), with
VTIGER_USERNAME / VTIGER_ACCESS_KEY from the environment; it prints the write's wall seconds as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import statistics
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from connector import logs
from connector.context import PluginEnv, RunContext
from connector.plan import LabelChange
from connector.retry import RetryPolicy
from connector.schema import RecordRef
from connector.sources.vtiger.config import VtigerSourceConfig
from connector.writers.vtiger.config import VtigerWriterConfig
from connector.writers.vtiger.writer import VtigerWriter
from connector_sandboxes.vtiger import VtigerSandbox

STARTED = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


class _RemoteSandbox:
    """The sandbox in a process of its own, as vtiger is another machine: in this process it would share the
    GIL with the writer's threads, and its CPU would count against the client's concurrency."""

    def __init__(self, records: int, latency: float) -> None:
        self._pipe, child = multiprocessing.Pipe()
        self._process = multiprocessing.Process(target=_serve, args=(child, records, latency), daemon=True)
        self._process.start()
        self.url, self.env, self.ids = self._pipe.recv()

    def ask(self, command: str) -> Any:
        self._pipe.send(command)
        return self._pipe.recv()

    def stop(self) -> None:
        self.ask("stop")
        self._process.join(timeout=30)


def _serve(pipe: Connection, records: int, latency: float) -> None:
    with VtigerSandbox(username="admin", custom_fields=True) as sandbox:
        ids = [sandbox.store.create("Leads", {"lastname": f"P{n}"})["id"] for n in range(records)]
        sandbox.faults.latency = latency
        pipe.send((sandbox.url, sandbox.env(), ids))
        while True:
            command = pipe.recv()
            if command == "reset":
                sandbox.reset_calls()
                pipe.send(None)
            elif command == "figures":
                pipe.send((sandbox.calls["revise"], sandbox.calls["login"], sandbox.in_flight.peak_total))
            elif command == "calls":
                pipe.send(dict(sandbox.calls))
            else:
                pipe.send(None)
                return


def _writer(url: str, environ: dict[str, str], concurrency: int, shared: bool) -> VtigerWriter:
    source = VtigerSourceConfig.model_validate(
        {
            "name": "vt",
            "type": "vtiger",
            "url": url,
            "modules": {"Leads": {"fields": {"email": "email"}}},
        }
    )
    target: dict[str, Any] = {
        "name": "vt_out",
        "type": "vtiger",
        "source": "vt",
        "label_field": {"Leads": "label:Funnel stage"},
        "concurrency": concurrency,
    }
    env = PluginEnv(sources=[source], environ=environ, policy=RetryPolicy(sleep=lambda s: None))
    writer = VtigerWriter.from_config(VtigerWriterConfig.model_validate(target), env)
    if shared:
        writer.client.sessions.pin(1)  # every worker on one session: the client before the pool
    return writer


def _write(
    url: str, environ: dict[str, str], ids: list[str], concurrency: int, shared: bool, label: str
) -> float:
    """Wall seconds of one label write of every record, logins included."""
    writer = _writer(url, environ, concurrency, shared)
    changes = [LabelChange(f"p{i}", RecordRef("vt", "Leads", id_), None, label) for i, id_ in enumerate(ids)]
    start = time.perf_counter()
    result = writer.write_labels(changes, RunContext(as_of=STARTED.date(), started_at=STARTED))
    seconds = time.perf_counter() - start
    writer.client.close()
    if result.failed:
        raise SystemExit(f"label writes failed: {len(result.failed)} records")
    return seconds


def _once(sandbox: _RemoteSandbox, concurrency: int, shared: bool, label: str) -> tuple[float, int, int]:
    """Wall seconds of one label write of every record, logins included; vtiger's logins and peak."""
    sandbox.ask("reset")
    seconds = _write(sandbox.url, sandbox.env, sandbox.ids, concurrency, shared, label)
    revises, logins, peak = sandbox.ask("figures")
    if revises != len(sandbox.ids):
        raise SystemExit(f"label writes failed: {revises} revises for {len(sandbox.ids)} records")
    return seconds, logins, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 400: a write's fixed part (the first login and describe, the other sessions' logins taking turns) is
    # then about 5 % of it with 4 sessions, so the speed-up is the steady state's (README: 200 understated it)
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per call in the sandbox")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", help="write once to this running sandbox (benchmarks/run.py)")
    parser.add_argument("--ids-file", type=Path, help="with --url: a JSON list of Lead ids")
    parser.add_argument("--label", default="Stage once", help="with --url: the label to write")
    parser.add_argument("--shared", action="store_true", help="with --url: every worker on one session")
    args = parser.parse_args()
    logs.configure("error")
    if args.url:
        ids = json.loads(args.ids_file.read_text())
        seconds = _write(args.url, dict(os.environ), ids, args.concurrency[0], args.shared, args.label)
        print(json.dumps({"seconds": seconds}))
        return

    print(
        f"vtiger label writes: {args.records} Leads, {args.latency * 1000:.0f} ms per call, "
        f"median of {args.repeats}; {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs"
    )
    sandbox = _RemoteSandbox(args.records, args.latency)
    cases = [(c, shared) for c in args.concurrency for shared in ((True, False) if c > 1 else (False,))]
    runs: dict[tuple[int, bool], list[float]] = {case: [] for case in cases}
    seen: dict[tuple[int, bool], tuple[int, int]] = {}
    try:
        for repeat in range(args.repeats):
            for case in cases:  # interleaved, so a machine that slows down part way hurts every case alike
                label = f"Stage {repeat}-{case[0]}-{case[1]}"  # a new value: every record is written
                seconds, logins, peak = _once(sandbox, *case, label)
                runs[case].append(seconds)
                seen[case] = (peak, logins)
    finally:
        sandbox.stop()
    base = statistics.median(runs[cases[0]])
    print(
        f"{'concurrency':>11} {'sessions':>9} {'wall s':>8} {'ms/record':>10} {'speed-up':>9} {'peak':>5} logins"
    )
    for case in cases:
        concurrency, shared = case
        wall = statistics.median(runs[case])
        sessions = "1 shared" if shared else str(concurrency)
        peak, logins = seen[case]
        print(
            f"{concurrency:>11} {sessions:>9} {wall:>8.2f} {wall / args.records * 1000:>10.1f} "
            f"{base / wall:>8.2f}x {peak:>5} {logins:>6}"
        )
    print("peak: most requests vtiger served at once; logins: per write (one per session, taking turns)")


if __name__ == "__main__":
    main()
