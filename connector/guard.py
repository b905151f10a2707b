"""The mass-change guard: a run that would change too much of what the targets hold writes nothing.

A wrong mass write is the worst thing connector can do: a source that answers with half its records, a value
map edited by mistake or a rule that now matches everyone would empty a marketer's segment or relabel a whole
CRM in one unattended run. Such runs look the same from inside (the plan is internally consistent), so the only
defence is proportion: before writing, compare the plan with what each target holds (the memberships and labels
the state says connector wrote there) and hold the run when a share is crossed.

Two measures, both against what the target holds now:
- removals from one segment, as a share of that segment's current members;
- changes of labels already written (a record's first label is not a change), as a share of the labels that
  target holds.
A target that holds nothing yet (a first run, a new segment) has nothing to lose and is exempt, and so is any
change below `min_count` (a small segment losing 3 of 5 members is ordinary).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .config import AppConfigBase
from .diffing import Plan
from .state import StateStore


@dataclass(frozen=True)
class Breach:
    target: str
    what: str  # "segment_removals" or "label_changes"
    segment: str | None
    count: int
    held: int  # members of the segment, or labels written, that the target holds now
    limit: float  # the share allowed

    @property
    def share(self) -> float:
        return self.count / self.held if self.held else 0.0

    def describe(self) -> str:
        if self.what == "segment_removals":
            head = f"{self.target}: would remove {self.count} of the {self.held} members of segment '{self.segment}'"
        else:
            head = f"{self.target}: would change {self.count} of the {self.held} stage labels it holds"
        return f"{head} ({self.share:.0%}; the guard allows {self.limit:.0%})"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "share": round(self.share, 4)}


def mass_change_breaches(config: AppConfigBase, store: StateStore, plan: Plan) -> list[Breach]:
    guard = config.guard
    if not guard.enabled:
        return []
    per_segment = {s.name: s.max_removal_share for s in config.segments}
    breaches: list[Breach] = []
    for target, changes in sorted(plan.segments.items()):
        held = store.member_counts(target)
        for change in changes:
            before = held.get(change.segment, 0)
            removes = len(change.removes)
            limit = per_segment.get(change.segment)
            limit = guard.max_segment_removal_share if limit is None else limit
            if before and removes >= guard.min_count and removes / before > limit:
                breaches.append(Breach(target, "segment_removals", change.segment, removes, before, limit))
    for target, label_changes in sorted(plan.labels.items()):
        changed = sum(1 for c in label_changes if c.old is not None)
        if not changed:
            continue
        held_labels = store.count_labels(target)
        limit = guard.max_label_change_share
        if held_labels and changed >= guard.min_count and changed / held_labels > limit:
            breaches.append(Breach(target, "label_changes", None, changed, held_labels, limit))
    return breaches
