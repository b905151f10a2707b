"""The full path holds about two parts' worth of people, decisions and segment members at any moment: through
resolve and decide (chunked.py), planning, the segment-file write, tasks and the gone-record sweep
(full_plan.py). Every object is followed by a finalizer, and the live count is taken at each creation and at
probes placed where the run moves on to tasks and after the sweep."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from spine_helpers import AS_OF, Project
from test_chunked import _empty_inputs
from test_incremental import CLOCK

from connector import chunked, full_plan
from connector import pipeline as pipeline_module
from connector.engine import Decision
from connector.pipeline import Runner
from connector.plan import Member
from connector.schema import Person

PART = 50
PEOPLE = 600


class _Alive:
    """Live objects of each followed class: now, and the most at once (at a creation or a probe)."""

    def __init__(self) -> None:
        self.now: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.probes: dict[str, dict[str, int]] = {}

    def follow(self, monkeypatch: Any, cls: type) -> None:
        name, original = cls.__name__, cls.__init__  # type: ignore[misc]

        def gone() -> None:
            self.now[name] -= 1

        def init(obj: Any, *args: Any, **kwargs: Any) -> None:
            original(obj, *args, **kwargs)
            weakref.finalize(obj, gone)
            self.now[name] = self.now.get(name, 0) + 1
            self.most[name] = max(self.most.get(name, 0), self.now[name])

        monkeypatch.setattr(cls, "__init__", init)

    def probe(self, where: str) -> None:
        gc.collect()  # what only a reference cycle keeps is not held
        self.probes[where] = dict(self.now)


def test_the_full_path_never_holds_everyone(project: Project, monkeypatch: Any) -> None:
    # every person is in the `warm` segment (a lead being worked), so the segment file lists all of them
    rows = ["email;first_name;last_name;company;status;opt_out;external_id"]
    rows += [f"p{i}@bench.example;F{i};L{i};C{i};Working;nee;" for i in range(PEOPLE)]
    project.write("data/people.csv", "\n".join(rows) + "\n")
    _empty_inputs(project)
    alive = _Alive()
    for cls in (Person, Decision, Member):
        alive.follow(monkeypatch, cls)
    monkeypatch.setattr(chunked, "PART", PART)
    monkeypatch.setattr(full_plan, "BATCH", PART)
    original_sync, original_erasures = pipeline_module.sync_tasks, pipeline_module.retry_erasures

    def sync_tasks(*args: Any, **kwargs: Any) -> Any:
        alive.probe("tasks")
        return original_sync(*args, **kwargs)

    def retry_erasures(*args: Any, **kwargs: Any) -> Any:
        alive.probe("after the sweep")
        return original_erasures(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "sync_tasks", sync_tasks)
    monkeypatch.setattr(pipeline_module, "retry_erasures", retry_erasures)

    summary = Runner(project.config(), clock=lambda: CLOCK).execute("run", AS_OF)

    assert summary.exit_code == 0, summary.errors
    assert summary.people["total"] == PEOPLE
    assert summary.segments["files"]["warm"]["members"] == PEOPLE
    written = (project.out / "warm.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(written) == PEOPLE + 1
    # a part is 50 records; a batch of members described from the state is 50 too
    for name in ("Person", "Decision", "Member"):
        assert 0 < alive.most[name] <= 2 * PART, (name, alive.most)
    for where, counts in alive.probes.items():
        assert all(n <= 2 * PART for n in counts.values()), (where, counts)


def test_a_plain_run_keeps_no_line_per_change(project: Project) -> None:
    # `connector run` without --full prints the counts only (cli.py): a first run at a million people kept a
    # dict per segment add nobody printed
    summary = Runner(project.config(), clock=lambda: CLOCK, list_changes=False).execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    assert summary.segments["files"]["warm"]["adds"] == 3
    assert summary.segment_changes == []
    listed = Runner(project.config(), clock=lambda: CLOCK, full_recompute=True).execute("plan", AS_OF)
    assert listed.segments["files"]["warm"] == {"members": 3, "adds": 0, "removes": 0}
