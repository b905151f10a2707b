"""vtiger cases: label writes at a per-call latency (50 ms, about what a real 8.2 takes for a `revise`) with
concurrency 1, 4 and 8, with a shared session and with a pool, and naive.py's one revise per record on one
session, each write in a process of its own against the same sandbox (itself in another process, like
vtiger_sessions.py's; its per-session lock is vtiger's PHP session lock).

The wall seconds are the write's own (logins and describe included, interpreter start-up not): start-up
would add the same second to every case and hide the ratio the sessions make. CPU and peak RSS are the whole
process's.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from measure import Figures, Sample, measure
from vtiger_sessions import _RemoteSandbox

HERE = Path(__file__).parent


@dataclass(frozen=True)
class VtCase:
    name: str  # "connector" or "naive"
    concurrency: int
    shared: bool  # every worker on one session

    @property
    def sessions(self) -> str:
        if self.name == "naive":
            return "1"
        return "1 shared" if self.shared and self.concurrency > 1 else str(self.concurrency)


@dataclass(frozen=True)
class VtRow:
    case: VtCase
    write_wall: float  # median seconds of the write itself
    process: Figures
    calls: int  # vtiger operations per write
    revises: int
    logins: int


def cases(concurrency: list[int]) -> list[VtCase]:
    out = [VtCase("naive", 1, True)]
    for c in concurrency:
        out += (
            [VtCase("connector", c, True)]
            if c == 1
            else [VtCase("connector", c, True), VtCase("connector", c, False)]
        )
    return out


def run(
    records: int, latency: float, concurrency: list[int], repeats: int, tmp: Path, log: Callable[[str], None]
) -> list[VtRow]:
    sandbox = _RemoteSandbox(records, latency)
    ids_file = tmp / "vtiger-ids.json"
    ids_file.write_text(json.dumps(sandbox.ids))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VTIGER_")}, **sandbox.env}
    todo = cases(concurrency)
    samples: dict[VtCase, list[tuple[Sample, float]]] = {case: [] for case in todo}
    seen: dict[VtCase, dict[str, int]] = {}
    try:
        for repeat in range(repeats):
            for case in todo:  # interleaved, so a machine that slows down part way hurts every case alike
                label = f"Stage {repeat}-{case.name}-{case.concurrency}-{case.shared}"  # new: every record written
                if case.name == "naive":
                    argv = [sys.executable, str(HERE / "naive.py"), "vtiger", "--url", sandbox.url]
                    argv += ["--ids-file", str(ids_file), "--label", label]
                else:
                    argv = [sys.executable, str(HERE / "vtiger_sessions.py"), "--url", sandbox.url]
                    argv += [
                        "--ids-file",
                        str(ids_file),
                        "--label",
                        label,
                        "--concurrency",
                        str(case.concurrency),
                    ]
                    argv += ["--shared"] if case.shared else []
                sandbox.ask("reset")
                done = measure(argv, env=env)
                calls = sandbox.ask("calls")
                if calls.get("revise", 0) != records:
                    raise SystemExit(f"vtiger {case}: {calls.get('revise', 0)} revises for {records} records")
                seconds = json.loads(done.stdout)["seconds"]
                samples[case].append((done, seconds))
                seen[case] = calls
                log(
                    f"vtiger {records} records {case.name:<9} c={case.concurrency} sessions={case.sessions:<8} {seconds:6.2f} s"
                )
    finally:
        sandbox.stop()
    return [
        VtRow(
            case,
            statistics.median(s for _, s in samples[case]),
            Figures.of([d for d, _ in samples[case]]),
            sum(seen[case].values()),
            seen[case].get("revise", 0),
            seen[case].get("login", 0),
        )
        for case in todo
    ]
