"""Config loading: every error at once, each with file, LINE and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import ConfigErrors, load_config, load_config_text

FILE = "connector.yaml"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_config_text(text, FILE, base_dir=Path("/srv/connector"))
    return [str(issue) for issue in info.value.issues]


def where(text: str) -> list[str]:
    """`file:line path` of each problem, without the message."""
    with pytest.raises(ConfigErrors) as info:
        load_config_text(text, FILE, base_dir=Path("/srv/connector"))
    return [f"{i.file}:{i.line} {i.path}" for i in info.value.issues]


MINIMAL = """\
stage_model:
  preset: default
"""


def test_a_minimal_config_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "connector.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    config = load_config(path)
    assert config.base_dir == tmp_path
    assert config.state_path() == tmp_path / ".connector" / "state.sqlite"
    assert config.identity.merge_on == ["email", "external_id"]
    assert config.stage_model.path[0] == "suspect"
    assert (config.sources, config.targets, config.segments) == ([], [], [])


def test_the_shipped_example_config_loads() -> None:
    config = load_config(Path(__file__).parents[1] / "config" / "connector.yaml")
    assert [s.name for s in config.sources] == ["crm_export", "competitor_contracts", "web_visits"]
    assert [s.name for s in config.segments] == ["acquisition", "warm-leads"]


def test_an_absolute_state_path_is_kept(tmp_path: Path) -> None:
    config = load_config_text(
        MINIMAL + f"state:\n  path: {tmp_path}/s.sqlite\n", FILE, base_dir=Path("/elsewhere")
    )
    assert config.state_path() == tmp_path / "s.sqlite"


# ---- typos and wrong types: several at once, each with its line --------------------------------------

TYPOS = """\
stage_model:
  preset: default
state:
  path: 42
sources:
  - name: crm
    type: file
    path: people.csv
    kind: persn
    fields: {email: email}
    enabled: maybe
targets:
  - name: files
    type: segment_files
    directory: out
    delimter: ";"
segments:
  - name: warm
    when: {field: stage, eq: lead}
    targets: [files]
    include_suppressed: sometimes
identity:
  merge_on: [email, phone]
"""


def test_typos_and_wrong_types_are_reported_together_with_lines() -> None:
    assert sorted(problems(TYPOS)) == sorted(
        [
            "connector.yaml:4 state.path: Input should be a valid string",
            "connector.yaml:9 sources[0].kind: Input should be 'person', 'opportunity', 'contract' or 'enrichment'",
            "connector.yaml:11 sources[0].enabled: Input should be a valid boolean, unable to interpret input",
            "connector.yaml:16 targets[0].delimter: unknown key (did you mean 'delimiter'?)",
            "connector.yaml:21 segments[0].include_suppressed: Input should be a valid boolean, "
            "unable to interpret input",
            "connector.yaml:23 identity.merge_on[1]: Input should be 'email' or 'external_id'",
        ]
    )


def test_unknown_source_type() -> None:
    text = MINIMAL + "sources:\n  - name: crm\n    type: filez\n    path: x.csv\n"
    (msg,) = problems(text)
    assert msg.startswith("connector.yaml:4 sources[0]: ")
    assert "'filez'" in msg and "'file'" in msg


def test_a_missing_required_key() -> None:
    text = MINIMAL + "targets:\n  - name: files\n    type: segment_files\n"
    assert problems(text) == ["connector.yaml:4 targets[0].directory: required key is missing"]


def test_a_missing_stage_model() -> None:
    assert problems("state:\n  path: x.sqlite\n") == ["connector.yaml stage_model: required key is missing"]


def test_reserved_keys_are_refused() -> None:
    assert "connector.yaml:3 base_dir: set by connector, not in YAML" in problems(
        MINIMAL + "base_dir: /tmp\n"
    )


def test_a_top_level_list_is_refused() -> None:
    assert problems("- a\n- b\n") == ["connector.yaml:1: the config must be a mapping at the top level"]


# ---- unknown keys at nested levels (extra=forbid) --------------------------------------------------------

NESTED = """\
stage_model:
  preset: default
