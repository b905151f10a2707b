"""`connector schema`: the JSON Schema of the config, published in the repository, referenced by the example
configs, in step with the models, and valid for the README's example."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from connector.cli import cli
from connector.registry import source_plugins, writer_plugins
from connector_sandboxes.demo.config_template import DEMO_CONFIG, SCHEMA_FILE

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = REPO / "config" / "connector.schema.json"
SCHEMA_COMMENT = re.compile(r"^# yaml-language-server: \$schema=(\S+)\n")


def printed_schema() -> str:
    result = CliRunner().invoke(cli, ["schema"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def readme_example() -> Any:
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    text = next(b for b in blocks if "sources:" in b and "targets:" in b and "segments:" in b)
    return YAML(typ="safe").load(text)


def errors_of(data: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(data)]


def test_the_published_schema_is_what_connector_schema_prints() -> None:
    # regenerate with: connector schema > config/connector.schema.json
    assert PUBLISHED.read_text(encoding="utf-8") == printed_schema()


def test_the_schema_is_draft_2020_12_and_leaves_out_what_the_loader_sets() -> None:
    schema = json.loads(printed_schema())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "base_dir" not in schema["properties"] and "config_file" not in schema["properties"]
    assert "base_dir" not in schema.get("required", []) and "config_file" not in schema.get("required", [])
    assert schema["additionalProperties"] is False  # a typo is an error in the editor too


def test_sources_and_targets_are_discriminated_on_type_as_editors_understand() -> None:
    schema = json.loads(printed_schema())
    for section, plugins in (("sources", source_plugins()), ("targets", writer_plugins())):
        items = schema["properties"][section]["items"]
        assert items["discriminator"]["propertyName"] == "type"
        assert set(items["discriminator"]["mapping"]) == set(plugins)
        assert {b["$ref"] for b in items["oneOf"]} == set(items["discriminator"]["mapping"].values())


def test_the_readme_example_config_validates_against_the_published_schema() -> None:
    example = readme_example()
    assert errors_of(example) == []
    # and the schema does check it: a typo and a wrong type in the same example are both found
    broken = copy.deepcopy(example)
    broken["sources"][1]["ca_bundel"] = "certs/crm-ca.pem"
    broken["targets"][0]["type"] = "salesfroce"
    broken["guard"] = {"min_count": "ten"}
    found = errors_of(broken)
    assert any(e.startswith("sources.1:") and "ca_bundel" in e for e in found), found
    assert any(e.startswith("targets.0") for e in found), found
    assert any(e.startswith("guard.min_count:") for e in found), found


def test_the_shipped_example_config_refers_to_the_schema_and_validates(tmp_path: Path) -> None:
    text = (REPO / "config" / "connector.yaml").read_text(encoding="utf-8")
    match = SCHEMA_COMMENT.match(text)
    assert match, "config/connector.yaml must start with the yaml-language-server $schema line"
    assert (REPO / "config" / match.group(1)).resolve() == PUBLISHED
    assert errors_of(YAML(typ="safe").load(text)) == []


def test_the_demo_config_refers_to_the_schema_written_beside_it() -> None:
    match = SCHEMA_COMMENT.match(DEMO_CONFIG)
    assert match and match.group(1) == SCHEMA_FILE
    text = DEMO_CONFIG.format(
        sf_login_url="https://127.0.0.1:1", sf_ca_bundle="/tmp/ca.pem", vt_url="http://127.0.0.1:2"
    )
    assert errors_of(YAML(typ="safe").load(text)) == []


@pytest.mark.parametrize(
    ("stage_model", "ok"),
    [
        ({"preset": "journey_004"}, True),
        ({"preset": "journey_004", "labels": {"customer": "Klant", "lead": {"default": "Aanvraag"}}}, True),
        ({"stages": [{"name": "a"}], "path": ["a"], "default": "a"}, True),
        ({"labels": {"customer": "Klant"}}, False),  # neither a preset nor a whole model
        ({"preset": "journey_005"}, False),
        ({"preset": "default", "lables": {}}, False),
    ],
)
def test_the_stage_model_is_described_as_admins_write_it(stage_model: dict[str, Any], ok: bool) -> None:
    assert (errors_of({"stage_model": stage_model}) == []) is ok


def test_the_schema_is_printed_by_the_command_line_and_version_too() -> None:
    assert json.loads(printed_schema())["title"] == "connector config"
    result = CliRunner().invoke(cli, ["--version"], catch_exceptions=False)
    assert result.exit_code == 0
    assert re.fullmatch(r"connector \d+\.\d+\.\d+\S*\n", result.output)


def test_every_config_key_is_documented_in_the_readme_examples() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    documented = "\n".join(re.findall(r"```yaml\n(.*?)```", readme, re.S))
    schema = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    # the condition vocabulary has its own list in the README ("Operators: ...")
    conditions = {"AllCondition", "AnyCondition", "NotCondition", "FieldCondition", "DayWindow"}
    models = [("config", schema), *((n, d) for n, d in schema["$defs"].items() if n not in conditions)]
    missing = [
        f"{name}.{key}"
        for name, definition in models
        for key in definition.get("properties", {})
        if not re.search(rf"(?<![\w.-]){re.escape(key)}:", documented)
    ]
    assert missing == []
