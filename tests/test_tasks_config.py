"""`tasks:` in the config: triggers, templates and targets checked at validate time, with file:line key.path."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import ConfigErrors, load_config_text

FILE = "connector.yaml"
HEAD = """\
stage_model:
  preset: default
sources:
  - {name: sf_prod, type: salesforce, auth: session, env_prefix: SF_, objects: {Lead: {fields: {Email: email}}}}
  - {name: vt_main, type: vtiger, url: "http://127.0.0.1:1", env_prefix: VT_, modules: {Leads: {fields: {email: email}}}}
  - {name: web, type: file, path: web.csv, kind: enrichment, join: email, fields: {E-mail: email}}
targets:
  - {name: sf_out, type: salesforce, source: sf_prod}
  - {name: vt_out, type: vtiger, source: vt_main}
  - {name: files, type: segment_files, directory: out, columns: [email]}
"""


def load(tasks: str):  # type: ignore[no-untyped-def]
    return load_config_text(HEAD + tasks, FILE, base_dir=Path("/srv/connector"))


def problems(tasks: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load(tasks)
    return [str(i) for i in info.value.issues]


GOOD = """\
tasks:
  - name: nurture-revisit
    trigger: {nurture_until: reached}
    create:
      subject: "Revisit {{ first_name }} {{ last_name }}"
      description: "Parked until {{ nurture_until }}; stage {{ label }}; {{ extra.source_note }}"
      due_in_days: 3
      priority: {default: Normal, vt_out: Medium}
  - name: win-back-call
    when: {field: competitor, present: true}
    trigger: {date: {field: competitor_contract_end, days_before: 120}}
    create: {targets: sf_out, subject: "Call about {{ competitor }}", owner: 005000000000001AAA}
  - name: new-opportunity
    trigger: {enters: opportunity, from: prospect}
    create: {targets: [vt_out], subject: "Follow up"}
  - name: renewal
    trigger: {renewal: {days_before: 60}}
    create: {subject: "Renewal of {{ company }}"}
"""


def test_every_trigger_kind_and_template_loads() -> None:
    config = load(GOOD)
    kinds = [t.trigger.kind for t in config.tasks]
    assert kinds == ["nurture_until", "date", "enters", "renewal"]
    first = config.tasks[0]
    assert first.create.targets == "all"
    assert first.create.value_for("priority", "vt_out") == "Medium"
    assert first.create.value_for("priority", "sf_out") == "Normal"
    assert first.trigger.window() == (0, 30)
    assert config.tasks[1].create.targets == ["sf_out"]
    assert config.tasks[2].trigger.from_ == ["prospect"]
    assert config.tasks[3].trigger.window() == (60, 0)


def test_a_misspelt_template_field_is_a_config_error_at_its_line() -> None:
    found = problems(
        """\
tasks:
  - name: t
    trigger: {nurture_until: reached}
    create:
      subject: "Revisit {{ frist_name }}"
"""
    )
    assert len(found) == 1
    assert found[0].startswith(f"{FILE}:15 tasks[0].create.subject:")
    assert "frist_name" in found[0] and "first_name" in found[0]


def test_a_template_syntax_error_and_bad_trigger_and_unknown_target_are_all_reported() -> None:
    found = problems(
        """\
tasks:
  - name: t1
    trigger: {nurture_until: reached, enters: lead}
    create: {subject: "{{ first_name "}
  - name: t2
    trigger: {enters: nurtur}
    create: {targets: [sf_out, files, nowhere], subject: x}
  - name: t2
    trigger: {date: {field: company, days_before: 3}}
    create: {subject: x, status: {sf_ot: Deferred}}
"""
    )
    text = "\n".join(found)
    assert "tasks[0].trigger: give exactly one of: enters, date, nurture_until, renewal" in text
    assert "tasks[0].create.subject: template error" in text
    assert "tasks[1].trigger.enters: unknown stage 'nurtur' (did you mean 'nurture'?)" in text
    assert "tasks[1].create.targets[1]: target 'files' cannot hold tasks" in text
    assert "tasks[1].create.targets[2]: no target named 'nowhere'" in text
    assert "tasks[2].name: task name 't2' is used twice" in text
    assert "tasks[2].trigger.date.field: Value error" not in text
    assert "'company' is a str field; a date trigger needs a date field" in text
    assert "tasks[2].create.status.sf_ot: no task target named 'sf_ot' (did you mean 'sf_out'?)" in text


def test_an_unknown_key_in_a_task_is_named() -> None:
    found = problems(
        "tasks:\n  - {name: t, trigger: {nurture_until: reached}, create: {subject: x, due: 3}}\n"
    )
    assert any("tasks[0].create.due: unknown key" in f for f in found)


def test_the_readme_tasks_example_is_valid_beside_the_readme_config(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    example = next(b for b in blocks if "sources:" in b and "targets:" in b and "segments:" in b)
    tasks = next(b for b in blocks if b.lstrip().startswith("tasks:"))
    config = load_config_text(example + tasks, "README.md", base_dir=tmp_path)
    assert [t.name for t in config.tasks] == ["nurture-revisit"]
    assert config.tasks[0].create.value_for("priority", "vt_out") == "Medium"
