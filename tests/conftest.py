"""Fixtures shared by the spine's tests (helpers live in spine_helpers.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from spine_helpers import CONFIG_YAML, CONTRACTS_CSV, PEOPLE_CSV, VISITS_JSONL, Project

from connector_sandboxes.vtiger import VtigerSandbox

# Property tests draw the same examples on every `make test` (a CI run must not pass or fail by luck);
# HYPOTHESIS_EXPLORE=1 draws new ones, to hunt for bugs (a failure prints the example to keep as a test).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=1000)
settings.load_profile("explore" if os.environ.get("HYPOTHESIS_EXPLORE") else "repeatable")


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


@pytest.fixture
def vt_sandbox() -> Iterator[VtigerSandbox]:
    """A loopback vtiger 8.2 webservice with the custom fields the tests map ("Funnel stage", "Segments")."""
    sandbox = VtigerSandbox(username="admin", access_key="sandboxKey123456", custom_fields=True).start()
    try:
        yield sandbox
    finally:
        sandbox.faults.release.set()  # a test that held a call must never leave a server thread waiting
        sandbox.stop()
