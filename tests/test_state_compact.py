"""Compact state (issue 10 item 2): fact payloads, decisions and snapshots stored as compact zlib'd JSON, facts
and identity without a rowid, the link-key index holding each link once; a state written before (version 9,
tests/data/state-v9.sqlite, written by the version-9 code on the spine's files-only project) keeps working."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from spine_helpers import AS_OF, Project

from connector.cli import cli
from connector.mappers import email_check, fields
from connector.pipeline import Runner
from connector.state_codec import decode_decision, decode_snapshot, fact_json
from connector.state_migrations import SCHEMA_VERSION

pytestmark = pytest.mark.reliability("State")

V9_STATE = Path(__file__).parent / "data" / "state-v9.sqlite"


def _plain(project: Project) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Decisions, snapshots and fact payloads as the state holds them, decoded whatever their encoding."""
    db = sqlite3.connect(project.state_path)
    try:
        people = list(db.execute("SELECT person_key, decision, snapshot FROM people"))
        facts = list(db.execute("SELECT source || ':' || object || ':' || record_id, payload FROM facts"))
    finally:
        db.close()
    return (
        {k: decode_decision(d) for k, d, _ in people},
        {k: decode_snapshot(s) for k, _, s in people},
        {ref: fact_json(p) for ref, p in facts},
    )


def _explain(project: Project, who: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["explain", "-c", str(project.config_path), who, "--json"])
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)  # the logs go to stderr
    return out


def test_a_run_stores_facts_decisions_and_snapshots_compact(project: Project) -> None:
    summary = Runner(project.config()).execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    decisions, snapshots, facts = _plain(project)
    kinds = project.query(
        "SELECT DISTINCT typeof(decision), typeof(snapshot) FROM people UNION ALL "
        "SELECT DISTINCT typeof(payload), 'blob' FROM facts"
    )
    assert set(kinds) == {("blob", "blob")}
    # every stored byte string is shorter than the plain JSON it replaced (the version-9 encoding)
    sizes = project.query("SELECT SUM(length(decision)), SUM(length(snapshot)) FROM people")[0]
    assert sizes[0] < sum(len(json.dumps(d, sort_keys=True)) for d in decisions.values())
    assert sizes[1] < sum(len(json.dumps(s, sort_keys=True)) for s in snapshots.values())
    payloads = project.query("SELECT SUM(length(payload)) FROM facts")[0][0]
    assert payloads < sum(len(json.dumps(f, sort_keys=True)) for f in facts.values())
    # what explain shows is decoded back in full: provenance names records, the decision its defaults
    bob = _explain(project, "bob@globex.example")
    assert bob["provenance"]["competitor"].startswith("contracts:")
    assert bob["provenance"]["email"] in bob["records"]
    assert {"rule", "matched", "held", "reentry", "stage", "path_stage"} <= set(bob["decision"])


def test_the_link_index_keeps_no_row_for_a_record_itself(project: Project) -> None:
    assert Runner(project.config()).execute("run", AS_OF).exit_code == 0
    assert project.query("SELECT COUNT(*) FROM fact_keys WHERE key = ref") == [(0,)]
    assert project.query("SELECT COUNT(*) FROM fact_keys") != [(0,)]
    indexes = {r[0] for r in project.query("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "fact_keys_ref" not in indexes
    tables = dict(project.query("SELECT name, sql FROM sqlite_master WHERE type='table'"))
    assert "WITHOUT ROWID" in tables["facts"] and "WITHOUT ROWID" in tables["identity"]


def test_a_version_9_state_is_migrated_and_reads_the_same(project: Project) -> None:
    project.state_path.parent.mkdir(parents=True)
    shutil.copy(V9_STATE, project.state_path)
    before = _plain(project)
    assert project.query("SELECT DISTINCT typeof(snapshot) FROM people") == [("text",)]
    explained = _explain(project, "bob@globex.example")  # migrates on open; rows still plain JSON
    assert project.query("SELECT value FROM meta WHERE key='schema_version'") == [(str(SCHEMA_VERSION),)]
    assert _plain(project) == before
    assert project.query("SELECT COUNT(*) FROM fact_keys WHERE key = ref") == [(0,)]

    # nothing new: an incremental run over the migrated state decides and writes nothing
    again = Runner(project.config()).execute("run", AS_OF)
    assert again.exit_code == 0 and again.transitions == {}, again.errors
    assert all(s["adds"] == s["removes"] == 0 for s in again.segments["files"].values())

    # deciding everyone again re-encodes every person compact, with the same content
    full = Runner(project.config(), full_recompute=True).execute("run", AS_OF)
    assert full.exit_code == 0 and full.transitions == {}, full.errors
    assert project.query("SELECT DISTINCT typeof(snapshot) FROM people") == [("blob",)]
    assert _plain(project)[:2] == before[:2]
    assert _explain(project, "bob@globex.example") == explained


def test_a_version_9_state_reaches_a_changed_record_through_the_migrated_index(project: Project) -> None:
    project.state_path.parent.mkdir(parents=True)
    shutil.copy(V9_STATE, project.state_path)
    # bob's contract moves out of the acquisition window: found through his e-mail's link, not a full run
    project.write(
        "data/contracts.csv", "E-mail;Provider;Einddatum\nfrank@newco.example;TeleCorp;01-03-2027\n"
    )
    summary = Runner(project.config()).execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    assert project.segment_rows("acquisition") == ["frank@newco.example"]


def test_each_address_is_validated_once_per_run(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    problem = email_check.problem

    def counting(candidate: str) -> str | None:
        seen.append(candidate)
        return problem(candidate)

    monkeypatch.setattr(email_check, "problem", counting)
    _clear_email_cache()
    try:
        assert Runner(project.config()).execute("run", AS_OF).exit_code == 0
    finally:
        _clear_email_cache()
    assert seen and len(seen) == len(set(seen))  # a row's address as a field and as its join key: once


def _clear_email_cache() -> None:
    cached = getattr(fields, "_email_problem", None)
    if cached is not None:
        cached.cache_clear()
