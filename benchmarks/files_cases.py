"""Files-only cases: `connector run` on spine.py's generated inputs (a CRM-like people export and a contract
file) for a first run, a run with nothing new and a run after about 1 % changed, each in its own process, with
naive.py's full recompute beside it on the same inputs.

A first run is repeated on a fresh state each time; a 1 % run starts each time from the state the first run
left (copied aside), so every repeat does the same work.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from measure import Figures, Sample, measure
from spine import CONFIG, write_inputs

KINDS = ("first run", "nothing new", "1 % changed")
NAIVE = Path(__file__).with_name("naive.py")


@dataclass(frozen=True)
class FilesRow:
    people: int
    kind: str
    connector: Figures
    naive: Figures
    transitions: int
    # the state's size after the case (the database and its -wal, as the run left them), per person
    state_per_person: float


def _connector_bin() -> str:
    return str(Path(sys.executable).with_name("connector"))


def _clear_state(root: Path) -> None:
    for path in root.glob("state.sqlite*"):
        path.unlink()
    shutil.rmtree(root / "segments", ignore_errors=True)


def _state_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.glob("state.sqlite*") if not path.name.endswith(".lock"))


def _copy_state(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    _clear_state(dst)
    for path in src.glob("state.sqlite*"):
        shutil.copy2(path, dst / path.name)
    if (src / "segments").exists():
        shutil.copytree(src / "segments", dst / "segments")


def run_size(
    people: int, repeats: int, as_of: dt.date, tmp: Path, log: Callable[[str], None]
) -> list[FilesRow]:
    root, changed, snapshot = (
        tmp / f"files-{people}",
        tmp / f"files-{people}-changed",
        tmp / f"files-{people}-snap",
    )
    for folder in (root, changed, snapshot):
        folder.mkdir(parents=True)
    (root / "connector.yaml").write_text(CONFIG)
    rng = random.Random(1)
    write_inputs(root, people, as_of, rng)
    write_inputs(changed, people, as_of, rng, changed=0.01)
    base = {name: (root / name).read_bytes() for name in ("people.csv", "contracts.csv")}

    connector = [
        _connector_bin(),
        "run",
        "-c",
        str(root / "connector.yaml"),
        "--as-of",
        as_of.isoformat(),
        "--json",
    ]
    naive = [sys.executable, str(NAIVE), "files", "--dir", str(root), "--as-of", as_of.isoformat()]
    # exit 3 would be rejected rows; these inputs hold none, so only 0 is a clean run
    samples: dict[str, tuple[list[Sample], list[Sample]]] = {kind: ([], []) for kind in KINDS}
    transitions: dict[str, int] = {}
    state_bytes: dict[str, int] = {}

    def one(kind: str) -> None:
        done = measure(connector)
        samples[kind][0].append(done)
        transitions[kind] = sum(json.loads(done.stdout)["transitions"].values())
        state_bytes[kind] = _state_bytes(root)
        samples[kind][1].append(measure(naive))  # right after, so a busier moment hurts both alike
        log(
            f"files {people:>8} {kind:<12} connector {done.cpu:7.2f} s CPU  naive {samples[kind][1][-1].cpu:6.2f} s"
        )

    for _ in range(repeats):
        _clear_state(root)
        one("first run")
    _copy_state(root, snapshot)
    for _ in range(repeats):
        one("nothing new")
    for _ in range(repeats):
        _copy_state(snapshot, root)
        for name in base:
            shutil.copyfile(changed / name, root / name)
        one("1 % changed")
        for name, data in base.items():
            (root / name).write_bytes(data)
    shutil.rmtree(root)
    shutil.rmtree(snapshot)
    shutil.rmtree(changed)
    return [
        FilesRow(
            people,
            kind,
            Figures.of(samples[kind][0]),
            Figures.of(samples[kind][1]),
            transitions[kind],
            state_bytes[kind] / people,
        )
        for kind in KINDS
    ]
