"""The configurable stage model: stages, their order on the path, detours, labels, and the rules that assign them.

Nothing here names a stage: the shipped models live in `connector/presets/*.yaml` and an admin may replace or
extend them in the YAML. A config names a preset (`stage_model: {preset: default}`) and may override any part of
it; `rules`, when given, replace the preset's rules as a whole, because a half-merged ordered list would be hard
to reason about. `labels` relabels stages without restating them (`labels: {customer: Klant}`, or per target
`labels: {customer: {default: Klant, sf_out: Customer}}`): merged onto the stages, preset or not.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

from pydantic import Field, ValidationInfo, model_validator

from .conditions import Condition
from .model import NAME_PATTERN, StrictModel
from .suggest import did_you_mean

PRESETS = ("default", "journey_004", "journey_002")
# in a per-target relabel (`labels: {customer: {default: Klant, sf_out: Customer}}`) the label of every target
# the mapping does not name
DEFAULT_LABEL_KEY = "default"


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
    # stage name -> label for every target, or {default: label, <target>: label}; merged onto `stages`
    labels: dict[str, str | dict[str, str]] = Field(default_factory=dict)
    # stage -> chance (0..1) an open deal of a person in it is won: the pipeline coverage's defaults
    probabilities: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _relabel(cls, data: Any) -> Any:
        # Applied before the stages validate, so a relabelled preset stage is an ordinary StageDef afterwards;
        # labels for a stage that does not exist are reported by `stage_model_problems` with their location.
        if not isinstance(data, dict) or not isinstance(data.get("labels"), dict):
            return data
        stages = data.get("stages")
        if not isinstance(stages, list):
            return data
        merged = [_relabelled(stage, data["labels"]) for stage in stages]
        return {**data, "stages": merged}

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

    @functools.cached_property
    def _by_name(self) -> dict[str, StageDef]:
        # built once (a cached property: pydantic serves private attributes through a slow __getattr__):
        # every decision and label looks its stage up by name; the first of a name, as a search would find
        by_name: dict[str, StageDef] = {}
        for stage in self.stages:
            by_name.setdefault(stage.name, stage)
        return by_name

    def stage(self, name: str) -> StageDef:
        return self._by_name[name]

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
                problems.append(
                    ((where, i), f"unknown stage '{ref}'{did_you_mean(ref, known) or _listed(names)}")
                )
    for name in sorted(set(model.path) & set(model.detours)):
        problems.append((("detours",), f"stage '{name}' is both on the path and a detour"))
    for name in sorted(known - set(model.path) - set(model.detours)):
        problems.append((("stages",), f"stage '{name}' is neither on the path nor a detour"))
    if model.default not in known:
        problems.append(
            (("default",), f"unknown stage '{model.default}'{did_you_mean(model.default, known)}")
        )
    for name in model.labels:
        if name not in known:
            problems.append(
                (("labels", name), f"unknown stage '{name}'{did_you_mean(name, known) or _listed(names)}")
            )
    for name, chance in model.probabilities.items():
        if name not in known:
            hint = did_you_mean(name, known) or _listed(names)
            problems.append((("probabilities", name), f"unknown stage '{name}'{hint}"))
        elif not 0 <= chance <= 1:
            problems.append((("probabilities", name), f"must be between 0 and 1, not {chance}"))
    rule_names = [r.name for r in model.rules]
    for i, rule in enumerate(model.rules):
        if rule.stage not in known:
            hint = did_you_mean(rule.stage, known) or _listed(names)
            problems.append(
                (("rules", i, "stage"), f"unknown stage '{rule.stage}' in rule '{rule.name}'{hint}")
            )
        if rule_names.index(rule.name) != i:
            problems.append((("rules", i, "name"), f"rule name '{rule.name}' is used twice"))
    return problems


def _listed(names: list[str]) -> str:
    return f" (stages: {', '.join(names)})"


def _relabelled(stage: Any, labels: dict[str, Any]) -> Any:
    """One raw stage with the `labels` overlay applied: a string sets its label for every target, a mapping
    sets `default` (every target) and per-target labels on top of the ones the stage already has."""
    raw = stage.model_dump() if isinstance(stage, StageDef) else stage
    if not isinstance(raw, dict) or raw.get("name") not in labels:
        return stage
    overlay = labels[raw["name"]]
    if isinstance(overlay, str):
        return {**raw, "label": overlay}
    if not isinstance(overlay, dict):
        return stage  # the field's own type check names it
    per_target = {k: v for k, v in overlay.items() if k != DEFAULT_LABEL_KEY}
    out = {**raw, "labels": {**(raw.get("labels") or {}), **per_target}}
    if DEFAULT_LABEL_KEY in overlay:
        out["label"] = overlay[DEFAULT_LABEL_KEY]
    return out


def load_preset(name: str) -> dict[str, Any]:
    """The raw mapping of a shipped preset (validated together with the admin's overrides): a fresh copy
    each call, the caller may change it."""
    if name not in PRESETS:
        raise ValueError(
            f"unknown preset '{name}'{did_you_mean(name, PRESETS)} (known: {', '.join(PRESETS)})"
        )
    return copy.deepcopy(_parsed_preset(name))


@functools.cache
def _parsed_preset(name: str) -> dict[str, Any]:
    # parsed once per process: loading a config reads its preset more than once, and the pure-Python YAML
    # parser takes about 12 ms of CPU for it each time
    from ruamel.yaml import YAML

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