sources:
  - name: crm
    type: file
    path: people.csv
    kind: person
    fields: {email: email}
    colour: blue
targets:
  - name: files
    type: segment_files
    directory: out
segments:
  - name: warm
    when: {all: [{field: stage, eq: lead}]}
    targets: [files]
    priority: 3
"""


def test_unknown_keys_at_nested_levels() -> None:
    assert sorted(where(NESTED)) == [
        "connector.yaml:18 segments[0].priority",
        "connector.yaml:9 sources[0].colour",
    ]
    assert all(p.endswith(": unknown key") for p in problems(NESTED))


def test_unknown_key_in_a_rule_condition_names_the_rule() -> None:
    text = """\
stage_model:
  preset: default
  rules:
    - name: r1
      stage: lead
      when:
        all:
          - {field: web_visits, gte: 3}
          - any:
              - {field: newsletter, eq: true}
    - name: r2
      stage: lead
      when: {field: lead_stauts, eq: working}
"""
    (msg,) = problems(text)
    assert msg.startswith("connector.yaml:13 stage_model.rules[1].when")
    assert "unknown field 'lead_stauts'" in msg


def test_unknown_key_in_a_field_condition_points_at_the_key() -> None:
    text = """\
stage_model:
  preset: default
segments:
  - name: cold
    when:
      not:
        field: lead_status
        eq: new
        colour: red
    targets: [x]
"""
    # the unknown target `x` is reported in the same round
    assert where(text) == [
        "connector.yaml:9 segments[0].when.not.colour",
        "connector.yaml:10 segments[0].targets[0]",
    ]


def test_unknown_key_in_a_condition_inside_all() -> None:
    text = (
        MINIMAL
        + "segments:\n  - name: warm\n    when: {all: [{field: stage, eq: lead}, {field: web_visits, gte: 3, typo: 1}]}\n    targets: [x]\n"
    )
    assert where(text) == [
        "connector.yaml:5 segments[0].when.all[1].typo",
        "connector.yaml:6 segments[0].targets[0]",
    ]


def test_a_bad_field_inside_all_names_the_field_key() -> None:
    text = (
        MINIMAL
        + "segments:\n  - name: warm\n    when:\n      all:\n        - field: stage\n          eq: lead\n        - field: webvisits\n          gte: 3\n    targets: [x]\n"
    )
    assert where(text) == [
        "connector.yaml:9 segments[0].when.all[1].field",
        "connector.yaml:11 segments[0].targets[0]",
    ]


def test_a_rule_with_two_operators() -> None:
    text = MINIMAL + (
        "  rules:\n    - name: r\n      stage: lead\n      when: {field: web_visits, gte: 3, lte: 9}\n"
    )
    (msg,) = problems(text)
    assert msg.startswith("connector.yaml:6 stage_model.rules[0].when")
    assert "give exactly one operator for field 'web_visits'" in msg


# ---- references between sections ----------------------------------------------------------------------

REFS = """\
stage_model:
  preset: default
sources:
  - name: crm
    type: file
    path: people.csv
    kind: person
    fields: {email: email}
  - name: crm
    type: file
    path: other.csv
    kind: person
    fields: {email: email}
targets:
  - name: files
    type: segment_files
    directory: out
segments:
  - name: warm
    when: {field: stage, in: [lead, prospekt]}
    targets: [files, crm_labels]
  - name: warm
    when: {field: stage, eq: lead}
    targets: [files]
identity:
  source_priority: [crm, vtiger]
"""


def test_cross_references_are_checked_and_reported_together() -> None:
    assert sorted(problems(REFS)) == sorted(
        [
            "connector.yaml:9 sources[1].name: name 'crm' is used twice",
            "connector.yaml:21 segments[0].targets[1]: no target named 'crm_labels'",
            "connector.yaml:20 segments[0].when: unknown stage 'prospekt' (did you mean 'prospect'?)",
            "connector.yaml:22 segments[1].name: segment name 'warm' is used twice",
            "connector.yaml:26 identity.source_priority[1]: no source named 'vtiger'",
        ]
    )


def test_a_label_for_an_unknown_target() -> None:
    text = """\
