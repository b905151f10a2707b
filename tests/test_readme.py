"""The configuration README shows must stay valid: the docs cannot drift from the schema."""

from __future__ import annotations

import re
from pathlib import Path

from connector.config import load_config_text

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_commented_example_in_the_readme_is_a_valid_config(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    example = next(b for b in blocks if "sources:" in b and "targets:" in b and "segments:" in b)
    config = load_config_text(example, "README.md", base_dir=tmp_path)
    assert {s.type for s in config.sources} == {"salesforce", "vtiger", "file"}
    assert {t.type for t in config.targets} == {"salesforce", "vtiger", "segment_files"}


def test_the_rules_example_in_the_readme_is_valid(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    rules = next(b for b in blocks if b.lstrip().startswith("rules:"))
    text = "stage_model:\n  preset: default\n" + "".join(f"  {line}\n" for line in rules.splitlines())
    config = load_config_text(text, "README.md", base_dir=tmp_path)
    assert [r.name for r in config.stage_model.rules] == ["contract-renewal", "interest"]
