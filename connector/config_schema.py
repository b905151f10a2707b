"""The JSON Schema of the YAML config, for editors (yaml-language-server) and for `connector schema`.

Generated from the same pydantic models the loader validates with, so it cannot drift from them; the copy
published in the repository (config/connector.schema.json) is kept equal to it by a test. What the loader
sets itself (`base_dir`, `config_file`) is left out, and `stage_model` is described as the admin writes it:
a `preset` plus any keys that override it, or a complete model without a preset.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from .config import LOADER_KEYS, _app_model
from .stage_model import PRESETS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# what a stage model needs when it names no preset
STAGE_MODEL_CORE = ("stages", "path", "default")


@functools.cache
def config_json_schema() -> dict[str, Any]:
    schema = _app_model().model_json_schema(mode="validation")
    for key in LOADER_KEYS:
        schema["properties"].pop(key, None)
        if key in schema.get("required", []):
            schema["required"].remove(key)
    if not schema.get("required"):
        schema.pop("required", None)
    stage_model = schema["$defs"]["StageModel"]
    stage_model["properties"] = {
        "preset": {
            "enum": list(PRESETS),
            "description": "a shipped stage model (connector/presets); the other keys here override its keys",
        },
        **stage_model["properties"],
    }
    core = [k for k in stage_model.pop("required", []) if k in STAGE_MODEL_CORE]
    stage_model["anyOf"] = [{"required": ["preset"]}, {"required": core}]
    return {**schema, "$schema": DIALECT, "title": "connector config"}


def render() -> str:
    """The schema as `connector schema` prints it and the repository publishes it (stable key order)."""
    return json.dumps(config_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def keys_at(loc: Iterable[Any], data: Any) -> set[str]:
    """The keys the schema allows in the mapping at `loc` (a location in the YAML data), for "did you mean"
    hints; empty when the location does not lead to a mapping with known keys."""
    root = config_json_schema()
    nodes = [root]
    value = data
    for element in loc:
        nodes = [child for node in nodes for child in _children(root, node, element, value)]
        value = _step(value, element)
    keys: set[str] = set()
    for node in nodes:
        for branch in _branches(root, node, value):
            keys.update(branch.get("properties", {}))
    return keys


def _step(value: Any, element: Any) -> Any:
    if isinstance(value, dict):
        return value.get(element)
    if isinstance(value, list) and isinstance(element, int) and 0 <= element < len(value):
        return value[element]
    return None


def _children(root: dict[str, Any], node: dict[str, Any], element: Any, value: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for branch in _branches(root, node, value):
        if isinstance(element, int) and "items" in branch:
            out.append(branch["items"])
        elif isinstance(element, str) and element in branch.get("properties", {}):
            out.append(branch["properties"][element])
        elif isinstance(element, str) and isinstance(branch.get("additionalProperties"), dict):
            out.append(branch["additionalProperties"])
    return out


def _branches(root: dict[str, Any], node: dict[str, Any], value: Any) -> list[dict[str, Any]]:
    """`node` with references resolved and unions opened: the discriminated branch when the data names it
    (`type: salesforce`), else every branch."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _branches(root, root["$defs"][name], value)
    discriminator = node.get("discriminator")
    if discriminator and isinstance(value, dict):
        target = discriminator.get("mapping", {}).get(value.get(discriminator["propertyName"]))
        if target:
            return _branches(root, {"$ref": target}, value)
    for union in ("oneOf", "anyOf"):
        if union in node and not node.get("properties"):
            return [b for option in node[union] for b in _branches(root, option, value)]
    return [node]