stage_model:
  preset: default
  stages:
    - {name: suspect}
    - {name: lead, labels: {sf_prod: Warm}}
    - {name: prospect}
    - {name: opportunity}
    - {name: customer}
    - {name: ambassador}
    - {name: nurture}
    - {name: qualified_out}
    - {name: lost}
"""
    assert problems(text) == [
        "connector.yaml:5 stage_model.stages[1].labels.sf_prod: no target named 'sf_prod'"
    ]


def test_a_source_named_like_a_target() -> None:
    text = MINIMAL + (
        "sources:\n  - {name: x, type: file, path: a.csv, kind: person, fields: {email: email}}\n"
        "targets:\n  - {name: x, type: segment_files, directory: out}\n"
    )
    assert problems(text) == [
        "connector.yaml:6 targets[0].name: 'x' is also a source name; use distinct names"
    ]


# ---- the stage model in the config ---------------------------------------------------------------------


def test_unknown_stage_in_rules() -> None:
    text = (
        MINIMAL + "  rules:\n    - name: r1\n      stage: prospekt\n      when: {field: web_visits, gte: 3}\n"
    )
    line = MINIMAL.count("\n") + 3  # the `stage:` line of the rule
    assert problems(text) == [
        f"connector.yaml:{line} stage_model.rules[0].stage: unknown stage 'prospekt' in rule 'r1' "
        "(did you mean 'prospect'?)"
    ]


def test_a_bad_preset_name() -> None:
    assert problems("stage_model:\n  preset: defualt\n") == [
        "connector.yaml:1 stage_model: unknown preset 'defualt' (did you mean 'default'?) "
        "(known: default, journey_004, journey_002)"
    ]


def test_a_preset_override_that_breaks_the_model() -> None:
    msgs = problems(MINIMAL + "  path: [suspect, lead, prospect]\n")
    # stages came from the preset (no line of their own): reported at the stage_model key
    assert msgs == [
        f"connector.yaml:1 stage_model.stages: stage '{name}' is neither on the path nor a detour"
        for name in ("ambassador", "customer", "opportunity")
    ]


@pytest.mark.parametrize("preset", ["default", "journey_004", "journey_002"])
def test_each_preset_by_name(preset: str) -> None:
    config = load_config_text(f"stage_model:\n  preset: {preset}\n", FILE, base_dir=Path("."))
    assert config.stage_model.rules


# ---- YAML itself -------------------------------------------------------------------------------------


def test_duplicate_yaml_keys() -> None:
    text = MINIMAL + "state:\n  path: a.sqlite\nstate:\n  path: b.sqlite\n"
    (msg,) = problems(text)
    assert msg.startswith('connector.yaml:5: YAML: found duplicate key "state"')


def test_duplicate_yaml_keys_in_a_nested_mapping() -> None:
    text = (
        MINIMAL
        + "targets:\n  - name: files\n    type: segment_files\n    directory: out\n    directory: out2\n"
    )
    (msg,) = problems(text)
    assert msg.startswith('connector.yaml:7: YAML: found duplicate key "directory"')


def test_yaml_syntax_error_with_its_line() -> None:
    text = MINIMAL + "sources: [\n  - x\n"
    (msg,) = problems(text)
    assert msg.startswith("connector.yaml:4: YAML: ")


def test_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as info:
        load_config(tmp_path / "missing.yaml")
    (issue,) = info.value.issues
    assert issue.line is None
    assert "cannot read" in issue.message


def test_schema_and_reference_errors_come_in_one_round() -> None:
    text = """\
stage_model: {preset: default}
sources:
  - name: f
    type: file
    path: x.csv
    kindd: person
targets:
  - {name: out, type: segment_files, directory: o}
segments:
  - name: s
    when: {field: stage, eq: leed}
    targets: [out, nowhere]
"""
    assert problems(text) == [
        "connector.yaml:6 sources[0].kindd: unknown key (did you mean 'kind'?)",
        "connector.yaml:11 segments[0].when: unknown stage 'leed' (did you mean 'lead'?)",
        "connector.yaml:12 segments[0].targets[1]: no target named 'nowhere'",
    ]
