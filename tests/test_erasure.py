"""Erasure on request on a files-only project: `connector forget` with a file of e-mails, an XLSX segment
file, what the state keeps afterwards (a salted hash, counts), and `plan` / `explain` of a suppressed person.
The end-to-end run over HTTP is tests/test_erasure_e2e.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from spine_helpers import Project

from connector.cli import cli
from connector.config import load_config
from connector.erasure import SALT_ENV, forget
from connector.pipeline import Runner
from connector.state import StateStore
from connector.writers.segment_files.tables import read_xlsx

AS_OF = dt.date(2026, 11, 23)


def _cli(project: Project, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--log-level", "warning", *args[:1], "-c", str(project.config_path), *args[1:]]
    )


def _run(project: Project) -> None:
    result = _cli(project, "run", "--as-of", AS_OF.isoformat())
    assert result.exit_code == 0, result.output


def test_forget_from_a_file_removes_rows_from_xlsx_files_and_keeps_only_a_salted_hash(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(SALT_ENV, "pepper")
    project.write(
        "connector.yaml",
        project.config_path.read_text().replace("directory: out", "directory: out\n    format: xlsx"),
    )
    _run(project)
    _run(project)  # a second run, so the change log holds rows from more than one run
    assert "bob@globex.example" in {r["email"] for r in read_xlsx(project.out / "acquisition.xlsx")[1]}
    requests = tmp_path / "requests.txt"
    requests.write_text("  Bob@Globex.example \n\nnot an address\n", encoding="utf-8")

    result = _cli(project, "forget", "--file", str(requests), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["requested"] == 2 and report["not_an_email"] == 1 and report["people"] == 1
    for name in ("acquisition.xlsx", "acquisition.changes.xlsx", "warm.xlsx", "warm.changes.xlsx"):
        path = project.out / name
        if path.exists():
            assert all("bob@globex.example" not in str(r.values()).lower() for r in read_xlsx(path)[1]), name
    assert {r["email"] for r in read_xlsx(project.out / "acquisition.xlsx")[1]} == {"frank@newco.example"}

    expected = hmac.new(b"pepper", b"bob@globex.example", hashlib.sha256).hexdigest()
    assert project.query("SELECT hash FROM suppressions") == [(expected,)]
    (summary,) = project.query("SELECT summary FROM erasures")
    assert "bob" not in summary[0] and "globex" not in summary[0]
    assert json.loads(summary[0])["people"] == 1

    # the next run re-reads both files: bob stays out, and the rest is as it was
    _run(project)
    assert {r["email"] for r in read_xlsx(project.out / "acquisition.xlsx")[1]} == {"frank@newco.example"}
    assert project.query("SELECT COUNT(*) FROM facts WHERE payload LIKE '%globex%'") == [(0,)]


def test_plan_and_explain_of_a_suppressed_person_say_only_that(project: Project) -> None:
    _run(project)
    assert _cli(project, "forget", "ann@acme.example").exit_code == 0
    # her row comes back in a changed file: plan reads it, leaves it out, and counts it, naming no one
    people = project.root / "data" / "people.csv"
    people.write_text(people.read_text().replace("Ann;de Vries;Acme;Working", "Ann;de Vries;Acme;Qualified"))
    plan = _cli(project, "plan", "--as-of", AS_OF.isoformat(), "--full")
    assert plan.exit_code == 0, plan.output
    assert "suppressed: 1 record(s) of people erased on request read and left out" in plan.stdout
    as_json = _cli(project, "plan", "--as-of", AS_OF.isoformat(), "--json", "--full")
    assert json.loads(as_json.stdout)["suppressed"] == 1
    for output in (plan.stdout, as_json.stdout):
        assert "ann@acme.example" not in output.lower() and "vries" not in output.lower()

    explained = _cli(project, "explain", "ANN@acme.example")
    assert explained.exit_code == 0
    assert explained.stdout == "suppressed (erased on request)\n"
    explained = _cli(project, "explain", "ann@acme.example", "--json")
    assert explained.exit_code == 0
    assert json.loads(explained.stdout) == {"suppressed": "erased on request"}


def test_the_salt_is_generated_once_and_kept_in_the_state(project: Project) -> None:
    config = load_config(project.config_path)
    Runner(config, environ={}).execute("run", AS_OF)
    store = StateStore(config.state_path())
    try:
        at = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
        forget(config, store, ["ann@acme.example"], {}, at, writers=[])
        forget(config, store, ["bob@globex.example"], {}, at, writers=[])
        salts = store.db.execute("SELECT value FROM meta WHERE key='erasure_salt'").fetchall()
        assert len(salts) == 1 and len(salts[0][0]) == 64
        salt = salts[0][0].encode()
        hashes = {r[0] for r in store.db.execute("SELECT hash FROM suppressions")}
        assert hashes == {
            hmac.new(salt, e.encode(), hashlib.sha256).hexdigest()
            for e in ("ann@acme.example", "bob@globex.example")
        }
    finally:
        store.close()


def test_an_erasure_override_for_a_target_not_configured_names_file_line_and_key(project: Project) -> None:
    project.write(
        "connector.yaml",
        project.config_path.read_text()
        + "erasure:\n  crm_action: clear\n  targets:\n    flies: leave\n    files: wipe\n",
    )
    result = _cli(project, "validate")
    assert result.exit_code == 2
    lines = len(project.config_path.read_text().splitlines())
    assert (
        f"connector.yaml:{lines - 1} erasure.targets.flies: no target named 'flies' (did you mean 'files'?)"
        in (result.output)
    )
    assert f"connector.yaml:{lines} erasure.targets.files:" in result.output
