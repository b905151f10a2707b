"""Fixtures shared by the spine's tests (helpers live in spine_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from spine_helpers import CONFIG_YAML, CONTRACTS_CSV, PEOPLE_CSV, VISITS_JSONL, Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    proj = Project(tmp_path / "proj")
    proj.write("connector.yaml", CONFIG_YAML)
    proj.write("data/people.csv", PEOPLE_CSV)
    proj.write("data/contracts.csv", CONTRACTS_CSV)
    proj.write("data/visits.jsonl", VISITS_JSONL)
    return proj


# docs/reliability.md is written by the run of the tests marked `reliability` (scripts/reliability-doc)
pytest_plugins = ("reliability_doc",)
