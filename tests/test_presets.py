"""The shipped stage-model presets and the stage model's own consistency checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from spine_helpers import preset_model

from connector.stage_model import PRESETS, StageDef, StageModel, load_preset, merge_preset

EXPECTED_PATHS = {
    "default": ["suspect", "lead", "prospect", "opportunity", "customer", "ambassador"],
    "journey_004": ["suspect", "prospect", "lead", "customer"],
    "journey_002": ["awareness", "consideration", "evaluation", "purchase", "experience", "loyalty", "bond"],
}


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_validates(name: str) -> None:
    model = preset_model(name)
    assert model.path == EXPECTED_PATHS[name]
    assert model.detours == ["nurture", "qualified_out", "lost"]
    assert model.default == model.path[0]
    assert model.forward_only is True
    assert set(model.suppress) == {"qualified_out", "lost"}
    assert model.rules and all(r.stage in model.ordered() for r in model.rules)
    # re-entry exists in every preset (the cyclic funnel) and only by an explicit rule
    assert any(r.reentry for r in model.rules)


def test_preset_list_matches_the_shipped_files() -> None:
    assert set(PRESETS) == set(EXPECTED_PATHS)
    with pytest.raises(ValueError, match="unknown preset 'journey_005'"):
        load_preset("journey_005")


def test_load_preset_returns_a_fresh_copy() -> None:
    first = load_preset("default")
    first["rules"].clear()
    assert load_preset("default")["rules"]


def test_merge_preset_overlays_the_admins_keys() -> None:
    merged = merge_preset({"preset": "default", "forward_only": False, "suppress": ["lost"]})
    model = StageModel.model_validate(merged)
    assert model.forward_only is False
    assert model.suppress == ["lost"]
    assert model.path == EXPECTED_PATHS["default"]
    # rules given replace the preset's rules as a whole
    rules = [{"name": "only", "stage": "lead", "when": {"field": "web_visits", "gte": 1}}]
    model = StageModel.model_validate(merge_preset({"preset": "default", "rules": rules}))
    assert [r.name for r in model.rules] == ["only"]


def test_merge_preset_leaves_a_full_model_alone() -> None:
    raw = {"stages": [{"name": "a"}], "path": ["a"], "default": "a"}
    assert merge_preset(raw) is raw


def test_labels_per_target() -> None:
    stage = StageDef(name="qualified_out", labels={"sf": "Disqualified"})
    assert stage.label_for("sf") == "Disqualified"
    assert stage.label_for("vtiger") == "Qualified Out"
    assert StageDef(name="lead", label="Warm lead").label_for("anything") == "Warm lead"


def _model(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "stages": [{"name": "a"}, {"name": "b"}, {"name": "out"}],
        "path": ["a", "b"],
        "detours": ["out"],
        "default": "a",
        "rules": [{"name": "r1", "stage": "b", "when": {"field": "web_visits", "gte": 1}}],
    }
    data.update(overrides)
    return data


def _problem(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as info:
        StageModel.model_validate(_model(**overrides))
    return str(info.value)


def test_a_valid_small_model() -> None:
    model = StageModel.model_validate(_model())
    assert model.rank("b") == 1
    assert model.rank("out") is None
    assert model.ordered() == ["a", "b", "out"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"path": ["a", "c"]}, "path.1: unknown stage 'c'"),
        ({"detours": ["out", "gone"]}, "detours.1: unknown stage 'gone'"),
        ({"suppress": ["nobody"]}, "suppress.0: unknown stage 'nobody'"),
        ({"default": "z"}, "default: unknown stage 'z'"),
        ({"detours": ["out", "b"]}, "detours: stage 'b' is both on the path and a detour"),
        ({"detours": []}, "stages: stage 'out' is neither on the path nor a detour"),
        (
            {"stages": [{"name": "a"}, {"name": "a"}, {"name": "b"}, {"name": "out"}]},
            "stages.1.name: stage 'a' is defined twice",
        ),
        (
            {"rules": [{"name": "r1", "stage": "c", "when": {"field": "web_visits", "gte": 1}}]},
            "rules.0.stage: unknown stage 'c' in rule 'r1'",
        ),
        (
            {
                "rules": [
                    {"name": "r1", "stage": "a", "when": {"field": "web_visits", "gte": 1}},
                    {"name": "r1", "stage": "b", "when": {"field": "web_visits", "gte": 2}},
                ]
            },
            "rules.1.name: rule name 'r1' is used twice",
        ),
        ({"stages": [{"name": "a b"}, {"name": "b"}, {"name": "out"}]}, "stage name 'a b' must match"),
    ],
)
def test_model_consistency_errors(overrides: dict[str, Any], message: str) -> None:
    assert message in _problem(**overrides)


def test_several_consistency_problems_are_reported_together() -> None:
    text = _problem(path=["a", "x"], default="y")
    assert "path.1: unknown stage 'x'" in text
    assert "default: unknown stage 'y'" in text


def test_unknown_keys_in_a_rule() -> None:
    text = _problem(
        rules=[{"name": "r", "stage": "a", "when": {"field": "email", "present": True}, "weight": 3}]
    )
    assert "weight" in text
