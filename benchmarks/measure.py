"""Measuring one process: CPU seconds (user + sys), wall seconds and peak RSS of a child, and the machine.

The figures come from the kernel's accounting of that one child (`os.wait4`), not from timers inside it: a
case's start-up, imports and exit count, and nothing the harness itself does (generating inputs, running a
sandbox in another process) does.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


class CaseFailed(RuntimeError):
    """A measured process ended with an exit code the case does not expect."""


@dataclass(frozen=True)
class Sample:
    cpu: float  # user + sys seconds of the child
    wall: float  # seconds from spawn to reaped
    rss_mib: float  # the child's peak resident set (ru_maxrss, KiB on Linux)
    stdout: str


def measure(argv: Sequence[str], *, env: dict[str, str] | None = None, ok: Sequence[int] = (0,)) -> Sample:
    """Run `argv` to its end and return what it cost; raise CaseFailed on an unexpected exit code."""
    done = _spawner().run(list(argv), env)
    if done["code"] not in ok:
        raise CaseFailed(f"{' '.join(argv)} ended with exit {done['code']}:\n{done['stderr']}")
    return Sample(done["cpu"], done["wall"], done["maxrss_kib"] / 1024, done["stdout"])


def _run_child(argv: list[str], env: dict[str, str] | None) -> dict[str, Any]:
    # files, not pipes: a chatty child never blocks on a full pipe while we sit in wait4
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        # wait4 reaps the child and hands back its own rusage; Popen must not reap it a second time
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "code": proc.returncode,
            "cpu": usage.ru_utime + usage.ru_stime,
            "wall": wall,
            "maxrss_kib": usage.ru_maxrss,
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr": err.read().decode("utf-8", "replace")[-3000:],
        }


class _Spawner:
    """A bare interpreter that starts every measured process.

    Linux counts into a child's ru_maxrss the peak resident set of the process it was forked from (exec keeps
    the old address space's high-water mark), so a child of the harness, which holds connector, the sandboxes
    and their data, would report the harness's peak. This process imports nothing but the standard library,
    so what it passes on is a bare interpreter's few MiB.
    """

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def run(self, argv: list[str], env: dict[str, str] | None) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"argv": argv, "env": env}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise CaseFailed(f"the spawner stopped (exit {self._proc.wait()}) while running {' '.join(argv)}")
        answer: dict[str, Any] = json.loads(line)
        return answer


_SPAWNER: _Spawner | None = None


def _spawner() -> _Spawner:
    global _SPAWNER
    if _SPAWNER is None:
        _SPAWNER = _Spawner()
    return _SPAWNER


def _serve() -> None:
    for line in sys.stdin:  # ends when the harness closes its end (or exits)
        ask = json.loads(line)
        print(json.dumps(_run_child(ask["argv"], ask["env"])), flush=True)


@dataclass(frozen=True)
class Figures:
    """The medians of a case's repeats (and the worst peak RSS, for the memory target)."""

    cpu: float
    wall: float
    rss_mib: float
    max_rss_mib: float
    repeats: int

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Figures:
        if not samples:
            raise ValueError("no samples")
        return cls(
            cpu=statistics.median(s.cpu for s in samples),
            wall=statistics.median(s.wall for s in samples),
            rss_mib=statistics.median(s.rss_mib for s in samples),
            max_rss_mib=max(s.rss_mib for s in samples),
            repeats=len(samples),
        )


def machine() -> dict[str, str]:
    """What the figures were measured on: CPU model, cores, RAM, Python, the git commit."""
    cpu = platform.processor() or platform.machine()
    ram = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:  # not Linux: keep what platform knows
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "commit": _commit(),
    }


def _commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    # a figure measured on edited files is not the commit's: say so
    if git("status", "--porcelain", "--untracked-files=no", "--", "connector", "benchmarks", "sandboxes"):
        commit += " (with uncommitted changes)"
    return commit


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    _serve()
