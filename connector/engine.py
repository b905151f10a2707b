"""The stage engine: one stage per person from the configured rules and movement policy.

It sees a `Person` (schema values only) and the person's previous stage; it never knows which CRM a value came
from. Rules are tried in order and the first that holds proposes a stage. The movement policy then applies:
- a detour (nurture, qualified out, lost, …) may be entered from anywhere;
- on the path, a person moves forward only (when `forward_only`), so a weaker signal never pulls a prospect
  back to lead: the person is held at the furthest path stage reached, even when coming back from a detour;
- a rule marked `reentry` (renewal, win-back) is the one way back along the path: the cyclic funnel.
Every decision carries its reason: the rule, the signals that matched, and whether the policy held the person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .conditions import compile_condition, describe
from .schema import Person
from .stage_model import StageModel


@dataclass(frozen=True)
class Previous:
    stage: str
    path_stage: str | None  # furthest stage reached on the path (kept while in a detour)


@dataclass
class Decision:
    stage: str
    path_stage: str | None
    rule: str | None  # None: no rule held, the default stage applies
    proposed: str  # what the rule (or default) proposed before the movement policy
    matched: list[str] = field(default_factory=list)
    held: bool = False  # the forward-only policy kept the person where they were
    reentry: bool = False

    def reason(self) -> str:
        what = f"rule {self.rule}" if self.rule else "no rule held: default stage"
        signals = f" [{'; '.join(self.matched)}]" if self.matched else ""
        text = f"{what} proposed {self.proposed}{signals}"
        if self.held:
            text += (
                f"; held at {self.stage} (forward-only: never back along the path without a re-entry rule)"
            )
        if self.reentry:
            text += "; re-entry rule moves back along the path"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "path_stage": self.path_stage,
            "rule": self.rule,
            "proposed": self.proposed,
            "matched": self.matched,
            "held": self.held,
            "reentry": self.reentry,
        }


class StageEngine:
    def __init__(self, model: StageModel) -> None:
        self.model = model
        self._compiled = [(rule, compile_condition(rule.when)) for rule in model.rules]

    def decide(self, person: Person, previous: Previous | None, as_of: dt.date) -> Decision:
        model = self.model

        def get(name: str) -> Any:
            if name == "previous_stage":
                return previous.stage if previous else None
            if name == "stage":
                return previous.stage if previous else None
            return person.get(name)

        proposed = model.default
        rule_name: str | None = None
        reentry = False
        matched: list[str] = []
        for rule, when in self._compiled:
            trail: list[str] = []
            if when.check(get, as_of, trail):
                proposed, rule_name, reentry, matched = rule.stage, rule.name, rule.reentry, trail
                break

        prev_path = previous.path_stage if previous else None
        if previous and previous.stage in model.path and prev_path is None:
            prev_path = previous.stage
        rank = model.rank(proposed)
        if rank is None:
            # a detour: entered from anywhere; the furthest path stage is remembered for the way back
            return Decision(proposed, prev_path, rule_name, proposed, matched)
        if reentry or not model.forward_only or prev_path is None:
            return Decision(
                proposed,
                proposed,
                rule_name,
                proposed,
                matched,
                reentry=reentry and prev_path is not None and rank < (model.rank(prev_path) or 0),
            )
        prev_rank = model.rank(prev_path)
        if prev_rank is not None and rank < prev_rank:
            return Decision(prev_path, prev_path, rule_name, proposed, matched, held=True)
        return Decision(proposed, proposed, rule_name, proposed, matched)

    def explain_rules(self) -> list[str]:
        return [
            f"{r.name} -> {r.stage}{' (re-entry)' if r.reentry else ''}: {describe(r.when)}"
            for r in self.model.rules
        ]
