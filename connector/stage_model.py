"""The configurable stage model: stages, their order on the path, detours, labels, and the rules that assign them.

Nothing here names a stage: the shipped models live in `connector/presets/*.yaml` and an admin may replace or
extend them in the YAML. A config names a preset (`stage_model: {preset: default}`) and may override any part of
it; `rules`, when given, replace the preset's rules as a whole, because a half-merged ordered list would be hard
to reason about.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from pydantic import Field, ValidationInfo, model_validator

from .conditions import Condition
from .model import NAME_PATTERN, StrictModel

PRESETS = ("default", "journey_004", "journey_002")


class StageDef(StrictModel):
    name: str
    label: str | None = None  # the label written into every target, unless `labels` names the target
    labels: dict[str, str] = Field(default_factory=dict)  # target name -> label
    description: str = ""

    @model_validator(mode="after")
    def _name(self) -> StageDef:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"stage name '{self.name}' must match {NAME_PATTERN.pattern}")
        return self

    def label_for(self, target: str) -> str:
        if target in self.labels:
            return self.labels[target]
        return self.label or self.name.replace("_", " ").title()


class Rule(StrictModel):
    name: str
    stage: str
    when: Condition
    # cyclic re-entry (renewal, win-back): the only way a rule may move a person back along the path
    reentry: bool = False
    description: str = ""


class StageModel(StrictModel):
    stages: list[StageDef] = Field(min_length=1)
    path: list[str] = Field(min_length=1)
    detours: list[str] = Field(default_factory=list)
    default: str
    forward_only: bool = True
    # stages suppressed from marketing segments unless a segment asks for them (sales decisions win)
    suppress: list[str] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> StageModel:
        # Inside a whole config, the loader reports these with their exact YAML lines instead (see config.py).
        if info.context and info.context.get("defer_stage_checks"):
            return self
        problems = stage_model_problems(self)
        if problems:
            raise ValueError(
                "; ".join(f"{'.'.join(map(str, loc))}: {msg}" if loc else msg for loc, msg in problems)
            )
        return self

    def stage(self, name: str) -> StageDef:
        return next(s for s in self.stages if s.name == name)

    def rank(self, name: str) -> int | None:
        """Position on the path, or None for a detour."""
        return self.path.index(name) if name in self.path else None

    def ordered(self) -> list[str]:
        return list(self.path) + list(self.detours)


def stage_model_problems(model: StageModel) -> list[tuple[tuple[Any, ...], str]]:
    """Every inconsistency between stages, path, detours, default and rules, each with its location."""
    names = [s.name for s in model.stages]
    problems: list[tuple[tuple[Any, ...], str]] = []
    for i, name in enumerate(names):
        if names.index(name) != i:
            problems.append((("stages", i, "name"), f"stage '{name}' is defined twice"))
    known = set(names)
    for where in ("path", "detours", "suppress"):
        for i, ref in enumerate(getattr(model, where)):
            if ref not in known:
                problems.append(((where, i), f"unknown stage '{ref}' (stages: {', '.join(names)})"))
    for name in sorted(set(model.path) & set(model.detours)):
        problems.append((("detours",), f"stage '{name}' is both on the path and a detour"))
    for name in sorted(known - set(model.path) - set(model.detours)):
        problems.append((("stages",), f"stage '{name}' is neither on the path nor a detour"))
    if model.default not in known:
        problems.append((("default",), f"unknown stage '{model.default}'"))
    rule_names = [r.name for r in model.rules]
    for i, rule in enumerate(model.rules):
        if rule.stage not in known:
            problems.append((("rules", i, "stage"), f"unknown stage '{rule.stage}' in rule '{rule.name}'"))
        if rule_names.index(rule.name) != i:
            problems.append((("rules", i, "name"), f"rule name '{rule.name}' is used twice"))
    return problems


def load_preset(name: str) -> dict[str, Any]:
    """The raw mapping of a shipped preset (validated together with the admin's overrides)."""
    from ruamel.yaml import YAML

    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})")
    text = resources.files("connector.presets").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data = YAML(typ="safe").load(text)
    assert isinstance(data, dict)
    return data


def merge_preset(raw: Any) -> Any:
    """Resolve `preset:` in the stage_model mapping: preset values overlaid with the keys the admin gave."""
    if not isinstance(raw, dict) or "preset" not in raw:
        return raw
    overrides = {k: v for k, v in raw.items() if k != "preset"}
    base = load_preset(str(raw["preset"]))
    base.update(overrides)
    return base
